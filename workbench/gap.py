"""Modality-gap metrics (numpy only; sums accumulate in float64).

Functions take either two row-paired arrays ``(a, b)`` of shape (N x D) or one
:class:`~workbench.data.PairedEmbeddings`. With a ``PairedEmbeddings``, per-modality terms (centroids) use each
paired item once -- with five captions per image an image does not weigh five times in its centroid -- while
paired terms (matched cosine) use every pair. Array inputs are L2-normalised first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.data import PairedEmbeddings

__all__ = ["centroid_distance", "gap_vector", "mean_matched_cosine"]


def _unit64(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{what} must be a non-empty (N x D) matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or inf in {int((~np.isfinite(arr)).any(axis=1).sum())} rows")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{what} has {int((norms == 0).sum())} zero-norm rows")
    return arr / norms


def _pair_arrays(a: Any, b: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """Row-aligned unit float64 arrays for paired terms."""
    if isinstance(a, PairedEmbeddings):
        if b is not None:
            raise TypeError("pass either a PairedEmbeddings or two arrays, not both")
        ma, mb = a.matched()
        return ma.astype(np.float64), mb.astype(np.float64)
    if b is None:
        raise TypeError("two arrays (a, b) or one PairedEmbeddings are needed")
    ua, ub = _unit64(a, "a"), _unit64(b, "b")
    if ua.shape != ub.shape:
        raise ValueError(f"a and b must be row-paired with equal shapes, got {ua.shape} and {ub.shape}")
    return ua, ub


def _item_arrays(a: Any, b: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """Each modality's items, each once, as unit float64 arrays (for centroids and within-modality terms)."""
    if isinstance(a, PairedEmbeddings):
        if b is not None:
            raise TypeError("pass either a PairedEmbeddings or two arrays, not both")
        rows_a, rows_b = a.paired_rows()
        return a.a.vectors[rows_a].astype(np.float64), a.b.vectors[rows_b].astype(np.float64)
    return _pair_arrays(a, b)


def gap_vector(a: Any, b: Any | None = None) -> np.ndarray:
    """The modality gap vector ``mean(a) - mean(b)`` (Liang et al., "Mind the Gap", NeurIPS 2022, Sec. 4).

    Examples
    --------
    >>> import numpy as np
    >>> gap_vector(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    array([ 1., -1.])
    """
    ua, ub = _item_arrays(a, b)
    return ua.mean(axis=0) - ub.mean(axis=0)


def centroid_distance(a: Any, b: Any | None = None) -> float:
    """Euclidean distance between the two modalities' centroids, ``||mean(a) - mean(b)||``.

    The modality-gap measure of Liang et al., "Mind the Gap: Understanding the Modality Gap in Multi-modal
    Contrastive Representation Learning", NeurIPS 2022 (0.82 for CLIP on MSCOCO in their Table 1).

    Examples
    --------
    >>> import numpy as np
    >>> round(centroid_distance(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])), 4)
    1.4142
    """
    return float(np.linalg.norm(gap_vector(a, b)))


def mean_matched_cosine(a: Any, b: Any | None = None) -> float:
    """Mean cosine similarity of matched pairs, ``mean_i <a_i, b_i>`` over unit rows.

    Examples
    --------
    >>> import numpy as np
    >>> mean_matched_cosine(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    0.5
    """
    ua, ub = _pair_arrays(a, b)
    return float(np.einsum("ij,ij->i", ua, ub).mean())
