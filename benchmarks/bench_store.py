"""Store write throughput: ``workbench.embed(..., store=PATH)`` vs a bare ``np.save`` of the same arrays.

200k x 512 float32 (400 MB) of unit rows, produced by a no-op encoder (it returns precomputed rows), so only the
store's own work is timed: row validation and normalisation, parquet serialisation, SHA-256, the temporary file,
fsync, ``os.replace``, the folder fsync and the fsynced manifest line, shard after shard.

- bare: ``np.save`` of the same shard arrays, one ``.npy`` per shard (no fsync: the floor);
- bare + fsync: the same with an fsync per file (what durability costs by itself);
- store: ``workbench.embed(encoder, rows, "sensor", store=folder, shard_size=SHARD)`` into an empty folder;
- resume: the same call again (every shard verified by its SHA-256, nothing encoded).

Target: store >= 0.5 x bare throughput. The best of REPEATS interleaved runs is kept.
Run: `.venv/bin/python benchmarks/bench_store.py` (about a minute).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import numpy as np

N, DIM, SHARD, REPEATS = 200_000, 512, 20_000, 3


class NoOpEncoder:
    """Returns precomputed rows for the item positions it is given."""

    name, modalities, fingerprint, preprocessing = "noop", ("sensor",), "noop-0", ""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix

    def encode(self, modality, items, batch_size=32):
        return self.matrix[items[0] : items[-1] + 1]


def bare(folder: str, matrix: np.ndarray, fsync: bool) -> None:
    for k, start in enumerate(range(0, len(matrix), SHARD)):
        path = os.path.join(folder, f"shard-{k:06d}.npy")
        with open(path, "wb") as handle:
            np.save(handle, matrix[start : start + SHARD])
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())


def main() -> None:
    import workbench.cache

    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(N, DIM)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    items = list(range(N))
    megabytes = matrix.nbytes / 1e6
    best: dict[str, float] = {}
    root = tempfile.mkdtemp(prefix="bench-store-")
    try:
        for _ in range(REPEATS):
            for label in ("bare", "bare + fsync", "store", "resume"):
                folder = os.path.join(root, "store" if label == "resume" else label)
                if label != "resume":
                    shutil.rmtree(folder, ignore_errors=True)
                    os.makedirs(folder)
                start = time.perf_counter()
                if label.startswith("bare"):
                    bare(folder, matrix, fsync=label.endswith("fsync"))
                else:
                    store = workbench.cache.embed(NoOpEncoder(matrix), items, "sensor", store=folder,
                                                  shard_size=SHARD, batch_size=SHARD, progress=False)
                    assert len(store) == N
                best[label] = min(best.get(label, np.inf), time.perf_counter() - start)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"{N:,} x {DIM} float32 = {megabytes:.0f} MB in shards of {SHARD:,} rows, best of {REPEATS}")
    for label, seconds in best.items():
        print(f"  {label:<13} {seconds:6.2f} s  {megabytes / seconds:8.0f} MB/s")
    ratio = best["bare"] / best["store"]
    print(f"store / bare np.save throughput: {ratio:.2f}x (target >= 0.5x) -> {'PASS' if ratio >= 0.5 else 'FAIL'}")
    print(f"store / bare np.save + fsync: {best['bare + fsync'] / best['store']:.2f}x")


if __name__ == "__main__":
    main()
