"""Exact vs approximate nearest-neighbour search with ``workbench.search.Index``: build time, latency, recall@10.

Data ("hard"): seeded random unit vectors in 512-d, half of them with planted near-duplicates (a noisy copy of
another row), so every query has a few close neighbours and many nearly equidistant far ones. Queries: 1,000
noisy copies (cosine about 0.9) of random indexed rows. Recall@10 is |approximate top-10 & exact top-10| / 10
against exact search (``faiss.knn``). Latency is per query, amortised over one batch of 1,000 queries.

Kinds: exact ``IndexFlatIP``; HNSW (M=32, efConstruction=40) at efSearch 32/128/256; IVF (nlist = 4 sqrt(N)) at
nprobe 8/32/64. Ratios are against exact (build time, latency).

Run: ``.venv/bin/python benchmarks/bench_search.py [--n 50000] [--dim 512] [--threads 2]`` (``--n 200000`` for the
full size: HNSW's build takes about a minute there).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def make_data(n: int, dim: int, n_queries: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    half = n // 2
    source = rng.integers(0, half, n - half)
    x[half:] = x[source] + 0.5 * rng.standard_normal((n - half, dim), dtype=np.float32)  # planted near-duplicates
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    noise = 0.5 / np.sqrt(dim) * rng.standard_normal((n_queries, dim), dtype=np.float32)  # cosine ~0.9 to its row
    q = x[rng.integers(0, n, n_queries)] + noise
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q


def run(n: int = 50_000, dim: int = 512, n_queries: int = 1000, threads: int | None = None) -> list[dict]:
    """Build time, ms/query and recall@10 per index kind and setting (dicts), on :func:`make_data`."""
    import faiss

    from workbench.search import Index

    threads = threads or len(os.sched_getaffinity(0))
    x, q = make_data(n, dim, n_queries)
    faiss.omp_set_num_threads(threads)
    _, exact_ids = faiss.knn(q, x, 10, metric=faiss.METRIC_INNER_PRODUCT)
    rows: list[dict] = []

    def measure(index: Index, kind: str, setting: str, build: float) -> None:
        index.search(q[:10], 10)  # warm up
        start = time.perf_counter()
        _, ids = index.search(q, 10)
        per_query = (time.perf_counter() - start) / len(q)
        recall = float(np.mean([len(np.intersect1d(a, e)) / 10 for a, e in zip(ids, exact_ids, strict=True)]))
        rows.append({"kind": kind, "setting": setting, "build_s": build, "ms_per_query": per_query * 1e3,
                     "recall_at_10": recall, "n": n, "dim": dim, "queries": len(q), "threads": threads,
                     "faiss": faiss.__version__})

    configs = [
        ("exact", {}, None, [None]),
        ("hnsw", {"M": 32, "ef_construction": 40}, "ef_search", [32, 128, 256]),
        ("ivf", {}, "nprobe", [8, 32, 64]),
    ]
    for kind, params, knob, values in configs:
        start = time.perf_counter()
        index = Index(x, kind=kind, threads=threads, measure_recall=False, **params)
        build = time.perf_counter() - start
        for value in values:
            if knob is not None:
                index.set_params(**{knob: value})
            setting = "" if knob is None else f"{knob}={value}"
            if kind == "ivf" and value == values[0]:
                setting += f" (nlist={index.params['nlist']})"
            measure(index, kind, setting, build)
        del index
    return rows


def report(rows: list[dict]) -> None:
    """Print :func:`run`'s rows as a table with ratios against exact search."""
    first = rows[0]
    print(f"faiss {first['faiss']}: {first['n']:,} x {first['dim']} rows, {first['queries']:,} queries, "
          f"{first['threads']} threads")
    exact_build, exact_ms = first["build_s"], first["ms_per_query"]
    header = f"{'kind':<6} {'setting':<26} {'build s':>8} {'x exact':>8} {'ms/query':>9} {'x exact':>8} {'R@10':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['kind']:<6} {r['setting']:<26} {r['build_s']:8.2f} {r['build_s'] / exact_build:8.1f} "
              f"{r['ms_per_query']:9.3f} {r['ms_per_query'] / exact_ms:8.2f} {r['recall_at_10']:6.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="indexed rows (default 50,000; the recipe used 200,000)")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    report(run(args.n, args.dim, args.queries, args.threads))


if __name__ == "__main__":
    main()
