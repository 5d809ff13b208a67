"""The embedding cache: encode once, read from disk afterwards.

:func:`embed` encodes items in batches (with a notebook-aware progress bar) and stores the result under a key made
of the encoder's identity (name + weights fingerprint + preprocessing), the modality and the content of every
item. A second call with the same inputs reads the file and never calls the encoder. Files are written atomically
(temporary file, fsync, rename, folder fsync) and carry a SHA-256 of their vectors: a truncated or damaged file is
detected, reported with a :class:`CacheCorruptionWarning`, removed and recomputed -- never returned.

The cache is built on the primitives of :mod:`workbench.store` (the durable shard writer
:func:`~workbench.store.atomic_write_bytes`, :func:`~workbench.store.sha256_hex`, the batch encoder
:func:`~workbench.store.encode_rows`); a cache entry is the one-file, one-shard special case of a store, kept as a
single ``.npz`` per key. ``embed(..., store=PATH)`` writes a resumable sharded store instead (for data that does not
fit in memory). The checksummed one-file format (:func:`write_checked_array`, :func:`read_checked_array`) and the
cache folder convention (:func:`default_cache_dir`) also serve the projection cache (:mod:`workbench.projection`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io as _io
import json
import os
import struct
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from workbench.data import Embeddings
from workbench.store import (
    EmbeddingStore,
    StoreCorruptionWarning,
    atomic_write_bytes,
    encode_rows,
    sha256_hex,
)
from workbench.store import write as write_store

__all__ = [
    "CacheCorruptionWarning", "EmbeddingCache", "default_cache_dir", "embed", "items_digest", "read_checked_array",
    "write_checked_array",
]

CACHE_FORMAT = 1


class CacheCorruptionWarning(StoreCorruptionWarning):
    """A cache file failed its checksum or could not be read; it was removed and will be recomputed."""


def default_cache_dir(kind: str = "embeddings") -> Path:
    """Where workbench caches ``kind`` (``"embeddings"``, ``"projections"``, ...): the one environment lookup.

    Embeddings live in ``$WORKBENCH_CACHE_DIR`` itself, other kinds in ``$WORKBENCH_CACHE_DIR/<kind>``; without that
    variable, in ``$XDG_CACHE_HOME/workbench/<kind>``, else ``~/.cache/workbench/<kind>``.

    Examples
    --------
    >>> default_cache_dir("projections").name
    'projections'
    """
    if not kind or os.sep in kind or kind in (".", ".."):
        raise ValueError(f"cache kind must be a plain folder name, got {kind!r}")
    if os.environ.get("WORKBENCH_CACHE_DIR"):
        root = Path(os.environ["WORKBENCH_CACHE_DIR"])
        return root if kind == "embeddings" else root / kind
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "workbench" / kind


# -- checksummed array files (the embedding cache and the projection cache) -----------------------------------
def write_checked_array(
    path: str | os.PathLike[str], key: str, array: np.ndarray, info: dict[str, Any], *, name: str = "vectors",
    dtype: Any = np.float32,
) -> Path:
    """Store ``array`` (as ``dtype``) under ``key`` in one ``.npz`` atomically, with a SHA-256 of its bytes.

    The file holds ``name`` (the array) and ``header`` (JSON bytes: ``info`` plus ``key``, ``sha256``, ``shape`` and
    ``created``); :func:`read_checked_array` reads it back or reports it damaged.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
    >>> _ = write_checked_array(path, "k", np.eye(2), {}, name="coords", dtype=np.float64)
    >>> read_checked_array(path, "k", rows=2, cols=2, name="coords", dtype=np.float64)
    array([[1., 0.],
           [0., 1.]])
    """
    array = np.ascontiguousarray(array, dtype=dtype)
    header = {
        **info,
        "key": key,
        "sha256": sha256_hex(array.tobytes()),
        "shape": list(array.shape),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    buffer = _io.BytesIO()
    np.savez(buffer, **{name: array, "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)})
    return atomic_write_bytes(path, buffer.getbuffer())


def read_checked_array(
    path: str | os.PathLike[str], key: str, *, rows: int, cols: int | None = None, name: str = "vectors",
    dtype: Any = np.float32, what: str = "embedding cache", stacklevel: int = 2,
) -> np.ndarray | None:
    """The array :func:`write_checked_array` stored under ``key``, or None when the file is absent or damaged.

    A file that belongs to another key, holds another dtype or shape (``rows`` x ``cols``, any number of columns
    when ``cols`` is None) or fails its checksum is reported with a :class:`CacheCorruptionWarning` (naming
    ``what``) and removed, never returned.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> read_checked_array(pathlib.Path(tempfile.mkdtemp()) / "absent.npz", "k", rows=2) is None
    True
    """
    path = Path(path)
    if not path.exists():
        return None
    dtype = np.dtype(dtype)
    expected = f"({rows}, {cols if cols is not None else 'any'}) {dtype}"
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as z:
            header = json.loads(z["header"].tobytes())
            array = z[name]
        problem = None
        if header.get("key") != key:
            problem = "it belongs to another key"
        elif array.dtype != dtype or array.ndim != 2 or len(array) != rows or cols not in (None, array.shape[1]):
            problem = f"it holds shape {array.shape} {array.dtype}, expected {expected}"
        elif sha256_hex(array.tobytes()) != header.get("sha256"):
            problem = "its checksum does not match"
    except Exception as exc:  # a damaged zip can raise many types
        problem = f"it cannot be read ({type(exc).__name__}: {exc})"
    if problem is None:
        return array
    warnings.warn(f"{what} file {path} is damaged ({problem}); removed, recomputing", CacheCorruptionWarning,
                  stacklevel=stacklevel + 1)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return None


# -- item content hashing ----------------------------------------------------------------------------------------
def _update(digest: Any, tag: bytes, payload: bytes) -> None:
    digest.update(tag + struct.pack("<Q", len(payload)) + payload)


def _hash_file(path: str | os.PathLike[str]) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def _hash_item(digest: Any, item: Any, modality: str) -> None:
    if isinstance(item, str):
        if modality != "text" and os.path.isfile(item):
            _update(digest, b"F", _hash_file(item))  # a file path: its content, so an edited file is re-encoded
        else:
            _update(digest, b"S", item.encode("utf-8"))
    elif isinstance(item, os.PathLike):
        try:
            _update(digest, b"F", _hash_file(item))
        except OSError as exc:
            raise ValueError(f"cannot read item file {os.fspath(item)!r}: {exc}") from None
    elif isinstance(item, bytes | bytearray | memoryview):
        _update(digest, b"B", bytes(item))
    elif hasattr(item, "getdata") and hasattr(item, "mode"):  # PIL image
        _update(digest, b"I", f"{item.mode}{item.size}".encode() + item.tobytes())
    elif hasattr(item, "detach"):  # torch tensor
        _hash_item(digest, item.detach().cpu().numpy(), modality)
    elif isinstance(item, np.ndarray):
        arr = np.ascontiguousarray(item)
        _update(digest, b"A", f"{arr.dtype.str}{arr.shape}".encode() + arr.tobytes())
    elif isinstance(item, bool | int | float | complex):
        _update(digest, b"N", repr(item).encode())
    elif isinstance(item, tuple | list):  # e.g. (waveform, sample_rate)
        _update(digest, b"T", str(len(item)).encode())
        for part in item:
            _hash_item(digest, part, modality)
    else:
        raise TypeError(
            f"cannot fingerprint an item of type {type(item).__name__} for the cache; use str, a path, bytes, "
            "a numpy array, a PIL image or a tuple of these (or pass cache=False)"
        )


def items_digest(items: Iterable[Any], modality: str) -> str:
    """SHA-256 over the content of every item, in order (file paths are hashed by their bytes)."""
    digest = hashlib.sha256()
    count = 0
    for item in items:
        _hash_item(digest, item, modality)
        count += 1
    digest.update(struct.pack("<Q", count))
    return digest.hexdigest()


# -- the cache ---------------------------------------------------------------------------------------------------
class EmbeddingCache:
    """A folder of cached embedding matrices, one ``.npz`` file per (encoder, preprocessing, modality, items).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> cache = EmbeddingCache(tempfile.mkdtemp())
    >>> path = cache.put("k" * 64, np.eye(2, dtype=np.float32), {"modality": "toy"})
    >>> cache.get("k" * 64, n_rows=2)
    array([[1., 0.],
           [0., 1.]], dtype=float32)
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def key(self, encoder: Any, modality: str, items: Sequence[Any]) -> str:
        """The cache key: encoder name, weights fingerprint, preprocessing, modality and the items' content."""
        identity = {
            "format": CACHE_FORMAT,
            "encoder": str(encoder.name),
            "fingerprint": str(encoder.fingerprint),
            "preprocessing": str(getattr(encoder, "preprocessing", "")),
            "modality": modality,
            "items": items_digest(items, modality),
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npz"

    def get(self, key: str, n_rows: int) -> np.ndarray | None:
        """The cached matrix for ``key``, or None when absent. A damaged file is removed (with a warning)."""
        return read_checked_array(self.path(key), key, rows=n_rows, stacklevel=3)

    def put(self, key: str, vectors: np.ndarray, info: dict[str, Any]) -> Path:
        """Store ``vectors`` under ``key`` atomically (float32), with their SHA-256."""
        return write_checked_array(self.path(key), key, vectors, info)

    def clear(self) -> int:
        """Remove every cached file; return how many were removed."""
        removed = 0
        for path in self.directory.glob("*/*.npz"):
            path.unlink()
            removed += 1
        return removed


def _encode_in_batches(encoder: Any, modality: str, items: list[Any], batch_size: int, progress: bool) -> np.ndarray:
    from tqdm.auto import tqdm

    with tqdm(total=len(items), desc=f"{encoder.name} {modality}", unit="item", disable=not progress) as bar:
        return encode_rows(encoder, modality, items, batch_size, bar)


def _default_metadata(items: list[Any], modality: str, ids: Sequence[Any] | None) -> pl.DataFrame:
    columns: dict[str, Any] = {"id": list(ids) if ids is not None else np.arange(len(items), dtype=np.int64)}
    if modality == "text" and all(isinstance(i, str) for i in items):
        columns["caption"] = items
    elif all(isinstance(i, str | os.PathLike) for i in items):
        columns["path"] = [os.fspath(i) for i in items]
    return pl.DataFrame(columns)


def embed(
    encoder: Any,
    items: Iterable[Any],
    modality: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    cache: bool = True,
    batch_size: int = 64,
    ids: Sequence[Any] | None = None,
    progress: bool = True,
    store: str | os.PathLike[str] | None = None,
    shard_size: int = 10_000,
    backend: str = "local",
    **backend_options: Any,
) -> Embeddings | EmbeddingStore:
    """Embed ``items`` of one modality, reading from the cache when this exact work was done before.

    With ``store=PATH`` the embeddings go to a resumable sharded store instead (see :mod:`workbench.store`): parquet
    shards of ``shard_size`` rows, written as they are computed; a killed run resumes where it stopped, and the
    result is returned lazily as an :class:`~workbench.store.EmbeddingStore`.

    Parameters
    ----------
    encoder : Encoder
        Anything with ``name``, ``modalities``, ``fingerprint`` and ``encode(modality, items, batch_size)``.
    items : iterable
        Texts, file paths (hashed by content), arrays, PIL images, or tuples such as ``(waveform, sample_rate)``.
    modality : str
        One of ``encoder.modalities``.
    cache_dir : path, optional
        Default :func:`default_cache_dir` (``$WORKBENCH_CACHE_DIR`` overrides it).
    cache : bool, default True
        False computes without reading or writing the cache.
    batch_size : int, default 64
    ids : sequence, optional
        Item ids for the metadata (default ``0..N-1``). Texts also fill a ``caption`` column, paths a ``path`` one.
    progress : bool, default True
        Show a progress bar (tqdm; a widget in notebooks).
    store : path, optional
        A store folder: write (or resume) a sharded store there; the cache is not used. Items are addressed by
        position, ``ids`` must be unique.
    backend : "local" or "ray", default "local"
        With ``store``: encode in this process, or on a Ray actor pool (``actors=``, ``num_cpus_per_actor=``,
        ``encoder_factory=``; see :func:`workbench.store.write`). Both write the same shards.
    shard_size : int, default 10_000
        Rows per store shard (only with ``store``).

    Returns
    -------
    Embeddings or EmbeddingStore
        Unit-norm float32 rows in the order of ``items``; ``model`` is the encoder's name. With ``store``, the
        finished :class:`~workbench.store.EmbeddingStore` (lazy; ``.to_embeddings()`` materialises it).

    Examples
    --------
    >>> import numpy as np, tempfile, torch
    >>> from workbench.encoders import TorchEncoder
    >>> _ = torch.manual_seed(0)
    >>> enc = TorchEncoder(torch.nn.Linear(2, 3), "sensor", "toy")
    >>> folder = tempfile.mkdtemp()
    >>> first = embed(enc, [np.ones(2), np.zeros(2) + 0.5], "sensor", cache_dir=folder, progress=False)
    >>> again = embed(enc, [np.ones(2), np.zeros(2) + 0.5], "sensor", cache_dir=folder, progress=False)
    >>> np.array_equal(first.vectors, again.vectors)
    True
    """
    items = list(items)
    if store is not None:
        return write_store(encoder, items, modality, store, shard_size=shard_size, ids=ids, batch_size=batch_size,
                           progress=progress, backend=backend, **backend_options)
    if backend != "local" or backend_options:
        raise TypeError("backend= and its options apply only with store=PATH")
    if not items:
        raise ValueError(f"no {modality} items to embed")
    if modality not in tuple(encoder.modalities):
        raise ValueError(f"{encoder.name} encodes {tuple(encoder.modalities)}, not {modality!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if ids is not None and len(ids) != len(items):
        raise ValueError(f"{len(ids)} ids for {len(items)} items")
    metadata = _default_metadata(items, modality, ids)

    store = EmbeddingCache(cache_dir) if cache else None
    key = store.key(encoder, modality, items) if store else ""
    if store is not None:
        hit = store.get(key, n_rows=len(items))
        if hit is not None:
            return Embeddings(hit, modality, encoder.name, metadata, normalize=False)

    raw = _encode_in_batches(encoder, modality, items, batch_size, progress)
    embeddings = Embeddings(raw, modality, encoder.name, metadata)  # validates (NaN, zero rows) before caching
    if store is not None:
        info = {"encoder": encoder.name, "fingerprint": encoder.fingerprint, "modality": modality}
        store.put(key, embeddings.vectors, info)
    return embeddings
