"""Gap metrics of many subsets of one paired set from one set of Gram matrices, in numpy or torch on any device.

:func:`workbench.compare.compare_correctors` needs every :func:`workbench.gap.gap_report` key on 1,000 half-samples
of the held-out pairs. Recomputing the report per half-sample costs an O(n^2 D) uniformity each time; here the
matrices are computed once (the kernel ``K_ij = exp(-t ||x_i - x_j||^2)`` of each modality, per-pair cosines and
distances) and each subset, a 0/1 selection ``w`` of the pairs, reads its values off them:

- sums ``w @ X`` give the centroids, the gap vector and its top-k shares, the within-modality mean cosine
  ``(||sum x||^2 - sum ||x||^2) / (N (N - 1))`` and the unmatched mean cosine;
- ``sum_{i<j in w} K_ij = (w^T K w - sum_i w_i K_ii) / 2`` gives the uniformity (Wang & Isola, ICML 2020);
- the pair terms (matched cosine, paired distance, alignment) are weighted means of per-pair values.

The formulas are the report's own (see :mod:`workbench.gap`); only the order of float64 summation differs, so the
values agree with a fresh :func:`~workbench.gap.gap_report` of the subset to about 1e-12 (tested against it). The
items of a subset are those its pairs reference, as ``PairedEmbeddings.subset`` keeps them. ``device=None`` runs in
numpy; a device (``"cpu"``, ``"cuda"``, a ``torch.device``) runs the same formulas in torch float64 there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MAX_GRAM_ITEMS", "SubsetGap", "gap_terms", "landscape_rows", "torch_device"]

#: Above this many items of one modality the n x n kernels are not built (callers fall back to per-subset reports).
MAX_GRAM_ITEMS = 5000
_ROWS = 256  # subsets evaluated at a time: memory (rows x items) whatever the number of subsets


def torch_device(device: Any) -> Any:
    """``device`` as a ``torch.device`` (None stays None: the numpy path); a clear error for anything else.

    Examples
    --------
    >>> torch_device(None) is None, str(torch_device("cpu"))
    (True, 'cpu')
    """
    if device is None:
        return None
    import torch

    if isinstance(device, torch.device):
        chosen = device
    elif isinstance(device, str):
        try:
            chosen = torch.device(device)
        except RuntimeError as exc:
            raise ValueError(f"device must be None (numpy), 'cpu', 'cuda' or a torch.device, got {device!r}") from exc
    else:
        raise TypeError(f"device must be None (numpy), a string such as 'cuda' or a torch.device, got "
                        f"{type(device).__name__}")
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch.cuda.is_available() is False; use device=None or 'cpu'")
    return chosen


class SubsetGap:
    """The gap-report terms of subsets of one paired set, from Gram matrices computed once.

    Parameters
    ----------
    items_a, items_b : (n_a x D), (n_b x D) float64 unit rows
        Each paired item once (as :func:`workbench.gap.paired_items` returns them).
    pairs : (P x 2) int array of (row of items_a, row of items_b)
    t : float
        The uniformity temperature (2, as ``gap_report``).
    device : None, str or torch.device
        None: numpy; otherwise torch float64 on that device.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.eye(3)
    >>> engine = SubsetGap(x, x[[1, 2, 0]], np.array([[0, 0], [1, 1], [2, 2]]))
    >>> terms = engine.terms(np.array([[True, True, False], [True, True, True]]))
    >>> terms["mean_matched_cosine"].tolist(), terms["intra_cosine_a"].tolist()
    ([0.0, 0.0], [0.0, 0.0])
    """

    def __init__(self, items_a: np.ndarray, items_b: np.ndarray, pairs: np.ndarray, *, t: float = 2.0,
                 device: Any = None) -> None:
        if max(len(items_a), len(items_b)) > MAX_GRAM_ITEMS:
            raise ValueError(f"SubsetGap builds n x n kernels: at most {MAX_GRAM_ITEMS} items per modality, got "
                             f"{len(items_a)} and {len(items_b)}")
        self.device = torch_device(device)
        self.pairs = np.asarray(pairs, dtype=np.int64)
        self.n_a, self.n_b = len(items_a), len(items_b)
        xa, xb = self._array(items_a), self._array(items_b)
        ma, mb = xa[self._array(self.pairs[:, 0])], xb[self._array(self.pairs[:, 1])]
        diff = ma - mb
        self.cos = (ma * mb).sum(1)
        self.dist = (diff * diff).sum(1) ** 0.5
        self.xa, self.xb = xa, xb
        self.sq_a, self.sq_b = (xa * xa).sum(1), (xb * xb).sum(1)
        self.kernel_a, self.kernel_b = self._kernel(xa, t), self._kernel(xb, t)

    # numpy or torch, one spelling
    def _array(self, x: np.ndarray) -> Any:
        if self.device is None:
            return np.asarray(x)
        import torch

        values = torch.from_numpy(np.ascontiguousarray(x))
        return values.to(self.device, torch.float64 if values.is_floating_point() or values.dtype == torch.bool
                         else values.dtype)

    def _kernel(self, x: Any, t: float) -> Any:
        gram = x @ x.T
        sq = 2.0 - 2.0 * gram
        sq = np.maximum(sq, 0.0) if self.device is None else sq.clamp(min=0.0)
        return (-t * sq).exp() if self.device is not None else np.exp(-t * sq)

    def _numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x) if self.device is None else x.detach().cpu().numpy()

    def item_masks(self, pair_masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The items each subset references: ``(R x n_a, R x n_b)`` 0/1 float64 from ``(R x P)`` pair masks."""
        identity = np.arange(len(self.pairs))
        if self.n_a == self.n_b == len(self.pairs) and (self.pairs == identity[:, None]).all():  # row-paired
            selected = np.asarray(pair_masks, dtype=np.float64)
            return selected, selected
        from scipy.sparse import csr_matrix

        w = csr_matrix(np.asarray(pair_masks, dtype=np.float64))
        ones = np.ones(len(self.pairs))
        inc_a = csr_matrix((ones, (np.arange(len(self.pairs)), self.pairs[:, 0])), shape=(len(self.pairs), self.n_a))
        inc_b = csr_matrix((ones, (np.arange(len(self.pairs)), self.pairs[:, 1])), shape=(len(self.pairs), self.n_b))
        return ((w @ inc_a).toarray() > 0).astype(np.float64), ((w @ inc_b).toarray() > 0).astype(np.float64)

    def terms(self, pair_masks: np.ndarray, shares: tuple[int, ...] = (1, 5, 20)) -> dict[str, np.ndarray]:
        """Every ``gap_report`` term but the probe and the relative gap, one value per subset (row of the mask).

        Returns float64 arrays of length R: ``centroid_distance``, ``paired_distance``, ``alignment``,
        ``uniformity_a``, ``uniformity_b``, ``mean_matched_cosine``, ``mean_unmatched_cosine`` (NaN where every
        (a, b) combination is a pair), ``intra_cosine_a``, ``intra_cosine_b`` and ``gap_top{k}_share``. The relative
        gap is ``workbench.gap.rmg_from_cosines`` of the matched and the two within-modality cosines.
        """
        masks = np.asarray(pair_masks, dtype=bool)
        if masks.ndim != 2 or masks.shape[1] != len(self.pairs):
            raise ValueError(f"pair_masks must be (subsets x {len(self.pairs)}), got shape {masks.shape}")
        parts = [self._terms(masks[s : s + _ROWS], shares) for s in range(0, len(masks), _ROWS)]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def _terms(self, masks: np.ndarray, shares: tuple[int, ...]) -> dict[str, np.ndarray]:
        mask_a, mask_b = self.item_masks(masks)
        wp, wa, wb = self._array(masks.astype(np.float64)), self._array(mask_a), self._array(mask_b)
        n_p, n_a, n_b = wp.sum(1), wa.sum(1), wb.sum(1)
        m = (wp @ self.cos) / n_p
        sum_a, sum_b = wa @ self.xa, wb @ self.xb
        gap = sum_a / n_a[:, None] - sum_b / n_b[:, None]
        out = {
            "centroid_distance": (gap * gap).sum(1) ** 0.5,
            "paired_distance": (wp @ self.dist) / n_p,
            "alignment": (wp @ (self.dist * self.dist)) / n_p,
        }
        for side, w, n, kernel in (("a", wa, n_a, self.kernel_a), ("b", wb, n_b, self.kernel_b)):
            diagonal = kernel.diagonal() if self.device is not None else np.diagonal(kernel)
            # for t = 2 every kernel value is >= exp(-8): the sum cannot underflow (gap_report's fallback never runs)
            total = (((w @ kernel) * w).sum(1) - w @ diagonal) / 2.0
            out[f"uniformity_{side}"] = (total / (n * (n - 1) / 2.0)).log() if self.device is not None else np.log(
                total / (n * (n - 1) / 2.0))
        out["mean_matched_cosine"] = m
        unmatched = n_a * n_b - n_p
        out["mean_unmatched_cosine"] = ((sum_a * sum_b).sum(1) - m * n_p) / unmatched
        for side, s, w, n, sq in (("a", sum_a, wa, n_a, self.sq_a), ("b", sum_b, wb, n_b, self.sq_b)):
            out[f"intra_cosine_{side}"] = ((s * s).sum(1) - w @ sq) / (n * (n - 1))
        result = {key: self._numpy(value).astype(np.float64) for key, value in out.items()}
        result["mean_unmatched_cosine"][self._numpy(unmatched) == 0] = np.nan
        g2 = -np.sort(-self._numpy(gap * gap), axis=1)  # squared gap coordinates, largest first
        total2 = g2.sum(1, keepdims=True)
        cumulative = np.divide(np.cumsum(g2, axis=1), total2, out=np.zeros_like(g2), where=total2 > 0)
        for k in shares:
            result[f"gap_top{k}_share"] = cumulative[:, min(k, g2.shape[1]) - 1]
        return result


def gap_terms(ma: np.ndarray, mb: np.ndarray, items_a: np.ndarray, items_b: np.ndarray, sample_a: np.ndarray,
              sample_b: np.ndarray, device: Any, t: float = 2.0) -> dict[str, Any]:
    """``gap_report``'s sums in torch float64 on ``device``: the same formulas as the numpy path, one pass each.

    ``ma``, ``mb``: matched rows (one per pair); ``items_*``: each paired item once; ``sample_*``: the rows the
    uniformity reads (a seeded subsample above ``max_rows``). Returns ``matched_cosine``, ``intra_a``, ``intra_b``
    (mean cosines), ``paired_distance``, ``alignment``, ``gap`` (the gap vector, numpy), ``cross_sum``
    (``sum a . sum b``) and ``uniformity_a`` / ``_b`` (None where the kernel sum underflows: the caller's exact
    log-sum-exp then takes over).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.eye(2)
    >>> terms = gap_terms(x, x, x, x, x, x, "cpu")
    >>> terms["matched_cosine"], terms["intra_a"], round(terms["uniformity_a"], 6)   # log(exp(-2 * 2))
    (1.0, 0.0, -4.0)
    """
    import torch

    chosen = torch_device(device)

    def on(x: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to(chosen)

    a, b = on(ma), on(mb)
    ia, ib = on(items_a), on(items_b)
    diff = a - b
    dist = torch.linalg.vector_norm(diff, dim=1)
    out: dict[str, Any] = {
        "matched_cosine": float((a * b).sum(1).mean()),
        "paired_distance": float(dist.mean()),
        "alignment": float((dist * dist).mean()),
        "gap": (ia.mean(0) - ib.mean(0)).cpu().numpy(),
        "cross_sum": float(ia.sum(0) @ ib.sum(0)),
    }
    for side, x in (("a", ia), ("b", ib)):
        s = x.sum(0)
        out[f"intra_{side}"] = float((s @ s - (x * x).sum()) / (len(x) * (len(x) - 1))) if len(x) > 1 else None
    for side, sample in (("a", sample_a), ("b", sample_b)):
        x = on(sample)
        total = torch.zeros((), dtype=torch.float64, device=chosen)
        for s in range(0, len(x), 1024):
            sq = (2.0 - 2.0 * (x[s : s + 1024] @ x[s:].T)).clamp(min=0.0)
            kernel = (-t * sq).exp()
            e = min(len(x), s + 1024)
            total += kernel[:, : e - s].triu(diagonal=1).sum() + kernel[:, e - s :].sum()
        count = len(x) * (len(x) - 1) / 2
        value = float(total)
        out[f"uniformity_{side}"] = float(np.log(value / count)) if value >= 1e-280 else None
    return out


def landscape_rows(ma: np.ndarray, mb: np.ndarray, deltas: list[float], logit_scale: float, batch_size: int,
                   device: Any) -> list[dict[str, float]]:
    """``gap_loss_landscape``'s rows in torch float64 on ``device``: for each delta the rows are shifted by
    ``GapShift(delta)`` fitted on them (``a - delta g / 2``, ``b + delta g / 2``, renormalised), then the centroid
    distance, the CLIP loss over consecutive batches and R@1 both ways (pessimistic ties: rank 1 only when no
    other item scores at least as high) are computed from scratch.

    Examples
    --------
    >>> import numpy as np
    >>> rows = landscape_rows(np.eye(2), np.eye(2)[::-1].copy(), [0.0], 1.0, 2, "cpu")
    >>> rows[0]["r1_a_to_b"], round(rows[0]["centroid_distance"], 6)
    (0.0, 0.0)
    """
    import torch

    chosen = torch_device(device)
    a = torch.from_numpy(np.ascontiguousarray(ma, dtype=np.float64)).to(chosen)
    b = torch.from_numpy(np.ascontiguousarray(mb, dtype=np.float64)).to(chosen)
    gap = a.mean(0) - b.mean(0)
    n = len(a)
    target = torch.arange(n, device=chosen)
    rows = []
    for delta in deltas:
        a2, b2 = a - delta * gap / 2, b + delta * gap / 2
        a2 = a2 / torch.linalg.vector_norm(a2, dim=1, keepdim=True)
        b2 = b2 / torch.linalg.vector_norm(b2, dim=1, keepdim=True)
        losses = []
        for s in range(0, n, batch_size):
            logits = logit_scale * (a2[s : s + batch_size] @ b2[s : s + batch_size].T)
            t = target[: len(logits)]
            losses.append((torch.nn.functional.cross_entropy(logits, t) +
                           torch.nn.functional.cross_entropy(logits.T, t)) / 2)
        beaten_ab = torch.zeros(n, dtype=torch.int64, device=chosen)
        beaten_ba = torch.zeros(n, dtype=torch.int64, device=chosen)
        # the matched scores are read off the same blocks they are compared in (a separate dot product rounds apart)
        matched = torch.cat([(a2[s : s + 4096] @ b2.T).diagonal(offset=s) for s in range(0, n, 4096)])
        for s in range(0, n, 4096):
            block = a2[s : s + 4096] @ b2.T  # rows: a queries; columns: b queries
            beaten_ab[s : s + 4096] = (block >= matched[s : s + 4096, None]).sum(1) - 1
            beaten_ba += (block >= matched[None, :]).sum(0)
        beaten_ba -= 1
        rows.append({
            "delta": float(delta),
            "centroid_distance": float(torch.linalg.vector_norm(a2.mean(0) - b2.mean(0))),
            "loss": float(torch.stack(losses).mean()),
            "r1_a_to_b": float((beaten_ab == 0).double().mean()),
            "r1_b_to_a": float((beaten_ba == 0).double().mean()),
        })
    return rows
