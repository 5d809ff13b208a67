"""Writing a store: :func:`write` encodes items shard by shard and survives being killed at any point.

A rerun verifies what is on disk, keeps every intact shard and recomputes the rest, so each id ends up in the store
exactly once. Each shard is serialised in memory (on one of two writer threads, while the next shard is encoded),
hashed, written to a temporary file, fsynced, renamed into place and the folder fsynced; only then is its manifest
line appended (and fsynced, in shard order).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from workbench._validation import unit_rows32
from workbench.store._encode import encode_rows
from workbench.store._format import (
    FORMAT,
    HEADER,
    LOCK,
    MANIFEST,
    VERSION,
    StoreCorruptionWarning,
    _ids_digest,
    _read_header,
    _shard_bytes,
    _shard_name,
    atomic_write_bytes,
    remove_temp_files,
    sha256_hex,
)
from workbench.store._manifest import _append_manifest, _check_entry, _read_manifest
from workbench.store._ray import encode_shards
from workbench.store._reader import EmbeddingStore

__all__ = ["write"]

_IDENTITY_KEYS = ("encoder", "fingerprint", "preprocessing", "modality")


@contextlib.contextmanager
def _locked(folder: Path, wait: bool = False) -> Iterator[None]:
    import fcntl

    handle = open(folder / LOCK, "a+b")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise RuntimeError(f"another process is writing the embedding store {os.fspath(folder)!r}") from None
        yield
    finally:
        handle.close()  # releases the lock (a killed process releases it too)


def _write_shard(folder: Path, ids: Sequence[Any], vectors: np.ndarray, entry: dict[str, Any],
                 version: int) -> dict[str, Any]:
    """Serialise a shard, checksum it and put it in place durably; return its manifest line (not yet appended).

    Runs on a writer thread: parquet serialisation, SHA-256 and file IO all release the GIL."""
    data = _shard_bytes(ids, vectors, version)
    entry["bytes"] = len(data)
    entry["sha256"] = sha256_hex(data)
    atomic_write_bytes(folder / entry["file"], data)
    return entry


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
        ``"ray"`` encodes the missing shards on a Ray Data actor pool (see :func:`workbench.store.encode_shards`;
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
            recorded = range(start, stop) if ids is None else ids[start:stop]
            if (entry["start"], entry["stop"]) != (start, stop) or entry["ids_sha256"] != _ids_digest(recorded):
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
                shard_ids: Any = np.arange(start, stop, dtype=np.int64) if ids is None else ids[start:stop]
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
