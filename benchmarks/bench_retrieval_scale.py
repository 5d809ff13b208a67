"""Exact retrieval at scale: Q caption queries against a G-image gallery streamed from an embedding store.

The acceptance shape (issue 8) is 100k queries x 1M gallery x 512-d. On a 2-core CPU that is about 5e13
multiply-adds, the better part of an hour of matmul alone, so by default a slice (10k queries x the 1M gallery) is
measured and the full shape extrapolated from its rate (``--full`` measures it); extrapolated figures say so.

What is timed:

- ``seconds``: ``evaluate_retrieval(store, queries, targets, directions=("image_retrieval",))`` -- R@1/5/10, mean
  and median rank and mAP of every query, exact with pessimistic ties -- after the numba kernels are compiled; it
  includes reading the store (two passes: pass 1 scores only the Q relevant gallery rows, pass 2 every row).
- ``matmul_seconds``: the bare float32 product of the same shape through the same torch matmul, in blocks of the
  same shape with one reused output buffer (a Q x G score matrix never fits in memory), no reading, no counting.
- ``ratio = seconds / matmul_seconds``: what exactness and streaming cost on top of the unavoidable product.
- ``pairs_per_second`` (query x gallery scores), per core over ``cores`` = torch's thread count, and
  ``pairs_per_cpu_second`` from the process's CPU time (the per-core rate that holds when other processes share
  the cores, as they often do on the project's 2-core machines); ``cpu_ratio`` likewise.
- ``peak_rss_mb``: the process's peak resident memory (the store is written shard by shard, so the evaluation
  sets the peak); ``block_mb``: the score block the evaluation holds (about 256 MB by default, whatever G is).

The gallery is seeded unit Gaussian rows written shard by shard into a temporary store (``source="store"``; 2 GB
for 1M x 512) or generated chunk by chunk by a store-like reader (``source="generated"``: no disk, nothing else
changes). Each query is a noisy copy of a distinct gallery row (its only relevant item), so R@1 is high and checks
the run. Run: ``.venv/bin/python benchmarks/bench_retrieval_scale.py [--queries 100000 --gallery 1000000] [--full]``
(``run``/``report`` are what ``bench_scale.py`` calls).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

FULL_QUERIES, FULL_GALLERY = 100_000, 1_000_000


def _rows(seed: int, start: int, stop: int, dim: int) -> np.ndarray:
    """Gallery rows start..stop, the same whatever chunking asks for them (one generator per 1,000 rows)."""
    out = np.empty((stop - start, dim), dtype=np.float32)
    for block in range(start // 1000, (stop - 1) // 1000 + 1):
        lo, hi = max(start, block * 1000), min(stop, (block + 1) * 1000)
        rows = np.random.default_rng([seed, block]).standard_normal((1000, dim), dtype=np.float32)
        out[lo - start : hi - start] = rows[lo - block * 1000 : hi - block * 1000]
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


class _RowEncoder:
    """Encodes item i (an int) as gallery row i."""

    name, modalities, fingerprint, preprocessing = "seeded-rows", ("image",), "bench-v1", ""

    def __init__(self, seed: int, dim: int) -> None:
        self.seed, self.dim = seed, dim

    def encode(self, modality: str, items: Any, batch_size: int = 32) -> np.ndarray:
        return _rows(self.seed, int(items[0]), int(items[-1]) + 1, self.dim)


class GeneratedGallery:
    """A store-like reader (``iter_batches``, ``ids``, ``dim``, ``len``) that generates the rows as it goes."""

    def __init__(self, n: int, dim: int, seed: int) -> None:
        self.n, self.dim, self.seed = n, dim, seed

    def __len__(self) -> int:
        return self.n

    def ids(self) -> Any:
        import polars as pl

        return pl.Series("id", np.arange(self.n, dtype=np.int64))

    def iter_batches(self, batch_rows: int = 65_536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for s in range(0, self.n, batch_rows):
            e = min(s + batch_rows, self.n)
            yield np.arange(s, e), _rows(self.seed, s, e, self.dim)


def _queries(n_queries: int, n_gallery: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy copies of distinct gallery rows (sorted targets), and the targets."""
    rng = np.random.default_rng(seed + 1)
    targets = np.sort(rng.choice(n_gallery, size=n_queries, replace=False))
    base = np.empty((n_queries, dim), dtype=np.float32)
    for block in np.unique(targets // 1000):  # each generator block once
        sel = np.flatnonzero(targets // 1000 == block)
        rows = _rows(seed, int(block) * 1000, min(n_gallery, (int(block) + 1) * 1000), dim)
        base[sel] = rows[targets[sel] - int(block) * 1000]
    queries = base + rng.standard_normal(base.shape, dtype=np.float32) / np.sqrt(dim)  # cosine to the target ~0.7
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return queries.astype(np.float32), targets


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _bare_matmul_seconds(n_queries: int, n_gallery: int, dim: int, chunk: int) -> tuple[float, float]:
    """The same product as the evaluation (chunk x Q blocks, torch, one output buffer), on random rows."""
    from workbench.retrieval._blocks import columns, matmul

    rng = np.random.default_rng(7)
    resident = columns(rng.standard_normal((n_queries, dim), dtype=np.float32))
    block = rng.standard_normal((chunk, dim), dtype=np.float32)
    out = np.empty((chunk, resident.shape[1]), dtype=np.float32)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(-(-n_gallery // chunk)):
        matmul(block, resident, out=out)
    return time.perf_counter() - start, time.process_time() - cpu


def run(
    n_queries: int = FULL_QUERIES,
    n_gallery: int = FULL_GALLERY,
    dim: int = 512,
    *,
    full: bool = False,
    slice_queries: int = 10_000,
    chunk_size: int | None = None,
    shard_size: int = 50_000,
    source: str = "store",
    folder: str | None = None,
    device: str = "auto",
    seed: int = 0,
    with_matmul: bool = True,
) -> dict[str, Any]:
    """Time streamed exact retrieval of ``n_queries`` against ``n_gallery`` and the bare matmul of that shape.

    Unless ``full``, at most ``slice_queries`` queries are measured against the whole gallery and the time for
    ``n_queries`` is extrapolated from that rate (linear in queries x gallery, times the pass-1 share
    ``(1 + Q/G)``: an upper-end estimate, since per-gallery-row costs such as reading the store do not grow with Q).

    Returns
    -------
    dict
        ``measured_queries`` and the measured figures of the module docstring (``seconds``, ``pairs_per_second``,
        ``pairs_per_second_per_core``, ``pairs_per_cpu_second``, ``matmul_seconds``, ``ratio``, ``cpu_ratio``,
        ``peak_rss_mb``, R@K...), plus ``target_seconds`` for ``n_queries`` x ``n_gallery`` and ``extrapolated``.

    Examples
    --------
    >>> out = run(200, 5_000, 32, source="generated", with_matmul=False)   # doctest: +SKIP
    >>> out["image_retrieval_recall@1"] > 0.9
    True
    """
    import torch

    from workbench import store as wstore
    from workbench.retrieval import evaluate_retrieval, resolve_device

    if source not in ("store", "generated"):
        raise ValueError(f"source must be 'store' or 'generated', got {source!r}")
    if not 0 < n_queries <= n_gallery:
        raise ValueError(f"need 0 < n_queries <= n_gallery, got {n_queries} and {n_gallery}")
    measured = n_queries if full else min(n_queries, slice_queries)
    warm_q, warm_t = _queries(1_000, 5_000, dim, seed)  # load numba's parallel kernels and torch first
    evaluate_retrieval(GeneratedGallery(5_000, dim, seed), warm_q, warm_t, directions=("image_retrieval",))
    queries, targets = _queries(measured, n_gallery, dim, seed)
    result: dict[str, Any] = {"n_queries": n_queries, "n_gallery": n_gallery, "dim": dim, "source": source,
                              "measured_queries": measured}
    tmp = None
    if source == "store":
        if folder is None:
            tmp = folder = tempfile.mkdtemp(prefix="bench-retrieval-scale-")
        start = time.perf_counter()
        gallery: Any = wstore.write(_RowEncoder(seed, dim), range(n_gallery), "image", folder, shard_size=shard_size,
                                    batch_size=shard_size, progress=False)
        result["write_seconds"] = time.perf_counter() - start
    else:
        gallery = GeneratedGallery(n_gallery, dim, seed)
    try:
        result["rss_before_mb"] = _rss_mb()
        start, cpu = time.perf_counter(), time.process_time()
        metrics = evaluate_retrieval(gallery, queries, targets, chunk_size=chunk_size, device=device,
                                     directions=("image_retrieval",))
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    chunk = min(chunk_size or min(max(1, (256 << 20) // (4 * measured)), max(1024, measured)), n_gallery)
    cores = torch.get_num_threads()
    pairs = float(measured) * n_gallery
    result.update({
        "device": resolve_device(device, pairs * dim),
        "seconds": seconds,
        "pairs_per_second": pairs / seconds,
        "pairs_per_second_per_core": pairs / seconds / cores,
        "cpu_seconds": cpu_seconds,
        "pairs_per_cpu_second": pairs / cpu_seconds,
        "cores": cores,
        "cpu_count": os.cpu_count(),
        "chunk_rows": chunk,
        "block_mb": chunk * max(measured, 16) * 4 / 1e6,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **{k: v for k, v in metrics.items() if k.endswith(("recall@1", "recall@10", "mean_rank", "mAP"))},
    })
    if with_matmul:
        result["matmul_seconds"], result["matmul_cpu_seconds"] = _bare_matmul_seconds(measured, n_gallery, dim, chunk)
        result["ratio"] = seconds / result["matmul_seconds"]
        result["cpu_ratio"] = cpu_seconds / result["matmul_cpu_seconds"]
        result["matmul_pairs_per_second_per_core"] = pairs / result["matmul_seconds"] / cores
        result["matmul_pairs_per_cpu_second"] = pairs / result["matmul_cpu_seconds"]
    scale = n_queries / measured * (1 + n_queries / n_gallery) / (1 + measured / n_gallery)
    result["target_seconds"] = seconds * scale
    result["extrapolated"] = measured != n_queries
    return result


def report(out: dict[str, Any]) -> None:
    """Print a :func:`run` result as rates and ratios."""
    q, g, m = out["n_queries"], out["n_gallery"], out["measured_queries"]
    where = "from a store" if out["source"] == "store" else "generated on the fly"
    print(f"exact retrieval (evaluate_retrieval, captions query images), {m:,} queries x {g:,} gallery x "
          f"{out['dim']}-d, gallery {where}, device {out['device']}, {out['cores']} threads ({out['cpu_count']} CPUs)")
    if "write_seconds" in out:
        print(f"  store written in {out['write_seconds']:.1f} s (not part of the timings below)")
    print(f"  evaluate: {out['seconds']:.1f} s = {out['pairs_per_second']:.3g} pairs/s = "
          f"{out['pairs_per_second_per_core']:.3g} pairs/s per core (wall) = {out['pairs_per_cpu_second']:.3g} "
          f"pairs per CPU-second; R@1 {out['image_retrieval_recall@1']:.3f}")
    if "matmul_seconds" in out:
        print(f"  bare float32 matmul of the same shape: {out['matmul_seconds']:.1f} s = "
              f"{out['matmul_pairs_per_second_per_core']:.3g} pairs/s per core (wall) = "
              f"{out['matmul_pairs_per_cpu_second']:.3g} pairs per CPU-second")
        print(f"  ratio evaluate / matmul: {out['ratio']:.2f}x wall, {out['cpu_ratio']:.2f}x CPU time")
    print(f"  score block {out['chunk_rows']:,} x {m:,} ({out['block_mb']:.0f} MB); "
          f"peak RSS {out['peak_rss_mb']:.0f} MB ({out['rss_before_mb']:.0f} MB before evaluating)")
    label = f"EXTRAPOLATED from the {m:,}-query rate" if out["extrapolated"] else "measured"
    print(f"  {q:,} x {g:,} x {out['dim']}: {out['target_seconds'] / 60:.1f} min ({label})")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=FULL_QUERIES)
    parser.add_argument("--gallery", type=int, default=FULL_GALLERY)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--full", action="store_true", help="measure all queries instead of a slice")
    parser.add_argument("--slice-queries", type=int, default=10_000, help="queries measured unless --full")
    parser.add_argument("--chunk-size", type=int, default=None, help="gallery rows per score block")
    parser.add_argument("--shard-size", type=int, default=50_000)
    parser.add_argument("--source", choices=("store", "generated"), default="store")
    parser.add_argument("--dir", default=None, help="store folder (default: a temporary folder, removed after)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--no-matmul", action="store_true", help="skip timing the bare matmul")
    parser.add_argument("--json", action="store_true", help="print the result dict as JSON")
    args = parser.parse_args(argv)
    out = run(args.queries, args.gallery, args.dim, full=args.full, slice_queries=args.slice_queries,
              chunk_size=args.chunk_size, shard_size=args.shard_size, source=args.source, folder=args.dir,
              device=args.device, with_matmul=not args.no_matmul)
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        report(out)
    return out


if __name__ == "__main__":
    main()
