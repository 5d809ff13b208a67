"""Rank-based retrieval metrics (numpy; chunked, memory bounded by ``chunk_size`` x gallery size).

A query's rank is 1 + the number of gallery items that score at least as high as its best relevant item, other
relevant items excluded. Ties between a relevant and an irrelevant item therefore count against the relevant one
(pessimistic), so no input can overstate recall.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["first_relevant_ranks", "matched_ranks", "recall_at_k"]


def first_relevant_ranks(
    queries: np.ndarray, gallery: np.ndarray, pairs: Any, *, chunk_size: int = 1024
) -> np.ndarray:
    """1-based rank of the best-scoring relevant gallery item for every query (cosine scores of unit rows).

    Parameters
    ----------
    queries : ndarray (Q x D), gallery : ndarray (G x D)
        Unit rows (scores are dot products).
    pairs : array-like (P x 2)
        ``(query row, gallery row)`` relevance pairs; every query needs at least one.
    chunk_size : int
        Queries scored at a time.

    Examples
    --------
    >>> import numpy as np
    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> g = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    >>> first_relevant_ranks(q, g, [(0, 1), (1, 0)]).tolist()
    [1, 1]
    >>> first_relevant_ranks(q, g, [(0, 2), (1, 1)]).tolist()  # 0.6 beaten by 1.0; 0.0 by 1.0 and 0.8
    [2, 3]
    """
    q = np.asarray(queries, dtype=np.float32)
    g = np.asarray(gallery, dtype=np.float32)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"queries and gallery must be 2-D with one dimension, got {q.shape} and {g.shape}")
    p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    has_positive = np.zeros(len(q), dtype=bool)
    has_positive[p[:, 0]] = True
    if not has_positive.all():
        raise ValueError(f"{int((~has_positive).sum())} queries have no relevant gallery item")
    order = np.argsort(p[:, 0], kind="stable")
    p = p[order]
    starts = np.searchsorted(p[:, 0], np.arange(len(q) + 1))
    ranks = np.empty(len(q), dtype=np.int64)
    for s in range(0, len(q), chunk_size):
        e = min(s + chunk_size, len(q))
        scores = q[s:e] @ g.T
        lo, hi = starts[s], starts[e]
        rows, cols = p[lo:hi, 0] - s, p[lo:hi, 1]
        best = np.full(e - s, -np.inf, dtype=np.float32)
        np.maximum.at(best, rows, scores[rows, cols])
        relevant = np.zeros_like(scores, dtype=bool)
        relevant[rows, cols] = True
        above = (scores >= best[:, None]) & ~relevant
        ranks[s:e] = 1 + above.sum(axis=1)
    return ranks


def matched_ranks(a: np.ndarray, b: np.ndarray, *, chunk_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Ranks for row-paired data (row i of a matches row i of b): ``(a queries b, b queries a)``."""
    n = len(a)
    if len(b) != n:
        raise ValueError(f"row-paired data needs equal row counts, got {len(a)} and {len(b)}")
    diag = np.repeat(np.arange(n)[:, None], 2, axis=1)
    return (first_relevant_ranks(a, b, diag, chunk_size=chunk_size),
            first_relevant_ranks(b, a, diag, chunk_size=chunk_size))


def recall_at_k(ranks: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """Fraction of queries whose first relevant item is within the top k, for each k.

    Examples
    --------
    >>> recall_at_k(np.array([1, 2, 7, 30]), ks=(1, 5, 10))
    {1: 0.25, 5: 0.5, 10: 0.75}
    """
    ranks = np.asarray(ranks)
    return {int(k): float(np.mean(ranks <= k)) for k in ks}
