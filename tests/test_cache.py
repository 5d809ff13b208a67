"""The embedding cache: hits, misses, corruption, atomicity and the once-per-model fingerprint."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import CountingEncoder

import workbench
import workbench.store
import workbench.store._cache
import workbench.store._format
from workbench.encoders import base as encoder_base
from workbench.store import CacheCorruptionWarning, EmbeddingCache, embed


def _cache_files(folder) -> list:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _entries(folder) -> list:
    """Cache entries: one embedding store folder (with its store.json) per key."""
    return sorted(p.parent for p in folder.rglob("store.json"))


def _shards(folder) -> list:
    return sorted(folder.rglob("shard-*.parquet"))


def _fresh(items, seed=0):
    """What an untouched encoder with the same weights computes, with no cache involved."""
    return embed(CountingEncoder(seed=seed), items, "sensor", cache=False, progress=False).vectors


def test_first_call_encodes_second_call_reads_disk(toy_encoder, sensor_items, tmp_path):
    first = embed(toy_encoder, sensor_items, "sensor", cache_dir=tmp_path, batch_size=16, progress=False)
    assert toy_encoder.calls == 4 and toy_encoder.items_seen == 50  # ceil(50 / 16) batches
    [entry] = _entries(tmp_path)
    # the entry is an embedding store: same rows, verified, readable by the store API
    assert workbench.store.verify(entry).height == 0
    assert workbench.store.open(entry).to_embeddings().vectors.tobytes() == first.vectors.tobytes()
    second = embed(toy_encoder, sensor_items, "sensor", cache_dir=tmp_path, batch_size=16, progress=False)
    assert toy_encoder.calls == 4  # not called again
    assert second.vectors.tobytes() == first.vectors.tobytes()
    assert second.model == toy_encoder.name and second.modality == "sensor"

    # independent expectation: the torch module applied by hand, rows normalised
    import torch

    module = toy_encoder.inner.module
    with torch.no_grad():
        raw = module(torch.as_tensor(np.stack(sensor_items))).numpy().astype(np.float64)
    np.testing.assert_allclose(first.vectors, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_any_change_of_inputs_is_a_miss(sensor_items, tmp_path):
    enc = CountingEncoder(seed=0)
    embed(enc, sensor_items, "sensor", cache_dir=tmp_path, progress=False)
    changed = [x.copy() for x in sensor_items]
    changed[7][2] += 1e-3
    embed(enc, changed, "sensor", cache_dir=tmp_path, progress=False)
    embed(enc, sensor_items[::-1], "sensor", cache_dir=tmp_path, progress=False)
    other_weights = CountingEncoder(seed=1)
    embed(other_weights, sensor_items, "sensor", cache_dir=tmp_path, progress=False)
    other_preprocessing = CountingEncoder(seed=0, preprocessing="scaled by 2")
    embed(other_preprocessing, sensor_items, "sensor", cache_dir=tmp_path, progress=False)
    assert len(_entries(tmp_path)) == 5
    assert other_weights.calls == 1 and other_preprocessing.calls == 1
    # same weights, preprocessing and items from a new encoder object: a hit
    again = CountingEncoder(seed=0)
    embed(again, sensor_items, "sensor", cache_dir=tmp_path, progress=False)
    assert again.calls == 0


def test_file_items_are_keyed_by_content(tmp_path):
    class FileEncoder(CountingEncoder):
        def encode(self, modality, items, batch_size=32):
            arrays = [np.frombuffer(Path(p).read_bytes(), dtype=np.float32) for p in items]
            return super().encode(modality, arrays, batch_size)

    files = []
    for i in range(3):
        path = tmp_path / f"item{i}.bin"
        path.write_bytes(np.arange(6, dtype=np.float32).tobytes() if i else np.ones(6, np.float32).tobytes())
        files.append(path)
    enc = FileEncoder()
    cache = tmp_path / "cache"
    e = embed(enc, files, "sensor", cache_dir=cache, progress=False)
    assert e.metadata["path"].to_list() == [str(p) for p in files]
    embed(enc, [str(p) for p in files], "sensor", cache_dir=cache, progress=False)  # str paths: same content key
    assert enc.calls == 1
    files[0].write_bytes(np.full(6, 2.0, np.float32).tobytes())  # edit a file in place
    embed(enc, files, "sensor", cache_dir=cache, progress=False)
    assert enc.calls == 2


@pytest.mark.parametrize("damage", ["truncate", "flip_bit", "garbage", "empty", "delete"])
def test_damaged_cache_shard_is_detected_and_recomputed(sensor_items, tmp_path, damage):
    enc = CountingEncoder()
    embed(enc, sensor_items, "sensor", cache_dir=tmp_path, progress=False)
    [path] = _shards(tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip_bit":
        data[len(data) // 2] ^= 0x01  # inside the embedding column's values: the parquet file stays readable
    elif damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    else:
        data = bytearray()
    if damage == "delete":
        path.unlink()
    else:
        path.write_bytes(bytes(data))

    with pytest.warns(CacheCorruptionWarning, match="damaged"):
        again = embed(enc, sensor_items, "sensor", cache_dir=tmp_path, progress=False)
    assert enc.calls == 2  # recomputed, not returned
    np.testing.assert_array_equal(again.vectors, _fresh(sensor_items))
    # the rewritten entry is whole again: a third call is a clean hit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        third = embed(enc, sensor_items, "sensor", cache_dir=tmp_path, progress=False)
    assert enc.calls == 2 and third.vectors.tobytes() == again.vectors.tobytes()


def test_a_large_entry_recomputes_only_its_damaged_shard(tmp_path, monkeypatch):
    monkeypatch.setattr(workbench.store._cache, "CACHE_SHARD_SIZE", 20)
    items = [np.full(6, float(i)) + np.arange(6) for i in range(70)]  # 4 shards: 20, 20, 20, 10
    enc = CountingEncoder()
    first = embed(enc, items, "sensor", cache_dir=tmp_path, batch_size=10, progress=False)
    assert enc.items_seen == 70
    shards = _shards(tmp_path)
    assert len(shards) == 4
    shards[2].write_bytes(shards[2].read_bytes()[:-7])
    with pytest.warns(CacheCorruptionWarning, match="shard-000002"):
        again = embed(enc, items, "sensor", cache_dir=tmp_path, batch_size=10, progress=False)
    assert enc.items_seen == 90  # only the 20 rows of the damaged shard were encoded again
    assert again.vectors.tobytes() == first.vectors.tobytes()


def test_put_and_get_round_trip_and_a_silent_flip_is_caught(tmp_path):
    cache = EmbeddingCache(tmp_path)
    vectors = np.eye(4, dtype=np.float32)
    folder = cache.put("a" * 64, vectors, {"encoder": "given", "modality": "sensor"})
    assert cache.get("a" * 64, n_rows=4).tobytes() == vectors.tobytes()
    assert cache.get("a" * 64, n_rows=5) is None  # another item count is another entry
    # rewrite the shard as a valid shard of the same size holding a changed vector: only the checksum can tell
    [shard] = _shards(folder)
    bad = vectors.copy()
    bad[2, 2] = np.nextafter(np.float32(1), np.float32(2))
    data = workbench.store._format._shard_bytes(np.arange(4, dtype=np.int64), bad)
    assert len(data) == shard.stat().st_size
    shard.write_bytes(bytes(data))
    with pytest.warns(CacheCorruptionWarning, match="checksum"):
        assert cache.get("a" * 64, n_rows=4) is None


def test_fingerprint_is_computed_once_per_loaded_model(sensor_items, tmp_path, monkeypatch):
    calls = []
    real = encoder_base.weights_fingerprint
    monkeypatch.setattr(encoder_base, "weights_fingerprint", lambda m: calls.append(1) or real(m))
    enc = CountingEncoder()
    for k in range(4):
        embed(enc, sensor_items[: 10 + k], "sensor", cache_dir=tmp_path, progress=False)
    embed(enc, sensor_items[:10], "sensor", cache_dir=tmp_path, progress=False)
    assert len(calls) == 1


def test_failed_encoding_leaves_no_cache_file(sensor_items, tmp_path):
    class Broken(CountingEncoder):
        def encode(self, modality, items, batch_size=32):
            if self.calls >= 1:
                raise RuntimeError("out of memory in batch 2")
            return super().encode(modality, items, batch_size)

    with pytest.raises(RuntimeError, match="batch 2"):
        embed(Broken(), sensor_items, "sensor", cache_dir=tmp_path, batch_size=20, progress=False)
    assert _shards(tmp_path) == [] and not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("manifest.jsonl"))

    class NaNs(CountingEncoder):
        def encode(self, modality, items, batch_size=32):
            out = super().encode(modality, items, batch_size)
            out[3] = np.nan
            return out

    with pytest.raises(ValueError, match="1 of 50 rows contain NaN"):
        embed(NaNs(), sensor_items, "sensor", cache_dir=tmp_path, progress=False)
    assert _shards(tmp_path) == [] and not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("manifest.jsonl"))


def test_bad_calls_are_clear_errors(toy_encoder, sensor_items, tmp_path):
    with pytest.raises(ValueError, match=r"encodes \('sensor',\), not 'image'"):
        embed(toy_encoder, sensor_items, "image", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="no sensor items"):
        embed(toy_encoder, [], "sensor", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="3 ids for 50 items"):
        embed(toy_encoder, sensor_items, "sensor", ids=[1, 2, 3], cache_dir=tmp_path)
    with pytest.raises(TypeError, match="cannot fingerprint an item of type object"):
        embed(toy_encoder, [object()], "sensor", cache_dir=tmp_path)

    class WrongShape(CountingEncoder):
        def encode(self, modality, items, batch_size=32):
            return super().encode(modality, items, batch_size)[:-1]

    with pytest.raises(ValueError, match="returned shape"):
        embed(WrongShape(), sensor_items, "sensor", cache_dir=tmp_path, progress=False)


def test_cache_dir_defaults_to_the_environment(monkeypatch, tmp_path, sensor_items, toy_encoder):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "env-cache"))
    workbench.embed(toy_encoder, sensor_items[:5], "sensor", progress=False)
    assert len(_entries(tmp_path / "env-cache")) == 1
    assert EmbeddingCache().clear() == 1
    assert _entries(tmp_path / "env-cache") == []


def test_text_items_fill_the_caption_column(tmp_path):
    import torch

    from workbench.encoders import TorchEncoder

    torch.manual_seed(0)
    table = torch.nn.EmbeddingBag(256, 8)
    enc = TorchEncoder(table, "text", "toy-bytes",
                       preprocess=lambda texts: torch.nn.utils.rnn.pad_sequence(
                           [torch.tensor(list(t.encode()) or [0]) for t in texts], batch_first=True))
    e = embed(enc, ["a photo of a cat", "a dog"], "text", ids=["c1", "c2"], cache_dir=tmp_path, progress=False)
    assert e.metadata.to_dict(as_series=False) == {"id": ["c1", "c2"], "caption": ["a photo of a cat", "a dog"]}
    assert isinstance(enc, workbench.encoders.Encoder)
