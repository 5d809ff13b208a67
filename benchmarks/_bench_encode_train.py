"""Encode and training rows of ``benchmarks/bench_gpu.py``: ours against the loop a user writes, in one run.

Each function returns a list of rows ``{"job", "rate", "unit", "baseline_name", "baseline", "ratio", "note"}``:
``rate`` is our throughput and ``baseline`` the named loop's, both in ``unit`` (higher is better), and
``ratio = rate / baseline`` (the issue's targets: image encoding >= 1.0 against an 8-worker DataLoader, >= 2 with
opt-in GPU decoding; training >= 0.9 against the bare loop). A GPU row on a machine without one says "no GPU".

- :func:`bench_image_encoding`: JPEG files (640 x 480, synthetic photos) through a random-init ViT-B-32:
  ``OpenCLIPEncoder.encode(paths, num_workers=W)`` against a torch ``DataLoader`` with W workers (PIL + the
  model's transform per image, ``pin_memory`` on CUDA, ``model.encode_image``); on CUDA also bf16 autocast
  (``precision="amp_bf16"``) and opt-in GPU decoding (``image_decode="device"``).
- :func:`bench_text_encoding`: captions through the same model against tokenizer + ``encode_text`` in batches.
- :func:`bench_training`: ``ContrastiveTrainer`` (two MLP towers, fp32 and bf16 on CUDA) steps/s against a bare
  PyTorch loop of the same towers, loss and optimiser.

Warm-up before timing; best of ``repeats`` interleaved runs. Nothing is downloaded.
Run alone: ``python benchmarks/_bench_encode_train.py --quick`` (CPU, well under a minute) or ``--device cuda``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _row(job: str, rate: float, unit: str, baseline_name: str, baseline: float, note: str = "") -> dict[str, Any]:
    ratio = rate / baseline if baseline and math.isfinite(baseline) else float("nan")
    return {"job": job, "rate": rate, "unit": unit, "baseline_name": baseline_name, "baseline": baseline,
            "ratio": ratio, "note": note}


def _no_gpu(device: str, jobs: list[str]) -> list[dict[str, Any]] | None:
    import torch

    if str(device).startswith("cuda") and not torch.cuda.is_available():
        return [_row(job, float("nan"), "", "", float("nan"), "no GPU") for job in jobs]
    return None


def _best(fn: Callable[[], Any], repeats: int, sync: Callable[[], None]) -> float:
    """Best wall seconds of ``repeats`` calls (after the caller's warm-up)."""
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return min(times)


def _sync(device: str) -> Callable[[], None]:
    import torch

    return torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)


def synthetic_jpegs(folder: str, n: int, size: tuple[int, int] = (480, 640), seed: int = 0) -> list[str]:
    """``n`` photo-like JPEGs (smooth gradients, texture noise; quality 90) of ``size`` (H, W) in ``folder``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    paths = []
    for i in range(n):
        phase = rng.uniform(0, 6.28, 3)
        base = 127 + 100 * np.stack([np.sin(xx / (40 + i % 7) + phase[0]), np.cos(yy / (30 + i % 5) + phase[1]),
                                     np.sin((xx + yy) / 50 + phase[2])], axis=-1)
        img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        path = os.path.join(folder, f"img{i:05d}.jpg")
        Image.fromarray(img).save(path, quality=90)
        paths.append(path)
    return paths


class _PILDataset:
    """The user's Dataset: open with PIL, convert to RGB, the model's transform."""

    def __init__(self, paths: list[str], transform: Any) -> None:
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Any:
        from PIL import Image

        with Image.open(self.paths[i]) as img:
            return self.transform(img.convert("RGB"))


def bench_image_encoding(device: str = "cpu", quick: bool = True) -> list[dict[str, Any]]:
    """Image encoding rows (images/s): ours against a DataLoader loop with as many workers."""
    import torch

    workers = 2 if quick else 8
    jobs = [f"image encoding, ViT-B-32, {workers} workers"]
    if str(device).startswith("cuda"):
        jobs += ["image encoding, bf16 autocast", "image encoding, GPU JPEG decoding (opt-in)"]
    skipped = _no_gpu(device, jobs)
    if skipped is not None:
        return skipped
    from workbench.encoders.openclip import OpenCLIPEncoder

    n, batch, repeats = (16, 8, 1) if quick else (4096, 256, 3)
    sync = _sync(device)
    encoder = OpenCLIPEncoder("ViT-B-32", device=device)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        paths = synthetic_jpegs(folder, n)
        model, dev = encoder.model, encoder.device

        def bare() -> None:
            loader = torch.utils.data.DataLoader(_PILDataset(paths, encoder.preprocess), batch_size=batch,
                                                 num_workers=workers, pin_memory=dev.type == "cuda")
            with torch.inference_mode():
                out = [model.encode_image(x.to(dev, non_blocking=True)) for x in loader]
                torch.cat(out).cpu()

        def ours(enc: OpenCLIPEncoder = encoder) -> None:
            enc.encode("image", paths, batch_size=batch, num_workers=workers)

        encoder.encode("image", paths[:batch], batch_size=batch, num_workers=0)  # warm-up
        t_bare = _best(bare, repeats, sync)
        t_ours = _best(ours, repeats, sync)
        rows.append(_row(jobs[0], n / t_ours, "img/s", f"DataLoader loop, {workers} workers", n / t_bare))
        if str(device).startswith("cuda"):
            for job, kwargs in ((jobs[1], {"precision": "amp_bf16"}), (jobs[2], {"image_decode": "device"})):
                other = OpenCLIPEncoder("ViT-B-32", device=device, **kwargs)
                other.encode("image", paths[:batch], batch_size=batch, num_workers=0)
                t_other = _best(lambda other=other: ours(other), repeats, sync)
                rows.append(_row(job, n / t_other, "img/s", f"DataLoader loop, {workers} workers", n / t_bare))
    return rows


def bench_text_encoding(device: str = "cpu", quick: bool = True) -> list[dict[str, Any]]:
    """Text encoding rows (captions/s): ours against tokenizer + encode_text in batches."""
    import torch

    jobs = ["text encoding, ViT-B-32"]
    skipped = _no_gpu(device, jobs)
    if skipped is not None:
        return skipped
    from workbench.encoders.openclip import OpenCLIPEncoder

    n, batch, repeats = (64, 32, 1) if quick else (25_000, 1024, 3)
    rng = np.random.default_rng(0)
    words = ["a", "photo", "of", "dog", "cat", "on", "the", "grass", "red", "car", "street", "two", "people"]
    captions = [" ".join(rng.choice(words, size=rng.integers(5, 15))) for _ in range(n)]
    encoder = OpenCLIPEncoder("ViT-B-32", device=device)
    sync = _sync(device)

    def bare() -> None:
        with torch.inference_mode():
            out = [encoder.model.encode_text(encoder.tokenizer(captions[s : s + batch]).to(encoder.device))
                   for s in range(0, n, batch)]
            torch.cat(out).cpu()

    def ours() -> None:
        encoder.encode("text", captions, batch_size=batch)

    encoder.encode("text", captions[:batch], batch_size=batch)
    t_bare, t_ours = _best(bare, repeats, sync), _best(ours, repeats, sync)
    return [_row(jobs[0], n / t_ours, "txt/s", "tokenizer + encode_text loop", n / t_bare)]


def bench_training(device: str = "cpu", quick: bool = True) -> list[dict[str, Any]]:
    """Training rows (steps/s): ContrastiveTrainer against a bare PyTorch loop of the same towers."""
    import torch
    import torch.nn.functional as F

    precisions = ["fp32", "bf16"] if str(device).startswith("cuda") else ["fp32"]
    jobs = [f"contrastive training, {p}" for p in precisions]
    skipped = _no_gpu(device, jobs)
    if skipped is not None:
        return skipped
    from workbench.towers import FeatureHead
    from workbench.train import ContrastiveTrainer

    n, dim, hidden, batch, epochs = (1024, 64, 128, 256, 2) if quick else (65_536, 512, 2048, 1024, 3)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(n, dim)).astype(np.float32)
    b = (a @ rng.normal(size=(dim, dim)).astype(np.float32) / np.sqrt(dim)).astype(np.float32)
    steps = epochs * (n // batch)
    sync = _sync(device)
    rows = []
    for precision, job in zip(precisions, jobs, strict=True):

        def ours(precision: str = precision) -> None:
            ContrastiveTrainer(FeatureHead(dim, 256, hidden=hidden, seed=0), FeatureHead(dim, 256, hidden=hidden,
                               seed=1), epochs=epochs, batch_size=batch, device=device,
                               precision=precision).fit(a, b, progress=False)

        def bare(precision: str = precision) -> None:
            ta = FeatureHead(dim, 256, hidden=hidden, seed=0).to(device)
            tb = FeatureHead(dim, 256, hidden=hidden, seed=1).to(device)
            scale = torch.tensor(math.log(1 / 0.07), device=device, requires_grad=True)
            opt = torch.optim.AdamW([*ta.parameters(), *tb.parameters(), scale], lr=2e-3, weight_decay=1e-4)
            xa, xb = torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)
            target = torch.arange(batch, device=device)
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            losses = []
            for _ in range(epochs):
                order = torch.randperm(n, device=device)
                for s in range(0, n - batch + 1, batch):
                    idx = order[s : s + batch]
                    with torch.autocast(torch.device(device).type, dtype=dtype, enabled=precision != "fp32"):
                        logits = scale.exp() * F.normalize(ta(xa[idx]), dim=-1) @ F.normalize(tb(xb[idx]), dim=-1).T
                        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    losses.append(loss.detach())
            torch.stack(losses).cpu()

        ours()  # warm-up (kernels, allocator)
        bare()
        t_ours, t_bare = _best(ours, 2 if quick else 3, sync), _best(bare, 2 if quick else 3, sync)
        rows.append(_row(job, steps / t_ours, "steps/s", "bare PyTorch loop, same towers", steps / t_bare))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="small sizes (CPU: well under a minute)")
    args = parser.parse_args(argv)
    for bench in (bench_image_encoding, bench_text_encoding, bench_training):
        for row in bench(args.device, args.quick):
            print(f"{row['job']:<48} ours {row['rate']:10.1f} {row['unit']:<8} {row['baseline_name']:<34} "
                  f"{row['baseline']:10.1f}  ratio {row['ratio']:.2f} {row['note']}")


if __name__ == "__main__":
    main()
