"""GapShift(delta) for any delta from one similarity matrix: gap metrics, R@K, the CLIP loss and the 2-D view.

:class:`workbench.correct.GapShift` moves ``a -> normalize(a - c)`` and ``b -> normalize(b + c)`` with
``c = delta * g / 2`` (``g`` the gap of the matched training rows). Every cross-modal cosine then changes by a
rank-one term and a row and column rescaling::

    <a - c, b + c> = <a, b> + <a, c> - <c, b> - |c|^2,   ||a - c||^2 = 1 - 2 <a, c> + |c|^2,
    ||b + c||^2 = 1 + 2 <b, c> + |c|^2

so :class:`ShiftedGap` computes ``S = A B^T`` once (float32, N_a x N_b) and, for each delta, ranks every query in
ONE fused pass over S (numba): each entry is shifted and rescaled in float64 and compared with its row's
and its column's threshold (the query's best relevant score, read from the same S), counting irrelevant items
that score at least as high -- the pessimistic ranks of :mod:`workbench.retrieval`. The moved vectors are never
multiplied again. Within-modality terms use the sums of the moved rows (O(N D), as :func:`workbench.gap.gap_report`
does); the O(N^2) uniformity terms use the same rank-one update on the Gram matrix of a seeded subsample of at most
``uniformity_rows`` items per modality (the subsample :func:`~workbench.gap.gap_report` draws with
``max_rows=uniformity_rows`` and the same seed, so both agree); the CLIP loss reads its batch blocks of S; the 2-D
view moves each point through a PCA fitted once on the original data (linear, so also a rescaled rank-one update).
The modality probe (cross-validated, slow) is not part of an update.

Every value equals the core's computation on ``GapShift(delta).fit(*paired.matched()).transform(a, b)`` to float32
rounding (the tests check it); R@K may differ only where a negative is within float32 rounding of the positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench._contrastive import symmetric_info_nce
from workbench._params import check_int, check_ints, check_number
from workbench._validation import unit_rows64
from workbench.data import PairedEmbeddings
from workbench.gap._metrics import rmg_from_cosines

__all__ = ["ShiftResult", "ShiftedGap", "recall_keys"]

#: A moved row shorter than this has lost its direction (as in workbench.correct).
_COLLAPSE_NORM = 1e-10
_KERNELS: tuple[Any, Any] | None = None


def _kernels() -> tuple[Any, Any]:
    """Compile (once, cached on disk) the fused counting pass and the uniformity sum.

    Both are serial on purpose: branch-free, the counting pass runs at about 1.3 ns per entry (32 ms for 5,000 x
    5,000), and numba's parallel regions were measured up to 50 times slower on a busy 2-core machine (threads
    waiting on a barrier while another process holds a core).
    """
    global _KERNELS
    if _KERNELS is None:
        from numba import njit

        @njit(cache=True, fastmath=False, boundscheck=False)
        def shifted_counts(s0, x, q, ra, rb, t_row, t_col):  # pragma: no cover - compiled
            # s = ((S0[i, j] + x[i]) - q[j]) * ra[i] * rb[j]; counts of s >= t_row[i] per row and of
            # s >= t_col[j] per column, relevant entries included (the caller subtracts them)
            n_a, n_b = s0.shape
            row_counts = np.zeros(n_a, dtype=np.int64)
            col_counts = np.zeros(n_b, dtype=np.int64)
            for i in range(n_a):
                xi = x[i]
                rai = ra[i]
                ti = t_row[i]
                row = s0[i]
                count = 0
                for j in range(n_b):
                    s = ((np.float64(row[j]) + xi) - q[j]) * rai * rb[j]
                    count += s >= ti
                    col_counts[j] += s >= t_col[j]
                row_counts[i] = count
            return row_counts, col_counts

        @njit(cache=True, fastmath=False, boundscheck=False)
        def uniformity_sum(gram, z, r, cc, t):  # pragma: no cover - compiled
            # sum over i < k of exp(-t * max(2 - 2 cos_ik, 0)), cos_ik = ((G_ik + z_i) + z_k + cc) * r_i * r_k
            m = gram.shape[0]
            total = 0.0
            for i in range(m):
                acc = 0.0
                for k in range(i + 1, m):
                    cos = ((gram[i, k] + z[i]) + z[k] + cc) * r[i] * r[k]
                    sq = max(2.0 - 2.0 * cos, 0.0)
                    acc += np.exp(-t * sq)
                total += acc
            return total

        _KERNELS = (shifted_counts, uniformity_sum)
    return _KERNELS


def recall_keys(ks: Sequence[int]) -> list[str]:
    """The R@K keys of the panels' metrics: ``a_to_b_R@k`` (a queries b) then ``b_to_a_R@k``.

    Examples
    --------
    >>> recall_keys((1, 5))
    ['a_to_b_R@1', 'a_to_b_R@5', 'b_to_a_R@1', 'b_to_a_R@5']
    """
    return [f"{d}_R@{k}" for d in ("a_to_b", "b_to_a") for k in check_ints(ks, "ks")]


def _subsample_rows(n: int, max_rows: int, seed: int) -> np.ndarray:
    """The rows :func:`workbench.gap.gap_report` uses for uniformity (same generator, same draw)."""
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


class ShiftedGap:
    """Evaluate ``GapShift(delta)`` for many deltas from one similarity matrix (see the module docstring).

    Parameters
    ----------
    paired : PairedEmbeddings
        GapShift is fitted on its matched rows (as :meth:`GapShift.fit` does with a PairedEmbeddings) and moves
        every row of both sides; per-modality metrics use the paired items once (as ``gap_report``), queries are
        the paired items of each side and galleries all items of the other side.
    ks : R@K cut-offs.
    uniformity_rows : int
        The uniformity terms use a seeded subsample of this many items per modality when there are more.
    seed : int
        Seed of that subsample.
    logit_scale, batch_size
        Of the CLIP loss (:func:`workbench.gap.clip_loss`).
    pca : PCA2D, optional
        A fitted 2-D PCA; ``evaluate`` then also returns the moved points' coordinates in its frame.

    Examples
    --------
    >>> import workbench
    >>> shifted = ShiftedGap(workbench.datasets.load("liang2022/clip"))
    >>> out = shifted.evaluate(1.0)
    >>> round(out.metrics["centroid_distance"], 3), out.metrics["a_to_b_R@1"]
    (0.008, 0.358)
    """

    def __init__(
        self,
        paired: PairedEmbeddings,
        *,
        ks: Sequence[int] = (1, 5, 10),
        uniformity_rows: int = 1000,
        seed: int = 0,
        logit_scale: float = 100.0,
        batch_size: int = 50,
        pca: Any = None,
    ) -> None:
        if not isinstance(paired, PairedEmbeddings):
            raise TypeError(f"paired must be a PairedEmbeddings (e.g. PairedEmbeddings.from_arrays(a, b)), got "
                            f"{type(paired).__name__}")
        check_int(uniformity_rows, "uniformity_rows", low=2)
        self.paired, self.ks, self.seed = paired, check_ints(ks, "ks"), seed
        self.logit_scale = check_number(logit_scale, "logit_scale")
        self.batch_size = check_int(batch_size, "batch_size")
        pairs = paired.pairs
        self.a64, self.b64 = unit_rows64(paired.a.vectors, "a"), unit_rows64(paired.b.vectors, "b")
        ia, jb = pairs[:, 0], pairs[:, 1]
        self.gap = self.a64[ia].mean(axis=0) - self.b64[jb].mean(axis=0)  # GapShift.gap_
        self.gg = float(self.gap @ self.gap)
        self.u, self.v = self.a64 @ self.gap, self.b64 @ self.gap
        self.s0 = np.ascontiguousarray(paired.a.vectors @ paired.b.vectors.T, dtype=np.float32)
        self.s0_pairs = self.s0[ia, jb]  # for the thresholds: read from the same matrix as the kernel
        self.s64_pairs = np.einsum("ij,ij->i", self.a64[ia], self.b64[jb])  # for the paired metrics (exact)
        self.rows_a, self.rows_b = paired.paired_rows()
        if len(self.rows_a) < 2 or len(self.rows_b) < 2:
            raise ValueError(f"the gap metrics need at least 2 paired items per modality, got {len(self.rows_a)} "
                             f"{paired.a.modality} and {len(self.rows_b)} {paired.b.modality}")
        self._items_a = self.a64 if len(self.rows_a) == len(self.a64) else self.a64[self.rows_a]
        self._items_b = self.b64 if len(self.rows_b) == len(self.b64) else self.b64[self.rows_b]
        # per-query maxima of the relevant scores: pairs grouped by query row (np.maximum.reduceat)
        self._order_a = np.argsort(ia, kind="stable")
        self._starts_a = np.flatnonzero(np.diff(ia[self._order_a], prepend=-1))
        self._order_b = np.argsort(jb, kind="stable")
        self._starts_b = np.flatnonzero(np.diff(jb[self._order_b], prepend=-1))
        # CLIP loss: the batch blocks of S over the matched rows, in pair order
        n_full = len(pairs) // self.batch_size
        full = n_full * self.batch_size
        self._blocks = []
        for lo, hi, count in ((0, full, n_full), (full, len(pairs), 1 if full < len(pairs) else 0)):
            if count == 0:
                continue
            bia = ia[lo:hi].reshape(count, -1)
            bjb = jb[lo:hi].reshape(count, -1)
            self._blocks.append((bia, bjb, self.s0[bia[:, :, None], bjb[:, None, :]]))
        # uniformity: Gram matrices of the subsample gap_report would draw
        self.sub_a = self.rows_a[_subsample_rows(len(self.rows_a), uniformity_rows, seed)]
        self.sub_b = self.rows_b[_subsample_rows(len(self.rows_b), uniformity_rows, seed)]
        self.gram_a = self.a64[self.sub_a] @ self.a64[self.sub_a].T
        self.gram_b = self.b64[self.sub_b] @ self.b64[self.sub_b].T
        self.notes: dict[str, str] = {}
        for side, sub, rows in (("a", self.sub_a, self.rows_a), ("b", self.sub_b, self.rows_b)):
            if len(sub) < len(rows):
                self.notes[f"uniformity_{side}"] = (f"seeded subsample of {len(sub)} of {len(rows)} items "
                                                    f"(seed {seed})")
        self.pca = pca
        if pca is not None:
            w = pca.components_
            self._pa, self._pb = self.a64 @ w.T, self.b64 @ w.T
            self._gw, self._mw = self.gap @ w.T, pca.mean_ @ w.T

    # -- one evaluation -------------------------------------------------------------------------------------------
    def _scales(self, delta: float) -> tuple[float, np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]:
        h = float(delta) / 2.0
        p, q, cc = h * self.u, h * self.v, h * h * self.gg
        norm_a2, norm_b2 = 1.0 - 2.0 * p + cc, 1.0 + 2.0 * q + cc
        for what, n2 in (("a", norm_a2), ("b", norm_b2)):
            gone = np.flatnonzero(~(n2 > _COLLAPSE_NORM**2))
            if len(gone):
                raise ValueError(f"GapShift(delta={delta}) maps {len(gone)} rows of {what} to (nearly) zero "
                                 f"(e.g. row {gone[0]}); they have no direction left to renormalise")
        return h, p, q, cc, 1.0 / np.sqrt(norm_a2), 1.0 / np.sqrt(norm_b2)

    def moved(self, delta: float) -> tuple[np.ndarray, np.ndarray]:
        """Every row of a and of b moved by GapShift(delta) (float64 unit rows)."""
        h, _, _, _, ra, rb = self._scales(delta)
        c = h * self.gap
        return (self.a64 - c) * ra[:, None], (self.b64 + c) * rb[:, None]

    def ranks(self, delta: float) -> tuple[np.ndarray, np.ndarray]:
        """Pessimistic ranks of the first relevant item: (paired a rows querying b, paired b rows querying a)."""
        _, p, q, cc, ra, rb = self._scales(delta)
        return self._ranks(p - cc, q, ra, rb)

    def _ranks(self, x: np.ndarray, q: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shifted_counts, _ = _kernels()
        ia, jb = self.paired.pairs[:, 0], self.paired.pairs[:, 1]
        # the relevant scores, with the kernel's arithmetic in its order (add, subtract, multiply, multiply: no
        # fused multiply-add can form), so they equal the kernel's values bit for bit
        scores = ((self.s0_pairs + x[ia]) - q[jb]) * ra[ia] * rb[jb]
        t_row = np.full(len(x), np.inf)  # rows in no pair are not queries: +inf is never reached
        t_row[self.rows_a] = np.maximum.reduceat(scores[self._order_a], self._starts_a)
        t_col = np.full(len(q), np.inf)
        t_col[self.rows_b] = np.maximum.reduceat(scores[self._order_b], self._starts_b)
        row_counts, col_counts = shifted_counts(self.s0, x, q, ra, rb, t_row, t_col)
        # ranks count irrelevant items only: remove the relevant ones that reached the threshold
        row_counts -= np.bincount(ia, weights=scores >= t_row[ia], minlength=len(x)).astype(np.int64)
        col_counts -= np.bincount(jb, weights=scores >= t_col[jb], minlength=len(q)).astype(np.int64)
        return 1 + row_counts[self.rows_a], 1 + col_counts[self.rows_b]

    def evaluate(self, delta: float) -> ShiftResult:
        """Metrics (``gap_report`` keys without the probe, R@K keys, ``clip_loss``) and coordinates at ``delta``."""
        _, uniformity_sum = _kernels()
        h, p, q, cc, ra, rb = self._scales(delta)
        x = p - cc
        c = h * self.gap
        ia, jb = self.paired.pairs[:, 0], self.paired.pairs[:, 1]
        ra_items, rb_items = ra[self.rows_a], rb[self.rows_b]
        sum_a, sum_b = self._item_sums(c, ra, rb)
        n_a, n_b = len(self.rows_a), len(self.rows_b)
        # squared norms of the moved items (1 up to rounding), as gap_report's einsum of the rows with themselves
        sq_a = float(np.sum(ra_items**2 * (1.0 - 2.0 * p[self.rows_a] + cc)))
        sq_b = float(np.sum(rb_items**2 * (1.0 + 2.0 * q[self.rows_b] + cc)))
        s_a = float((sum_a @ sum_a - sq_a) / (n_a * (n_a - 1)))
        s_b = float((sum_b @ sum_b - sq_b) / (n_b * (n_b - 1)))
        # matched cosines from the float64 pair dot products (exact; no cancellation in the distances)
        cos_pairs = ((self.s64_pairs + x[ia]) - q[jb]) * ra[ia] * rb[jb]
        m = float(cos_pairs.mean())
        sq_dist = np.maximum(2.0 - 2.0 * cos_pairs, 0.0)
        pair_dist = np.sqrt(sq_dist)
        g = sum_a / n_a - sum_b / n_b
        g2 = np.sort(g**2)[::-1]
        cumulative = np.cumsum(g2) / g2.sum() if g2.sum() > 0 else np.zeros_like(g2)
        n_pairs = len(ia)
        unmatched = n_a * n_b - n_pairs
        metrics: dict[str, float | None] = {
            "centroid_distance": float(np.linalg.norm(g)),
            "paired_distance": float(pair_dist.mean()),
            "relative_modality_gap": rmg_from_cosines(m, s_a, s_b),
            "alignment": float(sq_dist.mean()),
        }
        for side, gram, z, r in (("a", self.gram_a, -p[self.sub_a], ra[self.sub_a]),
                                 ("b", self.gram_b, q[self.sub_b], rb[self.sub_b])):
            n = len(gram)
            metrics[f"uniformity_{side}"] = float(np.log(uniformity_sum(gram, z, r, cc, 2.0) / (n * (n - 1) / 2)))
        metrics["mean_matched_cosine"] = m
        metrics["mean_unmatched_cosine"] = (
            float((sum_a @ sum_b - m * n_pairs) / unmatched) if unmatched else None
        )
        metrics["intra_cosine_a"], metrics["intra_cosine_b"] = s_a, s_b
        metrics["modality_probe_accuracy"] = None
        for k in (1, 5, 20):
            metrics[f"gap_top{k}_share"] = float(cumulative[min(k, len(cumulative)) - 1])
        ranks_a, ranks_b = self._ranks(x, q, ra, rb)
        for direction, ranks in (("a_to_b", ranks_a), ("b_to_a", ranks_b)):
            for k in self.ks:
                metrics[f"{direction}_R@{k}"] = float(np.mean(ranks <= k))
        metrics["clip_loss"] = self._loss(x, q, ra, rb)
        coords = None if self.pca is None else self._coords(h, ra, rb)
        return ShiftResult(metrics, coords, ranks_a, ranks_b)

    def _item_sums(self, c: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # per-modality sums of the moved items (each paired item once), without moving them: O(N D) matvecs
        ra_items, rb_items = ra[self.rows_a], rb[self.rows_b]
        return ra_items @ self._items_a - c * ra_items.sum(), rb_items @ self._items_b + c * rb_items.sum()

    def centroid_distance(self, delta: float) -> float:
        """``centroid_distance`` of the moved items (each paired item once) at ``delta``: O(N D)."""
        h, _, _, _, ra, rb = self._scales(delta)
        sum_a, sum_b = self._item_sums(h * self.gap, ra, rb)
        return float(np.linalg.norm(sum_a / len(self.rows_a) - sum_b / len(self.rows_b)))

    def clip_loss(self, delta: float) -> float:
        """The CLIP loss of the moved matched rows at ``delta`` (:func:`workbench.gap.clip_loss`, from S)."""
        _, p, q, cc, ra, rb = self._scales(delta)
        return self._loss(p - cc, q, ra, rb)

    def coords(self, delta: float) -> np.ndarray:
        """The moved points (a rows, then b rows) in the PCA frame: O(N), no metric computed."""
        if self.pca is None:
            raise ValueError("no PCA was given: pass pca=PCA2D().fit(...)")
        h, _, _, _, ra, rb = self._scales(delta)
        return self._coords(h, ra, rb)

    def _coords(self, h: float, ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
        # (x_moved - mean) @ W^T with x_moved = (a - h g) ra: linear, so from the projected originals
        return np.concatenate([ra[:, None] * (self._pa - h * self._gw) - self._mw,
                               rb[:, None] * (self._pb + h * self._gw) - self._mw])

    def _loss(self, x: np.ndarray, q: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> float:
        losses = []
        for bia, bjb, block in self._blocks:
            xa, ya = x[bia][:, :, None], ra[bia][:, :, None]
            qb, yb = q[bjb][:, None, :], rb[bjb][:, None, :]
            losses.append(symmetric_info_nce(self.logit_scale * (((block + xa) - qb) * ya * yb)))
        return float(np.mean(np.concatenate(losses)))


class ShiftResult:
    """One evaluation: ``metrics`` (dict), ``coords`` ((N_a + N_b) x 2 or None), per-query ``ranks_a``/``ranks_b``."""

    __slots__ = ("coords", "metrics", "ranks_a", "ranks_b")

    def __init__(self, metrics: dict[str, float | None], coords: np.ndarray | None, ranks_a: np.ndarray,
                 ranks_b: np.ndarray) -> None:
        self.metrics, self.coords, self.ranks_a, self.ranks_b = metrics, coords, ranks_a, ranks_b
