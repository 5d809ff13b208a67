"""Search helpers of the consequences and the N-modality matrix: NDCG@k, top k by blocks, relevance lookups.

NDCG@k with binary relevance (Jarvelin & Kekalainen, TOIS 2002): ``DCG = sum_{r<=k} rel_r / log2(r + 1)`` over the
ideal ``sum_{r<=min(k, R)} 1 / log2(r + 1)``, ``R`` the relevant items in the gallery. Items are taken by decreasing
score, ties by gallery position.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench._params import check_int

__all__ = ["Relevance", "argmax_both", "merge_top_k", "ndcg_at_k", "ndcg_from_hits", "side_search", "top_k"]


_KERNELS: tuple[Any, Any] | None = None


def _kernels() -> tuple[Any, Any]:
    """Compile (once, cached on disk) the one-pass top-k of every row and the row-and-column argmax.

    Serial on purpose, as the gap-shift engine's kernels (:mod:`workbench.gap._shift`): one pass over a 5,000 x 5,000
    float32 matrix takes tens of milliseconds, where ``argpartition`` copies and sorts an index per entry.
    """
    global _KERNELS
    if _KERNELS is None:
        from numba import njit

        @njit(cache=True, boundscheck=False)
        def top_k_rows(s, k):  # pragma: no cover - compiled
            n, m = s.shape
            idx = np.zeros((n, k), dtype=np.int64)
            val = np.empty((n, k), dtype=s.dtype)
            for i in range(n):
                count = 0
                for j in range(m):
                    v = s[i, j]
                    if count < k:
                        p = count
                        count += 1
                    elif v > val[i, k - 1]:
                        p = k - 1
                    else:
                        continue
                    while p > 0 and val[i, p - 1] < v:  # equal scores keep the earlier position first
                        val[i, p] = val[i, p - 1]
                        idx[i, p] = idx[i, p - 1]
                        p -= 1
                    val[i, p] = v
                    idx[i, p] = j
            return idx

        @njit(cache=True, boundscheck=False)
        def argmax_both(s):  # pragma: no cover - compiled
            n, m = s.shape
            rows = np.zeros(n, dtype=np.int64)
            cols = np.zeros(m, dtype=np.int64)
            col_max = s[0].copy()
            for i in range(n):
                best = s[i, 0]
                where = 0
                for j in range(m):
                    v = s[i, j]
                    if v > best:
                        best = v
                        where = j
                    if v > col_max[j]:
                        col_max[j] = v
                        cols[j] = i
                rows[i] = where
            return rows, cols

        _KERNELS = (top_k_rows, argmax_both)
    return _KERNELS


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k highest scores, best first (ties by position), in one pass."""
    k = min(k, scores.shape[1])
    return _kernels()[0](np.ascontiguousarray(scores), k)


def argmax_both(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(scores.argmax(axis=1), scores.argmax(axis=0))`` in one pass (ties: the first, as numpy)."""
    return _kernels()[1](np.ascontiguousarray(scores))


def merge_top_k(idx_own: np.ndarray, val_own: np.ndarray, idx_other: np.ndarray, val_other: np.ndarray,
                n_own: int, k: int) -> np.ndarray:
    """The top k of a gallery [own items, other items] from each part's top k (positions: own j, other n_own + j)."""
    idx = np.concatenate([idx_own, idx_other + n_own], axis=1)
    val = np.concatenate([val_own, val_other], axis=1)
    order = np.lexsort((idx, -val), axis=1)[:, :k]
    return np.take_along_axis(idx, order, axis=1)


def ndcg_from_hits(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """NDCG@k of ranked lists given as hit flags (Q x <=k) and each query's number of relevant items (NaN if 0)."""
    width = hits.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, width + 2))
    dcg = (hits * discounts).sum(axis=1)
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])[np.minimum(n_relevant, k)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_relevant > 0, dcg / ideal, np.nan)


def ndcg_at_k(scores: Any, relevant: Any, k: int = 10) -> np.ndarray:
    """Per-query NDCG@k with binary relevance (NaN for a query with no relevant item; formula in the module doc).

    ``scores`` and ``relevant`` are (Q x G); an entry of ``-inf`` in ``scores`` leaves that item out (the query
    itself). Equal to scikit-learn's ``ndcg_score`` on untied scores (the tests check it).

    Examples
    --------
    >>> import numpy as np
    >>> ndcg_at_k(np.array([[0.9, 0.5, 0.1]]), np.array([[False, True, False]]), k=2).round(4).tolist()
    [0.6309]
    """
    k = check_int(k, "k")
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool) & np.isfinite(scores)
    top = top_k(scores, k)
    return ndcg_from_hits(np.take_along_axis(relevant, top, axis=1), relevant.sum(axis=1), k)


class Relevance:
    """Which gallery items are relevant to a query, between and within two sides "a" and "b".

    With labels (one per item of each side): items of the query's label. Without: across sides, the query's partners
    (``pairs`` into the items of a and b); within a side, the items that share a partner with the query. A query is
    never relevant to itself (it is left out of its own side's gallery).
    """

    def __init__(self, pairs: np.ndarray, n_a: int, n_b: int, labels_a: np.ndarray | None = None,
                 labels_b: np.ndarray | None = None) -> None:
        self.n = {"a": n_a, "b": n_b}
        self.labels = None if labels_a is None or labels_b is None else {"a": labels_a, "b": labels_b}
        if self.labels is None:
            from scipy import sparse

            p = sparse.csr_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_a, n_b))
            self.keys: dict[tuple[str, str], np.ndarray] = {}
            self.counts_: dict[tuple[str, str], np.ndarray] = {}
            for (q, g), m in ((("a", "b"), p), (("b", "a"), p.T.tocsr()), (("a", "a"), (p @ p.T).tocsr()),
                              (("b", "b"), (p.T @ p).tocsr())):
                coo = m.tocoo()
                keep = coo.row != coo.col if q == g else np.ones(coo.nnz, dtype=bool)
                rows, cols = coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64)
                self.keys[(q, g)] = np.unique(rows * self.n[g] + cols)
                self.counts_[(q, g)] = np.bincount(rows, minlength=self.n[q])

    def hits(self, q: str, rows: np.ndarray, g: str, idx: np.ndarray) -> np.ndarray:
        """Relevance flags of gallery items ``idx`` (m x k) of side g for queries ``rows`` (m,) of side q."""
        if self.labels is not None:
            return self.labels[g][idx] == self.labels[q][rows][:, None]
        keys = self.keys[(q, g)]
        code = rows[:, None] * self.n[g] + idx
        pos = np.minimum(np.searchsorted(keys, code), len(keys) - 1) if len(keys) else np.zeros_like(code)
        return keys[pos] == code if len(keys) else np.zeros(code.shape, dtype=bool)

    def counts(self, q: str, g: str) -> np.ndarray:
        """Relevant items of side g for every query of side q (itself excluded)."""
        if self.labels is not None:
            per_label = np.bincount(self.labels[g], minlength=int(max(self.labels[q].max(), self.labels[g].max())) + 1)
            return per_label[self.labels[q]] - (1 if q == g else 0)
        return self.counts_[(q, g)]


def side_search(own: np.ndarray, s_other: np.ndarray, rel: Relevance, q: str, g: str, k: int,
                via: np.ndarray | None = None, block: int = 2048) -> dict[str, np.ndarray]:
    """Every search of the queries of one side (each item of ``own`` in turn), by blocks of rows.

    ``own`` holds the unit rows of side q (float32), ``s_other`` the scores of each of them against side g's items
    (Q x G), ``via`` optional stand-in queries (the partner in g, as unit rows) searched against ``own``. Returns
    per-query ``mixed_ndcg`` and ``own_share`` over the gallery [own, g] (self left out), ``direct_ndcg`` within
    ``own`` and, with ``via``, ``via_ndcg`` within ``own``.
    """
    n_own = len(own)
    k_own = min(k, n_own - 1)
    n_rel_own, n_rel_other = rel.counts(q, q), rel.counts(q, g)
    out = {name: np.empty(n_own) for name in ("mixed_ndcg", "own_share", "direct_ndcg", "via_ndcg")}
    for s in range(0, n_own, block):
        e = min(s + block, n_own)
        rows = np.arange(s, e)
        s_own = own[s:e] @ own.T
        s_own[rows - s, rows] = -np.inf
        idx_own = top_k(s_own, k_own)
        val_own = np.take_along_axis(s_own, idx_own, axis=1)
        idx_other = top_k(s_other[s:e], k)
        val_other = np.take_along_axis(s_other[s:e], idx_other, axis=1)
        merged = merge_top_k(idx_own, val_own, idx_other, val_other, n_own, k)
        is_own = merged < n_own
        hits = np.where(is_own, rel.hits(q, rows, q, np.where(is_own, merged, 0)),
                        rel.hits(q, rows, g, np.where(is_own, 0, merged - n_own)))
        out["mixed_ndcg"][s:e] = ndcg_from_hits(hits, n_rel_own[s:e] + n_rel_other[s:e], k)
        out["own_share"][s:e] = is_own.mean(axis=1)
        out["direct_ndcg"][s:e] = ndcg_from_hits(rel.hits(q, rows, q, idx_own), n_rel_own[s:e], k)
        if via is not None:
            s_via = via[s:e] @ own.T
            s_via[rows - s, rows] = -np.inf
            out["via_ndcg"][s:e] = ndcg_from_hits(rel.hits(q, rows, q, top_k(s_via, k_own)), n_rel_own[s:e], k)
    if via is None:
        del out["via_ndcg"]
    return out
