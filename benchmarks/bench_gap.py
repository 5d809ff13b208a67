"""`gap_report` on 5,000 pairs x 512-d (target: under 2 s on a 2-core machine).

Prints the time of the full report (with the cross-validated modality probe), without the probe, and the ratio of
each to one 5,000 x 5,000 x 512 float32 matmul, the unit of work the O(N^2) terms are made of.
Run: `.venv/bin/python benchmarks/bench_gap.py`.
"""

from __future__ import annotations

import time

import numpy as np

from workbench.gap import gap_report

N, D, REPEATS = 5000, 512, 3


def best_of(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(N, D)).astype(np.float32)
    a = shared + 0.8 * rng.normal(size=(N, D)).astype(np.float32) + 0.5
    b = shared + 0.8 * rng.normal(size=(N, D)).astype(np.float32) - 0.5
    x = a / np.linalg.norm(a, axis=1, keepdims=True)
    matmul = best_of(lambda: x @ x.T)
    full = best_of(lambda: gap_report(a, b))
    no_probe = best_of(lambda: gap_report(a, b, probe=False))
    print(f"one {N}x{N}x{D} float32 matmul:       {matmul:7.3f} s")
    print(f"gap_report, probe=False:             {no_probe:7.3f} s  ({no_probe / matmul:6.1f} x matmul)")
    print(f"gap_report (with the modality probe): {full:7.3f} s  ({full / matmul:6.1f} x matmul)")
    print(f"target < 2 s: {'OK' if full < 2.0 else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
