"""UMAP at scale: fit on a seeded sample, place every other point with ``transform``, in batches, optionally on Ray.

:func:`workbench.projection.project` calls :func:`umap_sample_transform` when ``method="umap"`` and there are more
rows than ``sample`` (default 100,000). The sample is ``numpy.random.default_rng(seed).choice(N, sample,
replace=False)``, sorted; those rows get their fitted coordinates (``embedding_``), the other rows are transformed
in batches of ``batch_size`` rows, in row order, with a progress bar over batches (``tqdm.auto``).

Measured on 2 cores (RECIPES.md): fitting 200,000 x 512 (cosine) takes 87.5 s and 2.74 GiB; ``transform`` of 5,000
new points 4.5 s. A process's first UMAP compiles numba kernels (35 s here; the first ``transform`` up to 75 s more
until numba's on-disk cache is warm). ``benchmarks/bench_umap_scale.py`` times the whole pipeline on clustered unit
rows; measured here: 200,000 x 512 with a 20,000 sample, fit 9 s, transform 2,220 points/s serially and 3,680
points/s on Ray (2 actors, their start and compilation included); 1,000,000 x 512 with a 100,000 sample, fit 53 s,
transform 2,930 points/s on Ray, 6.6 min in all (12.6 min serially with other jobs on the cores), 3.6 GiB peak in
the calling process.

Batches are part of the result: umap-learn optimises each transformed batch with its own epochs (100 for batches of
at most 10,000 rows, else 30) and random stream (``transform_seed``), so ``batch_size`` is part of the cache key.
Given the batches, the result does not depend on where they run: every batch is transformed on ONE numba thread,
in this process (``parallel="serial"``) or on a Ray actor, so both give the same bits, tested on pynndescent's
search path. One thread, because pynndescent's threaded search shares one random stream between threads when a
query's trees yield fewer than ``n_neighbors`` candidates: threaded results varied from run to run on a busy
2-core machine (seen in the test suite), which a seeded, cached projection must not do.

``parallel``:

- ``"serial"``: in this process, one batch after the other, each on one numba thread.
- ``"ray"``: on a pool of Ray actors that each hold the fitted model (put in the object store once, deserialised
  and compiled once per actor, never per batch), one numba thread each. By default one actor per CPU of the cluster,
  with ``num_cpus`` such that the actors leave one CPU of Ray's budget free. Ray is started with its defaults when it
  is not running yet.
- ``"auto"`` (default): Ray only when Ray is already imported and initialised in this process **and** at least
  :data:`RAY_AUTO_MIN_ROWS` rows are left to transform. Every actor pays numba's compilation and a copy of the
  model, so Ray only pays off for large remainders, and starting a cluster (4 s, processes, memory) is a choice
  left to the caller.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from workbench._cluster import ensure_local_ray
from workbench._params import InvalidParameterError, check_choice
from workbench._threads import numba_threads

if TYPE_CHECKING:
    from ray.actor import ActorHandle

__all__ = [
    "DEFAULT_BATCH", "DEFAULT_SAMPLE", "EXACT_PAIR_LIMIT", "PARALLEL", "RAY_AUTO_MIN_ROWS", "TransformActor",
    "batch_bounds", "check_scale_options", "fit_sample", "fit_umap_model", "place_rest", "resolve_parallel",
    "sample_indices", "transform_on_ray", "transform_rows", "umap_sample_transform",
]

#: Rows UMAP is fitted on by default; the rest are transformed.
DEFAULT_SAMPLE = 100_000
#: Rows per ``transform`` call (at most 10,000: umap-learn then optimises each batch for 100 epochs, not 30).
DEFAULT_BATCH = 10_000
#: The ways to run the transform.
PARALLEL = ("auto", "serial", "ray")
#: ``parallel="auto"`` uses an initialised Ray only from this many rows left to transform.
RAY_AUTO_MIN_ROWS = 200_000
#: Above this many (sample x rest) distances, a sample under 4,096 rows is fitted with the approximate index
#: (``force_approximation_algorithm=True``): umap-learn's exact small-data ``transform`` calls a Python-level distance
#: per pair (1.5-2.5 us measured), which would outlast the index's one-off compilation.
EXACT_PAIR_LIMIT = 10_000_000
_UMAP_SMALL_DATA = 4096  # umap-learn fits fewer rows than this exactly (no pynndescent index)


def make_umap(seed: int, **params: Any) -> Any:
    """``umap.UMAP(n_components=2, random_state=seed, n_jobs=1, **params)`` (importing umap compiles at first use).

    umap-learn's import warns (ImportWarning) that TensorFlow is missing for ParametricUMAP, which is not used here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Tensorflow not installed", ImportWarning)
        import umap

    return umap.UMAP(n_components=2, random_state=seed, n_jobs=1, **params)


def check_scale_options(
    sample: int | None, batch_size: int, parallel: str, workers: int | None = None, *, n_neighbors: int | None = None
) -> int | None:
    """Validate the sampling options of :func:`workbench.projection.project`; the sample size, or None if disabled.

    With ``n_neighbors``, also check that the sample is larger (UMAP needs more points than neighbours).

    Examples
    --------
    >>> check_scale_options(1000, 500, "auto", n_neighbors=15)
    1000
    >>> check_scale_options(0, 500, "serial") is None
    True
    """
    for name, value in (("sample", sample), ("batch_size", batch_size), ("workers", workers)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | np.integer)):
            raise InvalidParameterError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    check_choice(parallel, "parallel", PARALLEL)
    if batch_size < 1:
        raise InvalidParameterError(f"batch_size must be at least 1, got {batch_size}")
    if workers is not None and workers < 1:
        raise InvalidParameterError(f"workers must be at least 1, got {workers}")
    if sample is None or sample == 0:
        return None
    if sample < 0:
        raise InvalidParameterError(f"sample must be positive (or 0 / None to fit on every row), got {sample}")
    if n_neighbors is not None and sample <= n_neighbors:
        raise ValueError(f"sample={sample} must exceed n_neighbors={n_neighbors}: UMAP needs more points than "
                         "neighbours to fit")
    return int(sample)


def sample_indices(n: int, sample: int, seed: int) -> np.ndarray:
    """The fitted rows: ``default_rng(seed).choice(n, sample, replace=False)``, sorted (int64).

    Examples
    --------
    >>> sample_indices(10, 4, seed=0)
    array([2, 4, 5, 7])
    """
    if not 0 < sample <= n:
        raise ValueError(f"cannot sample {sample} of {n} rows")
    return np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False)).astype(np.int64)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``[(0, b), (b, 2b), ..., (.., n)]``: consecutive batches of at most ``batch_size`` rows.

    Examples
    --------
    >>> batch_bounds(5, 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise InvalidParameterError(f"batch_size must be at least 1, got {batch_size!r}")
    return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


def fit_umap_model(rows: np.ndarray, seed: int, **params: Any) -> Any:
    """A fitted ``umap.UMAP`` (2-D, seeded, one job) on ``rows``; numba's thread count is left as it was.

    Tests replace this function to count fits.
    """
    with numba_threads():
        return make_umap(seed, **params).fit(rows)


def transform_rows(model: Any, rows: np.ndarray, threads: int | None = None) -> np.ndarray:
    """``model.transform(rows)`` as float64, optionally on ``threads`` numba threads (restored afterwards)."""
    with numba_threads(threads):
        return np.asarray(model.transform(rows), dtype=np.float64)


def resolve_parallel(parallel: str, n_rest: int) -> str:
    """``"serial"`` or ``"ray"``: ``"auto"`` picks Ray only when it is initialised and ``n_rest`` is large.

    Examples
    --------
    >>> resolve_parallel("auto", 10)
    'serial'
    """
    if parallel != "auto":
        return parallel
    ray = sys.modules.get("ray")  # never imported here: a process that did not import Ray has no cluster
    initialised = ray is not None and getattr(ray, "is_initialized", lambda: False)()
    return "ray" if initialised and n_rest >= RAY_AUTO_MIN_ROWS else "serial"


def umap_sample_transform(
    x: np.ndarray,
    seed: int,
    *,
    sample: int,
    batch_size: int = DEFAULT_BATCH,
    parallel: str = "auto",
    workers: int | None = None,
    progress: bool = True,
    **params: Any,
) -> np.ndarray:
    """UMAP fitted on ``sample`` seeded rows of ``x``, the other rows placed by ``transform`` in batches.

    Parameters
    ----------
    x : ndarray of shape (N, D)
        Validated rows (``N > sample``).
    seed : int
        Seeds the sample and UMAP's ``random_state``.
    sample : int
        Rows to fit on (``n_neighbors < sample < N``).
    batch_size : int, default :data:`DEFAULT_BATCH`
        Rows per ``transform`` call.
    parallel : "auto", "serial" or "ray"
        Where the batches run (see the module documentation); the result is the same.
    workers : int, optional
        Ray actors (default: one per CPU of the cluster). They take less than the cluster's CPUs in all.
    progress : bool, default True
        A progress bar over the batches.
    **params
        ``umap.UMAP`` parameters (``n_neighbors``, ``min_dist``, ``metric``, ...).

    Returns
    -------
    ndarray of shape (N, 2), float64

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(300, 8))
    >>> coords = umap_sample_transform(x, 0, sample=100, batch_size=100, progress=False, n_neighbors=10)
    >>> coords.shape
    (300, 2)
    """
    model, fitted = fit_sample(x, seed, sample=sample, **params)
    return place_rest(model, x, fitted, batch_size=batch_size, parallel=parallel, workers=workers, progress=progress)


def fit_sample(x: np.ndarray, seed: int, *, sample: int, **params: Any) -> tuple[Any, np.ndarray]:
    """The first half of :func:`umap_sample_transform`: the UMAP fitted on the seeded sample, and the sample's rows.

    A sample under 4,096 rows with more than :data:`EXACT_PAIR_LIMIT` (sample x rest) pairs is fitted with
    ``force_approximation_algorithm=True`` unless ``params`` say otherwise.
    """
    n = len(x)
    if not 0 < sample < n:
        raise ValueError(f"sample={sample} must be between 1 and N - 1 = {n - 1}; fit all rows otherwise")
    fitted = sample_indices(n, sample, seed)
    if sample < _UMAP_SMALL_DATA and sample * (n - sample) > EXACT_PAIR_LIMIT:
        params = {"force_approximation_algorithm": True, **params}
    return fit_umap_model(x[fitted], seed, **params), fitted


def place_rest(
    model: Any, x: np.ndarray, fitted: np.ndarray, *, batch_size: int = DEFAULT_BATCH, parallel: str = "auto",
    workers: int | None = None, progress: bool = True,
) -> np.ndarray:
    """The second half of :func:`umap_sample_transform`: every row's coordinates, the ``fitted`` rows' from
    ``model.embedding_``, the others' from ``model.transform`` in batches (serially or on Ray)."""
    n = len(x)
    rest = np.setdiff1d(np.arange(n, dtype=np.int64), fitted, assume_unique=True)
    mode = resolve_parallel(parallel, len(rest))
    coords = np.empty((n, 2), dtype=np.float64)
    coords[fitted] = np.asarray(model.embedding_, dtype=np.float64)
    bounds = batch_bounds(len(rest), batch_size)
    from tqdm.auto import tqdm

    with tqdm(total=len(rest), desc=f"UMAP transform ({mode})", unit="point", disable=not progress) as bar:
        if mode == "ray":
            results: Any = transform_on_ray(model, x, rest, bounds, workers=workers, bar=bar)
        else:
            results = _transform_serial(model, x, rest, bounds, bar)
        for (start, stop), placed in zip(bounds, results, strict=True):
            coords[rest[start:stop]] = placed
    return coords


def _transform_serial(model: Any, x: np.ndarray, rest: np.ndarray, bounds: list[tuple[int, int]],
                      bar: Any) -> Iterator[np.ndarray]:
    for start, stop in bounds:
        placed = transform_rows(model, x[rest[start:stop]], threads=1)  # one thread: the same bits anywhere
        bar.update(stop - start)
        yield placed


# -- Ray --------------------------------------------------------------------------------------------------------------
class TransformActor:
    """A Ray actor holding one fitted UMAP model: deserialised and compiled once, then it transforms batches."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def transform(self, rows: np.ndarray) -> np.ndarray:
        """The batch's 2-D coordinates, on one numba thread (the actor's share of the machine)."""
        return transform_rows(self.model, rows, threads=1)


def transform_on_ray(
    model: Any,
    x: np.ndarray,
    rest: np.ndarray,
    bounds: list[tuple[int, int]],
    *,
    workers: int | None = None,
    bar: Any = None,
) -> list[np.ndarray]:
    """Transform the batches ``x[rest[start:stop]]`` on a pool of Ray actors; the results in batch order.

    The model is put in the object store once; each of ``workers`` actors (default: one per CPU of the cluster,
    never more than there are batches) takes ``(CPUs - 1) / workers`` CPUs, so the pool leaves one CPU of the
    cluster free, and holds one batch at a time. The actors are killed at the end, also on an error. When Ray is
    not initialised yet, a local instance is started that listens on 127.0.0.1 only
    (:func:`workbench._cluster.ensure_local_ray`); call ``ray.init(...)`` first to choose (e.g. a real cluster).
    """
    import ray

    ensure_local_ray()
    total = float(ray.cluster_resources().get("CPU", 0.0))
    if total < 2:
        raise ValueError(f"the Ray cluster has {total:g} CPU: the transform actors would take every CPU; use "
                         "parallel='serial' or a cluster with at least 2 CPUs")
    workers = max(1, min(int(total) if workers is None else workers, len(bounds)))
    num_cpus = math.floor((total - 1) / workers * 1e4) / 1e4  # Ray's resolution is 1e-4 CPU
    if num_cpus <= 0:
        raise ValueError(f"{workers} workers cannot share the {total - 1:g} CPUs left free of {total:g}; use fewer")
    actor_class = ray.remote(num_cpus=num_cpus)(TransformActor)
    model_ref = ray.put(model)
    # Ray types .remote() as ActorHandle | type[TransformActor] (so that method calls type-check); it is the handle
    actors = [cast("ActorHandle[TransformActor]", actor_class.remote(model_ref)) for _ in range(workers)]
    results: list[np.ndarray | None] = [None] * len(bounds)
    pending: dict[Any, tuple[int, Any]] = {}
    queue = iter(enumerate(bounds))

    def submit(actor: Any) -> None:
        for index, (start, stop) in queue:
            pending[actor.transform.remote(x[rest[start:stop]])] = (index, actor)
            return

    try:
        for actor in actors:
            submit(actor)
        while pending:
            (done,), _ = ray.wait(list(pending), num_returns=1)
            index, actor = pending.pop(done)
            results[index] = ray.get(done)
            if bar is not None:
                bar.update(bounds[index][1] - bounds[index][0])
            submit(actor)
    finally:
        for actor in actors:
            ray.kill(actor)
        del model_ref
    return [r for r in results if r is not None]
