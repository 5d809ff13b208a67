"""One-file storage for embeddings: ``.npz`` or ``.parquet``, written atomically, read back bit for bit.

Both formats hold any number of modalities (vectors + polars metadata), an optional pairing and a small JSON
header (format version, kind, modality and model names).

- ``.npz`` (numpy, uncompressed, no pickles): ``header`` (JSON bytes), ``vectors_<i>``, ``metadata_<i>`` (the
  metadata frame as parquet bytes) and ``pairs``.
- ``.parquet`` (one table, one row per embedding row, readable by any parquet tool): ``modality``, ``row`` and
  ``embedding`` (a fixed-size float32 list) columns, then each modality's metadata columns prefixed with
  ``m<i>.``; the header and the pairs (base64 of little-endian int64) sit in the file's key-value metadata.

Writes go to a temporary file in the target folder, are fsynced and renamed over the target, so a crash never
leaves a half-written file under the final name.

This module sits below the data model's classes: it deals in arrays, metadata frames and header dicts only
(:class:`Part`, :class:`Bundle`); the classes validate what it reads.
"""

from __future__ import annotations

import base64
import io as _io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import polars as pl

from workbench._files import atomic_write

__all__ = [
    "FORMAT", "SUFFIXES", "VERSION", "Bundle", "Part", "check_kind", "read_bundle", "unreadable", "write_bundle",
]

FORMAT = "workbench.embeddings"
VERSION = 1
SUFFIXES = (".npz", ".parquet")


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
    (``".npz"`` or ``".parquet"``).
    """

    kind: str
    parts: list[Part]
    pairs: np.ndarray | None = None
    key: str | None = None
    plain: bool = False
    suffix: str = ".npz"


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
    kv = {b"workbench": json.dumps(header).encode()}
    if pairs is not None:
        kv[b"workbench.pairs"] = base64.b64encode(np.ascontiguousarray(pairs, dtype="<i8").tobytes())
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **kv})
    with atomic_write(path) as handle:
        pq.write_table(table, handle)


def _read_header(raw: bytes, path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        header = json.loads(raw)
    except ValueError:
        raise ValueError(f"{os.fspath(path)!r}: damaged header (not JSON)") from None
    if header.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not a workbench embeddings file")
    if header.get("version", 0) > VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} was written by a newer workbench (format {header['version']}); upgrade to read it"
        )
    return header


def read_bundle(
    path: str | os.PathLike[str],
    plain_modalities: tuple[str, str] = ("a", "b"),
    plain_model: str = "unknown",
) -> Bundle:
    """Read a file written by :func:`write_bundle` (or a plain npz with arrays ``a``, ``b`` and ``pairs``, whose
    parts are then named ``plain_modalities`` and ``plain_model``)."""
    suffix = _suffix(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"no embeddings file at {os.fspath(path)!r}")
    bundle = _read_npz(path, plain_modalities, plain_model) if suffix == ".npz" else _read_parquet(path)
    bundle.suffix = suffix
    return bundle


def check_kind(bundle: Bundle, expect: str, path: str | os.PathLike[str]) -> None:
    """Raise ValueError when ``bundle`` holds another kind of data than ``expect``."""
    if bundle.kind != expect:
        raise ValueError(f"{os.fspath(path)!r} holds {bundle.kind!r} data, not {expect!r}")


def unreadable(path: str | os.PathLike[str], exc: Exception) -> ValueError:
    """The error for a file that cannot be read (in an ``.npz`` file, also for content that fails validation)."""
    return ValueError(f"cannot read {os.fspath(path)!r}: {exc}")


def _read_npz(path: str | os.PathLike[str], plain_modalities: tuple[str, str], plain_model: str) -> Bundle:
    try:
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
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, ValueError) and "workbench" in str(exc):
            raise
        raise unreadable(path, exc) from None
    return Bundle(header["kind"], parts, pairs, header.get("key"))


def _read_plain_npz(
    path: str | os.PathLike[str], arrays: dict[str, np.ndarray], modalities: tuple[str, str], model: str
) -> Bundle:
    if not {"a", "b"} <= set(arrays):
        raise ValueError(
            f"{os.fspath(path)!r} is neither a workbench file nor a plain npz with arrays 'a' and 'b' "
            f"(it has {sorted(arrays)})"
        )
    a = Part(arrays["a"], modalities[0], model)
    b = Part(arrays["b"], modalities[1], model)
    return Bundle("paired", [a, b], arrays.get("pairs"), plain=True)


def _read_parquet(path: str | os.PathLike[str]) -> Bundle:
    import pyarrow.parquet as pq

    try:
        with open(path, "rb") as handle:  # the file itself, never a dataset, a pattern or a URI
            table = pq.read_table(handle)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise unreadable(path, exc) from None
    kv = table.schema.metadata or {}
    if b"workbench" not in kv:
        raise ValueError(
            f"{os.fspath(path)!r} is not a workbench embeddings file; for a row-paired table with two embedding "
            "columns use PairedEmbeddings.from_frame(polars.read_parquet(path), a=..., b=...)"
        )
    header = _read_header(kv[b"workbench"], path)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
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
        pairs = np.frombuffer(base64.b64decode(kv[b"workbench.pairs"]), dtype="<i8").reshape(-1, 2).astype(np.int64)
    return Bundle(header["kind"], parts, pairs, header.get("key"))
