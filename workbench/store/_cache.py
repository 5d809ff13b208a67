"""The embedding cache: encode once, read from disk afterwards.

:func:`embed` encodes items in batches (with a notebook-aware progress bar) and stores the result under a key made
of the encoder's identity (name + weights fingerprint + preprocessing), the modality and the content of every
item. A second call with the same inputs reads the stored rows and never calls the encoder.

A cache entry *is* an embedding store in a folder named by that key: the same parquet shards, checksummed manifest,
durable writes and resumption as ``embed(..., store=PATH)``, with the folder chosen for you. So a cache entry that
is interrupted resumes from its finished shards, and a damaged shard is detected, reported with a
:class:`~workbench.store.CacheCorruptionWarning` and recomputed -- never returned.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from workbench.data import Embeddings
from workbench.store._checked import CacheCorruptionWarning, default_cache_dir
from workbench.store._encode import check_item_files, check_workers_for, encode_rows, items_digest
from workbench.store._format import HEADER as STORE_HEADER
from workbench.store._format import MANIFEST, SHARD_PATTERN, StoreCorruptionWarning
from workbench.store._manifest import verify as verify_store
from workbench.store._reader import EmbeddingStore
from workbench.store._reader import open as open_store
from workbench.store._writer import write

__all__ = ["EmbeddingCache", "embed"]

CACHE_FORMAT = 2  # 1: one .npz per key (no longer read); 2: one embedding store folder per key
#: Rows per shard of a cache entry (an interrupted entry resumes from its finished shards).
CACHE_SHARD_SIZE = 10_000
_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")


# -- the cache ---------------------------------------------------------------------------------------------------
class EmbeddingCache:
    """A folder of cached embeddings: one embedding store per (encoder, preprocessing, modality, items).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> cache = EmbeddingCache(tempfile.mkdtemp())
    >>> folder = cache.put("k" * 64, np.eye(2, dtype=np.float32), {"modality": "toy"})
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
        """The store folder of ``key`` (a hash or another plain name: never a path, so never outside the cache)."""
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"cache key must be 1 to 128 letters, digits, '-' or '_' (such as a SHA-256 hex digest), "
                             f"got {key!r}")
        return self.directory / key[:2] / key

    def get(self, key: str, n_rows: int) -> np.ndarray | None:
        """The cached rows for ``key``, or None when absent or incomplete.

        Every shard is checked against its SHA-256 first; damaged or missing shards are reported with a
        :class:`CacheCorruptionWarning` and never returned (the next :func:`embed` recomputes just those).
        """
        folder = self.path(key)
        if not folder.is_dir():
            return None
        try:
            problems = verify_store(folder)
        except FileNotFoundError:
            return None  # no entry yet (at most an empty manifest left by a writer killed at once)
        except (OSError, ValueError) as exc:
            warnings.warn(f"embedding cache entry {folder} cannot be read ({exc}); recomputing",
                          CacheCorruptionWarning, stacklevel=2)
            return None
        if problems.height:
            listed = "; ".join(f"{r['file']} {r['problem']}" for r in problems.head(3).iter_rows(named=True))
            warnings.warn(f"embedding cache entry {folder} is damaged ({problems.height} shard(s): {listed}); "
                          "recomputing those", CacheCorruptionWarning, stacklevel=2)
            return None
        stored = open_store(folder, verify=False)
        if not stored.complete or len(stored) != n_rows:
            return None
        return _stored_rows(stored)

    def put(self, key: str, vectors: np.ndarray, info: dict[str, Any]) -> Path:
        """Store precomputed ``vectors`` under ``key`` (as a store; ``info`` may name ``encoder``, ``fingerprint``,
        ``preprocessing`` and ``modality``); return the entry's folder."""
        vectors = np.asarray(vectors)
        source = _Precomputed(vectors, info)
        write(source, range(len(vectors)), source.modalities[0], self.path(key), shard_size=CACHE_SHARD_SIZE,
              batch_size=CACHE_SHARD_SIZE, progress=False, wait=True, reset_damaged=True)
        return self.path(key)

    def clear(self) -> int:
        """Remove every cached entry (and files of the old one-``.npz`` format); return how many were removed."""
        removed = 0
        for entry in self.directory.glob("*/*/"):  # an entry whose store.json was lost is still an entry
            if any((entry / name).exists() for name in (STORE_HEADER, MANIFEST)) or any(entry.glob(SHARD_PATTERN)):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        for path in self.directory.glob("*/*.npz"):
            path.unlink()
            removed += 1
        return removed


def _stored_rows(stored: EmbeddingStore) -> np.ndarray:
    return np.concatenate([vectors for _, vectors in stored.iter_batches()])


class _Precomputed:
    """An encoder over row positions of a matrix (for :meth:`EmbeddingCache.put`)."""

    def __init__(self, vectors: np.ndarray, info: dict[str, Any]) -> None:
        self.vectors = vectors
        self.name = str(info.get("encoder", "precomputed"))
        self.fingerprint = str(info.get("fingerprint", ""))
        self.preprocessing = str(info.get("preprocessing", ""))
        self.modalities = (str(info.get("modality", "vectors")),)

    def encode(self, modality: str, items: Sequence[int], batch_size: int = 32) -> np.ndarray:
        return self.vectors[list(items)]


def _encode_in_batches(encoder: Any, modality: str, items: list[Any], batch_size: int, progress: bool,
                       num_workers: int | None = None) -> np.ndarray:
    from tqdm.auto import tqdm

    with tqdm(total=len(items), desc=f"{encoder.name} {modality}", unit="item", disable=not progress) as bar:
        return encode_rows(encoder, modality, items, batch_size, bar, num_workers=num_workers)


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
    num_workers: int | None = None,
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
        A store folder: write (or resume, or repair) a sharded store there; the cache is not used. Items are
        addressed by position, ``ids`` must be unique. A store is for one item list (which may grow by items
        appended at its end): another list is a ValueError that says to use a new folder.
    backend : "local" or "ray", default "local"
        With ``store``: encode in this process, or on a Ray actor pool (``actors=``, ``num_cpus_per_actor=``,
        ``encoder_factory=``; see :func:`workbench.store.write`). Both write the same shards.
    shard_size : int, default 10_000
        Rows per store shard (only with ``store``).
    num_workers : int, optional
        Worker processes of the encoder's input pipeline (decoding and preprocessing run there while the model
        runs; the package's encoders take it): None uses the encoder's default (one per available core, at most
        8), 0 prepares in this process. The rows are the same bits either way. An encoder whose ``encode`` has no
        ``num_workers`` parameter refuses a value (TypeError). Not used with ``backend="ray"``.

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
    check_workers_for(encoder, num_workers)
    if num_workers is not None:
        backend_options["num_workers"] = num_workers
    if store is not None:
        return write(encoder, items, modality, store, shard_size=shard_size, ids=ids, batch_size=batch_size,
                     progress=progress, backend=backend, **backend_options)
    backend_options.pop("num_workers", None)
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

    if not cache:
        check_item_files(items, modality)  # a FIFO would block the encoder's read forever
        raw = _encode_in_batches(encoder, modality, items, batch_size, progress, num_workers)
        return Embeddings(raw, modality, encoder.name, metadata)
    entries = EmbeddingCache(cache_dir)
    key = entries.key(encoder, modality, items)
    hit = entries.get(key, n_rows=len(items))
    if hit is None:
        with warnings.catch_warnings():  # get() has reported any damage; the store recomputes those shards
            warnings.simplefilter("ignore", StoreCorruptionWarning)
            written = write(encoder, items, modality, entries.path(key), shard_size=CACHE_SHARD_SIZE,
                            batch_size=batch_size, progress=progress, wait=True, reset_damaged=True,
                            num_workers=num_workers)
        hit = _stored_rows(written)  # every shard was verified or hashed while writing: no second check
    return Embeddings(hit, modality, encoder.name, metadata, normalize=False)
