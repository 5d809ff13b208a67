"""The consequences of the gap in one call at 5,000 pairs x 512-d (target: under 10 s on a 2-core machine).

Times :func:`workbench.gap.consequences` (R@1 both ways, k-means on the 10,000 pooled items and its scores, top-1
flips under noise and int8, mixed-collection and intra-modal NDCG@10, 200 bootstrap resamples of each) with 10
class labels, and prints the share of the target it used. ``--quick`` runs 1,000 pairs (a smoke run in seconds) and
scales nothing: it reports its own time only. Run: `.venv/bin/python benchmarks/bench_consequences.py [--quick]`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from workbench import PairedEmbeddings
from workbench.gap import consequences

D, TARGET = 512, 10.0


def synthetic(n: int) -> tuple[PairedEmbeddings, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 10
    centres = rng.normal(size=(10, D)).astype(np.float32)
    shared = centres[labels] + rng.normal(size=(n, D)).astype(np.float32)
    a = shared + 0.8 * rng.normal(size=(n, D)).astype(np.float32) + 0.5
    b = shared + 0.8 * rng.normal(size=(n, D)).astype(np.float32) - 0.5
    return PairedEmbeddings.from_arrays(a, b, modalities=("image", "text")), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 pairs instead of 5,000")
    n = 1000 if parser.parse_args().quick else 5000
    paired, labels = synthetic(n)
    consequences(paired.sample(200, seed=1), labels=labels[:200], n_boot=10)  # warm up imports and numba
    start = time.perf_counter()
    out = consequences(paired, labels=labels, n_boot=200)
    took = time.perf_counter() - start
    print(f"consequences, {n:,} pairs x {D}: {took:.2f} s ({out.height} metrics with 200-resample intervals)")
    if n == 5000:
        print(f"target {TARGET:.0f} s: used {took / TARGET:.2f} of it ({'met' if took < TARGET else 'MISSED'})")


if __name__ == "__main__":
    main()
