"""The rows a ranking reads: unit float32 arrays in memory, or embedding stores read chunk by chunk.

An in-memory array is a stream of one kind among others: :class:`_Rows` hands out the rows of an array or a store
in chunks of one size, so the rank loop of :mod:`workbench.retrieval._ranking` never asks which it has.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from workbench._validation import as_matrix, unit_matrix32
from workbench.retrieval._device import is_tensor, unit32

_READ_ROWS = 65_536


def _is_store(x: Any) -> bool:
    """An embedding store or a store folder (streamed, never loaded whole)."""
    return isinstance(x, (str, os.PathLike)) or all(hasattr(x, n) for n in ("iter_batches", "ids", "dim", "__len__"))


def _unit32(x: Any, what: str) -> np.ndarray:
    return unit_matrix32(as_matrix(x, what), what)


def _expand_identical(pairs: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Add (q, g') for every gallery row g' whose bytes equal those of a relevant g."""
    rows = np.ascontiguousarray(gallery).view(np.dtype((np.void, gallery.dtype.itemsize * gallery.shape[1])))
    _, group = np.unique(rows.ravel(), return_inverse=True)
    group = group.ravel()
    members = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[members], np.arange(group.max() + 2))
    extra = [
        np.stack([np.full(starts[g + 1] - starts[g], q), members[starts[g] : starts[g + 1]]], axis=1)
        for q, g in zip(pairs[:, 0], group[pairs[:, 1]], strict=True)
        if starts[g + 1] - starts[g] > 1
    ]
    return np.unique(np.concatenate([pairs, *extra]), axis=0) if extra else pairs


class _Rows:
    """One side of the evaluation: unit float32 rows in memory, or a store read chunk by chunk."""

    def __init__(self, values: Any, what: str) -> None:
        self.what = what
        self.store: Any = None
        self.array: Any = None  # unit float32 rows: a numpy array, or a tensor on the torch engine's device
        if is_tensor(values):  # kept on its device for the torch engine (callers send host work to numpy first)
            self.array = unit32(values, what)
            self.n, self.dim = self.array.shape
            return
        from workbench.store import as_store

        store = as_store(values, what)  # a path or an EmbeddingStore: opened, checked complete
        values = values if store is None else store
        if _is_store(values):
            if not getattr(values, "complete", True):  # a store-like object of another kind
                where = os.fspath(getattr(values, "path", "?"))
                raise ValueError(f"{what}: the store at {where!r} is incomplete ({len(values)} rows in verified "
                                 "shards); finish or repair it (workbench.embed resumes) before evaluating")
            self.store, self.n, self.dim = values, len(values), int(values.dim)
        else:
            self.array = _unit32(values, what)
            self.n, self.dim = self.array.shape

    @classmethod
    def of_unit(cls, array: np.ndarray, what: str) -> _Rows:
        """Rows of an array that is already unit float32 (C-contiguous): a stream of it, nothing copied or checked."""
        rows = cls.__new__(cls)
        rows.what, rows.store, rows.array = what, None, array
        rows.n, rows.dim = array.shape
        return rows

    def ids(self) -> Any:
        """The ids of the rows in order (a store's ``id`` column; row positions for an array)."""
        import polars as pl

        if self.store is None:
            return pl.Series("id", np.arange(self.n, dtype=np.int64))
        return self.store.ids()

    def _batches(self, rows: int) -> Iterator[np.ndarray]:
        if self.array is not None:
            for s in range(0, self.n, rows):
                yield self.array[s : s + rows]
            return
        seen = 0
        for _, vectors in self.store.iter_batches(rows):
            if vectors.ndim != 2 or vectors.shape[1] != self.dim:
                raise ValueError(f"{self.what}: a store batch has shape {vectors.shape}, expected (rows, {self.dim})")
            yield _unit32(vectors, f"{self.what} rows {seen}..{seen + len(vectors) - 1}")
            seen += len(vectors)
        if seen != self.n:
            raise ValueError(f"{self.what}: the store yielded {seen} rows but reports {self.n}")

    def chunks(self, size: int, wanted: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(row positions, rows)`` in order, exactly ``size`` rows each but the last; only ``wanted`` rows if given
        (a boolean mask over all rows), packed the same way."""
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        have = start = 0
        for vectors in self._batches(min(max(size, 16_384), _READ_ROWS)):
            idx = np.arange(start, start + len(vectors))
            start += len(vectors)
            if wanted is not None:
                take = wanted[idx]
                idx, vectors = idx[take], vectors[take]
                if not len(idx):
                    continue
            parts.append((idx, vectors))
            have += len(idx)
            while have >= size:
                idx = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
                vectors = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
                yield idx[:size], vectors[:size]
                parts = [(idx[size:], vectors[size:])] if len(idx) > size else []
                have = len(idx) - size
        if have:
            yield np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def load(self) -> np.ndarray:
        """Every row in memory (unit float32)."""
        if self.array is not None:
            return self.array
        return np.concatenate([vectors for _, vectors in self.chunks(_READ_ROWS)])

    def row_keys(self) -> np.ndarray:
        """Rows whose bytes are equal exactly when two vectors are: the array itself, or for a store a 128-bit
        BLAKE2 digest per row (one reading pass; nothing of size S x D is kept)."""
        if self.array is not None:
            return self.array.cpu().numpy() if is_tensor(self.array) else self.array
        keys = np.empty((self.n, 16), dtype=np.uint8)
        for idx, vectors in self.chunks(_READ_ROWS):
            for i, row in zip(idx, vectors, strict=True):
                keys[i] = np.frombuffer(hashlib.blake2b(row.tobytes(), digest_size=16).digest(), dtype=np.uint8)
        return keys
