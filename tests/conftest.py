from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


class CountingEncoder:
    """A TorchEncoder around a small seeded torch module that counts how often it encodes."""

    def __init__(self, seed: int = 0, dim_in: int = 6, dim_out: int = 4, preprocessing: str = "") -> None:
        import torch

        from workbench.encoders import TorchEncoder

        torch.manual_seed(seed)
        module = torch.nn.Sequential(torch.nn.Linear(dim_in, 16), torch.nn.Tanh(), torch.nn.Linear(16, dim_out))
        self.inner = TorchEncoder(module, "sensor", f"toy-mlp-{dim_in}-{dim_out}", preprocessing=preprocessing,
                                  device="cpu")
        self.name = self.inner.name
        self.modalities = self.inner.modalities
        self.preprocessing = preprocessing
        self.calls = 0
        self.items_seen = 0

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def encode(self, modality, items, batch_size=32):
        self.calls += 1
        self.items_seen += len(items)
        return self.inner.encode(modality, items, batch_size)


@pytest.fixture
def toy_encoder() -> CountingEncoder:
    return CountingEncoder()


@pytest.fixture
def sensor_items(rng) -> list[np.ndarray]:
    return [rng.normal(size=6).astype(np.float32) for _ in range(50)]


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A fresh cache folder (``$WORKBENCH_CACHE_DIR``) and an empty in-memory projection cache for one test."""
    from workbench import projection

    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    projection.clear_memory_cache()
    yield
    projection.clear_memory_cache()
