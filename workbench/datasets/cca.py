"""Regularised canonical correlation analysis: the closed-form shared space of two frozen unimodal encoders.

The media sets pair a MobileNetV2 image feature (1280-d) with a MiniLM text feature (384-d): two spaces with no
common axes, so neither a modality gap nor cross-modal retrieval is defined on them directly. CCA (Hotelling, 1936,
"Relations between two sets of variates"; used for image-text retrieval by Gong et al., IJCV 2014, "A multi-view
embedding space for modeling internet images, tags, and their semantics") finds the linear maps of both sides whose
outputs correlate most on training pairs: a closed-form baseline for the learned projection heads of
:mod:`workbench.train`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CCA"]


class CCA:
    """Ridge-regularised CCA with scikit-learn conventions (``fit`` then ``transform``), deterministic.

    Parameters
    ----------
    n_components : int, default 128
        The width of the shared space (at most the smaller input width).
    reg : float, default 0.1
        Ridge added to each covariance, as a fraction of its mean eigenvalue (``C + reg * trace(C) / d * I``).

    Attributes
    ----------
    mean_a_, mean_b_ : ndarray
        The training means (subtracted before projecting).
    proj_a_, proj_b_ : ndarray
        (d_a x k) and (d_b x k) projections: ``(x - mean_a_) @ proj_a_`` has identity covariance on the training rows
        (up to the ridge) and correlates ``correlations_[j]`` with the paired row's j-th coordinate.
    correlations_ : ndarray
        The k canonical correlations, descending.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(500, 2))
    >>> a = np.c_[z, rng.normal(size=(500, 3))] @ rng.normal(size=(5, 5))
    >>> b = np.c_[z, rng.normal(size=(500, 2))] @ rng.normal(size=(4, 4))
    >>> cca = CCA(n_components=3, reg=0.0).fit(a, b)
    >>> np.round(cca.correlations_, 1)  # two shared directions, then noise
    array([1. , 1. , 0.1])
    """

    def __init__(self, n_components: int = 128, reg: float = 0.1) -> None:
        if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
            raise ValueError(f"n_components must be a positive int, got {n_components!r}")
        if isinstance(reg, bool) or not isinstance(reg, int | float) or not reg >= 0:
            raise ValueError(f"reg must be a number >= 0, got {reg!r}")
        self.n_components = n_components
        self.reg = float(reg)

    def fit(self, a: Any, b: Any) -> CCA:
        """Fit on row-paired training features ``a`` (n x d_a) and ``b`` (n x d_b)."""
        a, b = _matrix(a, "a"), _matrix(b, "b")
        if len(a) != len(b):
            raise ValueError(f"a and b must be row-paired: a has {len(a)} rows, b has {len(b)}")
        k = self.n_components
        if k > min(a.shape[1], b.shape[1]):
            raise ValueError(f"n_components={k} exceeds the smaller width {min(a.shape[1], b.shape[1])}")
        self.mean_a_, self.mean_b_ = a.mean(axis=0), b.mean(axis=0)
        ac, bc = a - self.mean_a_, b - self.mean_b_
        whiten_a, whiten_b = self._inv_sqrt(ac.T @ ac / len(a)), self._inv_sqrt(bc.T @ bc / len(b))
        u, s, vt = np.linalg.svd(whiten_a @ (ac.T @ bc / len(a)) @ whiten_b, full_matrices=False)
        signs = np.sign(u[np.abs(u).argmax(axis=0), np.arange(u.shape[1])])  # a deterministic orientation
        u, vt = u * signs, vt * signs[:, None]
        self.proj_a_ = whiten_a @ u[:, :k]
        self.proj_b_ = whiten_b @ vt[:k].T
        self.correlations_ = s[:k]
        return self

    def _inv_sqrt(self, cov: np.ndarray) -> np.ndarray:
        cov = cov + self.reg * np.trace(cov) / len(cov) * np.eye(len(cov))
        w, v = np.linalg.eigh(cov)
        return (v / np.sqrt(np.maximum(w, 1e-12 * w.max()))) @ v.T

    def transform(self, a: Any = None, b: Any = None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Project either or both sides into the shared space: ``((a - mean_a_) @ proj_a_, ...)``."""
        if not hasattr(self, "proj_a_"):
            raise ValueError("this CCA is not fitted yet: call fit(a, b) first")
        out_a = None if a is None else (_matrix(a, "a") - self.mean_a_) @ self.proj_a_
        out_b = None if b is None else (_matrix(b, "b") - self.mean_b_) @ self.proj_b_
        return out_a, out_b


def _matrix(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or len(arr) < 2:
        raise ValueError(f"{name} must be a 2-D array with at least 2 rows, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return arr
