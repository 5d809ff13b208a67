"""Exact 2-D PCA for plots: :func:`pca_2d` (coordinates and explained variance) and :class:`PCA2D` (a fitted map).

- :func:`pca_2d` -- the first two principal components (exact solver), with their explained variance ratios.
- :class:`PCA2D` -- the same PCA as a fitted linear map, to place *other* points (moved by a corrector) in the view
  fitted on the original data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench._params import check_seed
from workbench._validation import as_matrix

__all__ = ["PCA2D", "pca_2d"]


def _as_rows(x: Any, what: str = "x", min_rows: int = 2) -> np.ndarray:
    """``x`` as a matrix of finite values with at least ``min_rows`` rows and 2 columns."""
    arr = as_matrix(x, what)
    if arr.shape[0] < min_rows or arr.shape[1] < 2:
        raise ValueError(
            f"{what}: a 2-D projection needs at least {min_rows} rows and 2 columns, got shape {arr.shape}"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or inf: no projection is defined")
    return arr


#: Values of magnitude outside [1e-100, 1e100] are rescaled before PCA: their squares (and the covariance) would
#: overflow to inf or underflow to 0 in float64.
_SAFE_LOW, _SAFE_HIGH = 1e-100, 1e100


def _power_of_two_scale(arr: np.ndarray) -> float:
    """1.0 for ordinary data (kept bit for bit); else the power of two nearest the largest absolute value, so that
    ``arr / scale`` (exact: only exponents change) has a covariance that neither overflows nor underflows."""
    peak = float(np.abs(arr).max())
    if peak == 0.0 or _SAFE_LOW <= peak <= _SAFE_HIGH:
        return 1.0
    return float(np.ldexp(1.0, int(np.frexp(peak)[1])))


def _pca_solver(dim: int) -> str:
    # exact solvers (not randomized): the same data gives the same figure; covariance_eigh is fast for N >> D
    return "covariance_eigh" if dim <= 2048 else "full"


def _fit_pca_model(arr: np.ndarray, seed: int, transform: bool) -> tuple[Any, np.ndarray | None]:
    """sklearn's PCA on one BLAS thread: OpenBLAS's threaded eigensolver took 3-4 s for a 512 x 512 covariance on
    2 cores (0.1 s on one thread), and the whole fit of 100,000 x 512 was 9 times faster on one thread."""
    from sklearn.decomposition import PCA
    from threadpoolctl import threadpool_limits

    pca = PCA(n_components=2, svd_solver=_pca_solver(arr.shape[1]), random_state=seed)
    scale = _power_of_two_scale(arr)  # PCA is linear: coordinates and the mean scale back, axes do not change
    if scale != 1.0:
        arr = arr / scale
    with threadpool_limits(limits=1, user_api="blas"):
        coords = pca.fit_transform(arr) if transform else None
        if not transform:
            pca.fit(arr)
    if scale != 1.0:
        pca.mean_ = pca.mean_ * scale
        coords = None if coords is None else coords * scale
    return pca, coords


def pca_2d(x: Any, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Project rows onto their first two principal components (scikit-learn PCA, exact solver, seeded).

    The fit runs on one BLAS thread (much faster than OpenBLAS's threaded eigensolver on small machines). Values of
    magnitude above 1e100 or all below 1e-100 (whose covariance would overflow or underflow) are divided by a power
    of two first and the coordinates multiplied back, so ``pca_2d(1e300 * x)`` is ``1e300 * pca_2d(x)`` to rounding.

    Returns
    -------
    coords : ndarray of shape (N, 2)
    explained_variance_ratio : ndarray of shape (2,)

    Examples
    --------
    >>> import numpy as np
    >>> coords, ratio = pca_2d(np.random.default_rng(0).normal(size=(50, 8)))
    >>> coords.shape, bool(ratio[0] >= ratio[1])
    ((50, 2), True)
    """
    seed = check_seed(seed)
    arr = np.asarray(_as_rows(x), dtype=np.float64)
    pca, coords = _fit_pca_model(arr, seed, transform=True)
    assert coords is not None
    return coords, pca.explained_variance_ratio_


class PCA2D:
    """A 2-D PCA fitted once, applied to any points: ``transform(x) = (x - mean_) @ components_.T``.

    The fit is :func:`pca_2d`'s (same solver and signs), so ``PCA2D().fit(x).transform(x)`` equals
    ``pca_2d(x)[0]`` to rounding. The gap explorer fits it on the original embeddings and moves corrected points
    through it, so they move continuously in a fixed frame.

    Attributes
    ----------
    mean_ : ndarray of shape (D,)
    components_ : ndarray of shape (2, D)
        Orthonormal principal axes (rows).
    explained_variance_ratio_ : ndarray of shape (2,)

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(40, 5))
    >>> pca = PCA2D().fit(x)
    >>> bool(np.allclose(pca.transform(x), pca_2d(x)[0]))
    True
    >>> pca.transform(x[:3] + 1.0).shape
    (3, 2)
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, x: Any) -> PCA2D:
        """Fit on the rows of ``x`` (at least 2 rows and 2 columns); returns ``self``."""
        arr = np.asarray(_as_rows(x), dtype=np.float64)
        pca, _ = _fit_pca_model(arr, check_seed(self.seed), transform=False)
        self.mean_ = pca.mean_
        self.components_ = pca.components_
        self.explained_variance_ratio_ = pca.explained_variance_ratio_
        return self

    def transform(self, x: Any) -> np.ndarray:
        """Coordinates (N x 2, float64) of the rows of ``x`` in the fitted frame."""
        if not hasattr(self, "components_"):
            raise ValueError("this PCA2D is not fitted yet: call fit(x) first")
        arr = np.asarray(_as_rows(x, min_rows=1), dtype=np.float64)
        if arr.shape[1] != self.components_.shape[1]:
            raise ValueError(f"x: expected rows of {self.components_.shape[1]} dimensions, got shape {arr.shape}")
        return (arr - self.mean_) @ self.components_.T
