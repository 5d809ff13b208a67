"""Representational similarity of two embedding sets of the same items, calibrated against a permutation null.

Two models, two modalities, two checkpoints or two layers embed the same n items; how alike are the two
geometries? :func:`mutual_knn`, :func:`cka` (biased or unbiased) and :func:`cknna` answer with one number each
(Huh et al., "The Platonic Representation Hypothesis", ICML 2024); :func:`neighbourhood_agreement` gives the
per-item answer that an embedding map can be coloured by ("where do these two models agree?").

Raw scores are not comparable across settings: their value for two *unrelated* sets depends on n, k and the
dimensions (mutual kNN of independent sets is about ``k / (n - 1)``; biased CKA grows with width). :func:`calibrated`
measures that baseline with a permutation null -- b's rows shuffled so item i meets another item's embedding -- and
reports the calibrated score (0 under the null at level alpha), the raw score, the permutation p-value and an
interval (Gröger, Wen, Brbić, "Revisiting the Platonic Representation Hypothesis: An Aristotelian View", ICML 2026;
the ``calibrated-similarity`` package). :func:`similarity_matrix` does this for every pair of several encoders of one
item pool.

Modules: ``_metrics`` (the metrics and the neighbour structures their nulls reuse) and ``_calibrate`` (the null, the
interval, the matrix).
"""

from __future__ import annotations

from workbench.similarity._calibrate import (
    METRICS,
    CalibratedScore,
    SimilarityMatrix,
    calibrated,
    similarity_matrix,
)
from workbench.similarity._metrics import cka, cknna, mutual_knn, neighbourhood_agreement

__all__ = [
    "METRICS",
    "CalibratedScore",
    "SimilarityMatrix",
    "calibrated",
    "cka",
    "cknna",
    "mutual_knn",
    "neighbourhood_agreement",
    "similarity_matrix",
]
