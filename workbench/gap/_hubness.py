"""Hubness of cross-modal neighbourhoods: how unevenly the items of one modality appear among the nearest
neighbours of the other's.

In high dimensions a few items ("hubs") are among the k nearest neighbours of very many queries and many others
("anti-hubs") of none (Radovanović, Nanopoulos, Ivanović, "Hubs in Space: Popular Nearest Neighbors in
High-Dimensional Data", JMLR 2010). Across a modality gap this is worse: the gallery items nearest the other
modality's centroid answer almost every query. The measures follow scikit-hubness (``skhubness.analysis.Hubness``):
the k-occurrence ``N_k(g)`` (how many queries list gallery item g among their k nearest), its skewness, hubs
(``N_k >= hub_size * k``), anti-hubs (``N_k = 0``), and the share of all neighbour slots that hubs take.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench._params import check_int, check_number
from workbench._validation import check_spread, unit_rows64
from workbench.data import modality_matrices

__all__ = ["hubness", "k_occurrence"]

_BLOCK = 1024


def _sides(a: Any, b: Any | None) -> tuple[np.ndarray, np.ndarray]:
    ma, mb = modality_matrices(a, b)  # a PairedEmbeddings gives every item of each modality once
    ua, ub = unit_rows64(ma, "a"), unit_rows64(mb, "b")
    check_spread(ua, "a")  # equal rows: every neighbour a tie, the counts set by row order
    check_spread(ub, "b")
    return ua, ub


def k_occurrence(queries: Any, gallery: Any, k: int = 10) -> np.ndarray:
    """How often each gallery item is among the k nearest (by cosine) of the queries: ``N_k``, shape (G,).

    ``N_k(g) = #{q : g in kNN(q)}``; the counts sum to ``k * len(queries)``. Ties at the k-th place are broken by
    ``numpy.argpartition``.

    Examples
    --------
    >>> import numpy as np
    >>> gallery = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> queries = np.array([[0.9, 0.1], [0.8, 0.3], [0.2, 0.9]])
    >>> k_occurrence(queries, gallery, k=1).tolist()
    [2, 1, 0]
    """
    q, g = _sides(queries, gallery)
    k = check_int(k, "k", high=len(g))
    counts = np.zeros(len(g), dtype=np.int64)
    for s in range(0, len(q), _BLOCK):
        scores = q[s:s + _BLOCK] @ g.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < len(g) else np.tile(np.arange(len(g)),
                                                                                         (len(scores), 1))
        counts += np.bincount(top.ravel(), minlength=len(g))
    return counts


def _measures(counts: np.ndarray, k: int, n_queries: int, hub_size: float) -> dict[str, float | int]:
    from scipy.stats import skew

    hubs = counts >= hub_size * k
    return {
        "k_skewness": float(skew(counts)) if counts.std() > 0 else 0.0,
        "hubs": int(hubs.sum()),
        "hub_occurrence": float(counts[hubs].sum() / (k * n_queries)),
        "antihubs": int(np.sum(counts == 0)),
        "antihub_occurrence": float(np.mean(counts == 0)),
        "robinhood": float(0.5 * np.abs(counts - counts.mean()).sum() / counts.sum()),
    }


def hubness(a: Any, b: Any | None = None, *, k: int = 10, hub_size: float = 2.0) -> dict[str, float | int]:
    """Cross-modal hubness both ways: k-occurrence skewness, hubs and anti-hubs (Radovanović et al., JMLR 2010).

    For each direction the queries of one modality find their k nearest items of the other (cosine), and the
    k-occurrence ``N_k`` of every item of the other modality is counted (:func:`k_occurrence`). Reported, as
    scikit-hubness reports them:

    - ``k_skewness``: the skewness ``E[(N_k - mu)^3] / sigma^3`` of the k-occurrence (``scipy.stats.skew``; 0 for
      perfectly even neighbourhoods, well above 1 with strong hubs);
    - ``hubs``: items with ``N_k >= hub_size * k``; ``hub_occurrence``: the share of all ``k * n_queries`` neighbour
      slots taken by hubs;
    - ``antihubs``: items with ``N_k = 0`` (never retrieved in a top k); ``antihub_occurrence``: their share;
    - ``robinhood``: ``sum |N_k - k_mean| / (2 sum N_k)``, the share of neighbour slots that would have to move for
      every item to be retrieved equally often (Feldbauer et al., ICBK 2018).

    Keys end in ``_b`` when a queries b (the k-occurrence of b's items) and in ``_a`` when b queries a.

    Parameters
    ----------
    a, b : two embedding sets of one space (any row counts), or one PairedEmbeddings as ``a`` (each item once)
    k : int, default 10
    hub_size : float, default 2.0
        Hubs occur at least ``hub_size * k`` times.

    Examples
    --------
    >>> import workbench
    >>> h = hubness(workbench.datasets.load("liang2022/clip"), k=10)
    >>> sorted(h)[:4]
    ['antihub_occurrence_a', 'antihub_occurrence_b', 'antihubs_a', 'antihubs_b']
    >>> bool(h["k_skewness_b"] > 0.5)   # texts queried by images: a few texts answer many images
    True
    """
    ua, ub = _sides(a, b)
    k = check_int(k, "k", high=min(len(ua), len(ub)))
    hub_size = check_number(hub_size, "hub_size", low=0, inclusive=False)
    out: dict[str, float | int] = {}
    for suffix, queries, gallery in (("b", ua, ub), ("a", ub, ua)):
        for key, value in _measures(k_occurrence(queries, gallery, k), k, len(queries), hub_size).items():
            out[f"{key}_{suffix}"] = value
    return out
