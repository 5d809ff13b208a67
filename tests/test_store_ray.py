"""The Ray Data backend of the sharded store: the same shards as the local backend, and a killed Ray run resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from store_worker import SlowNumpyEncoder, make_items  # noqa: E402

import workbench.store  # noqa: E402
from workbench.store import verify, write  # noqa: E402

TESTS = Path(__file__).parent
ROOT = TESTS.parent
N, SHARD = 600, 50

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*"),
    pytest.mark.filterwarnings("ignore::FutureWarning:ray.*"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),  # Ray's sockets to its local cluster
]


@pytest.fixture(scope="module")
def ray_cluster():
    env = {"PYTHONPATH": os.pathsep.join([os.fspath(TESTS), os.fspath(ROOT)])}  # actors unpickle store_worker
    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        yield context.address_info["gcs_address"]
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("local")
    write(SlowNumpyEncoder(), make_items(N), "sensor", folder, shard_size=SHARD, batch_size=SHARD, progress=False)
    return folder


def _manifest(folder: Path) -> list[dict]:
    path = folder / "manifest.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.endswith(b"}")]


def _sums(folder: Path) -> dict[str, str]:
    return {e["file"]: e["sha256"] for e in _manifest(folder)}


def test_ray_backend_writes_the_same_store_as_the_local_one(ray_cluster, reference, tmp_path):
    store = write(SlowNumpyEncoder(), make_items(N), "sensor", tmp_path, shard_size=SHARD, batch_size=SHARD,
                  progress=False, backend="ray", actors=2, num_cpus_per_actor=0.5)
    assert store.complete and len(store) == N and verify(tmp_path).is_empty()
    assert (tmp_path / "manifest.jsonl").read_bytes() == (reference / "manifest.jsonl").read_bytes()
    assert (tmp_path / "store.json").read_bytes() == (reference / "store.json").read_bytes()
    for entry in _manifest(reference):
        assert (tmp_path / entry["file"]).read_bytes() == (reference / entry["file"]).read_bytes()
    want = workbench.store.open(reference).to_embeddings()
    assert store.to_embeddings().vectors.tobytes() == want.vectors.tobytes()


def test_ray_backend_refuses_to_take_every_cpu(ray_cluster, tmp_path):
    with pytest.raises(ValueError, match="starve"):
        write(SlowNumpyEncoder(), make_items(60), "sensor", tmp_path, shard_size=SHARD, progress=False,
              backend="ray", actors=2, num_cpus_per_actor=1)
    with pytest.raises(ValueError, match="backend must be"):
        write(SlowNumpyEncoder(), make_items(60), "sensor", tmp_path, backend="spark")


DRIVER = textwrap.dedent("""
    import os
    import sys
    import ray
    from store_worker import SlowNumpyEncoder, make_items
    import workbench.store
    ray.init(address=sys.argv[2], log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}})
    items = make_items(int(sys.argv[3]))
    print("ready", flush=True)
    workbench.store.write(SlowNumpyEncoder(sleep=0.5), items, "sensor", sys.argv[1], shard_size=int(sys.argv[4]),
                          batch_size=int(sys.argv[4]), progress=False, backend="ray", actors=2, num_cpus_per_actor=0.5)
    print("done", flush=True)
""")


def test_a_killed_ray_run_resumes_to_the_same_store(ray_cluster, reference, tmp_path):
    target = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.fspath(TESTS), os.fspath(ROOT)])}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(target), ray_cluster, str(N), str(SHARD)],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 45
        while len(_manifest(target)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the Ray run finished before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)  # only the driver: its job's actors are reaped by the cluster
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    done = _manifest(target)
    assert 2 <= len(done) < N // SHARD  # interrupted part way
    kept = {e["file"]: os.stat(target / e["file"]).st_ino for e in done}
    print(f"\nray kill test: {len(done)}/{N // SHARD} shards in place when the driver was SIGKILLed")

    store = write(SlowNumpyEncoder(), make_items(N), "sensor", target, shard_size=SHARD, batch_size=SHARD,
                  progress=False, backend="ray", actors=2, num_cpus_per_actor=0.5)
    assert verify(target).is_empty() and store.complete and store.ids().to_list() == list(range(N))
    assert {f: os.stat(target / f).st_ino for f in kept} == kept  # verified shards were skipped, not rewritten
    assert _sums(target) == _sums(reference)
    want = workbench.store.open(reference).to_embeddings()
    assert store.to_embeddings().vectors.tobytes() == want.vectors.tobytes()
    assert np.array_equal(store.ids().to_numpy(), np.arange(N))
