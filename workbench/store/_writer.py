"""Writing a store: :func:`write` encodes items shard by shard and survives being killed at any point.

A rerun verifies what is on disk, keeps every intact shard and recomputes the rest (exactly what
:func:`workbench.store.verify` names), so each id ends up in the store exactly once. Each shard is serialised in
memory (on one of two writer threads, while the next shard is encoded), hashed, written to a temporary file,
fsynced, renamed into place and the folder fsynced; only then is its manifest line appended (and fsynced, in shard
order). On any exception the writer threads are drained and their shards recorded before it propagates.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from workbench._validation import unit_rows32
from workbench.store._checked import CacheCorruptionWarning
from workbench.store._encode import check_item_files, encode_rows, items_digest
from workbench.store._format import (
    FORMAT,
    HEADER,
    LOCK,
    MANIFEST,
    VERSION,
    StoreCorruptionWarning,
    _DamagedHeader,
    _header_bytes,
    _ids_digest,
    _read_header,
    _shard_bytes,
    _shard_name,
    atomic_write_bytes,
    remove_temp_files,
    sha256_hex,
)
from workbench.store._manifest import _append_manifest, _check_entry, _read_manifest, _shard_files, _write_manifest
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
    reset_damaged: bool = False,
    num_workers: int | None = None,
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
    reset_damaged : bool, default False
        Recompute a store whose header (``store.json``) is damaged or gone, with a warning, instead of raising (the
        embedding cache does).
    num_workers : int, optional
        Worker processes of the encoder's input pipeline (as in :func:`workbench.embed`; None: the encoder's
        default). Only with ``backend="local"``.

    Returns
    -------
    EmbeddingStore
        The finished store (lazy).

    Raises
    ------
    ValueError
        When the store holds another encoder / fingerprint / preprocessing / modality or shard size; when it was
        written for another item list (fewer items, or other items or ids at a stored position: a store is for one
        item list, which may only grow by items appended at its end); when its ``store.json`` is damaged or gone
        (which encoder wrote the shards is unknown) unless ``reset_damaged``; when the ids are not unique; when an
        item names a FIFO, socket, device or directory.

    Notes
    -----
    Finished shards are kept, always: when encoding stops with an exception (an encoder error, Ctrl-C), the shards
    already encoded are written and recorded before it propagates, and the next run encodes only the rest. Damage
    that :func:`workbench.store.verify` names (a shard whose checksum, size or rows disagree with its line, a
    garbled or edited manifest line, a lost manifest, orphan shard files) is repaired by the next run with the same
    items: exactly those shards are recomputed.

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
    if backend == "ray" and num_workers is not None:
        raise TypeError("num_workers= applies to the local backend; Ray actors prepare their own batches")
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
    n_shards = (n + shard_size - 1) // shard_size

    def rows_of(index: int) -> int:
        return min((index + 1) * shard_size, n) - index * shard_size

    # a FIFO, socket, device or directory among the items is refused before anything is created or encoded
    check_item_files(items, modality)
    digests: dict[int, str] = {}

    def shard_digest(index: int) -> str:
        """Which items shard ``index`` holds, by value (file items by path); computed when first needed (the
        recorded shards at the start, each new shard as it is encoded), so a run starts without hashing them all."""
        if index not in digests:
            digests[index] = items_digest(items[index * shard_size : index * shard_size + rows_of(index)], modality,
                                          by_content=False, start=index * shard_size)
        return digests[index]
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    identity = {
        "encoder": str(encoder.name),
        "fingerprint": str(encoder.fingerprint),
        "preprocessing": str(getattr(encoder, "preprocessing", "")),
        "modality": modality,
    }
    with _locked(folder, wait):
        header = _open_header(folder, identity, shard_size, reset_damaged)
        remove_temp_files(folder)

        def ids_digest(start: int, stop: int) -> str:
            return _ids_digest(range(start, stop) if ids is None else ids[start:stop])

        keep = _intact_shards(folder, shard_size, n, ids_digest, shard_digest,
                              lambda a, b: items_digest(items[a:b], modality, by_content=False, start=a))

        # Encoding runs here while two writer threads serialise, hash, write and fsync earlier shards (all of which
        # release the GIL); this thread appends each manifest line once its shard is durable, in shard order. At
        # most two finished shards wait in memory. On any exception (an encoder error, Ctrl-C) the shards already
        # encoded are still written and recorded before it propagates: finished work is never thrown away.
        version = int(header.get("version", VERSION))
        missing = [index for index in range(n_shards) if index not in keep]
        pending: deque[Future[dict[str, Any]]] = deque()

        def record_oldest() -> None:
            _append_manifest(folder, pending.popleft().result())

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
                                                                     + rows_of(index)], batch_size, bar,
                                                 num_workers=num_workers))
                        for index in missing)
            try:
                for index, raw in raws:
                    start, stop = index * shard_size, index * shard_size + rows_of(index)
                    shard_ids: Any = np.arange(start, stop, dtype=np.int64) if ids is None else ids[start:stop]
                    vectors = unit_rows32(raw, f"{encoder.name} {modality} embeddings")
                    first, last = (shard_ids[0], shard_ids[-1])
                    entry = {
                        "shard": index, "file": _shard_name(index), "start": start, "stop": stop,
                        "rows": stop - start, "first_id": first.item() if isinstance(first, np.generic) else first,
                        "last_id": last.item() if isinstance(last, np.generic) else last,
                        "ids_sha256": ids_digest(start, stop), "items_sha256": shard_digest(index),
                        "dim": int(vectors.shape[1]), "total": n,
                    }
                    del raw
                    while len(pending) >= 2:
                        record_oldest()
                    pending.append(writers.submit(_write_shard, folder, shard_ids, vectors, entry, version))
                    del vectors
            except BaseException as exc:
                _record_finished(folder, pending, exc)
                raise
            while pending:
                record_oldest()
    return EmbeddingStore(folder, verify=False)


def _record_finished(folder: Path, pending: deque[Future[dict[str, Any]]], error: BaseException) -> None:
    """Drain the writer threads after ``error``: record every shard they finish (in shard order); a shard whose
    write failed too is left unrecorded (recomputed next time) and its failure noted on ``error``."""
    while pending:
        future = pending.popleft()
        try:
            entry = future.result()
        except Exception as failed:  # not swallowed: noted on the error that propagates
            note = f"writing a finished shard failed as well: {type(failed).__name__}: {failed}"
            if hasattr(error, "add_note"):  # Python >= 3.11
                error.add_note(note)
            else:  # pragma: no cover - Python 3.10
                error.__notes__ = [*getattr(error, "__notes__", []), note]
            continue
        _append_manifest(folder, entry)


def _other_list(folder: Path, what: str) -> ValueError:
    return ValueError(
        f"the store at {os.fspath(folder)!r} was written for another item list: {what}. A store is for one item "
        "list (which may grow by items appended at its end); to embed another list, use a new folder, or delete "
        f"{os.fspath(folder)!r} to start over"
    )


def _intact_shards(folder: Path, shard_size: int, n: int, ids_digest: Callable[[int, int], str],
                   shard_digest: Callable[[int], str], digest_of: Callable[[int, int], str]
                   ) -> dict[int, dict[str, Any]]:
    """The recorded shards to keep (their files verified), after checking that the call's items are the stored
    item list or an extension of it; rewrite the manifest without the lines not kept and remove shard files beyond
    the item list that no line records. Warns about each damaged shard and untrustworthy line."""
    manifest = _read_manifest(folder, shard_size)
    if manifest.total > n:
        raise _other_list(folder, f"it holds {manifest.total} items and this call gives {n}")
    for number, _, problem in manifest.bad:
        warnings.warn(f"embedding store manifest {folder / MANIFEST} line {number} {problem}; recomputing its shard",
                      StoreCorruptionWarning, stacklevel=4)
    keep: dict[int, dict[str, Any]] = {}
    for index, entry in sorted(manifest.entries.items()):
        start, stop = entry["start"], entry["stop"]  # stop <= total <= n
        full = min(start + shard_size, n)
        same = entry["ids_sha256"] == ids_digest(start, stop)
        if same and "items_sha256" in entry:  # stores begun before items_sha256 are checked by their ids only
            same = entry["items_sha256"] == (shard_digest(index) if stop == full else digest_of(start, stop))
        if not same:
            raise _other_list(folder, f"items [{start}, {stop}) (shard {index}) differ from the ones it holds")
        if stop != full:
            continue  # the item list grew: this was its partial last shard
        damaged = _check_entry(folder, entry)
        if damaged is None:
            keep[index] = entry
        else:
            warnings.warn(f"embedding store shard {folder / entry['file']} is {damaged}; recomputing it",
                          StoreCorruptionWarning, stacklevel=4)
    n_shards = (n + shard_size - 1) // shard_size
    orphans = [name for index, name in _shard_files(folder).items() if index >= n_shards and index not in keep]
    if orphans:
        warnings.warn(f"embedding store {os.fspath(folder)!r} holds {len(orphans)} shard file(s) beyond its "
                      f"{n} items that no manifest line records ({', '.join(sorted(orphans)[:3])}); removed",
                      StoreCorruptionWarning, stacklevel=4)
        for name in orphans:
            (folder / name).unlink(missing_ok=True)
    if manifest.bad or manifest.torn or len(keep) != len(manifest.entries):
        _write_manifest(folder, keep)  # compact: drop torn, untrustworthy, superseded and damaged lines
    return keep


def _open_header(folder: Path, identity: dict[str, str], shard_size: int, reset_damaged: bool) -> dict[str, Any]:
    """The store's header, created when the folder is new, after checking it was written for ``identity``.

    A damaged header (or shards without one) cannot say which encoder wrote the shards: a ValueError that says
    what to do, or with ``reset_damaged`` (a cache entry) a warning and an empty store to recompute."""
    header: dict[str, Any] | None = None
    damage = None
    if (folder / HEADER).is_file():
        try:
            header = _read_header(folder)
        except _DamagedHeader as exc:
            damage = str(exc)
    elif _shard_files(folder) or ((folder / MANIFEST).is_file() and (folder / MANIFEST).stat().st_size):
        damage = f"the store at {os.fspath(folder)!r} holds shards but no header {HEADER!r}"
    if damage is not None:
        if not reset_damaged:
            raise ValueError(f"{damage}: which encoder wrote the shards is unknown, so they cannot be reused. "
                             f"Restore {HEADER}, or delete the folder {os.fspath(folder)!r} (or embed into a new "
                             "folder) to start over")
        warnings.warn(f"embedding cache entry {folder} is damaged ({damage}); recomputing it",
                      CacheCorruptionWarning, stacklevel=4)
        for name in [*_shard_files(folder).values(), HEADER, MANIFEST]:
            (folder / name).unlink(missing_ok=True)
    if header is None:
        header = {"format": FORMAT, "version": VERSION, **identity, "shard_size": shard_size}
        atomic_write_bytes(folder / HEADER, _header_bytes(header))
        return header
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
    return header
