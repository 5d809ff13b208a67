"""Encoding items batch by batch, the checks every encoder output passes (shared by both store backends), and the
fingerprint of items (the cache's key, the store's record of which items each shard holds)."""

from __future__ import annotations

import hashlib
import inspect
import os
import stat
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from workbench._threads import available_cores
from workbench.store._format import file_sha256

__all__ = ["check_batch", "check_item_files", "check_workers_for", "encode_rows", "items_digest", "join_batches",
           "takes_num_workers"]


def _update(digest: Any, tag: bytes, payload: bytes) -> None:
    digest.update(tag + struct.pack("<Q", len(payload)) + payload)


_NOT_REGULAR = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                (stat.S_ISBLK, "a device"), (stat.S_ISDIR, "a directory"))


def _regular_file(path: str | os.PathLike[str], index: int, must_exist: bool) -> bool:
    """Whether item ``index`` names a regular file. A FIFO, socket, device or directory is a ValueError (reading
    one could block forever); a missing file is a ValueError when ``must_exist`` (a Path item), else False."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as exc:
        if must_exist:
            raise ValueError(f"item {index} ({os.fspath(path)!r}) cannot be read: {exc}") from None
        return False
    if stat.S_ISREG(mode):
        return True
    kind = next((what for test, what in _NOT_REGULAR if test(mode)), "not a regular file")
    raise ValueError(f"item {index} ({os.fspath(path)!r}) is {kind}, not a regular file; give regular files only "
                     "(or their bytes)")


def check_item_files(items: Iterable[Any], modality: str) -> None:
    """Raise ValueError when an item (or a part of a tuple item) names a FIFO, socket, device or directory, or is a
    path that does not exist; plain strings of the text modality are texts, not paths."""
    for index, item in enumerate(items):
        parts = item if isinstance(item, tuple | list) else (item,)
        for part in parts:
            if isinstance(part, os.PathLike) or (isinstance(part, str) and modality != "text"):
                _regular_file(part, index, must_exist=not isinstance(part, str))


def _hash_item(digest: Any, item: Any, modality: str, index: int, by_content: bool) -> None:
    if isinstance(item, str | os.PathLike) and (not isinstance(item, str) or modality != "text") and \
            _regular_file(item, index, must_exist=not isinstance(item, str)):
        if by_content:  # a file path: its content, so an edited file is re-encoded
            _update(digest, b"F", bytes.fromhex(file_sha256(item)))
        else:
            _update(digest, b"P", os.fsencode(item))
    elif isinstance(item, str):
        _update(digest, b"S", item.encode("utf-8"))
    elif isinstance(item, bytes | bytearray | memoryview):
        _update(digest, b"B", bytes(item))
    elif hasattr(item, "getdata") and hasattr(item, "mode"):  # PIL image
        _update(digest, b"I", f"{item.mode}{item.size}".encode() + item.tobytes())
    elif hasattr(item, "detach"):  # torch tensor
        _hash_item(digest, item.detach().cpu().numpy(), modality, index, by_content)
    elif isinstance(item, np.ndarray):
        arr = np.ascontiguousarray(item)
        _update(digest, b"A", f"{arr.dtype.str}{arr.shape}".encode() + arr.tobytes())
    elif isinstance(item, bool | int | float | complex):
        _update(digest, b"N", repr(item).encode())
    elif isinstance(item, tuple | list):  # e.g. (waveform, sample_rate)
        _update(digest, b"T", str(len(item)).encode())
        for part in item:
            _hash_item(digest, part, modality, index, by_content)
    elif not by_content:  # the store's record: an item of another type is known by its type alone
        _update(digest, b"?", f"{type(item).__module__}.{type(item).__qualname__}".encode())
    else:
        raise TypeError(
            f"cannot fingerprint an item of type {type(item).__name__} (item {index}) for the cache; use str, a path, "
            "bytes, a numpy array, a PIL image or a tuple of these (or pass cache=False)"
        )


def items_digest(items: Iterable[Any], modality: str, *, by_content: bool = True, start: int = 0) -> str:
    """SHA-256 over every item, in order.

    File paths are hashed by their bytes (``by_content``, the cache's key: an edited file is another item) or by
    their path (the store's record of its items: cheap on every resume; an item of a type not listed in the cache's
    TypeError is then known by its type alone). Only regular files are read: a FIFO,
    socket, device or directory given as an item is a ValueError naming its index (counted from ``start``).

    Examples
    --------
    >>> items_digest(["a cat"], "text") == items_digest(["a cat"], "text")
    True
    """
    digest = hashlib.sha256()
    count = 0
    for count, item in enumerate(items, start=1):
        _hash_item(digest, item, modality, start + count - 1, by_content)
    digest.update(struct.pack("<Q", count))
    return digest.hexdigest()


def check_batch(encoder: Any, modality: str, out: np.ndarray, n_items: int) -> None:
    """Raise ValueError unless one ``encoder.encode`` output ``out`` has shape (``n_items``, dim)."""
    if out.ndim != 2 or len(out) != n_items:
        raise ValueError(
            f"{encoder.name}.encode returned shape {out.shape} for {n_items} {modality} items; expected (items, dim)"
        )


def join_batches(encoder: Any, chunks: Sequence[np.ndarray]) -> np.ndarray:
    """The checked batches of one run as one matrix (ValueError when their dimensions differ)."""
    dims = {c.shape[1] for c in chunks}
    if len(dims) > 1:
        raise ValueError(f"{encoder.name}.encode returned different dimensions across batches: {sorted(dims)}")
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


#: Batches per ``encode`` call for encoders with an input pipeline (its workers fill and drain once per call).
PIPELINE_BATCHES = 16


def takes_num_workers(encoder: Any) -> bool:
    """Whether ``encoder.encode`` has a ``num_workers`` parameter (the package's encoders; an input pipeline).

    Examples
    --------
    >>> class Enc:
    ...     def encode(self, modality, items, batch_size=32):
    ...         return items
    >>> takes_num_workers(Enc())
    False
    """
    try:
        parameters = inspect.signature(encoder.encode).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return False
    return "num_workers" in parameters


def check_workers_for(encoder: Any, num_workers: Any) -> None:
    """TypeError when ``num_workers`` is set but ``encoder.encode`` does not take it (it would be ignored)."""
    if num_workers is not None and not takes_num_workers(encoder):
        raise TypeError(
            f"num_workers={num_workers!r} was given, but {getattr(encoder, 'name', type(encoder).__name__)}.encode "
            "has no num_workers parameter; leave num_workers=None for this encoder"
        )


def encode_rows(encoder: Any, modality: str, items: Sequence[Any], batch_size: int, bar: Any = None,
                num_workers: int | None = None) -> np.ndarray:
    """Encode ``items`` in batches; check every batch is (items, dim) and dims agree. ``bar`` counts items.

    An encoder whose ``encode`` takes ``num_workers`` (an input pipeline: worker processes prepare the next batches
    while the model runs) gets ``num_workers`` (None: its default) and at least ``PIPELINE_BATCHES`` batches per
    call, 4 per worker (the workers start once per call); the result is the same, the bar moves once per call.
    Other encoders get one batch per call.

    Examples
    --------
    >>> import numpy as np
    >>> class Enc:
    ...     name = "toy"
    ...     def encode(self, modality, items, batch_size=32):
    ...         return np.asarray(items, dtype=np.float32)
    >>> encode_rows(Enc(), "sensor", [[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]], batch_size=2).shape
    (3, 2)
    """
    check_workers_for(encoder, num_workers)
    pipelined = takes_num_workers(encoder)
    workers = available_cores() if num_workers is None else num_workers
    step = batch_size * max(PIPELINE_BATCHES, 4 * workers) if pipelined else batch_size
    chunks = []
    for start in range(0, len(items), step):
        batch = items[start : start + step]
        if pipelined:
            out = np.asarray(encoder.encode(modality, batch, batch_size=batch_size, num_workers=num_workers))
        else:
            out = np.asarray(encoder.encode(modality, batch, batch_size=batch_size))
        check_batch(encoder, modality, out, len(batch))
        chunks.append(out)
        if bar is not None:
            bar.update(len(batch))
    return join_batches(encoder, chunks)
