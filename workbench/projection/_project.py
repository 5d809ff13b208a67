""":func:`project`: 2-D coordinates by PCA, UMAP or t-SNE, seeded and cached in memory and on disk.

The cache key is the SHA-256 of the data (dtype, shape and bytes), the method, the seed, every parameter (defaults
filled in, so ``project(x, "umap")`` and ``project(x, "umap", n_neighbors=15)`` share a file; a sampled UMAP adds
``sample`` and ``batch_size``) and the version of the library that computes it. Files are the embedding cache's
checksummed ``.npz`` (:func:`workbench.store.write_checked_array`: written atomically, with a SHA-256 of the
coordinates): a damaged file is reported with a :class:`~workbench.store.CacheCorruptionWarning`, removed and
recomputed, never returned.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from collections.abc import Callable
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from workbench._params import check_seed
from workbench._threads import numba_threads
from workbench.projection._pca import _as_rows, pca_2d
from workbench.projection._scale import (
    DEFAULT_BATCH,
    DEFAULT_SAMPLE,
    check_scale_options,
    make_umap,
    umap_sample_transform,
)

__all__ = ["METHODS", "clear_memory_cache", "default_projection_dir", "project", "projection_key"]

#: The projection methods :func:`project` knows.
METHODS = ("pca", "umap", "tsne")
CACHE_FORMAT = 1
#: How many projections :func:`project` keeps in memory (least recently used are dropped first).
MEMORY_ENTRIES = 32
_MEMORY: OrderedDict[str, np.ndarray] = OrderedDict()


# -- the fitters ------------------------------------------------------------------------------------------------------
def _fit_pca(x: np.ndarray, seed: int) -> np.ndarray:
    return pca_2d(x, seed=seed)[0]


def _fit_umap(x: np.ndarray, seed: int, **params: Any) -> np.ndarray:
    with numba_threads():  # umap sets numba's global thread count to n_jobs; restore it for the others
        return np.asarray(make_umap(seed, **params).fit_transform(x), dtype=np.float64)


def _fit_tsne(x: np.ndarray, seed: int, **params: Any) -> np.ndarray:
    from sklearn.manifold import TSNE

    tsne = TSNE(n_components=2, random_state=seed, **params)
    return np.asarray(tsne.fit_transform(x), dtype=np.float64)


#: method -> fitter(x, seed, **params) returning (N x 2) coordinates. Tests replace entries to count calls.
_FITTERS: dict[str, Callable[..., np.ndarray]] = {"pca": _fit_pca, "umap": _fit_umap, "tsne": _fit_tsne}
_LIBRARY = {"pca": "scikit-learn", "umap": "umap-learn", "tsne": "scikit-learn"}
_MIN_ROWS = {"pca": 2, "umap": 4, "tsne": 4}


def _params(method: str, n: int, params: dict[str, Any]) -> dict[str, Any]:
    """The full parameter set of a method: defaults for what is not given (n-dependent ones clamped to n)."""
    if method == "pca":
        if params:
            raise ValueError(f"PCA takes no parameters, got {sorted(params)}")
        return {}
    if method == "umap":
        defaults: dict[str, Any] = {"n_neighbors": min(15, n - 1), "min_dist": 0.1, "metric": "cosine"}
    else:
        defaults = {"perplexity": float(min(30.0, (n - 1) / 3)), "init": "pca", "learning_rate": "auto",
                    "metric": "euclidean"}
    full = {**defaults, **params}
    for name, value in full.items():
        if not isinstance(value, str | bool | int | float | type(None)):
            raise TypeError(f"projection parameter {name}={value!r}: only str, bool, int, float and None are "
                            "supported (the parameters are part of the cache key)")
    return dict(sorted(full.items()))


def _library_version(method: str) -> str:
    try:
        return importlib_metadata.version(_LIBRARY[method])
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - both are dependencies
        return "unknown"


def projection_key(x: np.ndarray, method: str, seed: int, params: dict[str, Any]) -> str:
    """The cache key: SHA-256 of the data (dtype, shape, bytes), method, seed, parameters and library version."""
    arr = np.ascontiguousarray(x)
    identity = {"format": CACHE_FORMAT, "method": method, "seed": int(seed), "params": params,
                "library": _library_version(method), "dtype": arr.dtype.str, "shape": list(arr.shape)}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
    digest.update(arr.data.cast("B"))  # arr.data is memoryview(arr)
    return digest.hexdigest()


def default_projection_dir() -> Path:
    """``$WORKBENCH_CACHE_DIR/projections``, else ``$XDG_CACHE_HOME/workbench/projections``, else
    ``~/.cache/workbench/projections``: :func:`workbench.store.default_cache_dir` of kind ``"projections"``."""
    from workbench.store import default_cache_dir

    return default_cache_dir("projections")


def _cache_path(directory: Path, key: str) -> Path:
    return directory / key[:2] / f"{key}.npz"


def clear_memory_cache() -> None:
    """Forget the projections kept in memory (files on disk stay): the next call reads the disk, as a new process."""
    _MEMORY.clear()


def project(
    x: Any,
    method: str = "pca",
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    cache: bool = True,
    sample: int | None = DEFAULT_SAMPLE,
    batch_size: int = DEFAULT_BATCH,
    parallel: str = "auto",
    workers: int | None = None,
    progress: bool = True,
    **params: Any,
) -> np.ndarray:
    """2-D coordinates of the rows of ``x`` by PCA, UMAP or t-SNE, seeded and cached.

    Parameters
    ----------
    x : array-like of shape (N, D)
        The points (e.g. both modalities' embeddings stacked).
    method : "pca", "umap" or "tsne"
        ``"pca"``: exact, as :func:`pca_2d` (no parameters). ``"umap"``: ``umap.UMAP(n_components=2,
        metric="cosine", n_neighbors=min(15, N - 1), min_dist=0.1, random_state=seed)``. ``"tsne"``:
        ``sklearn.manifold.TSNE(n_components=2, init="pca", learning_rate="auto", perplexity=min(30, (N - 1) / 3),
        random_state=seed)``.
    seed : int
        Random state of the method (reproducible figures); also seeds UMAP's sample.
    cache_dir : path, optional
        Where projection files live; default :func:`default_projection_dir`.
    cache : bool, default True
        False computes without reading or writing any cache.
    sample : int or None, default 100,000
        UMAP only: with more rows than this, UMAP is fitted on ``sample`` rows drawn by
        ``numpy.random.default_rng(seed).choice(N, sample, replace=False)`` (they keep their fitted coordinates) and
        the other rows are placed by ``transform`` (see :func:`umap_sample_transform`). None or 0 fits every
        row. Must exceed ``n_neighbors``.
    batch_size : int, default 10,000
        UMAP with a sample: rows per ``transform`` call (part of the result, hence of the cache key).
    parallel : "auto", "serial" or "ray", default "auto"
        UMAP with a sample: where the batches are transformed; the result is the same. ``"auto"`` uses Ray only when
        it is already initialised in this process and at least 200,000 rows are left to transform.
    workers : int, optional
        Ray actors for the transform (default one per CPU of the cluster; they always leave one CPU free).
    progress : bool, default True
        A progress bar over the transformed batches.
    **params
        Further keyword arguments of the UMAP or TSNE estimator (numbers, strings, booleans or None; they are part
        of the cache key).

    Returns
    -------
    ndarray of shape (N, 2), float64

    Raises
    ------
    ValueError
        For an unknown method, too few rows (PCA 2, UMAP and t-SNE 4), NaN or inf, parameters given to PCA, a
        negative ``sample`` or one not above ``n_neighbors``, ``batch_size`` or ``workers`` below 1, or an unknown
        ``parallel``.
    TypeError
        For parameters that are not numbers, strings, booleans or None, or a non-integer ``sample``, ``batch_size``
        or ``workers``.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> x = np.random.default_rng(0).normal(size=(30, 6))
    >>> folder = tempfile.mkdtemp()
    >>> first = project(x, "pca", cache_dir=folder)
    >>> again = project(x, "pca", cache_dir=folder)        # read from the cache
    >>> first.shape, bool(np.array_equal(first, again))
    ((30, 2), True)
    """
    if method not in METHODS:
        raise ValueError(f"method: unknown projection {method!r}; choose one of {list(METHODS)}")
    seed = check_seed(seed)
    arr = _as_rows(x, "x", _MIN_ROWS[method])
    full = _params(method, len(arr), params)
    size = check_scale_options(sample, batch_size, parallel, workers)
    scale: dict[str, Any] | None = None
    if method == "umap" and size is not None and len(arr) > size:
        check_scale_options(size, batch_size, parallel, workers, n_neighbors=full["n_neighbors"])
        scale = {"sample": size, "batch_size": int(batch_size)}
    run = {"parallel": parallel, "workers": workers, "progress": progress}
    if not cache:
        return _compute(arr, method, seed, full, scale, run)
    key_params = {**full, **scale} if scale else full
    key = projection_key(arr, method, seed, key_params)
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        return _MEMORY[key].copy()
    from workbench.store import read_checked_array, write_checked_array

    directory = Path(cache_dir) if cache_dir is not None else default_projection_dir()
    path = _cache_path(directory, key)
    coords = read_checked_array(path, key, rows=len(arr), cols=2, name="coords", dtype=np.float64,
                                what="projection cache")
    if coords is None:
        coords = _compute(arr, method, seed, full, scale, run)
        write_checked_array(path, key, coords, {"method": method, "seed": int(seed), "params": key_params,
                                                "library": _library_version(method)}, name="coords", dtype=np.float64)
    _MEMORY[key] = coords
    while len(_MEMORY) > MEMORY_ENTRIES:
        _MEMORY.popitem(last=False)
    return coords.copy()


def _compute(arr: np.ndarray, method: str, seed: int, params: dict[str, Any], scale: dict[str, Any] | None,
             run: dict[str, Any]) -> np.ndarray:
    if scale is None:
        result = _FITTERS[method](arr, seed, **params)
    else:
        result = umap_sample_transform(arr, seed, **scale, **run, **params)
    coords = np.ascontiguousarray(result, dtype=np.float64)
    if coords.shape != (len(arr), 2):
        raise ValueError(f"the {method} fitter returned shape {coords.shape}, expected ({len(arr)}, 2)")
    return coords
