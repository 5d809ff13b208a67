"""Calibrated similarity on 5,000 items x 512-d with 1,000 permutations (target: under 10 s on a 2-core machine).

Times :func:`workbench.similarity.calibrated` per metric (the null only, ``n_bootstrap=0``, and with the default
100 half-sample interval), and the peer: the ``calibrated-similarity`` package's ``calibrate`` (Gröger et al. 2026),
which recomputes the metric once per permutation, timed on a few permutations and scaled to 1,000. The kNN metrics
permute precomputed neighbour lists; CKA does one d x d product per permutation (n d^2 flops), in bfloat16 where the
CPU has bfloat16 matrix units (the decisive permutations recomputed in float32), so its time is printed per
permutation too.

Run: `.venv/bin/python benchmarks/bench_similarity.py` (about a minute) or `--quick` (1,000 x 128, 200 permutations).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from workbench.similarity import calibrated, cka, cknna, mutual_knn

TARGET_S = 10.0


def timed(fn):
    """Wall seconds and the result; the process's CPU seconds go to CPU_SECONDS (on a shared machine the wall
    time grows with the load, the CPU time much less)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    CPU_SECONDS.append(time.process_time() - cpu)
    return time.perf_counter() - start, out


CPU_SECONDS: list[float] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 x 128 and 200 permutations")
    args = parser.parse_args()
    n, d, perms = (1000, 128, 200) if args.quick else (5000, 512, 1000)
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(n, d))
    a = (shared + rng.normal(size=(n, d))).astype(np.float32)
    b = (shared @ np.linalg.qr(rng.normal(size=(d, d)))[0] + rng.normal(size=(n, d))).astype(np.float32)
    print(f"{n} items x {d} dims, {perms} permutations (wall seconds; CPU seconds of this process in brackets)")
    print(f"bfloat16 matrix units (AMX / AVX512-BF16) on this CPU: {'yes' if _bf16_flags() else 'no'}")
    for metric in ("mutual_knn", "cknna"):  # compile the null kernels (cached on disk) before timing
        calibrated(metric, a[:50], b[:50], 5, n_bootstrap=0, progress=False)
    plain = {"mutual_knn": lambda x, y: mutual_knn(x, y, k=10), "cknna": lambda x, y: cknna(x, y, k=10), "cka": cka}
    for metric in ("mutual_knn", "cknna", "cka", "unbiased_cka"):
        t_null, s = timed(lambda m=metric: calibrated(m, a, b, perms, n_bootstrap=0, progress=False))
        cpu_null = CPU_SECONDS[-1]
        t_all, _ = timed(lambda m=metric: calibrated(m, a, b, perms, progress=False))
        line = (f"{metric:13s} null {t_null:6.2f} s [{cpu_null:6.2f}] ({1000 * t_null / perms:6.2f} ms/permutation), "
                f"with interval {t_all:6.2f} s [{CPU_SECONDS[-1]:6.2f}]; raw {s.raw:.3f}, calibrated "
                f"{s.calibrated:.3f}, p {s.p_value:.4f}")
        if metric in plain:
            peer = _peer(plain[metric], a, b, k=5 if n > 2000 else 10)
            if peer is not None:
                line += f"; calibrated-similarity ~{peer * perms:7.1f} s ({peer * perms / t_null:5.1f} x slower)"
        if args.quick:
            print(line)
        else:
            verdict = "OK" if t_null < TARGET_S else ("OK in CPU time" if cpu_null < TARGET_S else "TOO SLOW")
            print(f"{line}  [{verdict}: target < {TARGET_S:.0f} s]")


def _bf16_flags() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    return "amx_bf16" in text or "avx512_bf16" in text


def _peer(fn, a, b, k):
    """Seconds per permutation of calibrated-similarity's calibrate (recomputes the metric each time)."""
    try:
        import torch
        from calibrated_similarity import calibrate
    except ImportError:
        return None
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    t, _ = timed(lambda: calibrate(ta, tb, lambda x, y: float(fn(x.numpy(), y.numpy())), K=k))
    return t / (k + 1)


if __name__ == "__main__":
    main()
