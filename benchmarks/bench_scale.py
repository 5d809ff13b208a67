"""Issue 8's scale figures in one run: store throughput, exact retrieval rate, FAISS latency/recall, UMAP at scale.

Sections (each also runs alone from its own script, which documents its method):

1. store     -- ``workbench.embed(..., store=...)`` write throughput against a bare ``np.save`` of the same arrays
                (``bench_store.py``; target >= 0.5x, with the SHA-256 ceiling and the like-for-like ratio);
2. retrieval -- exact R@K rate per core, queries x gallery streamed from a store (``bench_retrieval_scale.py``;
                the 100k x 1M figure is extrapolated from the measured rate unless ``--full``);
3. faiss     -- build time, latency per query and recall@10 of exact, HNSW and IVF indexes (``bench_search.py``);
4. umap      -- UMAP fitted on a seeded sample and ``transform`` for the rest in batches (``bench_umap_scale.py``).

Run: ``.venv/bin/python benchmarks/bench_scale.py`` (the issue's sizes: about 30 minutes on 2 cores) or
``--quick`` (reduced sizes, a few minutes); ``--only store,faiss`` picks sections.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_retrieval_scale
import bench_search
import bench_store
import bench_umap_scale

SIZES = {
    # section: (full, quick)
    "store": ({"n": 200_000}, {"n": 50_000, "repeats": 2}),
    "retrieval": ({"n_queries": 100_000, "n_gallery": 1_000_000}, {"n_queries": 2_000, "n_gallery": 200_000}),
    "faiss": ({"n": 200_000}, {"n": 20_000, "n_queries": 500}),
    "umap": ({"n_points": 1_000_000, "sample": 100_000}, {"n_points": 50_000, "sample": 10_000}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (a few minutes)")
    parser.add_argument("--full", action="store_true",
                        help="measure the 100k x 1M retrieval in full instead of extrapolating from a slice")
    parser.add_argument("--only", default="store,retrieval,faiss,umap", help="comma-separated sections")
    args = parser.parse_args()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SIZES))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {sorted(SIZES)}")

    print(f"workbench scale benchmarks on {len(os.sched_getaffinity(0))} cores ({'quick' if args.quick else 'full'})")
    for section in sections:
        sizes = SIZES[section][1 if args.quick else 0]
        print(f"\n== {section} ==")
        start = time.perf_counter()
        if section == "store":
            bench_store.report(bench_store.run(**sizes))
        elif section == "retrieval":
            bench_retrieval_scale.report(bench_retrieval_scale.run(**sizes, full=args.full))
        elif section == "faiss":
            bench_search.report(bench_search.run(**sizes))
        else:
            bench_umap_scale.report(bench_umap_scale.run(**sizes))
        print(f"({section}: {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
