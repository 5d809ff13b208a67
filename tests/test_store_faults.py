"""The store/cache fault suite (issue 13): kills, Ctrl-C, encoder errors, flipped bytes, deleted files, two writers.

After each fault, ``verify`` names the damage and the next run repairs it (recomputing exactly the shards named),
with every id exactly once and rows bit-identical to a clean run. Also the regressions of items 13.4-13.7 and 13.12
(part). Fast: seconds, not a soak.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from store_worker import SlowNumpyEncoder, make_items

import workbench.store
from workbench.store import CacheCorruptionWarning, EmbeddingCache, StoreCorruptionWarning, embed, verify

WORKER = Path(__file__).with_name("store_worker.py")
N, SHARD = 300, 50  # six shards


def _write(folder, n=N, encoder=None, items=None, **kwargs):
    encoder = encoder or SlowNumpyEncoder()
    items = make_items(n) if items is None else items
    return encoder, embed(encoder, items, "sensor", store=folder, shard_size=SHARD, batch_size=SHARD, progress=False,
                          **kwargs)


def _clean_rows(n=N) -> bytes:
    """The rows of a clean run, computed by hand: tanh of the seeded projection, each row divided by its norm."""
    raw = np.tanh(np.stack(make_items(n)).astype(np.float32) @ SlowNumpyEncoder().weights)
    return (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32).tobytes()


@pytest.fixture(scope="module")
def clean():
    return _clean_rows()


@functools.cache
def _clean_store_rows(n: int = N) -> bytes:
    """The rows of a clean, uninterrupted store run."""
    with tempfile.TemporaryDirectory() as folder:
        return _write(Path(folder) / "clean", n)[1].to_embeddings().vectors.tobytes()


def _assert_whole(folder, clean, n=N):
    """Verified whole: every id exactly once, rows bit-identical to a clean run (and equal to the hand computation)."""
    assert verify(folder).is_empty()
    store = workbench.store.open(folder)
    assert store.complete and np.array_equal(store.ids().to_numpy(), np.arange(n))  # every id exactly once
    got = store.to_embeddings().vectors
    np.testing.assert_allclose(np.frombuffer(got.tobytes(), np.float32), np.frombuffer(clean, np.float32), atol=1e-6)
    assert got.tobytes() == _clean_store_rows(n)
    return got.tobytes()


def _lines(folder) -> list[bytes]:
    return (folder / "manifest.jsonl").read_bytes().splitlines(keepends=True)


def _flip(path: Path, position: int, bit: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= bit
    path.write_bytes(bytes(data))


def _repair(folder, expected_calls: int, clean) -> None:
    encoder = SlowNumpyEncoder()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreCorruptionWarning)
        _write(folder, encoder=encoder)
    assert encoder.calls == expected_calls
    _assert_whole(folder, clean)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, clean):
    """A clean store; each test copies it."""
    folder = tmp_path_factory.mktemp("reference") / "store"
    _write(folder)
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != ".lock"}, _assert_whole(folder, clean)


def _copy(reference, folder: Path) -> Path:
    folder.mkdir()
    for name, data in reference[0].items():
        (folder / name).write_bytes(data)
    return folder


# -- 13.4: verify cross-checks the manifest against the files on disk; the next run repairs what it names ----------
def test_a_deleted_manifest_is_named_with_every_orphan_shard_and_all_are_recomputed(tmp_path, reference, clean):
    folder = _copy(reference, tmp_path / "s")
    (folder / "manifest.jsonl").unlink()
    report = verify(folder)
    assert report["problem"].to_list()[0].startswith("missing: the manifest is gone")
    assert report["file"].to_list() == ["manifest.jsonl"] + [f"shard-{i:06d}.parquet" for i in range(6)]
    assert all(p.startswith("orphan") for p in report["problem"].to_list()[1:])
    _repair(folder, 6, clean)  # no line vouches for any shard: all six are recomputed


def test_edited_and_garbled_manifest_lines_are_named_and_exactly_their_shards_recomputed(tmp_path, reference, clean):
    import pyarrow.parquet as pq

    from workbench.store._manifest import _line_bytes

    folder = _copy(reference, tmp_path / "s")
    lines = _lines(folder)
    edited = json.loads(lines[2])  # shard 2: a believable edit (stop and rows agree) without fixing the checksum
    edited["stop"], edited["rows"] = 140, 40
    lines[2] = json.dumps(edited, sort_keys=True).encode() + b"\n"
    lines[3] = b'{"shard": 3, "file": "shard-0000\n'  # garbled in the middle of the file
    # shard 4: the file replaced by a valid 49-row shard, its line re-sealed with the new size and checksum but the
    # old row count: a self-consistent line whose rows disagree with its file
    table = pq.read_table(folder / "shard-000004.parquet").slice(0, 49)
    pq.write_table(table, folder / "shard-000004.parquet", compression="none")
    entry = {k: v for k, v in json.loads(lines[4]).items() if k != "line_sha256"}
    data = (folder / "shard-000004.parquet").read_bytes()
    entry["bytes"], entry["sha256"] = len(data), workbench.store.sha256_hex(data)
    lines[4] = _line_bytes(entry)
    sealed = {k: v for k, v in json.loads(lines[5]).items() if k != "line_sha256"}  # shard 5: checksum re-sealed,
    sealed["sha256"] = "0" * 64  # but its sha256 disagrees with its file
    lines[5] = _line_bytes(sealed)
    (folder / "manifest.jsonl").write_bytes(b"".join(lines))

    report = verify(folder)
    problems = dict(zip(report["file"].to_list(), report["problem"].to_list(), strict=True))
    assert "was edited" in report.filter(report["shard"] == 2)["problem"].to_list()[0]
    assert any("is garbled" in p for p in report.filter(report["file"] == "manifest.jsonl")["problem"].to_list())
    assert problems["shard-000004.parquet"] == "damaged: the file holds 49 rows, its manifest line says 50"
    assert problems["shard-000005.parquet"] == "damaged: checksum does not match"
    assert sorted(set(report.filter(report["problem"] == "missing")["shard"].to_list())) == [2, 3]
    with pytest.warns(StoreCorruptionWarning):
        assert len(workbench.store.open(folder)) == 100  # only shards 0 and 1 are believed
    _repair(folder, 4, clean)  # shards 2-5: exactly those named


def test_an_orphan_shard_beyond_the_items_is_named_and_removed(tmp_path, reference, clean):
    folder = _copy(reference, tmp_path / "s")
    (folder / "shard-000009.parquet").write_bytes((folder / "shard-000001.parquet").read_bytes())
    assert verify(folder).select("shard", "problem").rows() == [(9, "orphan: a shard file no manifest line records")]
    _repair(folder, 0, clean)
    assert not (folder / "shard-000009.parquet").exists()


# -- 13.5: a damaged store.json --------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["garbage", "flip_value", "flip_name", "truncate", "delete"])
def test_a_damaged_cache_header_is_recomputed_with_a_warning_naming_the_folder(tmp_path, damage, clean):
    items = make_items(N)
    first = embed(SlowNumpyEncoder(), items, "sensor", cache_dir=tmp_path, batch_size=N, progress=False)
    [header] = list(tmp_path.rglob("store.json"))
    text = header.read_bytes()
    if damage == "garbage":
        header.write_bytes(b"\x00\xffnot json")
    elif damage == "flip_value":  # valid JSON, another encoder name: only the header's checksum can tell
        header.write_bytes(text.replace(b'"slow-numpy-tanh"', b'"slow-numpy-tanj"'))
    elif damage == "flip_name":  # a flipped byte in a field's name
        header.write_bytes(text.replace(b'"header_sha256"', b'"header_sha257"'))
    elif damage == "truncate":
        header.write_bytes(text[: len(text) // 2])
    else:
        header.unlink()
    encoder = SlowNumpyEncoder()
    with pytest.warns(CacheCorruptionWarning, match=str(header.parent.name)):
        again = embed(encoder, items, "sensor", cache_dir=tmp_path, batch_size=N, progress=False)
    assert encoder.calls == 1  # recomputed
    assert again.vectors.tobytes() == first.vectors.tobytes()
    np.testing.assert_allclose(again.vectors.reshape(-1), np.frombuffer(clean, np.float32), atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # repaired: a clean hit
        third = embed(encoder, items, "sensor", cache_dir=tmp_path, batch_size=N, progress=False)
    assert encoder.calls == 1 and third.vectors.tobytes() == first.vectors.tobytes()


@pytest.mark.parametrize("damage", ["garbage", "flip_value", "delete"])
def test_a_damaged_store_header_is_a_clear_error_naming_the_file(tmp_path, reference, damage):
    folder = _copy(reference, tmp_path / "s")
    header = folder / "store.json"
    if damage == "garbage":
        header.write_bytes(b"{\"format\": \"workbench.st")
    elif damage == "flip_value":
        _flip(header, header.read_bytes().index(b'"shard_size": 50') + 15)  # 50 -> 51: valid JSON
    else:
        header.unlink()
    report = verify(folder)
    assert report["file"].to_list()[0] == "store.json" and report["shard"].to_list()[0] is None
    with pytest.raises(ValueError, match=r"store\.json.*(delete the folder|new folder)") as raised:
        _write(folder)
    assert os.fspath(folder) in str(raised.value)
    assert sorted(p.name for p in folder.glob("shard-*")) == [f"shard-{i:06d}.parquet" for i in range(6)]  # untouched


# -- 13.6: a store is for one item list -------------------------------------------------------------------------
def _refused(folder, match, **kwargs):
    encoder = SlowNumpyEncoder()
    with pytest.raises(ValueError, match=match) as raised:
        _write(folder, encoder=encoder, **kwargs)
    message = str(raised.value)
    assert os.fspath(folder) in message and "one item list" in message and "new folder" in message
    assert "delete" in message and encoder.calls == 0
    return message


def test_fewer_items_into_a_store_is_refused_and_the_store_is_untouched(tmp_path, reference, clean):
    folder = _copy(reference, tmp_path / "s")
    _refused(folder, "holds 300 items and this call gives 100", n=100)  # shard-aligned: was "incomplete" forever
    _refused(folder, "holds 300 items and this call gives 120", n=120)
    _assert_whole(folder, clean)
    _repair(folder, 0, clean)  # the right list still resumes (nothing to do)


def test_other_items_or_ids_into_a_store_are_refused(tmp_path, reference, clean):
    folder = _copy(reference, tmp_path / "s")
    other = list(np.random.default_rng(99).normal(size=(N, 16)).astype(np.float32))
    _refused(folder, r"items \[0, 50\) \(shard 0\) differ", items=other)  # was: the old rows, silently
    changed = make_items(N)
    changed[170] = changed[170] + 1
    _refused(folder, r"items \[150, 200\) \(shard 3\) differ", items=changed)
    _refused(folder, r"items \[0, 50\) \(shard 0\) differ", ids=[f"x{i}" for i in range(N)])
    longer = other + make_items(10)
    _refused(folder, r"shard 0\) differ", items=longer)  # growing is fine only by appending to the same items
    _assert_whole(folder, clean)


def test_an_incomplete_store_message_is_true(tmp_path, reference, clean):
    folder = _copy(reference, tmp_path / "s")
    (folder / "shard-000002.parquet").unlink()
    with pytest.raises(ValueError, match=r"workbench\.embed resumes"), pytest.warns(StoreCorruptionWarning):
        workbench.store.as_store(folder, "images")
    _repair(folder, 1, clean)  # what the message says works
    assert workbench.store.as_store(folder, "images") is not None


# -- 13.7: finished shards are kept on any exception ------------------------------------------------------------
class _FailingEncoder(SlowNumpyEncoder):
    def __init__(self, fail_on_call: int, error: type[BaseException]) -> None:
        super().__init__()
        self.fail_on_call, self.error = fail_on_call, error

    def encode(self, modality, items, batch_size=32):
        if self.calls + 1 == self.fail_on_call:
            self.calls += 1
            raise self.error("stop here")
        return super().encode(modality, items, batch_size)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize(("batch_size", "fail_on_call", "finished"), [(50, 5, 4), (10, 23, 4), (50, 1, 0)])
def test_finished_shards_survive_an_exception_and_only_the_rest_is_encoded(tmp_path, clean, error, batch_size,
                                                                           fail_on_call, finished):
    items = make_items(N)
    with pytest.raises(error, match="stop here"):
        embed(_FailingEncoder(fail_on_call, error), items, "sensor", store=tmp_path, shard_size=SHARD,
              batch_size=batch_size, progress=False)
    manifest = tmp_path / "manifest.jsonl"
    recorded = [json.loads(line)["shard"] for line in manifest.read_bytes().splitlines()] if manifest.exists() else []
    assert sorted(recorded) == list(range(finished))  # every shard encoded before the failure, none after
    assert not list(tmp_path.glob(".*.tmp"))
    assert set(verify(tmp_path)["problem"].to_list()) <= {"missing"}
    encoder = SlowNumpyEncoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        embed(encoder, items, "sensor", store=tmp_path, shard_size=SHARD, batch_size=SHARD, progress=False)
    assert encoder.calls == 6 - finished  # only the rest
    _assert_whole(tmp_path, clean)


# -- 13.12 (part): only regular files are read; cache keys never leave the cache --------------------------------
def _finishes(fn, fifo: Path, seconds: float = 20.0):
    """Run ``fn`` in a thread; if it blocks on the FIFO, unblock it by writing and fail."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        with open(fifo, "wb") as unblock:
            unblock.write(b"x")
        thread.join(5)
        pytest.fail("reading the FIFO item blocked")
    return outcome


@pytest.mark.parametrize("how", ["cache", "no-cache", "store", "str"])
def test_a_fifo_or_directory_item_is_a_clear_error_not_a_hang(tmp_path, how):
    from conftest import CountingEncoder

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    good = tmp_path / "a.npy"
    good.write_bytes(b"x")
    items = [good, str(fifo)] if how == "str" else [good, fifo]
    kwargs = {"cache": False} if how == "no-cache" else {"store": tmp_path / "st"} if how == "store" else {}
    outcome = _finishes(lambda: embed(CountingEncoder(), items, "sensor", cache_dir=tmp_path / "c", progress=False,
                                      **kwargs), fifo)
    error = outcome.get("error")
    assert isinstance(error, ValueError), outcome
    assert "item 1" in str(error) and str(fifo) in str(error) and "FIFO" in str(error)
    assert not (tmp_path / "st").exists() and not (tmp_path / "c").exists()  # refused before anything is written
    with pytest.raises(ValueError, match=r"item 0 .* is a directory"):
        embed(CountingEncoder(), [tmp_path], "sensor", cache_dir=tmp_path / "c", progress=False)


@pytest.mark.parametrize("key", ["../../..", "..", "a/../../b", "/etc", "", "x" * 200])
def test_a_cache_key_is_never_a_path(tmp_path, key):
    cache = EmbeddingCache(tmp_path / "cache" / "inner")
    with pytest.raises(ValueError, match="cache key"):
        cache.put(key, np.eye(2, dtype=np.float32), {"modality": "toy"})
    with pytest.raises(ValueError, match="cache key"):
        cache.get(key, n_rows=2)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # nothing written anywhere


# -- the fault suite ------------------------------------------------------------------------------------------------
def test_sigkill_at_several_points_then_verify_names_only_missing_shards_and_a_run_repairs(tmp_path):
    n, shard_size = 400, 50  # eight shards, ~50 ms each in the worker
    target = tmp_path / "killed"
    for wanted in (0, 2, 5):  # kill right away, then once 2 and 5 shards are recorded
        proc = subprocess.Popen([sys.executable, str(WORKER), str(target), str(n), str(shard_size), "0.05"],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 20
        while wanted and time.monotonic() < deadline and proc.poll() is None:
            manifest = target / "manifest.jsonl"
            if manifest.exists() and manifest.read_bytes().count(b"\n") >= wanted:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        report = verify(target) if (target / "store.json").exists() else None
        if report is not None:  # after a kill nothing is damaged: at most shards not yet recorded
            assert set(report["problem"].to_list()) <= {"missing"}
    done = len((target / "manifest.jsonl").read_bytes().splitlines())
    assert 0 < done < 8
    encoder = SlowNumpyEncoder()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store = embed(encoder, make_items(n), "sensor", store=target, shard_size=shard_size, batch_size=shard_size,
                      progress=False)
    assert encoder.calls == 8 - done
    assert np.array_equal(store.ids().to_numpy(), np.arange(n))
    clean = embed(SlowNumpyEncoder(), make_items(n), "sensor", store=tmp_path / "clean", shard_size=shard_size,
                  batch_size=shard_size, progress=False)
    assert store.to_embeddings().vectors.tobytes() == clean.to_embeddings().vectors.tobytes()


def test_flipped_bytes_in_shards_are_named_and_only_that_shard_is_recomputed(tmp_path, reference, clean):
    rng = random.Random(13)
    clean_bytes = reference[1]
    for trial in range(12):
        folder = _copy(reference, tmp_path / f"s{trial}")
        shard = rng.randrange(6)
        path = folder / f"shard-{shard:06d}.parquet"
        _flip(path, rng.randrange(path.stat().st_size), 1 << rng.randrange(8))
        report = verify(folder)
        assert report["shard"].to_list() == [shard] and report["problem"].to_list()[0].startswith("damaged")
        _repair(folder, 1, clean)
        assert workbench.store.open(folder).to_embeddings().vectors.tobytes() == clean_bytes


def test_flipped_bytes_in_the_manifest_are_named_and_repaired(tmp_path, reference, clean):
    rng = random.Random(14)
    size = len(reference[0]["manifest.jsonl"])
    for trial in range(25):
        folder = _copy(reference, tmp_path / f"m{trial}")
        _flip(folder / "manifest.jsonl", rng.randrange(size), 1 << rng.randrange(8))
        report = verify(folder)
        assert report.height > 0  # every single-bit flip is named
        named = set(report.filter(report["problem"] == "missing")["shard"].to_list())
        assert named  # the shard of the damaged line is unrecorded, so recomputed
        _repair(folder, len(named), clean)
        assert workbench.store.open(folder).to_embeddings().vectors.tobytes() == reference[1]


def test_flipped_bytes_in_the_header_are_always_named(tmp_path, reference):
    rng = random.Random(15)
    size = len(reference[0]["store.json"])
    for trial in range(25):
        folder = _copy(reference, tmp_path / f"h{trial}")
        _flip(folder / "store.json", rng.randrange(size), 1 << rng.randrange(8))
        report = verify(folder)
        assert report["file"].to_list() == ["store.json"], report
        with pytest.raises(ValueError, match=r"store\.json"):
            _write(folder)


def test_deleted_lock_and_temp_files_are_harmless(tmp_path, reference, clean):
    folder = _copy(reference, tmp_path / "s")  # (the copy has no .lock)
    (folder / ".shard-000001.parquet.abc.tmp").write_bytes(b"half")
    assert verify(folder).is_empty()
    _repair(folder, 0, clean)
    assert not list(folder.glob(".*.tmp"))


def test_two_writers_on_one_folder_one_waits_or_is_refused_and_ids_appear_once(tmp_path, clean):
    started, release = threading.Event(), threading.Event()

    class Held(SlowNumpyEncoder):
        def encode(self, modality, items, batch_size=32):
            started.set()
            release.wait(20)
            return super().encode(modality, items, batch_size)

    first = Held()
    errors: list = []
    writer = threading.Thread(target=lambda: _write(tmp_path, encoder=first), daemon=True)
    writer.start()
    assert started.wait(20)
    second = SlowNumpyEncoder()
    with pytest.raises(RuntimeError, match=f"another process is writing the embedding store '{tmp_path}'"):
        _write(tmp_path, encoder=second)
    waiter = threading.Thread(target=lambda: errors.append(_write(tmp_path, encoder=second, wait=True)), daemon=True)
    waiter.start()
    time.sleep(0.2)
    assert waiter.is_alive()  # waiting for the lock
    release.set()
    writer.join(20)
    waiter.join(20)
    assert first.calls == 6 and second.calls == 0  # the waiting writer kept everything the first one wrote
    _assert_whole(tmp_path, clean)
    with open(tmp_path / ".lock", "a+b") as handle:  # and the lock is free again
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
