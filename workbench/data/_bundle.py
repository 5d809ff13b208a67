"""One-file storage for embeddings: ``.npz`` or ``.parquet``, written atomically, read back bit for bit.

Both formats hold any number of modalities (vectors + polars metadata), an optional pairing and a small JSON
header (format version, kind, modality and model names).

- ``.npz`` (numpy, uncompressed, no pickles): ``header`` (JSON bytes), ``vectors_<i>``, ``metadata_<i>`` (the
  metadata frame as parquet bytes) and ``pairs``.
- ``.parquet`` (one table, one row per embedding row, readable by any parquet tool): ``modality``, ``row`` and
  ``embedding`` (a fixed-size float32 list) columns, then each modality's metadata columns prefixed with
  ``m<i>.``; the header and the pairs (base64 of little-endian int64) sit in the file's key-value metadata.

Both formats are checked on reading, so a damaged file is refused, never read as different data:

- ``.npz``: every member carries its zip CRC-32 (checked as the member is read) and the header says whether a
  pairing is stored.
- ``.parquet``: the key ``workbench.sha256`` in the footer's key-value metadata holds the sha256 of the whole file
  with that value read as 64 ``"0"`` characters, and the header says ``"checksum": "sha256"``. The file is hashed
  before a reader parses it. A file written before checksums (no key, no flag in the header) is read with an
  :class:`UnverifiedFileWarning`; saving it again adds the checksum. (pyarrow also keeps a copy of the table's
  metadata in ``ARROW:schema``, where the key shows the 64 zeros it was written with.)

Any failure of a reader on a damaged file (pyarrow's errors, numpy's, zipfile's, even a polars panic, which Rust
raises as a ``BaseException``) becomes a ``ValueError`` naming the file and saying that it is damaged.

Writes go to a temporary file in the target folder, are fsynced and renamed over the target, so a crash never
leaves a half-written file under the final name.

This module sits below the data model's classes: it deals in arrays, metadata frames and header dicts only
(:class:`Part`, :class:`Bundle`); the classes validate what it reads.
"""

from __future__ import annotations

import base64
import hashlib
import io as _io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import polars as pl

from workbench._files import atomic_write

__all__ = [
    "FORMAT", "SUFFIXES", "VERSION", "Bundle", "Part", "UnverifiedFileWarning", "check_kind", "damaged", "read_bundle",
    "unreadable", "write_bundle",
]

FORMAT = "workbench.embeddings"
VERSION = 1
SUFFIXES = (".npz", ".parquet")

_DIGEST_KEY = b"workbench.sha256"
_ZEROS = b"0" * 64  # the digest's bytes as hashed
# thrift compact encoding of the footer's KeyValue(key=_DIGEST_KEY, value=<64 bytes>): where the digest sits
_DIGEST_AT = b"\x18\x10" + _DIGEST_KEY + b"\x18\x40"
_CHUNK = 1 << 24


class UnverifiedFileWarning(UserWarning):
    """A ``.parquet`` embeddings file written before workbench checksummed them: its contents are not verified."""


class _FileError(ValueError):
    """A ValueError of ours that already names the file (raised as it is, never wrapped)."""


@dataclass
class Part:
    """One modality's rows as stored: vectors, names and metadata (None in a plain npz: default ids)."""

    vectors: np.ndarray
    modality: str
    model: str
    metadata: pl.DataFrame | None = None

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


@dataclass
class Bundle:
    """What a file holds: its parts, an optional pairing and the linking key of a multimodal set.

    ``plain`` marks a plain npz (arrays ``a``, ``b`` and ``pairs`` of any scale, not written by
    :func:`write_bundle`): its vectors are raw and still to be normalised. ``suffix`` is the file's type
    (``".npz"`` or ``".parquet"``); ``unverified`` marks a ``.parquet`` file written before checksums.
    """

    kind: str
    parts: list[Part]
    pairs: np.ndarray | None = None
    key: str | None = None
    plain: bool = False
    suffix: str = ".npz"
    unverified: bool = False


def _suffix(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"unsupported file type {suffix!r} for {os.fspath(path)!r}: use .npz or .parquet")
    return suffix


def _header(kind: str, parts: list[Part], key: str | None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "modalities": [e.modality for e in parts],
        "models": [e.model for e in parts],
        "key": key,
        "rows": [len(e.vectors) for e in parts],
    }


def _metadata(part: Part) -> pl.DataFrame:
    if part.metadata is None:
        return pl.DataFrame({"id": np.arange(len(part.vectors), dtype=np.int64)})
    return part.metadata


def _frame_to_bytes(frame: pl.DataFrame) -> np.ndarray:
    buffer = _io.BytesIO()
    frame.write_parquet(buffer, statistics=False)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def write_bundle(
    path: str | os.PathLike[str],
    kind: str,
    parts: list[Part],
    pairs: np.ndarray | None = None,
    key: str | None = None,
) -> None:
    """Write parts (and a pairing) to one ``.npz`` or ``.parquet`` file, atomically.

    Vectors are stored as they are (the classes hand over read-only float32 unit rows); a part without metadata
    gets an ``id`` column ``0..N-1``.

    Examples
    --------
    >>> import numpy as np, polars as pl, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "one.npz")
    >>> part = Part(np.eye(2, dtype=np.float32), "image", "toy", pl.DataFrame({"id": [7, 8]}))
    >>> write_bundle(path, "embeddings", [part])
    >>> back = read_bundle(path)
    >>> back.kind, back.parts[0].modality, back.parts[0].metadata["id"].to_list()
    ('embeddings', 'image', [7, 8])
    """
    suffix = _suffix(path)
    header = _header(kind, parts, key)
    if suffix == ".npz":
        header["pairs"] = pairs is not None
        arrays: dict[str, np.ndarray] = {
            "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
        }
        for i, e in enumerate(parts):
            arrays[f"vectors_{i}"] = e.vectors
            arrays[f"metadata_{i}"] = _frame_to_bytes(_metadata(e))
        if pairs is not None:
            arrays["pairs"] = np.asarray(pairs, dtype=np.int64)
        with atomic_write(path) as handle:
            # numpy's stub fears a key "allow_pickle" among the **kwds; ours are vectors_i, metadata_i, header, pairs
            np.savez(handle, **cast(dict[str, Any], arrays))
        return

    import pyarrow as pa
    import pyarrow.parquet as pq

    dims = {e.dim for e in parts}
    frames = []
    for i, e in enumerate(parts):
        n = len(e.vectors)
        vec_type = pa.list_(pa.float32(), e.dim) if len(dims) == 1 else pa.list_(pa.float32())
        vectors = pa.FixedSizeListArray.from_arrays(pa.array(e.vectors.ravel()), e.dim).cast(vec_type)
        base = pa.table(
            {
                "modality": pa.array([e.modality] * n, pa.string()),
                "row": pa.array(np.arange(n, dtype=np.int64)),
                "embedding": vectors,
            }
        )
        frame = _metadata(e)
        meta = frame.rename({c: f"m{i}.{c}" for c in frame.columns}).to_arrow()
        for name in meta.column_names:
            base = base.append_column(name, meta.column(name))
        frames.append(base)
    table = pa.concat_tables(frames, promote_options="default")
    header["checksum"] = "sha256"
    kv = {b"workbench": json.dumps(header).encode(), _DIGEST_KEY: _ZEROS}
    if pairs is not None:
        kv[b"workbench.pairs"] = base64.b64encode(np.ascontiguousarray(pairs, dtype="<i8").tobytes())
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **kv})
    with atomic_write(path, "w+b") as handle:
        pq.write_table(table, handle)
        handle.flush()
        offset = _digest_offset(handle, _ZEROS)
        if offset is None:  # the footer holds the placeholder exactly once unless the metadata repeats it
            raise RuntimeError(f"could not place the checksum in {os.fspath(path)!r}; please report this")
        digest = _sha256(handle, offset)
        handle.seek(offset)
        handle.write(digest)


def _footer(handle: IO[bytes]) -> tuple[int, bytes]:
    """A parquet file's footer (its thrift FileMetaData): offset and bytes."""
    size = handle.seek(0, os.SEEK_END)
    if size < 12:
        raise ValueError(f"{size} bytes is too short for a parquet file")
    handle.seek(size - 8)
    tail = handle.read(8)
    length = int.from_bytes(tail[:4], "little")
    if tail[4:] != b"PAR1" or not 0 < length <= size - 12:
        raise ValueError("no parquet footer at the end of the file")
    handle.seek(size - 8 - length)
    return size - 8 - length, handle.read(length)


def _digest_offset(handle: IO[bytes], value: bytes) -> int | None:
    """Where the 64-byte ``value`` of the checksum key sits in the file (None unless exactly once in the footer)."""
    start, footer = _footer(handle)
    pattern = _DIGEST_AT + value
    if len(value) != len(_ZEROS) or footer.count(pattern) != 1:
        return None
    return start + footer.index(pattern) + len(_DIGEST_AT)


def _sha256(handle: IO[bytes], offset: int) -> bytes:
    """The hex sha256 of the whole file, the 64 bytes at ``offset`` read as ``_ZEROS``."""
    digest = hashlib.sha256()
    size = handle.seek(0, os.SEEK_END)
    handle.seek(0)
    for start, stop in ((0, offset), (offset + len(_ZEROS), size)):
        handle.seek(start)
        left = stop - start
        while left > 0:
            chunk = handle.read(min(_CHUNK, left))
            if not chunk:
                raise ValueError("the file ended early")
            digest.update(chunk)
            left -= len(chunk)
        if start == 0:
            digest.update(_ZEROS)
    return digest.hexdigest().encode()


def _read_header(raw: bytes, path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        header = json.loads(raw)
    except ValueError:
        raise damaged(path, "its header is not JSON") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _FileError(f"{os.fspath(path)!r} is not a workbench embeddings file")
    if not isinstance(header.get("version", 0), int):
        raise damaged(path, "its header has no format version")
    if header.get("version", 0) > VERSION:
        raise _FileError(
            f"{os.fspath(path)!r} was written by a newer workbench (format {header['version']}); upgrade to read it"
        )
    return header


def read_bundle(
    path: str | os.PathLike[str],
    plain_modalities: tuple[str, str] = ("a", "b"),
    plain_model: str = "unknown",
) -> Bundle:
    """Read a file written by :func:`write_bundle` (or a plain npz with arrays ``a``, ``b`` and ``pairs``, whose
    parts are then named ``plain_modalities`` and ``plain_model``).

    A damaged file raises ``ValueError`` naming it, whatever the reader underneath raised; a ``.parquet`` file
    written before checksums is read with an :class:`UnverifiedFileWarning`.
    """
    suffix = _suffix(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"no embeddings file at {os.fspath(path)!r}")
    try:
        bundle = _read_npz(path, plain_modalities, plain_model) if suffix == ".npz" else _read_parquet(path)
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError, _FileError):
        raise
    except BaseException as exc:  # a damaged file can make polars panic: pyo3's PanicException is a BaseException
        raise damaged(path, exc) from None
    bundle.suffix = suffix
    if bundle.unverified:  # warned here, outside the guard: a warning turned into an error is not damage
        warnings.warn(
            f"{os.fspath(path)!r} was written before workbench checksummed .parquet files, so its contents cannot be "
            "verified; save it again to add a checksum",
            UnverifiedFileWarning,
            stacklevel=4,
        )
    return bundle


def check_kind(bundle: Bundle, expect: str, path: str | os.PathLike[str]) -> None:
    """Raise ValueError when ``bundle`` holds another kind of data than ``expect``."""
    if bundle.kind != expect:
        raise ValueError(f"{os.fspath(path)!r} holds {bundle.kind!r} data, not {expect!r}")


def unreadable(path: str | os.PathLike[str], exc: Exception) -> ValueError:
    """The error for a file that cannot be read (in an ``.npz`` file, also for content that fails validation)."""
    return _FileError(f"cannot read {os.fspath(path)!r}: {exc}")


def damaged(path: str | os.PathLike[str], exc: BaseException | str) -> ValueError:
    """The error for a damaged file: ``exc`` is what a reader raised on it, or what a check found."""
    if isinstance(exc, OSError) and exc.errno is not None:  # the system's error (permissions, I/O), not the content's
        return _FileError(f"cannot read {os.fspath(path)!r}: {exc}")
    if isinstance(exc, str):  # a check of ours found the damage
        what = f"the file is damaged: {exc}"
    else:
        what = f"the file is damaged or is not a {Path(path).suffix.lower()} file ({type(exc).__name__}: {exc})"
    return _FileError(f"cannot read {os.fspath(path)!r}: {what}; restore it from a copy or write it again")


def _check_parts(path: str | os.PathLike[str], header: dict[str, Any], parts: list[Part]) -> None:
    rows = header["rows"]
    if len(rows) != len(parts) or any(len(p.vectors) != n for p, n in zip(parts, rows, strict=False)):
        raise damaged(path, f"its header lists {rows} rows, the file holds {[len(p.vectors) for p in parts]}")


def _check_pairs(path: str | os.PathLike[str], pairs: np.ndarray | None, parts: list[Part]) -> None:
    if pairs is None:
        return
    rows = np.array([len(p.vectors) for p in parts])
    if pairs.ndim != 2 or pairs.shape[1] != len(parts):
        raise damaged(path, f"its pairs have shape {pairs.shape}")
    if len(pairs) and ((pairs.min(axis=0) < 0).any() or (pairs.max(axis=0) >= rows).any()):
        raise damaged(path, "its pairs do not index its rows")


def _read_npz(path: str | os.PathLike[str], plain_modalities: tuple[str, str], plain_model: str) -> Bundle:
    with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as z:
        files = set(z.files)
        if "header" not in files:
            return _read_plain_npz(path, {k: z[k] for k in files}, plain_modalities, plain_model)
        header = _read_header(z["header"].tobytes(), path)
        parts = []
        for i, (modality, model) in enumerate(zip(header["modalities"], header["models"], strict=True)):
            metadata = pl.read_parquet(_io.BytesIO(z[f"metadata_{i}"].tobytes()))
            parts.append(Part(z[f"vectors_{i}"], modality, model, metadata))
        pairs = z["pairs"] if "pairs" in files else None
    if header.get("pairs", pairs is not None) != (pairs is not None):  # files written before the flag: no check
        raise damaged(path, "its header and its members disagree on whether it holds pairs")
    _check_parts(path, header, parts)
    _check_pairs(path, pairs, parts)
    return Bundle(header["kind"], parts, pairs, header.get("key"))


def _read_plain_npz(
    path: str | os.PathLike[str], arrays: dict[str, np.ndarray], modalities: tuple[str, str], model: str
) -> Bundle:
    if not {"a", "b"} <= set(arrays):
        raise _FileError(
            f"{os.fspath(path)!r} is neither a workbench file nor a plain npz with arrays 'a' and 'b' "
            f"(it has {sorted(arrays)})"
        )
    a = Part(arrays["a"], modalities[0], model)
    b = Part(arrays["b"], modalities[1], model)
    return Bundle("paired", [a, b], arrays.get("pairs"), plain=True)


def _read_parquet(path: str | os.PathLike[str]) -> Bundle:
    import pyarrow.parquet as pq

    with open(path, "rb") as handle:  # the file itself, never a dataset, a pattern or a URI
        kv = pq.read_metadata(handle).metadata or {}
        if b"workbench" not in kv:
            raise _FileError(
                f"{os.fspath(path)!r} is not a workbench embeddings file; for a row-paired table with two embedding "
                "columns use PairedEmbeddings.from_frame(polars.read_parquet(path), a=..., b=...)"
            )
        header = _read_header(kv[b"workbench"], path)
        stored = kv.get(_DIGEST_KEY)
        if stored is None and "checksum" in header:
            raise damaged(path, "its checksum is missing")
        if stored is not None:  # hashed before any reader parses the data
            offset = _digest_offset(handle, stored)
            if offset is None or _sha256(handle, offset) != stored:
                raise damaged(path, "its sha256 checksum does not match its contents")
        handle.seek(0)
        table = pq.read_table(handle)
    if table.num_rows != sum(header["rows"]):
        raise damaged(path, f"its header lists {sum(header['rows'])} rows, the file holds {table.num_rows}")
    frame = pl.from_arrow(table)
    if not isinstance(frame, pl.DataFrame):
        raise damaged(path, "it holds no table")
    parts = []
    starts = np.cumsum([0, *header["rows"]])
    for i, (modality, model) in enumerate(zip(header["modalities"], header["models"], strict=True)):
        block = frame.slice(int(starts[i]), int(header["rows"][i]))
        prefix = f"m{i}."
        meta = block.select([c for c in block.columns if c.startswith(prefix)])
        meta = meta.rename({c: c[len(prefix):] for c in meta.columns})
        vectors = np.asarray(block.get_column("embedding").to_numpy(), dtype=np.float32)
        if vectors.dtype == object:  # variable-length lists
            vectors = np.stack(block.get_column("embedding").to_list()).astype(np.float32)
        parts.append(Part(vectors, modality, model, meta))
    pairs = None
    if b"workbench.pairs" in kv:
        raw = base64.b64decode(kv[b"workbench.pairs"], validate=True)
        pairs = np.frombuffer(raw, dtype="<i8").reshape(-1, 2).astype(np.int64)
    _check_parts(path, header, parts)
    _check_pairs(path, pairs, parts)
    return Bundle(header["kind"], parts, pairs, header.get("key"), unverified=stored is None)
