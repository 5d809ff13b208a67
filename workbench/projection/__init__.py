"""2-D projections of embeddings for plots: exact PCA, UMAP and t-SNE, seeded and cached on disk.

- :func:`pca_2d` -- the first two principal components (exact solver), with their explained variance ratios.
- :class:`PCA2D` -- the same PCA as a fitted linear map, to place *other* points (moved by a corrector) in the view
  fitted on the original data.
- :func:`project` -- ``"pca"``, ``"umap"`` (umap-learn, cosine metric) or ``"tsne"`` (scikit-learn, ``init="pca"``),
  seeded for reproducible figures. Results are cached in memory and on disk under
  ``$WORKBENCH_CACHE_DIR/projections`` (else ``$XDG_CACHE_HOME/workbench/projections``, else
  ``~/.cache/workbench/projections``): the same data and parameters are never projected twice, across kernel
  restarts too. UMAP's first use in a process is slow (numba compiles for about 20 s, and the first fit of 10,000
  points takes about a minute); the cache makes the second time instant. Beyond ``sample`` rows (default 100,000)
  UMAP is fitted on a seeded sample and the other rows are placed by ``transform`` in batches, serially or on Ray
  (:func:`umap_sample_transform`; 200,000 x 512 fit in 87.5 s and 2.7 GiB here, 5,000 points transformed in 4.5 s).

Modules: ``_pca`` (PCA), ``_project`` (:func:`project` and its cache), ``_scale`` (UMAP at scale: fit on a seeded
sample, ``transform`` the rest in batches, optionally on Ray).

Examples
--------
>>> import numpy as np, tempfile
>>> from workbench.projection import project
>>> project(np.random.default_rng(0).normal(size=(30, 6)), "pca", cache_dir=tempfile.mkdtemp()).shape
(30, 2)
"""

from __future__ import annotations

from workbench.projection._pca import PCA2D, pca_2d
from workbench.projection._project import (
    METHODS,
    clear_memory_cache,
    default_projection_dir,
    project,
    projection_key,
)
from workbench.projection._scale import (
    DEFAULT_BATCH,
    DEFAULT_SAMPLE,
    EXACT_PAIR_LIMIT,
    PARALLEL,
    RAY_AUTO_MIN_ROWS,
    TransformActor,
    batch_bounds,
    check_scale_options,
    fit_sample,
    fit_umap_model,
    place_rest,
    resolve_parallel,
    sample_indices,
    transform_on_ray,
    transform_rows,
    umap_sample_transform,
)

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_SAMPLE",
    "EXACT_PAIR_LIMIT",
    "METHODS",
    "PARALLEL",
    "PCA2D",
    "RAY_AUTO_MIN_ROWS",
    "TransformActor",
    "batch_bounds",
    "check_scale_options",
    "clear_memory_cache",
    "default_projection_dir",
    "fit_sample",
    "fit_umap_model",
    "pca_2d",
    "place_rest",
    "project",
    "projection_key",
    "resolve_parallel",
    "sample_indices",
    "transform_on_ray",
    "transform_rows",
    "umap_sample_transform",
]
