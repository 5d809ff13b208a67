"""The store's on-disk format: file names, the header, row encoding (ids and float32 rows in a parquet shard) and
hashing, plus the durable-write and checksum primitives the store and the cache share.

A shard is a parquet file with columns ``id`` and ``embedding``: format 2 stores each row as one fixed-size binary
value of ``dim`` little-endian float32 (format 1, a fixed-size float32 list, is still read and resumed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workbench._files import atomic_write

__all__ = [
    "FORMAT", "HEADER", "LOCK", "MANIFEST", "SHARD_PATTERN", "TMP_SUFFIX", "VERSION", "StoreCorruptionWarning",
    "atomic_write_bytes", "file_sha256", "remove_temp_files", "sha256_hex",
]

FORMAT = "workbench.store"
VERSION = 2  # 1: embedding column a fixed-size float32 list; 2: fixed-size binary of little-endian float32
HEADER = "store.json"
MANIFEST = "manifest.jsonl"
LOCK = ".lock"
TMP_SUFFIX = ".tmp"


class StoreCorruptionWarning(UserWarning):
    """A stored file failed its checksum or could not be read; it is not returned and will be recomputed."""


def sha256_hex(data: bytes | memoryview) -> str:
    """The SHA-256 of ``data`` as hex.

    Examples
    --------
    >>> sha256_hex(b"abc")[:16]
    'ba7816bf8f01cfea'
    """
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes as hex (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` durably: temporary file, fsync, ``os.replace``, fsync of the folder.

    A crash leaves either the old file or the new one under ``path`` (and at worst a ``.*.tmp`` file beside it).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = atomic_write_bytes(pathlib.Path(tempfile.mkdtemp()) / "x.bin", b"payload")
    >>> target.read_bytes()
    b'payload'
    """
    path = Path(path)
    with atomic_write(path, "wb") as handle:  # the one atomic writer (_files.atomic_write), temp suffix TMP_SUFFIX
        handle.write(data)
    return path


def remove_temp_files(folder: str | os.PathLike[str]) -> int:
    """Remove leftover ``.*.tmp`` files of interrupted writes in ``folder``; return how many were removed."""
    removed = 0
    for tmp in Path(folder).glob(f".*{TMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed += 1
    return removed


def _ids_digest(ids: Sequence[Any]) -> str:
    return sha256_hex(json.dumps([i.item() if isinstance(i, np.generic) else i for i in ids]).encode())


class _DamagedHeader(ValueError):
    """The store header cannot be trusted (unreadable JSON, a failed checksum or a missing field)."""


_HEADER_FIELDS = {"format": str, "version": int, "encoder": str, "fingerprint": str, "preprocessing": str,
                  "modality": str, "shard_size": int}


def _canonical_sha256(record: dict[str, Any], checksum_key: str) -> str:
    """The SHA-256 of ``record`` without ``checksum_key``, as canonical JSON (sorted keys)."""
    body = {k: v for k, v in record.items() if k != checksum_key}
    return sha256_hex(json.dumps(body, sort_keys=True).encode())


def _header_bytes(header: dict[str, Any]) -> bytes:
    """The header file's bytes: the header plus ``header_sha256``, its checksum (a flipped byte cannot pass)."""
    sealed = {**header, "header_sha256": _canonical_sha256(header, "header_sha256")}
    return json.dumps(sealed, indent=1, sort_keys=True).encode()


def _read_header(folder: Path) -> dict[str, Any]:
    """The verified header of the store at ``folder``.

    FileNotFoundError without ``store.json``; ValueError when the folder holds something else or a newer format;
    :class:`_DamagedHeader` (a ValueError naming the file) when the header is unreadable, fails its checksum or
    lacks a field (headers of stores begun before the checksum have none and are checked field by field)."""
    path = folder / HEADER
    if not path.is_file():
        raise FileNotFoundError(f"no embedding store at {os.fspath(folder)!r} (no {HEADER})")
    try:
        header = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _DamagedHeader(f"the store header {os.fspath(path)!r} is damaged (not JSON: {exc})") from None
    if not isinstance(header, dict):
        raise _DamagedHeader(f"the store header {os.fspath(path)!r} is damaged (not a JSON object)")
    if header.get("format") != FORMAT:
        if "header_sha256" in header or "shard_size" in header:
            raise _DamagedHeader(f"the store header {os.fspath(path)!r} is damaged (format "
                                 f"{header.get('format')!r}, expected {FORMAT!r})")
        raise ValueError(f"{os.fspath(folder)!r} is not a workbench embedding store")
    if "header_sha256" in header and header["header_sha256"] != _canonical_sha256(header, "header_sha256"):
        raise _DamagedHeader(f"the store header {os.fspath(path)!r} is damaged (its checksum does not match)")
    wrong = [k for k, kind in _HEADER_FIELDS.items() if not isinstance(header.get(k), kind)
             or isinstance(header.get(k), bool)]
    wrong += sorted(k for k in header if k not in _HEADER_FIELDS and k != "header_sha256")  # e.g. a flipped name
    if wrong or header["shard_size"] < 1:
        raise _DamagedHeader(f"the store header {os.fspath(path)!r} is damaged (bad or missing "
                             f"{', '.join(wrong) or 'shard_size'})")
    if header["version"] > VERSION:
        raise ValueError(f"{os.fspath(folder)!r} was written by a newer workbench (format {header['version']})")
    header.pop("header_sha256", None)
    return header


SHARD_PATTERN = "shard-*.parquet"


def _shard_index(name: str) -> int | None:
    """The index of a shard file name (``shard-000012.parquet`` -> 12), None for any other name."""
    stem = name.removeprefix("shard-").removesuffix(".parquet")
    if stem.isascii() and stem.isdigit() and _shard_name(int(stem)) == name:
        return int(stem)
    return None


def _shard_name(index: int) -> str:
    return f"shard-{index:06d}.parquet"


def _numeric_arrow(values: np.ndarray) -> Any:
    """A numeric numpy vector as an arrow array, zero-copy, without ``pa.array`` (which imports pandas on first use
    when pandas is installed: a fraction of a second on the first shard). Same values, same parquet bytes."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def _embedding_arrow(vectors: np.ndarray, version: int) -> Any:
    """The embedding column: each row one fixed-size binary value of ``dim`` little-endian float32 (format 2; four
    times faster to write and read than a parquet list, whose writer emits a repetition level per float), or a
    fixed-size float32 list (format 1, kept for stores begun by older versions)."""
    import pyarrow as pa

    n, dim = vectors.shape
    flat = np.ascontiguousarray(vectors, dtype="<f4").reshape(-1)
    if version == 1:
        return pa.FixedSizeListArray.from_arrays(_numeric_arrow(flat), dim)
    return pa.Array.from_buffers(pa.binary(4 * dim), n, [None, pa.py_buffer(flat)])


def _shard_bytes(ids: Sequence[Any], vectors: np.ndarray, version: int = VERSION) -> memoryview:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(ids, np.ndarray) and ids.dtype.kind in "iuf":
        id_array = _numeric_arrow(ids)
    else:
        id_array = pa.array(np.asarray(ids)) if isinstance(ids, np.ndarray) else pa.array(list(ids))
    metadata = {b"workbench.embedding": json.dumps({"dtype": "<f4", "dim": int(vectors.shape[1])}).encode()}
    table = pa.table({"id": id_array, "embedding": _embedding_arrow(vectors, version)}, metadata=metadata)
    sink = pa.BufferOutputStream()  # grows without the copies of io.BytesIO
    pq.write_table(table, sink, compression="none", use_dictionary=False, write_statistics=["id"])
    return memoryview(sink.getvalue())


def _vectors_of(column: Any) -> np.ndarray:
    """An arrow embedding column (either format) as a float32 matrix, zero-copy for format 2."""
    import pyarrow as pa

    if pa.types.is_fixed_size_binary(column.type):
        dim = column.type.byte_width // 4
        if column.null_count:
            raise ValueError("an embedding store shard holds null embeddings")
        data = np.frombuffer(column.buffers()[1], dtype="<f4", count=(column.offset + len(column)) * dim)
        return data[column.offset * dim :].reshape(-1, dim).astype(np.float32, copy=False)
    return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, column.type.list_size)
