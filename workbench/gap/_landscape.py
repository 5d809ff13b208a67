"""The CLIP loss and the loss landscape over a gap shift (Liang et al., NeurIPS 2022, Fig. 3).

:func:`clip_loss` computes the symmetric InfoNCE loss over consecutive batches of pairs; :func:`gap_loss_landscape`
evaluates it, the centroid distance and R@1 along ``GapShift(delta)`` through the shift engine
(:class:`~workbench.gap.ShiftedGap`: one similarity matrix, a rank-one update per delta); :func:`core_metrics`
evaluates any moved rows from scratch through the core (the reference the engine is checked against).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from workbench._contrastive import symmetric_info_nce
from workbench._params import check_int, check_ints, check_number
from workbench.data import PairedEmbeddings
from workbench.gap._metrics import _views, gap_report
from workbench.gap._shift import ShiftedGap, ShiftResult
from workbench.retrieval import per_query_ranks

__all__ = ["DEFAULT_DELTAS", "clip_loss", "core_metrics", "gap_loss_landscape"]

#: Shifts of :func:`gap_loss_landscape`: -1 (twice the gap) to 1 (closed) in steps of 0.1.
DEFAULT_DELTAS = tuple(float(d) for d in np.round(np.linspace(-1.0, 1.0, 21), 10))


def clip_loss(a: Any, b: Any | None = None, *, logit_scale: float = 100.0, batch_size: int = 50) -> float:
    """The symmetric InfoNCE (CLIP) loss, averaged over consecutive batches of pairs.

    For each batch of ``batch_size`` consecutive pairs, logits ``logit_scale * a @ b.T``; the loss is the mean of
    the cross-entropy of each a row against its b row and of each b row against its a row (Radford et al. 2021; as
    ``open_clip.ClipLoss``). The result is the unweighted mean over batches (the last batch may be smaller), as in
    Liang et al.'s loss-landscape experiment (batch 50, logit scale 100).

    Examples
    --------
    >>> import numpy as np
    >>> round(clip_loss(np.eye(4), np.eye(4), logit_scale=1.0, batch_size=4), 4)   # -log(e / (e + 3))
    0.7437
    """
    v = _views(a, b, min_pairs=1)
    batch_size = check_int(batch_size, "batch_size")
    logit_scale = check_number(logit_scale, "logit_scale")
    losses = [
        symmetric_info_nce(logit_scale * (v.ma[s : s + batch_size] @ v.mb[s : s + batch_size].T))
        for s in range(0, len(v.ma), batch_size)
    ]
    return float(np.mean(losses))


def gap_loss_landscape(
    a: Any,
    b: Any | None = None,
    *,
    deltas: Sequence[float] | np.ndarray = DEFAULT_DELTAS,
    logit_scale: float = 100.0,
    batch_size: int = 50,
    device: Any = None,
) -> pl.DataFrame:
    """The CLIP loss and R@1 as the modalities are shifted along the gap (Liang et al. 2022, Fig. 3).

    For each delta, both modalities move by ``GapShift(delta)`` (fitted on the data itself): delta 0 is the model's
    own embedding, 1 closes the gap, negative values widen it. Liang et al. find the loss lowest near the
    unshifted gap. The matched rows (one per pair) are shifted, as row-paired data; every delta is evaluated by
    :class:`~workbench.gap.ShiftedGap` from one similarity matrix, equal to shifting and recomputing up to float32
    rounding.

    With ``device`` (``"cpu"``, ``"cuda"`` or a ``torch.device``) each delta is shifted and evaluated from scratch in
    torch float64 there (``workbench._gram.landscape_rows``), equal to the engine up to its float32 rounding.

    Returns
    -------
    polars.DataFrame
        ``delta``, ``centroid_distance``, ``loss``, ``r1_a_to_b`` and ``r1_b_to_a`` (1:1 ranks over matched rows).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(40, 8)) + 1, rng.normal(size=(40, 8)) - 1
    >>> frame = gap_loss_landscape(a, b, deltas=[0.0, 1.0], batch_size=20)
    >>> frame.columns
    ['delta', 'centroid_distance', 'loss', 'r1_a_to_b', 'r1_b_to_a']
    >>> [round(d, 3) for d in frame["centroid_distance"]]   # renormalisation keeps a little of the gap
    [1.406, 0.124]
    """
    deltas = [check_number(delta, "deltas") for delta in np.ravel(np.asarray(deltas, dtype=object))]
    v = _views(a, b, min_pairs=2)
    if device is not None:
        from workbench._gram import landscape_rows

        batch_size, logit_scale = check_int(batch_size, "batch_size"), check_number(logit_scale, "logit_scale")
        return pl.DataFrame(landscape_rows(v.ma, v.mb, [float(d) for d in deltas], logit_scale, batch_size, device))
    # uniformity is not read here: the smallest subsample keeps the engine from building Gram matrices for it
    shifted = ShiftedGap(PairedEmbeddings.from_arrays(v.ma, v.mb), ks=(1,), uniformity_rows=2,
                         logit_scale=logit_scale, batch_size=batch_size)
    rows = []
    for delta in deltas:
        ranks_ab, ranks_ba = shifted.ranks(float(delta))
        rows.append({
            "delta": float(delta),
            "centroid_distance": shifted.centroid_distance(float(delta)),
            "loss": shifted.clip_loss(float(delta)),
            "r1_a_to_b": float(np.mean(ranks_ab == 1)),
            "r1_b_to_a": float(np.mean(ranks_ba == 1)),
        })
    return pl.DataFrame(rows)


def core_metrics(
    paired: PairedEmbeddings,
    a2: np.ndarray,
    b2: np.ndarray,
    *,
    ks: Sequence[int] = (1, 5, 10),
    uniformity_rows: int = 1000,
    seed: int = 0,
    pca: Any = None,
) -> ShiftResult:
    """The same result from scratch for moved rows ``a2``, ``b2`` (any corrector), through the analysis core.

    :func:`~workbench.gap.gap_report` (``probe=False``, ``max_rows=uniformity_rows``),
    :func:`workbench.retrieval.per_query_ranks` for the paired items of each side against all items of the other,
    :func:`~workbench.gap.clip_loss`, and the PCA's coordinates when the moved rows keep the PCA's dimension (else
    ``coords`` is None).
    """
    ks = check_ints(ks, "ks")
    uniformity_rows = check_int(uniformity_rows, "uniformity_rows", low=2)
    for name, moved_rows, side in (("a2", a2, paired.a), ("b2", b2, paired.b)):
        if len(moved_rows) != len(side):
            raise ValueError(f"{name} must have the {len(side)} rows of paired.{name[0]} (the moved rows, in order), "
                             f"got {len(moved_rows)}")
    moved = PairedEmbeddings.from_arrays(a2, b2, modalities=paired.modalities, pairs=paired.pairs)
    metrics: dict[str, float | None] = dict(gap_report(moved, probe=False, max_rows=uniformity_rows, seed=seed))
    rows_a, rows_b = paired.paired_rows()
    pairs = paired.pairs
    rel_a = np.stack([np.searchsorted(rows_a, pairs[:, 0]), pairs[:, 1]], axis=1)
    rel_b = np.stack([np.searchsorted(rows_b, pairs[:, 1]), pairs[:, 0]], axis=1)
    ranks_a = per_query_ranks(moved.a.vectors[rows_a], moved.b.vectors, rel_a).ranks
    ranks_b = per_query_ranks(moved.b.vectors[rows_b], moved.a.vectors, rel_b).ranks
    for direction, ranks in (("a_to_b", ranks_a), ("b_to_a", ranks_b)):
        for k in ks:
            metrics[f"{direction}_R@{k}"] = float(np.mean(ranks <= k))
    metrics["clip_loss"] = clip_loss(moved)
    coords = None
    if pca is not None and moved.dim == pca.components_.shape[1]:
        coords = pca.transform(np.concatenate([moved.a.vectors, moved.b.vectors]))
    return ShiftResult(metrics, coords, ranks_a, ranks_b)
