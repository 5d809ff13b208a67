"""Gap correctors: post-hoc maps, fitted on paired embeddings, that move two modalities closer in a shared space.

A corrector is a scikit-learn style estimator over a *pair* of modalities. ``fit(a, b)`` learns from row-paired
training embeddings (row i of ``a`` belongs with row i of ``b``, or one :class:`~workbench.data.PairedEmbeddings`,
whose :meth:`~workbench.data.PairedEmbeddings.matched` rows are used); ``transform(a, b)`` applies the learned map
to any embeddings of the two modalities -- held-out ones too, and galleries of different sizes -- and returns
L2-normalised float32 rows ``(a2, b2)``. Inputs are converted to float64 and L2-normalised first; learned
attributes end in ``_``; ``get_params``, ``set_params`` and :func:`sklearn.base.clone` work as for any estimator.

- :class:`GapShift` -- translate both modalities along the gap vector ``mean(a) - mean(b)`` (Liang et al.,
  "Mind the Gap: Understanding the Modality Gap in Multi-modal Contrastive Representation Learning", NeurIPS 2022).
- :class:`MeanCenter` -- subtract each modality's own mean and renormalise (the "collapse" step of Zhang et al.,
  "Connect, Collapse, Corrupt: Learning Cross-Modal Tasks with Uni-Modal Data", ICLR 2024; also the post-hoc step
  of An et al., "I0T: Embedding Standardization Method Towards Zero Modality Gap", ACL 2025).
- :class:`Standardize` -- per-modality, per-dimension z-scoring: a standard baseline (not I0T, whose post-hoc step
  divides by no standard deviation).
- :class:`Procrustes` -- the orthogonal map of ``b`` onto ``a`` that fits the training pairs best
  (Schönemann, "A generalized solution of the orthogonal Procrustes problem", Psychometrika 1966).
- :class:`LinearAdapter` -- one linear map per modality trained with the symmetric InfoNCE (CLIP) loss
  (Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021).
- :class:`ProjectOutGap` -- remove every vector's component along the unit gap direction.
- :class:`AblateGapDimensions` -- zero the few coordinates that carry most of the gap (Schrodi et al., "Two
  Effects, One Trigger: On the Modality Gap, Object Bias, and Information Imbalance in Contrastive
  Vision-Language Models", ICLR 2025).

Beside them, the module :mod:`workbench.correct.rerankers` holds three hubness-reducing re-rankers that change the
query-gallery *scores* rather than the embeddings, from reference banks of training embeddings (base class
``ReRanker``: ``fit(a, b)`` then ``scores(queries, gallery, query_modality="a")``; they are not in
:data:`ALL_CORRECTORS`, which holds the embedding maps):

- ``NNN`` -- Nearest Neighbor Normalization (Chowdhury et al., EMNLP 2024).
- ``QBNorm`` -- querybank normalisation, dynamic inverted softmax (Bogolin et al., CVPR 2022).
- ``DBNorm`` -- dual query- and gallery-bank normalisation (Wang et al., EMNLP 2023).

:func:`workbench.compare.compare_correctors` evaluates both kinds on held-out pairs (a re-ranker's banks hold
training items only).

The package holds the shared base class and input checks (``_base``), the maps built from each modality's own
statistics, blind to the pairing (``_moments``: GapShift, MeanCenter, Standardize, ProjectOutGap,
AblateGapDimensions), and the maps learned from the pairs (``_paired``: Procrustes, LinearAdapter).

Only :class:`GapShift` has a strength parameter (``delta``); the others are applied as fitted. Bad input (rows
that do not pair up, mismatched dimensions, NaN or inf, zero-norm rows, fewer than two training pairs, a
dimension other than the fitted one) raises a ``ValueError`` naming the problem.

Examples
--------
>>> import numpy as np
>>> from workbench import gap
>>> from workbench.correct import MeanCenter
>>> rng = np.random.default_rng(0)
>>> a, b = rng.normal(size=(50, 8)) + 3, rng.normal(size=(50, 8)) - 3
>>> round(gap.centroid_distance(a, b), 2)
1.91
>>> a2, b2 = MeanCenter().fit_transform(a, b)
>>> round(gap.centroid_distance(a2, b2), 2), a2.dtype
(0.07, dtype('float32'))
"""

from __future__ import annotations

from workbench.correct._base import _Corrector
from workbench.correct._moments import AblateGapDimensions, GapShift, MeanCenter, ProjectOutGap, Standardize
from workbench.correct._paired import LinearAdapter, Procrustes

__all__ = [
    "ALL_CORRECTORS",
    "AblateGapDimensions",
    "GapShift",
    "LinearAdapter",
    "MeanCenter",
    "Procrustes",
    "ProjectOutGap",
    "Standardize",
]

#: Every corrector class, in the order of the module documentation.
ALL_CORRECTORS: tuple[type[_Corrector], ...] = (
    GapShift,
    MeanCenter,
    Standardize,
    Procrustes,
    LinearAdapter,
    ProjectOutGap,
    AblateGapDimensions,
)
