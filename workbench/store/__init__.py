"""A resumable, sharded embedding store (parquet shards, a checksummed manifest, lazy readers) and the embedding
cache built on it.

:func:`write` (reached through ``workbench.embed(..., store=PATH)``) encodes items shard by shard and survives being
killed at any point: a rerun verifies what is on disk, keeps every intact shard and recomputes the rest, so each id
ends up in the store exactly once. :func:`open` gives a lazy :class:`EmbeddingStore`; :func:`verify` cross-checks
the manifest against the files on disk and names every problem. ``backend="ray"`` encodes on a Ray Data actor pool
(:func:`encode_shards`) into the same store.

On-disk layout of a store folder::

    store.json               identity (format, encoder name, fingerprint, preprocessing, modality, shard size) and
                             ``header_sha256``, its checksum; written atomically once
    manifest.jsonl           one JSON line per finished shard, appended and fsynced after the shard is in place:
                             {"shard", "file", "start", "stop", "rows", "first_id", "last_id", "ids_sha256",
                              "items_sha256", "dim", "total", "bytes", "sha256", "line_sha256"}
    shard-000000.parquet     columns ``id`` and ``embedding`` (one fixed-size binary value of ``dim`` little-endian
    shard-000001.parquet     float32 per row; :meth:`EmbeddingStore.scan` shows it as ``Array(Float32, dim)``);
                             shard k holds items [k * shard_size, (k + 1) * shard_size)
    .lock                    an advisory lock held by the writing process (a second writer waits or is refused)

Each shard is serialised in memory (on one of two writer threads, while the next shard is encoded), hashed, written
to a temporary file, fsynced, renamed into place and the folder fsynced; only then is its manifest line appended
(and fsynced, in shard order). A crash therefore leaves at worst a temporary file (removed on restart), a shard
without a manifest line (recomputed) or a torn last manifest line (ignored). When encoding stops with an exception
(an encoder error, Ctrl-C), the shards already encoded are written and recorded before it propagates.

Nothing on disk is believed without a check: a shard must match its line's SHA-256, size and row count; a line must
match its own checksum (an edited or garbled line is not believed); the header must match its checksum. A store is
for one item list (``items_sha256`` and ``ids_sha256`` record which items each shard holds), which may grow by items
appended at its end; another list (fewer items, or other items or ids at a stored position) is a ValueError that
says to use a new folder. The next write with the same items repairs whatever :func:`verify` names by recomputing
exactly those shards; a damaged ``store.json`` is a ValueError naming the file (the shards' encoder is unknown).

The embedding cache (:func:`embed`, :class:`EmbeddingCache`) keeps one such store per (encoder, preprocessing,
modality, items) in a folder named by the hash of that key, under :func:`default_cache_dir`; damage there (a damaged
``store.json`` included) is reported with a :class:`CacheCorruptionWarning` naming the folder and recomputed. Items
given as files must be regular files (a FIFO, socket, device or directory is a ValueError naming the item). The
checksummed one-file arrays (:func:`write_checked_array`, :func:`read_checked_array`) serve the projection cache.
The same primitives (:func:`atomic_write_bytes`, :func:`sha256_hex`, :func:`encode_rows`) back both.
"""

from __future__ import annotations

from workbench.store._cache import EmbeddingCache, embed
from workbench.store._checked import CacheCorruptionWarning, default_cache_dir, read_checked_array, write_checked_array
from workbench.store._encode import encode_rows, items_digest
from workbench.store._format import StoreCorruptionWarning, atomic_write_bytes, sha256_hex
from workbench.store._manifest import verify
from workbench.store._ray import EncoderActor, encode_shards
from workbench.store._reader import EmbeddingStore, as_store, open
from workbench.store._writer import write

__all__ = [
    "CacheCorruptionWarning",
    "EmbeddingCache",
    "EmbeddingStore",
    "EncoderActor",
    "StoreCorruptionWarning",
    "as_store",
    "atomic_write_bytes",
    "default_cache_dir",
    "embed",
    "encode_rows",
    "encode_shards",
    "items_digest",
    "open",
    "read_checked_array",
    "sha256_hex",
    "verify",
    "write",
    "write_checked_array",
]
