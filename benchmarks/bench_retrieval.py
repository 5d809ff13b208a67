"""Retrieval at the COCO-5k shape: ours vs CLIP_benchmark vs the bare score matmul.

5,000 images, 25,000 captions (5 per image), 512-d seeded unit vectors with planted matches. For each method:
the median wall time of several runs and the peak extra memory (peak RSS minus the RSS after the data exist),
each method in a fresh process. Methods:

- ``matmul``: ``texts @ images.T`` alone (float32 numpy), the floor any exact method pays once.
- ``ours``: ``evaluate_retrieval(..., with_map=False)``: R@1/5/10 both ways, mean and median ranks.
- ``ours+map``: the same plus mAP over all positives.
- ``clip_benchmark``: ``clip_benchmark.metrics.zeroshot_retrieval.recall_at_k`` run as its ``evaluate()`` runs it
  (batchify, batch size 64, k in 1, 5, 10, both directions). It takes about 100 s a run here; ``--peer-runs``.

Targets (issue 4): ours at least 30x faster than CLIP_benchmark, within 2x of the matmul, under 1 GB extra.
Run: ``.venv/bin/python benchmarks/bench_retrieval.py [--runs 5] [--peer-runs 1]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

N_IMAGES, PER_IMAGE, DIM = 5000, 5, 512


def make_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((N_IMAGES, DIM), dtype=np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    text_to_image = np.repeat(np.arange(N_IMAGES), PER_IMAGE)
    texts = images[text_to_image] + 0.9 * rng.standard_normal((len(text_to_image), DIM), dtype=np.float32) / 8
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    return images, texts, text_to_image


def run_method(name: str) -> tuple[float, dict]:
    images, texts, t2i = make_data()
    if name == "matmul":
        start = time.perf_counter()
        scores = texts @ images.T
        return time.perf_counter() - start, {"checksum": float(scores[0, 0])}
    if name in ("ours", "ours+map"):
        from workbench.retrieval import evaluate_retrieval

        evaluate_retrieval(images[:50], texts[:250], t2i[:250])  # compile the numba kernels (cached on disk)
        start = time.perf_counter()
        out = evaluate_retrieval(images, texts, t2i, with_map=name == "ours+map")
        return time.perf_counter() - start, out
    if name == "clip_benchmark":
        import torch
        from clip_benchmark.metrics.zeroshot_retrieval import batchify, recall_at_k

        start = time.perf_counter()
        scores = torch.from_numpy(texts) @ torch.from_numpy(images).t()
        positive_pairs = torch.zeros_like(scores, dtype=bool)
        positive_pairs[torch.arange(len(scores)), torch.from_numpy(t2i)] = True
        out = {}
        for k in (1, 5, 10):
            out[f"image_retrieval_recall@{k}"] = (
                batchify(recall_at_k, scores, positive_pairs, 64, "cpu", k=k) > 0).float().mean().item()
            out[f"text_retrieval_recall@{k}"] = (
                batchify(recall_at_k, scores.T, positive_pairs.T, 64, "cpu", k=k) > 0).float().mean().item()
        return time.perf_counter() - start, out
    raise ValueError(f"unknown method {name!r}")


def one(name: str) -> None:
    """Run one method in this process and print JSON: seconds, peak extra MB, metrics."""
    import torch  # noqa: F401 - libraries are loaded before the baseline: memory counts data, not code

    make_data()  # warm the allocator the same way the measured run will
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds, out = run_method(name)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "extra_mb": (peak - base) / 1024, "metrics": out}))


def measure(name: str, runs: int) -> dict:
    results = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in results),
        "extra_mb": max(r["extra_mb"] for r in results),
        "metrics": results[0]["metrics"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--peer-runs", type=int, default=1, help="CLIP_benchmark runs (about 100 s each)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(args.one)
        return
    table = {name: measure(name, args.runs) for name in ("matmul", "ours", "ours+map")}
    if args.peer_runs > 0:
        table["clip_benchmark"] = measure("clip_benchmark", args.peer_runs)
    base = table["matmul"]["seconds"]
    print(f"COCO-5k shape: {N_IMAGES} images x {N_IMAGES * PER_IMAGE} captions x {DIM}-d; median of runs")
    print(f"{'method':16s} {'seconds':>9s} {'x matmul':>9s} {'extra MB':>9s}")
    for name, r in table.items():
        print(f"{name:16s} {r['seconds']:9.3f} {r['seconds'] / base:9.2f} {r['extra_mb']:9.0f}")
    if "clip_benchmark" in table:
        speedup = table["clip_benchmark"]["seconds"] / table["ours"]["seconds"]
        agree = all(abs(table["ours"]["metrics"][k] - v) < 1e-6 for k, v in table["clip_benchmark"]["metrics"].items())
        print(f"\nours vs CLIP_benchmark: {speedup:.0f}x faster (target >= 30x); identical R@K: {agree}")
    ratio = table["ours"]["seconds"] / base
    print(f"ours / matmul: {ratio:.2f} (target <= 2); extra memory {table['ours']['extra_mb']:.0f} MB (target < 1024)")


if __name__ == "__main__":
    main()
