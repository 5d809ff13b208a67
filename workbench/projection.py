"""2-D projections of embeddings for plots (PCA now; UMAP and t-SNE with caching arrive with the panels)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["pca_2d"]


def pca_2d(x: Any, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Project rows onto their first two principal components (scikit-learn PCA, seeded).

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
    from sklearn.decomposition import PCA

    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"PCA to 2-D needs at least 2 rows and 2 columns, got shape {arr.shape}")
    # exact solvers (not randomized): the same data gives the same figure; covariance_eigh is fast for N >> D
    solver = "covariance_eigh" if arr.shape[1] <= 2048 else "full"
    pca = PCA(n_components=2, svd_solver=solver, random_state=seed)
    coords = pca.fit_transform(arr)
    return coords, pca.explained_variance_ratio_
