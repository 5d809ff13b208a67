"""UMAP at scale: fit on a seeded sample, ``transform`` the rest in batches (``workbench.projection``).

The data: ``n_points`` x ``dim`` float32 rows on the unit sphere, a seeded mixture of ``clusters`` gaussian clusters
(structure for the neighbour graph, like real embeddings). The pipeline is the one ``project(x, "umap", sample=...)``
runs, timed phase by phase:

- key: the cache key (SHA-256 of the data, parameters and library version) that ``project`` computes first;
- warm-up: a fit of 2,000 rows with the approximate index, which compiles umap-learn's and pynndescent's numba
  kernels (what the first fit of a process pays on top of its work);
- fit: ``umap.UMAP(metric="cosine", n_neighbors=15, min_dist=0.1)`` on ``sample`` rows drawn by
  ``default_rng(seed).choice`` (their coordinates are the fitted ones);
- compile: the first ``transform`` of a process compiles pynndescent's search for this model (serial path only;
  on Ray each actor compiles inside the transform phase);
- transform: the other ``n_points - sample`` rows in batches of ``batch_size`` (``parallel="serial"`` or ``"ray"``).

Printed as rates (points per second) and ratios (transform rate / fit rate, each phase's share of the total, peak
RSS / data size). Peak RSS is this process's (``resource.getrusage``); Ray actors' memory is not included.
Reference (RECIPES.md, this machine): 200k x 512 fit 87.5 s and 2.74 GiB; transform of 5k points 4.5 s.

Run: ``.venv/bin/python benchmarks/bench_umap_scale.py`` (the issue's 1M points, 100k sample) or scaled down,
e.g. ``--points 100000 --sample 20000``; ``--parallel ray`` starts Ray on every core (actors leave one free).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from typing import Any

import numpy as np

from workbench.projection import (
    DEFAULT_BATCH,
    fit_sample,
    fit_umap_model,
    place_rest,
    projection_key,
    resolve_parallel,
    sample_indices,
    transform_rows,
)

GIB = 1024**3
#: ``project(x, "umap")``'s defaults.
PARAMS = {"metric": "cosine", "min_dist": 0.1, "n_neighbors": 15}


def sphere_mixture(n: int, dim: int, clusters: int = 50, spread: float = 1.0, seed: int = 0,
                   chunk: int = 100_000) -> np.ndarray:
    """``n`` x ``dim`` float32 unit rows: gaussian clusters around ``clusters`` random directions (made in chunks)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = centres[rng.integers(0, clusters, size=stop - start)]
        block += rng.standard_normal(block.shape, dtype=np.float32) * np.float32(spread / np.sqrt(dim))
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def run(
    n_points: int = 1_000_000,
    dim: int = 512,
    sample: int = 100_000,
    *,
    batch_size: int = DEFAULT_BATCH,
    parallel: str = "auto",
    workers: int | None = None,
    clusters: int = 50,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Time UMAP sample + transform on seeded clustered data; a dict of sizes, seconds, rates and peak RSS.

    ``parallel`` as in ``project``: ``"auto"`` transforms on Ray only when Ray is initialised (and 200,000 rows or
    more are left); the mode used is reported.
    """
    if not 0 < sample < n_points:
        raise ValueError(f"sample must be between 1 and n_points - 1, got sample={sample}, n_points={n_points}")
    start = time.perf_counter()
    x = sphere_mixture(n_points, dim, clusters=clusters, seed=seed)
    data_s = time.perf_counter() - start

    params = dict(PARAMS)
    start = time.perf_counter()
    projection_key(x, "umap", seed, {**params, "sample": sample, "batch_size": batch_size})
    key_s = time.perf_counter() - start

    start = time.perf_counter()
    fit_umap_model(x[: min(2000, sample)], seed, force_approximation_algorithm=True, **params)
    warmup_s = time.perf_counter() - start

    start = time.perf_counter()
    model, fitted = fit_sample(x, seed, sample=sample, **params)
    fit_s = time.perf_counter() - start
    fit_peak = _peak_rss()

    mode = resolve_parallel(parallel, n_points - sample)  # what project() would pick ("auto": Ray if initialised)
    compile_s = 0.0
    if mode == "serial":  # the first transform in this process compiles the model's search (once)
        probe = np.setdiff1d(np.arange(n_points), sample_indices(n_points, sample, seed))[:100]
        start = time.perf_counter()
        transform_rows(model, x[probe])
        compile_s = time.perf_counter() - start

    start = time.perf_counter()
    coords = place_rest(model, x, fitted, batch_size=batch_size, parallel=mode, workers=workers,
                        progress=progress)
    transform_s = time.perf_counter() - start
    if coords.shape != (n_points, 2) or not np.isfinite(coords).all():
        raise RuntimeError("the projection has missing or non-finite coordinates")
    rest = n_points - sample
    return {
        "n_points": n_points, "dim": dim, "sample": sample, "batch_size": batch_size, "parallel": mode,
        "cores": len(os.sched_getaffinity(0)), "data_gib": x.nbytes / GIB, "data_s": data_s, "key_s": key_s,
        "warmup_s": warmup_s, "fit_s": fit_s, "compile_s": compile_s, "transform_s": transform_s,
        "total_s": key_s + warmup_s + fit_s + compile_s + transform_s,
        "fit_points_per_s": sample / fit_s, "transform_points_per_s": rest / transform_s,
        "fit_peak_rss_gib": fit_peak / GIB, "peak_rss_gib": _peak_rss() / GIB,
    }


def report(r: dict[str, Any]) -> None:
    """Print :func:`run`'s result as rates and ratios."""
    rest = r["n_points"] - r["sample"]
    total = r["total_s"]
    print(f"UMAP sample + transform: {r['n_points']:,} x {r['dim']} float32 ({r['data_gib']:.2f} GiB), "
          f"fit on {r['sample']:,}, transform {rest:,} in batches of {r['batch_size']:,} ({r['parallel']}, "
          f"{r['cores']} cores); data made in {r['data_s']:.1f} s")
    print(f"  cache key   {r['key_s']:8.1f} s   {r['n_points'] / r['key_s']:>10,.0f} points/s")
    print(f"  warm-up     {r['warmup_s']:8.1f} s   (numba compiles umap-learn and pynndescent: once per process)")
    print(f"  fit         {r['fit_s']:8.1f} s   {r['fit_points_per_s']:>10,.0f} points/s   "
          f"peak RSS {r['fit_peak_rss_gib']:.2f} GiB")
    if r["compile_s"]:
        print(f"  compile     {r['compile_s']:8.1f} s   (first transform of the process: pynndescent's search)")
    print(f"  transform   {r['transform_s']:8.1f} s   {r['transform_points_per_s']:>10,.0f} points/s")
    print(f"  total       {total:8.1f} s   {r['n_points'] / total:>10,.0f} points/s overall")
    print(f"  ratios: transform rate / fit rate {r['transform_points_per_s'] / r['fit_points_per_s']:.2f}; "
          f"share of the time: fit {r['fit_s'] / total:.0%}, compile {(r['warmup_s'] + r['compile_s']) / total:.0%}, "
          f"transform {r['transform_s'] / total:.0%}; peak RSS {r['peak_rss_gib']:.2f} GiB = "
          f"{r['peak_rss_gib'] / r['data_gib']:.1f} x the data")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="rows in all (default 1,000,000)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--sample", type=int, default=100_000, help="rows UMAP is fitted on (default 100,000)")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="rows per transform call")
    parser.add_argument("--parallel", choices=("serial", "ray"), default="serial",
                        help="ray: start Ray on every core first (the actors leave one CPU free)")
    parser.add_argument("--workers", type=int, default=None, help="Ray actors (default one per core)")
    parser.add_argument("--progress", action="store_true", help="a progress bar over the transform batches")
    args = parser.parse_args()
    if args.parallel == "ray":
        import ray

        ray.init(num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False, log_to_driver=False)
    report(run(args.points, args.dim, args.sample, batch_size=args.batch, parallel=args.parallel,
               workers=args.workers, progress=args.progress))


if __name__ == "__main__":
    main()
