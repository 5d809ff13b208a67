"""Modality-gap metrics (numpy only; sums accumulate in float64).

Functions take either two row-paired arrays ``(a, b)`` of shape (N x D) or one
:class:`~workbench.data.PairedEmbeddings`. With a ``PairedEmbeddings``, per-modality terms (centroids,
within-modality cosines, uniformity) use each paired item once -- with five captions per image an image does not
weigh five times in its centroid -- while paired terms (matched cosine, paired distance, alignment) use every pair.
Array inputs are L2-normalised first.

The package has four parts: the metrics (``_metrics``), cross-modal hubness (``_hubness``: k-occurrence skewness,
hubs and anti-hubs; optional keys of :func:`gap_report`), the gap-shift engine :class:`ShiftedGap` that evaluates
``GapShift(delta)`` for many deltas from one similarity matrix (``_shift``, used by the GapExplorer panel), and the
CLIP loss with the loss landscape over a shift (``_landscape``). Beside them: what the gap changes
(:func:`consequences`, :func:`consequences_trace`: clustering, stability, mixed-collection and intra-modal search;
``_consequences``), where it sits (:func:`gap_decomposition`, :func:`conformity`; ``_decomposition``) and the gap
between every two modalities of one item pool (:func:`gap_matrix`; ``_nmodal``).

:func:`gap_report` gathers every metric; the others compute one each. Sources:

- Liang, Zhang, Kwon, Yeung, Zou. *Mind the Gap: Understanding the Modality Gap in Multi-modal Contrastive
  Representation Learning.* NeurIPS 2022 (centroid distance, the cone effect, the loss landscape over a shift).
- Schrodi, Hoffmann, Argus, Fischer, Brox. *Two Effects, One Trigger: On the Modality Gap, Object Bias, and
  Information Imbalance in Contrastive Vision-Language Models.* ICLR 2025 (L2I paired distance, relative modality
  gap, the few dimensions that carry the gap).
- Radovanović, Nanopoulos, Ivanović. *Hubs in Space: Popular Nearest Neighbors in High-Dimensional Data.* JMLR
  2010 (k-occurrence skewness, hubs, anti-hubs).
- Wang, Isola. *Understanding Contrastive Representation Learning through Alignment and Uniformity on the
  Hypersphere.* ICML 2020 (alignment, uniformity).
"""

from __future__ import annotations

from workbench.gap._consequences import clustering_scores, consequences, consequences_trace
from workbench.gap._decomposition import conformity, conformity_frame, gap_decomposition
from workbench.gap._hubness import hubness, k_occurrence
from workbench.gap._landscape import (
    DEFAULT_DELTAS,
    clip_loss,
    core_metrics,
    gap_loss_landscape,
)
from workbench.gap._metrics import (
    MAX_EXACT_ROWS,
    GapReport,
    alignment,
    centroid_distance,
    cosine_histograms,
    gap_dimensions,
    gap_report,
    gap_shares,
    gap_vector,
    intra_modality_cosine,
    mean_matched_cosine,
    mean_unmatched_cosine,
    paired_distance,
    paired_items,
    relative_modality_gap,
    rmg_from_cosines,
    uniformity,
)
from workbench.gap._mixed import ndcg_at_k
from workbench.gap._nmodal import gap_matrix
from workbench.gap._shift import (
    ShiftedGap,
    ShiftResult,
    recall_keys,
)

__all__ = [
    "DEFAULT_DELTAS",
    "MAX_EXACT_ROWS",
    "GapReport",
    "ShiftResult",
    "ShiftedGap",
    "alignment",
    "centroid_distance",
    "clip_loss",
    "clustering_scores",
    "conformity",
    "conformity_frame",
    "consequences",
    "consequences_trace",
    "core_metrics",
    "cosine_histograms",
    "gap_decomposition",
    "gap_dimensions",
    "gap_loss_landscape",
    "gap_matrix",
    "gap_report",
    "gap_shares",
    "gap_vector",
    "hubness",
    "intra_modality_cosine",
    "k_occurrence",
    "mean_matched_cosine",
    "mean_unmatched_cosine",
    "ndcg_at_k",
    "paired_distance",
    "paired_items",
    "recall_keys",
    "relative_modality_gap",
    "rmg_from_cosines",
    "uniformity",
]
