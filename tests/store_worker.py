"""Embed a fixed set of random vectors into a store; the kill test in test_store.py SIGKILLs this at random points.

Usage: ``python tests/store_worker.py STORE N SHARD_SIZE SLEEP_SECONDS``. Prints ``ready`` once imports are done.
"""

from __future__ import annotations

import hashlib
import sys
import time

import numpy as np


class SlowNumpyEncoder:
    """A deterministic numpy encoder (tanh of a seeded projection) that sleeps a little per batch."""

    name = "slow-numpy-tanh"
    modalities = ("sensor",)
    preprocessing = ""

    def __init__(self, dim_in: int = 16, dim_out: int = 8, sleep: float = 0.0) -> None:
        self.weights = np.random.default_rng(7).normal(size=(dim_in, dim_out)).astype(np.float32)
        self.fingerprint = hashlib.sha256(self.weights.tobytes()).hexdigest()
        self.sleep = sleep
        self.calls = 0

    def encode(self, modality, items, batch_size=32):
        self.calls += 1
        time.sleep(self.sleep)
        return np.tanh(np.stack(items).astype(np.float32) @ self.weights)


def make_items(n: int) -> list[np.ndarray]:
    return list(np.random.default_rng(11).normal(size=(n, 16)).astype(np.float32))


def main(argv: list[str]) -> None:
    import pyarrow.parquet  # noqa: F401 - imported before "ready" so that kills land in the work, not the imports
    import tqdm.auto  # noqa: F401

    import workbench.store

    path, n, shard_size, sleep = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    items = make_items(n)
    print("ready", flush=True)
    workbench.store.embed(SlowNumpyEncoder(sleep=sleep), items, "sensor", store=path, shard_size=shard_size,
                          batch_size=shard_size, progress=False)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
