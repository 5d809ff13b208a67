"""Issue 15's table: each job as our time over the loop a user would write (or the floor), measured in one run.

Rows (ratio = ours / baseline; below 1 we are faster):

- image / text encoding and training: from ``benchmarks/_bench_encode_train.py`` (branch ``pipeline``): a torch
  DataLoader with 8 workers, the bare encode loop, a bare PyTorch training loop ("not available" without it);
- exact R@K, COCO-5k shape (5,000 images x 25,000 captions, 512-d) on the GPU: ``evaluate_retrieval(...,
  device="cuda")`` from numpy arrays against torch's matmul with the copy to the GPU, and CLIP_benchmark's
  batchified ``recall_at_k`` on the same GPU when it is importable (``pip install --no-deps clip-benchmark``);
- exact R@K, 100k captions x 1M images on the GPU (tensors already there; ``--quick``: 10k x 100k): ours with
  ``directions=("image_retrieval",)`` against fp32 matmul + ``topk`` in 8,192-row blocks (recall checked equal);
- exact R@K, COCO-5k on all CPU cores: ours (``device="cpu"``) against the bare numpy matmul, and CLIP_benchmark on
  the CPU (not in ``--quick``; ``--quick`` uses 1,000 x 5,000);
- ``compare_correctors``, the 7 correctors of ``workbench.correct`` x 1,000 resamples on 500 pairs (CPU): the whole
  call, its resampling part (the call minus the correctors' own fits), against a ``gap_report`` per half-sample
  (the previous engine, timed on 20 half-samples and scaled to 8 x 1,000);
- ``gap_report`` of 5,000 pairs (probe off) on the GPU against numpy.

GPU rows say "no GPU" where torch sees none. Without polars (the H200 machine has none) a stand-in module is
installed before ``workbench`` is imported: no measured path uses polars.

Run: ``python benchmarks/bench_gpu.py [--quick]`` (``--quick``: under a minute on 2 cores, smaller shapes).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _polars_stand_in() -> bool:
    """Install a stand-in ``polars`` when the real one is missing (only the measured paths run). True if installed."""
    if importlib.util.find_spec("polars") is not None:
        return False

    class _Any:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __call__(self, *args: Any, **kwargs: Any) -> _Any:
            return _Any()

        def __getattr__(self, name: str) -> _Any:
            return _Any()

        def __getitem__(self, key: Any) -> _Any:
            return _Any()

        def __or__(self, other: Any) -> _Any:
            return self

        __ror__ = __or__

        def __mro_entries__(self, bases: Any) -> tuple[type, ...]:
            return (object,)

    def attribute(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Any()

    stub = types.ModuleType("polars")
    stub.__getattr__ = attribute  # type: ignore[method-assign]
    stub.__file__ = "<polars stand-in>"
    sys.modules["polars"] = stub
    return True


def best(fn: Callable[[], Any], runs: int, sync: Callable[[], None] = lambda: None) -> tuple[float, Any]:
    """Best wall time of ``runs`` calls after one warm-up call, and the last result."""
    out = fn()
    sync()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times), out


def coco(n_images: int, per_image: int = 5, dim: int = 512, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n_images, dim), dtype=np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    t2i = np.repeat(np.arange(n_images), per_image)
    texts = images[t2i] + 0.9 * rng.standard_normal((len(t2i), dim), dtype=np.float32) / 8
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    return images, texts, t2i


def row(job: str, ours: float | None, baseline_name: str, baseline: float | None, note: str = "") -> dict:
    ratio = ours / baseline if ours is not None and baseline else None
    return {"job": job, "ours_s": ours, "baseline_name": baseline_name, "baseline_s": baseline, "ratio": ratio,
            "note": note}


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _clip_benchmark_recall(scores: Any, t2i: Any, device: str) -> dict:
    import torch
    from clip_benchmark.metrics.zeroshot_retrieval import batchify, recall_at_k

    positive = torch.zeros_like(scores, dtype=torch.bool)
    positive[torch.arange(len(scores), device=scores.device), torch.as_tensor(t2i, device=scores.device)] = True
    out = {}
    for k in (1, 5, 10):
        out[f"image_retrieval_recall@{k}"] = (batchify(recall_at_k, scores, positive, 64, device, k=k) > 0
                                              ).float().mean().item()
        out[f"text_retrieval_recall@{k}"] = (batchify(recall_at_k, scores.T, positive.T, 64, device, k=k) > 0
                                             ).float().mean().item()
    return out


def _has_clip_benchmark() -> bool:
    return importlib.util.find_spec("clip_benchmark") is not None


# -- rows --------------------------------------------------------------------------------------------------------
def encode_train_rows(device: str, quick: bool) -> list[dict]:
    try:
        import _bench_encode_train as peer  # written on branch `pipeline`
    except ImportError:
        return [row(job, None, "(benchmarks/_bench_encode_train.py)", None, "not available")
                for job in ("image encoding", "text encoding", "training")]
    rows = []
    for name in ("bench_image_encoding", "bench_text_encoding", "bench_training"):
        try:
            result = getattr(peer, name)(device, quick)
        except Exception as exc:  # a failing peer row must not hide the others
            rows.append(row(name, None, "", None, f"failed: {type(exc).__name__}: {exc}"))
            continue
        for r in result if isinstance(result, list) else [result]:
            ours = r.get("ours_s", r.get("ours", r.get("rate")))
            rows.append({"job": r.get("job", name), "ours_s": ours, "baseline_name": r.get("baseline_name", ""),
                         "baseline_s": r.get("baseline"), "ratio": r.get("ratio"), "note": r.get("note", "")})
    return rows


def retrieval_gpu_rows(quick: bool, runs: int) -> list[dict]:
    if not _cuda():
        return [row("exact R@K 5k x 25k, GPU", None, "torch matmul + copy", None, "no GPU"),
                row("exact R@K 100k x 1M, GPU", None, "matmul + topk, 8,192-row blocks", None, "no GPU")]
    import torch

    from workbench.retrieval import evaluate_retrieval

    sync = torch.cuda.synchronize
    images, texts, t2i = coco(5000)
    ours, out = best(lambda: evaluate_retrieval(images, texts, t2i, device="cuda"), runs, sync)

    def floor() -> Any:
        return torch.from_numpy(texts).cuda() @ torch.from_numpy(images).cuda().T

    matmul, _ = best(floor, runs, sync)
    # every key equal to the CPU path, with 2,000 captions copied over captions of other images (exact ties)
    dup = texts.copy()
    src = np.random.default_rng(2).choice(len(dup), size=2000, replace=False)
    dup[(src + 35) % len(dup)] = dup[src]
    on_cpu, on_gpu = (evaluate_retrieval(images, dup, t2i, device=d) for d in ("cpu", "cuda"))
    differ = [k for k in on_cpu if on_cpu[k] != on_gpu[k]]
    note = ("all keys equal to the CPU path with 2,000 duplicate captions" if not differ else
            "DIFFER from the CPU path with 2,000 duplicate captions: " + ", ".join(
                f"{k} {on_gpu[k] - on_cpu[k]:+.1e}" for k in differ))
    rows = [row("exact R@K 5k x 25k, GPU", ours, "torch matmul + copy", matmul, note)]
    if _has_clip_benchmark():
        ti, tt = torch.from_numpy(images).cuda(), torch.from_numpy(texts).cuda()
        peer, peer_out = best(lambda: _clip_benchmark_recall(tt @ ti.T, t2i, "cuda"), 1, sync)
        same = all(abs(peer_out[k] - out[k]) < 1e-9 for k in peer_out)
        rows.append(row("exact R@K 5k x 25k, GPU", ours, "CLIP_benchmark (GPU)", peer,
                        "equal recall" if same else "recall differs (ties)"))
    n_queries, n_gallery = (10_000, 100_000) if quick else (100_000, 1_000_000)
    rng = np.random.default_rng(1)
    gallery = torch.randn((n_gallery, 512), generator=torch.Generator().manual_seed(1)).cuda()
    gallery /= gallery.norm(dim=1, keepdim=True)
    target = torch.from_numpy(rng.integers(0, n_gallery, size=n_queries)).cuda()
    queries = gallery[target] + 0.9 * torch.randn((n_queries, 512), device="cuda") / 8
    queries /= queries.norm(dim=1, keepdim=True)
    t2i_large = target.cpu().numpy()

    def ours_large() -> dict:
        return evaluate_retrieval(gallery, queries, t2i_large, directions=("image_retrieval",), with_map=False,
                                  device="cuda")

    def floor_large() -> np.ndarray:
        hits = torch.empty(n_queries, dtype=torch.int64, device="cuda")
        for s in range(0, n_queries, 8192):
            top = (queries[s : s + 8192] @ gallery.T).topk(10, dim=1).indices
            match = top == target[s : s + 8192, None]
            hits[s : s + 8192] = torch.where(match.any(1), match.int().argmax(1) + 1, 11)
        return hits.cpu().numpy()

    t_ours, got = best(ours_large, 1 if not quick else runs, sync)
    t_floor, hits = best(floor_large, 1 if not quick else runs, sync)
    same = all(abs(got[f"image_retrieval_recall@{k}"] - float(np.mean(hits <= k))) < 1e-12 for k in (1, 5, 10))
    rows.append(row(f"exact R@K {n_queries // 1000}k x {n_gallery // 1000}k, GPU", t_ours,
                    "matmul + topk, 8,192-row blocks", t_floor, "equal recall" if same else "recall DIFFERS"))
    return rows


def retrieval_cpu_rows(quick: bool, runs: int) -> list[dict]:
    from workbench._threads import available_cores
    from workbench.retrieval import evaluate_retrieval

    n_images = 1000 if quick else 5000
    images, texts, t2i = coco(n_images)
    evaluate_retrieval(images[:50], texts[:250], t2i[:250], device="cpu")  # numba compile (cached on disk)
    ours, out = best(lambda: evaluate_retrieval(images, texts, t2i, device="cpu"), runs)
    matmul, _ = best(lambda: texts @ images.T, runs)
    job = f"exact R@K {n_images // 1000}k x {5 * n_images // 1000}k, {available_cores()} CPU cores"
    rows = [row(job, ours, "numpy matmul", matmul)]
    if _has_clip_benchmark() and not quick:
        import torch

        peer, peer_out = best(lambda: _clip_benchmark_recall(torch.from_numpy(texts) @ torch.from_numpy(images).T,
                                                              t2i, "cpu"), 0)
        same = all(abs(peer_out[k] - out[k]) < 1e-9 for k in peer_out)
        rows.append(row(job, ours, "CLIP_benchmark (CPU)", peer, "equal recall" if same else "recall differs"))
    return rows


def compare_rows(quick: bool) -> list[dict]:
    from sklearn.base import clone

    import workbench
    from workbench.compare import compare_correctors, split_pairs
    from workbench.correct import ALL_CORRECTORS
    from workbench.gap import gap_report

    paired = workbench.datasets.load("liang2022/clip")
    correctors = [c() for c in ALL_CORRECTORS]
    train, test = split_pairs(paired, 0.5, seed=0)
    compare_correctors(paired, correctors[:1], n_resamples=10, probe=False, progress=False)  # warm imports
    fits = total = None
    if not quick:  # the 7 correctors' own fits (LinearAdapter trains, Procrustes takes an SVD) dominate this row
        start = time.perf_counter()
        for c in correctors:
            clone(c).fit(*train.matched())
        fits = time.perf_counter() - start
        start = time.perf_counter()
        compare_correctors(paired, correctors, n_resamples=1000, probe=False, progress=False)
        total = time.perf_counter() - start
    shifts = {f"GapShift({d})": workbench.correct.GapShift(d) for d in (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)}
    start, cpu_start = time.perf_counter(), time.process_time()
    compare_correctors(paired, shifts, n_resamples=1000, probe=False, progress=False)
    cheap, cheap_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    xa, xb = test.matched()
    rng = np.random.default_rng(0)
    halves = [np.sort(rng.choice(test.n_pairs, size=test.n_pairs // 2, replace=False)) for _ in range(20)]
    halves = halves[:5] if quick else halves
    start = time.perf_counter()
    for h in halves:
        gap_report(xa[h], xb[h], probe=False)
    per_half = (time.perf_counter() - start) / len(halves)
    before = per_half * 1000 * (len(correctors) + 1)
    name = f"gap_report per half-sample (scaled from {len(halves)})"
    rows = [row("compare_correctors 7 GapShifts x 1,000, 500 pairs (CPU)", cheap, name, before,
                f"fits negligible: the resampling engine; {cheap_cpu:.2f} s of CPU time (wall above it: a busy "
                "machine)")]
    if total is not None and fits is not None:
        rows.append(row("compare_correctors 7 x 1,000, 500 pairs (CPU)", total, name, before + fits,
                        f"the 7 of workbench.correct; their fits alone take {fits:.2f} s"))
    if _cuda() and not quick:
        start = time.perf_counter()
        compare_correctors(paired, correctors, n_resamples=1000, probe=False, progress=False, device="cuda")
        rows.append(row("compare_correctors 7 x 1,000, GPU", time.perf_counter() - start, "the same on the CPU",
                        total))
    else:
        rows.append(row("compare_correctors 7 x 1,000, GPU", None, "the same on the CPU", total,
                        "no GPU" if not _cuda() else "not in --quick"))
    return rows


def gap_rows(quick: bool, runs: int) -> list[dict]:
    if not _cuda():
        return [row("gap_report 5,000 pairs, GPU", None, "numpy", None, "no GPU")]
    import torch

    from workbench.gap import gap_report

    images, texts, _ = coco(5000, per_image=1)
    numpy_s, expected = best(lambda: gap_report(images, texts, probe=False), 1)
    ours, got = best(lambda: gap_report(images, texts, probe=False, device="cuda"), runs, torch.cuda.synchronize)
    worst = max(abs(got[k] - v) for k, v in expected.items() if v is not None)
    return [row("gap_report 5,000 pairs, GPU", ours, "numpy", numpy_s, f"max difference {worst:.1e}")]


def similarity_rows(quick: bool, runs: int) -> list[dict]:
    """Calibrated CKA (1,000 permutations of 5,000 x 512; --quick: 200 of 2,000 x 256) on the GPU against the
    same call on this machine's CPU (bfloat16 on AMX where it has it); both must decide alike."""
    job = "calibrated CKA, 1,000 permutations, 5,000 x 512, GPU"
    if not _cuda():
        return [row(job, None, "the same on the CPU", None, "no GPU")]
    import torch

    from workbench.similarity import calibrated

    n, d, perms = (2000, 256, 200) if quick else (5000, 512, 1000)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, d)).astype(np.float32)
    b = (a + 2.0 * rng.normal(size=(n, d))).astype(np.float32)
    options = {"n_permutations": perms, "n_bootstrap": 0, "progress": False}
    cpu_s, on_cpu = best(lambda: calibrated("cka", a, b, **options), 1)
    ours, on_gpu = best(lambda: calibrated("cka", a, b, **options, device="cuda"), runs, torch.cuda.synchronize)
    same = (on_gpu.p_value, on_gpu.calibrated) == (on_cpu.p_value, on_cpu.calibrated)
    return [row(job if not quick else "calibrated CKA, 200 permutations, 2,000 x 256, GPU", ours,
                "the same on the CPU", cpu_s, "same p-value and score" if same else "p-value or score differs")]


def environment() -> str:
    import torch

    from workbench._threads import available_cores

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.processor() or platform.machine()}, "
            f"{available_cores()} cores; {gpu}; python {platform.python_version()}, numpy {np.__version__}, "
            f"torch {torch.__version__}")


def show(rows: list[dict]) -> None:
    def fmt(x: Any) -> str:
        return "-" if x is None else (f"{x:.4g}" if isinstance(x, float) else str(x))

    print("| job | ours (s) | baseline | baseline (s) | ours / baseline | note |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['job']} | {fmt(r['ours_s'])} | {r['baseline_name']} | {fmt(r['baseline_s'])} | "
              f"{fmt(r['ratio'])} | {r['note']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller shapes, one timed run: under a minute")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per measurement (best of; default 3)")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["encode", "gpu", "cpu", "compare", "gap", "similarity"])
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    stand_in = _polars_stand_in()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(environment() + ("; polars stand-in" if stand_in else "") + ("; --quick" if args.quick else ""))
    rows: list[dict] = []
    steps = [("encode", lambda: encode_train_rows(device, args.quick)),
             ("gpu", lambda: retrieval_gpu_rows(args.quick, runs)),
             ("cpu", lambda: retrieval_cpu_rows(args.quick, runs)),
             ("compare", lambda: compare_rows(args.quick)),
             ("gap", lambda: gap_rows(args.quick, runs)),
             ("similarity", lambda: similarity_rows(args.quick, runs))]
    for name, step in steps:
        if name not in args.skip:
            rows += step()
    show(rows)


if __name__ == "__main__":
    main()
