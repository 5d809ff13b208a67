"""A resumable, sharded embedding store: parquet shards, a checksummed manifest, lazy readers.

:func:`write` (reached through ``workbench.embed(..., store=PATH)``) encodes items shard by shard and survives being
killed at any point: a rerun verifies what is on disk, keeps every intact shard and recomputes the rest, so each id
ends up in the store exactly once.

On-disk layout of a store folder::

    store.json               identity (format, encoder name, fingerprint, preprocessing, modality, shard size),
                             written atomically once
    manifest.jsonl           one JSON line per finished shard, appended and fsynced after the shard is in place:
                             {"shard", "file", "start", "stop", "rows", "first_id", "last_id", "ids_sha256",
                              "dim", "total", "bytes", "sha256"}
    shard-000000.parquet     columns ``id`` and ``embedding`` (one fixed-size binary value of ``dim`` little-endian
    shard-000001.parquet     float32 per row; :meth:`EmbeddingStore.scan` shows it as ``Array(Float32, dim)``);
                             shard k holds items [k * shard_size, (k + 1) * shard_size)
    .lock                    an advisory lock held by the writing process

Each shard is serialised in memory (on one of two writer threads, while the next shard is encoded), hashed, written
to a temporary file, fsynced, renamed into place and the folder fsynced; only then is its manifest line appended
(and fsynced, in shard order). A crash therefore leaves at worst a temporary file
(removed on restart), a shard without a manifest line (recomputed) or a torn last manifest line (ignored). A
flipped bit in a shard fails its SHA-256 and is reported by :func:`verify` and recomputed by the next write.

The same primitives (:func:`atomic_write_bytes`, :func:`sha256_hex`, :func:`encode_rows`) back the small-data
cache in :mod:`workbench.cache`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from workbench._files import atomic_write
from workbench._validation import unit_rows32
from workbench.data import Embeddings

__all__ = [
    "EmbeddingStore",
    "StoreCorruptionWarning",
    "as_store",
    "atomic_write_bytes",
    "encode_rows",
    "open",
    "sha256_hex",
    "verify",
    "write",
]

FORMAT = "workbench.store"
VERSION = 2  # 1: embedding column a fixed-size float32 list; 2: fixed-size binary of little-endian float32
HEADER = "store.json"
MANIFEST = "manifest.jsonl"
LOCK = ".lock"
TMP_SUFFIX = ".tmp"
_IDENTITY_KEYS = ("encoder", "fingerprint", "preprocessing", "modality")

_builtin_open = open


class StoreCorruptionWarning(UserWarning):
    """A stored file failed its checksum or could not be read; it is not returned and will be recomputed."""


# -- shared primitives -------------------------------------------------------------------------------------------
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
    with _builtin_open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(folder: str | os.PathLike[str]) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
    with atomic_write(path, "wb") as handle:  # the one atomic writer (io.atomic_write), temp suffix TMP_SUFFIX
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


def encode_rows(encoder: Any, modality: str, items: Sequence[Any], batch_size: int, bar: Any = None) -> np.ndarray:
    """Encode ``items`` in batches; check every batch is (items, dim) and dims agree. ``bar`` counts items."""
    chunks = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        out = np.asarray(encoder.encode(modality, batch, batch_size=batch_size))
        if out.ndim != 2 or len(out) != len(batch):
            raise ValueError(
                f"{encoder.name}.encode returned shape {out.shape} for {len(batch)} {modality} items; "
                "expected (items, dim)"
            )
        chunks.append(out)
        if bar is not None:
            bar.update(len(batch))
    dims = {c.shape[1] for c in chunks}
    if len(dims) > 1:
        raise ValueError(f"{encoder.name}.encode returned different dimensions across batches: {sorted(dims)}")
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def _ids_digest(ids: Sequence[Any]) -> str:
    return sha256_hex(json.dumps([i.item() if isinstance(i, np.generic) else i for i in ids]).encode())


# -- manifest ----------------------------------------------------------------------------------------------------
def _read_manifest(folder: Path) -> tuple[dict[int, dict[str, Any]], int]:
    """The latest entry per shard, and how many lines were unreadable (a torn last line after a crash)."""
    entries: dict[int, dict[str, Any]] = {}
    torn = 0
    path = folder / MANIFEST
    if not path.exists():
        return entries, torn
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            entries[int(entry["shard"])] = entry
        except (ValueError, KeyError, TypeError):
            torn += 1
    return entries, torn


def _append_manifest(folder: Path, entry: dict[str, Any]) -> None:
    with _builtin_open(folder / MANIFEST, "ab") as handle:
        handle.write(json.dumps(entry, sort_keys=True).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def _check_entry(folder: Path, entry: dict[str, Any]) -> str | None:
    """None when the shard file matches its manifest line, else what is wrong ("missing" or "damaged: ...")."""
    path = folder / entry["file"]
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != entry.get("bytes", size):
        return f"damaged: {size} bytes, expected {entry['bytes']}"
    if file_sha256(path) != entry["sha256"]:
        return "damaged: checksum does not match"
    return None


def _read_header(folder: Path) -> dict[str, Any]:
    path = folder / HEADER
    if not path.is_file():
        raise FileNotFoundError(f"no embedding store at {os.fspath(folder)!r} (no {HEADER})")
    header = json.loads(path.read_bytes())
    if header.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(folder)!r} is not a workbench embedding store")
    if header.get("version", 0) > VERSION:
        raise ValueError(f"{os.fspath(folder)!r} was written by a newer workbench (format {header['version']})")
    return header


def _shard_name(index: int) -> str:
    return f"shard-{index:06d}.parquet"


# -- verification ------------------------------------------------------------------------------------------------
def verify(path: str | os.PathLike[str]) -> pl.DataFrame:
    """Check every shard of a store against its manifest line; list the damaged and missing ones.

    Returns
    -------
    polars.DataFrame
        Columns ``shard``, ``file``, ``start``, ``stop`` and ``problem`` (``"missing"`` for a recorded shard whose
        file is gone or a shard of the last run never finished, ``"damaged: ..."`` for a checksum or size
        mismatch). Empty when the store is whole.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from workbench.store import write
    >>> class Enc:
    ...     name, modalities, fingerprint = "toy", ("sensor",), "f0"
    ...     def encode(self, modality, items, batch_size=32):
    ...         return np.asarray(items, dtype=np.float32)
    >>> folder = tempfile.mkdtemp()
    >>> _ = write(Enc(), [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "sensor", folder, shard_size=2, progress=False)
    >>> verify(folder).height
    0
    """
    folder = Path(path)
    _read_header(folder)
    entries, _ = _read_manifest(folder)
    rows: list[dict[str, Any]] = []
    for index in sorted(entries):
        entry = entries[index]
        problem = _check_entry(folder, entry)
        if problem is not None:
            rows.append({"shard": index, "file": entry["file"], "start": entry["start"], "stop": entry["stop"],
                         "problem": problem})
    if entries:
        last = entries[max(entries)]
        total = int(last.get("total", 0))
        shard_size = int(_read_header(folder)["shard_size"])
        for index in range((total + shard_size - 1) // shard_size):
            if index not in entries:
                start = index * shard_size
                rows.append({"shard": index, "file": _shard_name(index), "start": start,
                             "stop": min(start + shard_size, total), "problem": "missing"})
    schema = {"shard": pl.Int64, "file": pl.String, "start": pl.Int64, "stop": pl.Int64, "problem": pl.String}
    return pl.DataFrame(rows, schema=schema).sort("shard")


# -- writing -----------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _locked(folder: Path, wait: bool = False) -> Iterator[None]:
    import fcntl

    handle = _builtin_open(folder / LOCK, "a+b")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise RuntimeError(f"another process is writing the embedding store {os.fspath(folder)!r}") from None
        yield
    finally:
        handle.close()  # releases the lock (a killed process releases it too)


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


def _write_shard(folder: Path, ids: Sequence[Any], vectors: np.ndarray, entry: dict[str, Any],
                 version: int) -> dict[str, Any]:
    """Serialise a shard, checksum it and put it in place durably; return its manifest line (not yet appended).

    Runs on a writer thread: parquet serialisation, SHA-256 and file IO all release the GIL."""
    data = _shard_bytes(ids, vectors, version)
    entry["bytes"] = len(data)
    entry["sha256"] = sha256_hex(data)
    atomic_write_bytes(folder / entry["file"], data)
    return entry


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


def write(
    encoder: Any,
    items: Sequence[Any],
    modality: str,
    path: str | os.PathLike[str],
    *,
    shard_size: int = 10_000,
    ids: Sequence[Any] | None = None,
    batch_size: int = 64,
    progress: bool = True,
    wait: bool = False,
    backend: str = "local",
    **backend_options: Any,
) -> EmbeddingStore:
    """Embed ``items`` into the store at ``path``, resuming whatever an earlier (possibly killed) run left.

    Shard ``k`` holds items ``[k * shard_size, (k + 1) * shard_size)``. Intact shards (checksum verified, same ids)
    are kept; damaged, missing or stale ones are (re)computed. Usually reached through
    ``workbench.embed(encoder, items, modality, store=path, shard_size=...)``.

    Parameters
    ----------
    encoder : Encoder
        ``name``, ``modalities``, ``fingerprint``, optional ``preprocessing`` and ``encode``.
    items : sequence
        Addressed by position: the item at position ``i`` must be the same on every run.
    modality : str
    path : path
        The store folder (created when missing).
    shard_size : int, default 10_000
        Rows per shard; fixed for the life of a store.
    ids : sequence, optional
        Unique ids, one per item (default the positions ``0..N-1``).
    batch_size : int, default 64
    progress : bool, default True
        A progress bar over items, moving batch by batch (tqdm; a widget in notebooks).
    wait : bool, default False
        When another process is writing the same store: wait for it to finish (then keep what it wrote) instead of
        raising RuntimeError. The embedding cache waits.
    backend : {"local", "ray"}, default "local"
        ``"ray"`` encodes the missing shards on a Ray Data actor pool (see :func:`workbench.store_ray.encode_shards`;
        options ``actors=2``, ``num_cpus_per_actor=0.5``, ``encoder_factory=None``); this process still verifies,
        writes and records every shard, so the store is the same file for file and resumes the same way.

    Returns
    -------
    EmbeddingStore
        The finished store (lazy).

    Raises
    ------
    ValueError
        When the store holds another encoder / fingerprint / preprocessing / modality or shard size, or the ids are
        not unique.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> class Enc:
    ...     name, modalities, fingerprint = "toy", ("sensor",), "f0"
    ...     def encode(self, modality, items, batch_size=32):
    ...         return np.asarray(items, dtype=np.float32)
    >>> store = write(Enc(), [[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]], "sensor", tempfile.mkdtemp(), shard_size=2,
    ...               progress=False)
    >>> len(store), store.n_shards
    (3, 2)
    """
    from tqdm.auto import tqdm

    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
    if backend == "local" and backend_options:
        raise TypeError(f"unexpected options for the local backend: {sorted(backend_options)}")
    items = items if isinstance(items, Sequence) else list(items)
    n = len(items)
    if n == 0:
        raise ValueError(f"no {modality} items to embed")
    if modality not in tuple(encoder.modalities):
        raise ValueError(f"{encoder.name} encodes {tuple(encoder.modalities)}, not {modality!r}")
    if shard_size < 1 or batch_size < 1:
        raise ValueError(f"shard_size and batch_size must be at least 1, got {shard_size} and {batch_size}")
    if ids is not None:
        if len(ids) != n:
            raise ValueError(f"{len(ids)} ids for {n} items")
        if pl.Series("id", list(ids)).n_unique() != n:
            raise ValueError("ids must be unique")
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    identity = {
        "encoder": str(encoder.name),
        "fingerprint": str(encoder.fingerprint),
        "preprocessing": str(getattr(encoder, "preprocessing", "")),
        "modality": modality,
    }
    with _locked(folder, wait):
        if (folder / HEADER).is_file():
            header = _read_header(folder)
            differ = [k for k in _IDENTITY_KEYS if header.get(k) != identity[k]]
            if differ:
                raise ValueError(
                    f"the store at {os.fspath(folder)!r} holds other embeddings ({', '.join(differ)} differ: "
                    f"{ {k: header.get(k) for k in differ} } vs { {k: identity[k] for k in differ} }); "
                    "use another folder"
                )
            if int(header["shard_size"]) != shard_size:
                raise ValueError(f"the store at {os.fspath(folder)!r} uses shard_size={header['shard_size']}, "
                                 f"not {shard_size}")
        else:
            header = {"format": FORMAT, "version": VERSION, **identity, "shard_size": shard_size}
            atomic_write_bytes(folder / HEADER, json.dumps(header, indent=1, sort_keys=True).encode())

        remove_temp_files(folder)
        entries, torn = _read_manifest(folder)
        n_shards = (n + shard_size - 1) // shard_size
        keep: dict[int, dict[str, Any]] = {}
        for index in sorted(entries):
            entry = entries[index]
            if index >= n_shards:
                continue
            start, stop = index * shard_size, min((index + 1) * shard_size, n)
            shard_ids = range(start, stop) if ids is None else ids[start:stop]
            if (entry["start"], entry["stop"]) != (start, stop) or entry["ids_sha256"] != _ids_digest(shard_ids):
                continue  # stale: the item list changed length or ids
            problem = _check_entry(folder, entry)
            if problem is None:
                keep[index] = entry
            else:
                warnings.warn(
                    f"embedding store shard {folder / entry['file']} is {problem}; recomputing it",
                    StoreCorruptionWarning,
                    stacklevel=3,
                )
        if torn or len(keep) != len(entries):  # compact: drop torn, stale and damaged lines
            lines = b"".join(json.dumps(keep[i], sort_keys=True).encode() + b"\n" for i in sorted(keep))
            atomic_write_bytes(folder / MANIFEST, lines)

        # Encoding runs here while two writer threads serialise, hash, write and fsync earlier shards (all of which
        # release the GIL); this thread appends each manifest line once its shard is durable, in shard order. At
        # most two finished shards wait in memory.
        version = int(header.get("version", VERSION))
        missing = [index for index in range(n_shards) if index not in keep]
        pending: deque[Future[dict[str, Any]]] = deque()

        def record_oldest() -> None:
            _append_manifest(folder, pending.popleft().result())

        def rows_of(index: int) -> int:
            return min((index + 1) * shard_size, n) - index * shard_size

        with (
            tqdm(total=n, initial=sum(rows_of(i) for i in keep), desc=f"{encoder.name} {modality}", unit="item",
                 disable=not progress) as bar,
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="workbench-store") as writers,
        ):
            raws: Iterator[tuple[int, np.ndarray]]
            if backend == "ray":
                from workbench.store_ray import encode_shards

                def counted(shards: Iterator[tuple[int, np.ndarray]]) -> Iterator[tuple[int, np.ndarray]]:
                    for index, raw in shards:  # the bar moves shard by shard, as they arrive from the actors
                        bar.update(rows_of(index))
                        yield index, raw

                raws = counted(encode_shards(encoder, items, modality, missing, shard_size=shard_size,
                                             batch_size=batch_size, **backend_options))
            else:  # the bar moves batch by batch
                raws = ((index, encode_rows(encoder, modality, items[index * shard_size : index * shard_size
                                                                     + rows_of(index)], batch_size, bar))
                        for index in missing)
            for index, raw in raws:
                start, stop = index * shard_size, min((index + 1) * shard_size, n)
                shard_ids: Sequence[Any] = np.arange(start, stop, dtype=np.int64) if ids is None else ids[start:stop]
                vectors = unit_rows32(raw, f"{encoder.name} {modality} embeddings")
                first, last = (shard_ids[0], shard_ids[-1])
                entry = {
                    "shard": index, "file": _shard_name(index), "start": start, "stop": stop, "rows": stop - start,
                    "first_id": first.item() if isinstance(first, np.generic) else first,
                    "last_id": last.item() if isinstance(last, np.generic) else last,
                    "ids_sha256": _ids_digest(range(start, stop) if ids is None else shard_ids),
                    "dim": int(vectors.shape[1]), "total": n,
                }
                del raw
                while len(pending) >= 2:
                    record_oldest()
                pending.append(writers.submit(_write_shard, folder, shard_ids, vectors, entry, version))
                del vectors
            while pending:
                record_oldest()
    return EmbeddingStore(folder, verify=False)


# -- reading -----------------------------------------------------------------------------------------------------
@dataclass
class EmbeddingStore:
    """A lazy view of a store folder: only shards that match their manifest line are read.

    Parameters
    ----------
    path : path
        The store folder.
    verify : bool, default True
        Check every shard's SHA-256 on opening (damaged or missing shards are left out, with a
        :class:`StoreCorruptionWarning`).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> class Enc:
    ...     name, modalities, fingerprint = "toy", ("sensor",), "f0"
    ...     def encode(self, modality, items, batch_size=32):
    ...         return np.asarray(items, dtype=np.float32)
    >>> folder = tempfile.mkdtemp()
    >>> _ = write(Enc(), [[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]], "sensor", folder, shard_size=2, ids=["a", "b", "c"],
    ...           progress=False)
    >>> store = open(folder)
    >>> store.ids().to_list()
    ['a', 'b', 'c']
    >>> [(list(i), v.shape) for i, v in store.iter_batches(2)]
    [(['a', 'b'], (2, 2)), (['c'], (1, 2))]
    >>> store.to_embeddings().vectors[0]
    array([0.6, 0.8], dtype=float32)
    """

    path: Path
    verify: bool = True
    header: dict[str, Any] = field(init=False)
    shards: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.header = _read_header(self.path)
        entries, _ = _read_manifest(self.path)
        self.shards = []
        for index in sorted(entries):
            entry = entries[index]
            problem = _check_entry(self.path, entry) if self.verify else None
            if problem is None:
                self.shards.append(entry)
            else:
                warnings.warn(f"embedding store shard {self.path / entry['file']} is {problem}; left out",
                              StoreCorruptionWarning, stacklevel=3)

    @property
    def files(self) -> list[str]:
        return [os.fspath(self.path / e["file"]) for e in self.shards]

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    @property
    def dim(self) -> int:
        if not self.shards:
            raise ValueError(f"the store at {os.fspath(self.path)!r} holds no shards yet")
        return int(self.shards[0]["dim"])

    @property
    def modality(self) -> str:
        return str(self.header["modality"])

    @property
    def model(self) -> str:
        return str(self.header["encoder"])

    @property
    def complete(self) -> bool:
        """Whether every shard of the last run is present and verified (contiguous rows 0..total)."""
        if not self.shards:
            return False
        total = int(self.shards[-1]["total"])
        return [(e["start"], e["stop"]) for e in self.shards] == [
            (s, min(s + int(self.header["shard_size"]), total)) for s in range(0, total, int(self.header["shard_size"]))
        ]

    def __len__(self) -> int:
        return sum(int(e["rows"]) for e in self.shards)

    def scan(self) -> pl.LazyFrame:
        """A lazy frame (``id``, ``embedding`` as ``Array(Float32, dim)``) over the verified shards, in item order."""
        if not self.shards:
            raise ValueError(f"the store at {os.fspath(self.path)!r} holds no shards yet")
        frame = pl.scan_parquet(self.files)
        if int(self.header.get("version", 1)) >= 2:
            frame = frame.with_columns(
                pl.col("embedding").bin.reinterpret(dtype=pl.Array(pl.Float32, self.dim), endianness="little")
            )
        return frame

    def ids(self) -> pl.Series:
        """Every id, in order (reads only the ``id`` column)."""
        return self.scan().select("id").collect().get_column("id")

    def iter_batches(self, batch_rows: int = 65_536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(ids, vectors)`` chunks of at most ``batch_rows`` rows, shard by shard, never all at once."""
        import pyarrow.parquet as pq

        for file in self.files:
            with pq.ParquetFile(file) as handle:
                for batch in handle.iter_batches(batch_size=batch_rows, columns=["id", "embedding"]):
                    yield batch.column(0).to_numpy(zero_copy_only=False), _vectors_of(batch.column(1))

    def to_embeddings(self, modality: str | None = None) -> Embeddings:
        """Materialise every row as :class:`workbench.Embeddings` (``metadata`` holds the ``id`` column)."""
        if not self.shards:
            raise ValueError(f"the store at {os.fspath(self.path)!r} holds no shards yet")
        vectors = np.empty((len(self), self.dim), dtype=np.float32)  # filled in place: no second copy to concatenate
        id_parts, start = [], 0
        for ids, batch in self.iter_batches():
            vectors[start : start + len(batch)] = batch
            id_parts.append(ids)
            start += len(batch)
        metadata = pl.DataFrame({"id": np.concatenate(id_parts)})
        return Embeddings(vectors, modality or self.modality, self.model, metadata, normalize=False)


def open(path: str | os.PathLike[str], verify: bool = True) -> EmbeddingStore:
    """Open the store at ``path`` for lazy reading (see :class:`EmbeddingStore`)."""
    return EmbeddingStore(Path(path), verify=verify)


def as_store(values: Any, what: str) -> EmbeddingStore | None:
    """``values`` as a complete store when it is an :class:`EmbeddingStore` or a path (then opened and verified);
    None for anything else. An incomplete or damaged store raises ValueError naming ``what``."""
    if isinstance(values, (str, os.PathLike)):
        values = open(values)
    if not isinstance(values, EmbeddingStore):
        return None
    if not values.complete:
        raise ValueError(f"{what}: the store at {os.fspath(values.path)!r} is incomplete or damaged ({len(values)} "
                         "rows in verified shards); finish or repair it (workbench.embed resumes) first")
    return values
