"""The sharded embedding store: SIGKILL resume, bit flips, torn manifests, identity checks and lazy readers."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from store_worker import SlowNumpyEncoder, make_items

import workbench.store
import workbench.store._writer
from workbench.store import EmbeddingStore, StoreCorruptionWarning, embed, verify

WORKER = Path(__file__).with_name("store_worker.py")


def _manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_bytes().splitlines()]


def _write(folder, n=300, shard_size=50, encoder=None, **kwargs):
    encoder = encoder or SlowNumpyEncoder()
    return encoder, embed(encoder, make_items(n), "sensor", store=folder, shard_size=shard_size,
                          batch_size=shard_size, progress=False, **kwargs)


def _done(target) -> int:
    """Shards recorded in the store's manifest so far (0 before the first)."""
    manifest = target / "manifest.jsonl"
    return manifest.read_bytes().count(b"\n") if manifest.exists() else 0  # complete lines only (one may be torn)


def test_killed_runs_resume_to_the_same_store_bit_for_bit(tmp_path):
    n, shard_size = 3000, 50
    reference = tmp_path / "reference"
    _write(reference, n, shard_size)
    target = tmp_path / "killed"
    rng = random.Random(2026)
    kills = temp_left = torn_left = 0
    started = time.monotonic()
    slow = 1.0  # a loaded machine writes its first shard later: kills come later until some shards have landed
    while kills < 24 or (not _done(target) and kills < 60):
        proc = subprocess.Popen([sys.executable, str(WORKER), str(target), str(n), str(shard_size), "0.05"],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(slow * rng.uniform(0.05, 0.2))  # the first shard lands after ~0.17 s, then one per ~65 ms
        if kills >= 6 and not _done(target):
            slow = min(slow * 1.5, 10.0)
        if proc.poll() is not None:  # finished before the kill: nothing left to interrupt
            proc.communicate()
            break
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        kills += 1
        temp_left += len(list(target.glob(".*.tmp")))
        manifest = target / "manifest.jsonl"
        torn_left += manifest.exists() and not manifest.read_bytes().endswith(b"\n") and manifest.stat().st_size > 0
    assert kills >= 20
    done_before = len(_manifest(target)) if (target / "manifest.jsonl").exists() else 0
    assert 0 < done_before < n // shard_size  # the kills really interrupted the work

    encoder = SlowNumpyEncoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no shard was found damaged
        store = embed(encoder, make_items(n), "sensor", store=target, shard_size=shard_size, batch_size=shard_size,
                      progress=False)
    elapsed = time.monotonic() - started
    print(f"\nkill test: {kills} SIGKILLs, {temp_left} temp files and {torn_left} torn manifest lines left behind, "
          f"{done_before}/{n // shard_size} shards done before the final run, {encoder.calls} recomputed; "
          f"{elapsed:.1f} s")
    assert verify(target).is_empty()
    assert not list(target.glob(".*.tmp"))
    ids = store.ids().to_numpy()
    assert len(ids) == n and np.array_equal(np.sort(ids), np.arange(n)) and np.array_equal(ids, np.arange(n))
    got, want = store.to_embeddings(), workbench.store.open(reference).to_embeddings()
    assert got.vectors.tobytes() == want.vectors.tobytes()
    sums = {e["file"]: e["sha256"] for e in _manifest(target)}
    assert sums == {e["file"]: e["sha256"] for e in _manifest(reference)}  # the shard files are identical too


def test_a_flipped_byte_is_named_by_verify_and_only_that_shard_is_recomputed(tmp_path):
    _, store = _write(tmp_path)
    before = store.to_embeddings().vectors.copy()
    shard = tmp_path / "shard-000003.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0x10
    shard.write_bytes(bytes(data))

    report = verify(tmp_path)
    assert report["shard"].to_list() == [3] and report["file"].to_list() == ["shard-000003.parquet"]
    assert report["problem"].to_list() == ["damaged: checksum does not match"]
    with pytest.warns(StoreCorruptionWarning, match="shard-000003.parquet is damaged"):
        partial = workbench.store.open(tmp_path)
    assert len(partial) == 250 and 150 not in partial.ids().to_list()  # the damaged rows are never read

    encoder = SlowNumpyEncoder()
    with pytest.warns(StoreCorruptionWarning, match="recomputing"):
        _, repaired = _write(tmp_path, encoder=encoder)
    assert encoder.calls == 1 and encoder.sleep == 0
    assert verify(tmp_path).is_empty()
    assert repaired.to_embeddings().vectors.tobytes() == before.tobytes()


def test_a_deleted_shard_is_reported_missing_and_rewritten(tmp_path):
    _write(tmp_path)
    (tmp_path / "shard-000001.parquet").unlink()
    assert verify(tmp_path).select("shard", "problem").rows() == [(1, "missing")]
    encoder = SlowNumpyEncoder()
    with pytest.warns(StoreCorruptionWarning, match="missing"):
        _write(tmp_path, encoder=encoder)
    assert encoder.calls == 1 and verify(tmp_path).is_empty()


def test_torn_manifest_line_and_leftover_temp_files(tmp_path):
    _write(tmp_path)
    manifest = tmp_path / "manifest.jsonl"
    lines = manifest.read_bytes().splitlines(keepends=True)
    manifest.write_bytes(b"".join(lines[:-1]) + lines[-1][:37])  # the crash tore the last line
    leftover = tmp_path / ".shard-000006.parquet.x1y2.tmp"
    leftover.write_bytes(b"half a shard")
    assert verify(tmp_path).select("shard", "problem").rows() == [(5, "missing")]  # the lines say 300 items
    assert len(workbench.store.open(tmp_path)) == 250

    encoder = SlowNumpyEncoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, store = _write(tmp_path, encoder=encoder)
    assert encoder.calls == 1  # only the shard whose line was torn
    assert not leftover.exists()
    assert [e["shard"] for e in _manifest(tmp_path)] == [0, 1, 2, 3, 4, 5]  # every line parses again
    assert store.complete and len(store) == 300


def test_a_run_with_more_items_extends_the_store_and_recomputes_the_partial_last_shard(tmp_path):
    _write(tmp_path, n=120)  # shards of 50, 50, 20
    encoder = SlowNumpyEncoder()
    _, store = _write(tmp_path, n=300, encoder=encoder)
    assert encoder.calls == 4  # shard 2 (now 50 rows) and shards 3-5
    assert store.ids().to_list() == list(range(300)) and verify(tmp_path).is_empty()


def test_identity_mismatch_raises(tmp_path):
    _write(tmp_path)
    other = SlowNumpyEncoder()
    other.fingerprint = "other-weights"
    with pytest.raises(ValueError, match="fingerprint differ"):
        _write(tmp_path, encoder=other)
    renamed = SlowNumpyEncoder()
    renamed.preprocessing = "scaled by 2"
    with pytest.raises(ValueError, match="preprocessing differ"):
        _write(tmp_path, encoder=renamed)
    with pytest.raises(ValueError, match="shard_size=50, not 40"):
        _write(tmp_path, shard_size=40)
    with pytest.raises(ValueError, match="ids must be unique"):
        _write(tmp_path / "dup", n=3, ids=["a", "b", "a"])


def test_lazy_readers_return_the_right_rows(tmp_path):
    items = make_items(230)
    ids = [f"item-{i:04d}" for i in range(230)]
    store = embed(SlowNumpyEncoder(), items, "sensor", store=tmp_path, shard_size=64, ids=ids, progress=False)
    expected = embed(SlowNumpyEncoder(), items, "sensor", cache=False, ids=ids, progress=False)

    assert isinstance(store, EmbeddingStore) and len(store) == 230 and store.n_shards == 4 and store.dim == 8
    assert store.ids().to_list() == ids
    lazy = store.scan()
    assert isinstance(lazy, pl.LazyFrame)
    picked = lazy.filter(pl.col("id").is_in(["item-0007", "item-0200"])).collect()
    np.testing.assert_array_equal(np.stack(picked["embedding"].to_list()), expected.vectors[[7, 200]])

    sizes, seen_ids, chunks = [], [], []
    for batch_ids, vectors in store.iter_batches(50):
        assert vectors.dtype == np.float32 and vectors.shape[1] == 8
        sizes.append(len(vectors))
        seen_ids += list(batch_ids)
        chunks.append(vectors)
    assert max(sizes) <= 50 and sum(sizes) == 230 and seen_ids == ids
    assert np.concatenate(chunks).tobytes() == expected.vectors.tobytes()

    materialised = store.to_embeddings(modality="sensor")
    assert materialised.vectors.tobytes() == expected.vectors.tobytes()
    assert materialised.metadata["id"].to_list() == ids and materialised.model == "slow-numpy-tanh"
    reopened = workbench.store.open(tmp_path)
    assert reopened.complete and reopened.files == store.files


def test_progress_bar_is_silent_when_asked(tmp_path, capsys):
    _write(tmp_path)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    encoder = SlowNumpyEncoder()
    embed(encoder, make_items(100), "sensor", store=tmp_path / "loud", shard_size=50, batch_size=10, progress=True)
    err = capsys.readouterr().err
    assert "100/100" in err and "item" in err
    # a resumed run starts the bar at the rows already stored
    (tmp_path / "loud" / "shard-000001.parquet").unlink()
    with pytest.warns(StoreCorruptionWarning):
        embed(encoder, make_items(100), "sensor", store=tmp_path / "loud", shard_size=50, batch_size=10, progress=True)
    err = capsys.readouterr().err
    assert " 50/100" in err and "100/100" in err


def test_the_bar_moves_batch_by_batch(tmp_path, monkeypatch):
    import tqdm.auto

    updates = []
    real = tqdm.auto.tqdm

    class Recording(real):
        def update(self, n=1):
            updates.append(n)
            return super().update(n)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recording)
    embed(SlowNumpyEncoder(), make_items(120), "sensor", store=tmp_path, shard_size=50, batch_size=20, progress=True)
    assert updates == [20, 20, 10, 20, 20, 10, 20]  # per batch within each shard of 50, 50 and 20 rows


def test_store_files_are_created_with_usual_permissions(tmp_path):
    _write(tmp_path)
    mode = os.stat(tmp_path / "shard-000000.parquet").st_mode & 0o777
    assert mode == 0o666 & ~_current_umask()


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_shards_are_plain_parquet_with_a_fixed_size_embedding_column(tmp_path):
    import pyarrow.parquet as pq

    _, store = _write(tmp_path, n=120, shard_size=50)
    expected = embed(SlowNumpyEncoder(), make_items(120), "sensor", cache=False, progress=False).vectors
    table = pq.read_table(store.files[0])
    column = table.column("embedding")
    assert str(column.type) == "fixed_size_binary[32]"  # 8 float32 per row, one fixed-size value each
    # read with nothing but numpy: little-endian float32, row-major
    raw = np.frombuffer(b"".join(column.to_pylist()), dtype="<f4").reshape(-1, 8)
    np.testing.assert_array_equal(raw, expected[:50])
    assert json.loads(table.schema.metadata[b"workbench.embedding"]) == {"dtype": "<f4", "dim": 8}
    # polars through the store's scan sees a fixed-size float array
    frame = store.scan().collect()
    assert frame.schema["embedding"] == pl.Array(pl.Float32, 8)
    np.testing.assert_array_equal(frame["embedding"].to_numpy(), expected)


def test_a_format_1_store_is_read_and_resumed_in_its_own_format(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    real = workbench.store._writer._shard_bytes
    monkeypatch.setattr(workbench.store._writer, "VERSION", 1)  # a store begun by the previous release
    monkeypatch.setattr(workbench.store._writer, "_shard_bytes", lambda ids, vectors, version: real(ids, vectors, 1))
    _write(tmp_path, n=100, shard_size=50)
    monkeypatch.undo()
    header = json.loads((tmp_path / "store.json").read_bytes())
    assert header["version"] == 1
    (tmp_path / "shard-000001.parquet").unlink()
    with pytest.warns(StoreCorruptionWarning):
        _, store = _write(tmp_path, n=100, shard_size=50)  # resumed by this release
    types = {str(pq.read_schema(f).field("embedding").type) for f in store.files}
    assert types == {"fixed_size_list<element: float>[8]"}
    expected = embed(SlowNumpyEncoder(), make_items(100), "sensor", cache=False, progress=False).vectors
    assert store.to_embeddings().vectors.tobytes() == expected.tobytes()
    np.testing.assert_array_equal(store.scan().collect()["embedding"].to_numpy(), expected)
