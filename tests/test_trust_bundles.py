"""Trust (issue 13.8, 13.13): checksummed one-file bundles; no open doors (local Ray on loopback, safe loading)."""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib
import io
import json
import os
import subprocess
import sys
import textwrap
import types
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import workbench._cluster as cluster
from workbench import Embeddings, PairedEmbeddings
from workbench.data import _bundle

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "workbench"


# -- 13.8: every damaged bundle is refused, naming the file ---------------------------------------------------------


def _paired() -> PairedEmbeddings:
    rng = np.random.default_rng(7)
    a = Embeddings(rng.normal(size=(3, 4)), "image", "toy", {"id": [1, 2, 3], "caption": ["x", None, "zz"]})
    b = Embeddings(rng.normal(size=(4, 4)), "text", "toy", {"id": [5, 6, 7, 8], "score": [0.5, 1.0, None, 2.0]})
    return PairedEmbeddings(a, b, [(0, 0), (1, 1), (2, 2), (2, 3)])


def _same(x: PairedEmbeddings, y: PairedEmbeddings) -> bool:
    return (
        x.modalities == y.modalities
        and (x.a.model, x.b.model) == (y.a.model, y.b.model)
        and x.a.vectors.tobytes() == y.a.vectors.tobytes() and x.a.vectors.shape == y.a.vectors.shape
        and x.b.vectors.tobytes() == y.b.vectors.tobytes() and x.b.vectors.shape == y.b.vectors.shape
        and x.a.metadata.schema == y.a.metadata.schema and x.a.metadata.equals(y.a.metadata, null_equal=True)
        and x.b.metadata.schema == y.b.metadata.schema and x.b.metadata.equals(y.b.metadata, null_equal=True)
        and x.pairs.shape == y.pairs.shape and bool(np.array_equal(x.pairs, y.pairs))
    )


@pytest.mark.filterwarnings("ignore::workbench.data.DuplicateRowsWarning")  # a flip may duplicate a row
@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_flipped_bits_load_the_original_or_raise_a_value_error_naming_the_file(tmp_path, suffix):
    original = _paired()
    path = tmp_path / f"clean{suffix}"
    original.save(path)
    assert _same(PairedEmbeddings.load(path), original)
    data = path.read_bytes()
    bad = tmp_path / f"flipped{suffix}"
    rng = np.random.default_rng(13)
    bits = rng.choice(len(data) * 8, size=600, replace=False)
    outcomes: dict[str, list[int]] = {"same": [], "refused": [], "different": [], "other": []}
    for bit in bits.tolist():
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        bad.write_bytes(bytes(flipped))
        try:
            loaded = PairedEmbeddings.load(bad)
        except ValueError as exc:
            outcomes["refused" if os.fspath(bad) in str(exc) else "other"].append(bit)
        except BaseException as exc:  # a Rust panic is a BaseException: it must not get here
            if isinstance(exc, KeyboardInterrupt):
                raise
            outcomes["other"].append(bit)
        else:
            outcomes["same" if _same(loaded, original) else "different"].append(bit)
    assert outcomes["different"] == [], f"{len(outcomes['different'])} flips loaded as different data"
    assert outcomes["other"] == [], f"{len(outcomes['other'])} flips raised something else than ValueError(file)"
    assert len(outcomes["refused"]) > 300  # the sample really damaged files


def test_parquet_checksum_is_the_sha256_of_the_file_with_its_digest_read_as_zeros(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    _paired().save(path)
    data = path.read_bytes()
    stored = pq.read_metadata(path).metadata[b"workbench.sha256"]
    assert len(stored) == 64 and data.count(stored) == 1
    expected = hashlib.sha256(data.replace(stored, b"0" * 64)).hexdigest().encode()
    assert stored == expected
    assert json.loads(pq.read_metadata(path).metadata[b"workbench"])["checksum"] == "sha256"


def _strip_checksum(path: Path) -> None:
    """Rewrite a bundle as the writer before checksums did: no digest key, no checksum flag in the header."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    kv = dict(table.schema.metadata)
    kv.pop(b"workbench.sha256")
    header = json.loads(kv[b"workbench"])
    header.pop("checksum")
    kv[b"workbench"] = json.dumps(header).encode()
    pq.write_table(table.replace_schema_metadata(kv), path)


def test_parquet_written_before_checksums_loads_with_a_warning_that_it_is_unverified(tmp_path):
    path = tmp_path / "old.parquet"
    original = _paired()
    original.save(path)
    _strip_checksum(path)
    with pytest.warns(_bundle.UnverifiedFileWarning, match=r"old\.parquet.*cannot be verified; save it again"):
        loaded = PairedEmbeddings.load(path)
    assert _same(loaded, original)
    loaded.save(path)  # saving again adds the checksum: no warning any more
    assert _same(PairedEmbeddings.load(path), original)


def test_checksummed_parquet_without_its_digest_is_refused(tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    _paired().save(path)
    table = pq.read_table(path)
    kv = dict(table.schema.metadata)
    kv.pop(b"workbench.sha256")
    pq.write_table(table.replace_schema_metadata(kv), path)  # the header still says "checksum": "sha256"
    with pytest.raises(ValueError, match=r"p\.parquet.*damaged: its checksum is missing"):
        PairedEmbeddings.load(path)


def test_npz_that_lost_its_pairs_is_refused_not_paired_by_row(tmp_path):
    rng = np.random.default_rng(0)
    pairs = [(0, 1), (1, 0), (2, 2)]
    paired = PairedEmbeddings.from_arrays(rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), pairs=pairs)
    path = tmp_path / "p.npz"
    paired.save(path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist() if n != "pairs.npy"}
    with zipfile.ZipFile(path, "w") as z:
        for name, raw in members.items():
            z.writestr(name, raw)
    with pytest.raises(ValueError, match=r"p\.npz.*damaged: its header and its members disagree"):
        PairedEmbeddings.load(path)


class PanicException(BaseException):
    """What pyo3 raises for a Rust panic (polars on a damaged file): a BaseException, not an Exception."""


@pytest.mark.parametrize(("suffix", "target"), [(".parquet", "pyarrow.parquet.read_table"),
                                                (".npz", "polars.read_parquet")])
def test_a_reader_panic_becomes_a_value_error_naming_the_file(tmp_path, monkeypatch, suffix, target):
    path = tmp_path / f"p{suffix}"
    _paired().save(path)
    module, _, name = target.rpartition(".")

    def panic(*args, **kwargs):
        raise PanicException("called `Result::unwrap()` on an `Err` value: Utf8Error")

    monkeypatch.setattr(importlib.import_module(module), name, panic)
    with pytest.raises(ValueError, match=rf"p\{suffix}.*damaged.*PanicException"):
        PairedEmbeddings.load(path)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules[module], name, interrupt)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C stays Ctrl-C
        PairedEmbeddings.load(path)


def test_embeddings_and_multimodal_bundles_are_checksummed_too(tmp_path):
    rng = np.random.default_rng(1)
    e = Embeddings(rng.normal(size=(4, 3)), "audio", "toy", {"id": ["a", "b", "c", "d"]})
    path = tmp_path / "e.parquet"
    e.save(path)
    data = bytearray(path.read_bytes())
    data[8] ^= 0x10  # inside the first data page
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"e\.parquet.*damaged: its sha256 checksum does not match"):
        Embeddings.load(path)


def test_a_damaged_unverified_file_still_names_the_file(tmp_path):
    """Files from before checksums cannot be verified, but a reader's failure on them still names the file."""
    path = tmp_path / "old.parquet"
    _paired().save(path)
    _strip_checksum(path)
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    kv = dict(table.schema.metadata)
    kv[b"workbench.pairs"] = base64.b64encode(np.array([0, 9], dtype="<i8").tobytes())  # row 9 does not exist
    pq.write_table(table.replace_schema_metadata(kv), path)
    with pytest.raises(ValueError, match=r"old\.parquet.*damaged: its pairs do not index its rows"):
        PairedEmbeddings.load(path)


# -- 13.13: local Ray listens on 127.0.0.1 only ---------------------------------------------------------------------


def _fake_ray(initialised: bool = False, cpus: float = 1.0) -> types.SimpleNamespace:
    fake = types.SimpleNamespace(calls=[])
    fake.is_initialized = lambda: initialised
    fake.init = lambda **kwargs: fake.calls.append(kwargs)
    fake.shutdown = lambda: fake.calls.append("shutdown")
    fake.cluster_resources = lambda: {"CPU": cpus}
    fake.util = types.SimpleNamespace(get_node_ip_address=lambda: "127.0.0.1")
    return fake


LOCAL = {"address": "local", "include_dashboard": False, "_node_ip_address": "127.0.0.1"}


def test_ensure_local_ray_starts_ray_on_loopback_without_dashboard(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    fake = _fake_ray()
    monkeypatch.setitem(sys.modules, "ray", fake)
    cluster.ensure_local_ray()
    assert fake.calls == [LOCAL]


def test_ensure_local_ray_leaves_the_users_ray_alone(monkeypatch):
    fake = _fake_ray(initialised=True)
    monkeypatch.setitem(sys.modules, "ray", fake)
    cluster.ensure_local_ray()
    assert fake.calls == []
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")  # a cluster named in the environment: plain ray.init()
    fake = _fake_ray()
    monkeypatch.setitem(sys.modules, "ray", fake)
    cluster.ensure_local_ray()
    assert fake.calls == [{}]


def test_ensure_local_ray_refuses_a_ray_that_did_not_bind_to_loopback(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    fake = _fake_ray()
    fake.util.get_node_ip_address = lambda: "192.0.2.7"
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(RuntimeError, match=r"started on 192\.0\.2\.7, not on 127\.0\.0\.1"):
        cluster.ensure_local_ray()
    assert fake.calls == [LOCAL, "shutdown"]


def test_store_and_projection_start_ray_through_the_loopback_helper(monkeypatch):
    from workbench.projection import _scale
    from workbench.store import _ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    fake = _fake_ray(cpus=1.0)
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(ValueError, match="every CPU"):  # stops right after starting Ray
        _scale.transform_on_ray(object(), np.zeros((4, 2)), np.arange(4), [(0, 4)])
    assert fake.calls == [LOCAL]

    fake = _fake_ray(cpus=1.0)
    fake.data = types.SimpleNamespace()
    monkeypatch.setitem(sys.modules, "ray", fake)
    monkeypatch.setitem(sys.modules, "ray.data", fake.data)
    with pytest.raises(ValueError, match="starve"):
        list(_ray.encode_shards(object(), list(range(4)), "x", [0], shard_size=4, batch_size=2, actors=2))
    assert fake.calls == [LOCAL]


LISTENERS = textwrap.dedent("""
    import json, psutil, ray
    import workbench._cluster as cluster
    cluster.ensure_local_ray()
    assert ray.get(ray.remote(lambda: 42).remote()) == 42  # a worker is up (it listens too)
    me = psutil.Process()
    family = {me.pid} | {c.pid for c in me.children(recursive=True)}
    found = [(psutil.Process(c.pid).name(), c.laddr.ip, c.laddr.port) for c in psutil.net_connections(kind="inet")
             if c.status == psutil.CONN_LISTEN and c.pid in family]
    print(json.dumps({"node_ip": ray.util.get_node_ip_address(), "listeners": found}))
    ray.shutdown()
""")


@pytest.mark.slow
def test_local_ray_listens_on_loopback_only(tmp_path):
    pytest.importorskip("ray")
    psutil = pytest.importorskip("psutil")
    try:
        psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        pytest.skip("this machine does not let a process list its sockets")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.fspath(ROOT), os.environ.get("PYTHONPATH", "")]),
           "RAY_ADDRESS": ""}
    done = subprocess.run([sys.executable, "-c", LISTENERS], capture_output=True, text=True, timeout=240, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["node_ip"] == "127.0.0.1"
    names = {name for name, _, _ in report["listeners"]}
    assert any("gcs" in n for n in names) and any("raylet" in n for n in names), report  # the services were seen
    exposed = [(n, ip, port) for n, ip, port in report["listeners"] if not _loopback(ip)]
    assert exposed == []


def _loopback(ip: str) -> bool:
    import ipaddress

    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)  # "::ffff:127.0.0.1"
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


# -- 13.13: nothing loads code from a user's file -------------------------------------------------------------------

_PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve", "joblib"}
# pickle.loads of bytes this process made itself: the Ray store backend ships encoder batches to its own actors, and
# the input pipeline checks that a worker's exception survives the trip back (pickle.loads(pickle.dumps(error)))
_ALLOWED = {("workbench/store/_ray.py", "pickle.loads"): 2, ("workbench/encoders/_pipeline.py", "pickle.loads"): 1}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _unsafe_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _PICKLE_MODULES:
                found.append(f"from {node.module} import ...")
            found += [f"import {n}" for n in names if isinstance(node, ast.Import) and n.split(".")[0] in
                      _PICKLE_MODULES - {"pickle"}]
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        keywords = {k.arg: k.value for k in node.keywords}
        constant = {k: v.value for k, v in keywords.items() if isinstance(v, ast.Constant)}
        if name in ("eval", "exec", "builtins.eval", "builtins.exec", "__import__"):
            found.append(name)
        elif name.split(".")[0] in _PICKLE_MODULES and name.rsplit(".", 1)[-1] in ("load", "loads", "Unpickler"):
            found.append(name)
        elif name.endswith("torch.load") or (name == "load" and "weights_only" in keywords):
            if constant.get("weights_only") is not True:
                found.append("torch.load without weights_only=True")
        elif name in ("torch.jit.load", "yaml.load", "yaml.unsafe_load"):
            found.append(name)
        if constant.get("allow_pickle") is True:
            found.append(f"{name}(allow_pickle=True)")
        if constant.get("shell") is True or ("shell" in keywords and not isinstance(keywords["shell"], ast.Constant)):
            found.append(f"{name}(shell=...)")
        if constant.get("trust_remote_code") is True:
            found.append(f"{name}(trust_remote_code=True)")
    return found


def test_the_scanner_sees_what_it_looks_for():
    source = textwrap.dedent("""
        import pickle, dill
        from marshal import loads
        np.load(f, allow_pickle=True); torch.load(f); torch.load(f, weights_only=False)
        torch.load(f, weights_only=True)
        eval("1"); model.eval(); subprocess.run(x, shell=True); pickle.load(f); yaml.load(s)
    """)
    assert sorted(_unsafe_calls(ast.parse(source))) == sorted([
        "import dill", "from marshal import ...", "np.load(allow_pickle=True)", "torch.load without weights_only=True",
        "torch.load without weights_only=True", "eval", "subprocess.run(shell=...)", "pickle.load", "yaml.load",
    ])


def test_no_module_of_the_package_loads_code_from_a_file():
    found: dict[tuple[str, str], int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for what in _unsafe_calls(ast.parse(path.read_text(encoding="utf-8"))):
            found[(rel, what)] = found.get((rel, what), 0) + 1
    assert found == _ALLOWED
    text = "\n".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))
    assert "allow_pickle=True" not in text and "shell=True" not in text and "weights_only=False" not in text


def test_checkpoints_are_loaded_as_weights_only(tmp_path):
    """A checkpoint that would run code when unpickled is refused, and the code never runs."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("open_clip")
    from workbench.encoders import OpenCLIPEncoder

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"visual.proj": torch.zeros(2, 2)}, "extra": Payload()}, path)
    with pytest.raises(ValueError, match=r"cannot load the checkpoint"):
        OpenCLIPEncoder("ViT-B-32", pretrained=path, device="cpu")
    assert not marker.exists()
    buffer = io.BytesIO()
    torch.save({"state_dict": {"module.w": torch.ones(1)}, "epoch": 3}, buffer)  # plain training checkpoints load
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["epoch"] == 3


def test_dependency_floors_are_above_the_code_execution_advisories():
    import tomllib  # noqa: I001 - Python 3.11+, like the test environment

    from packaging.requirements import Requirement
    from packaging.version import Version

    deps = {Requirement(d).name: Requirement(d) for d in
            tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    floor = {name: min(Version(s.version) for s in deps[name].specifier if s.operator == ">=")
             for name in ("pyarrow", "torch")}
    assert floor["pyarrow"] >= Version("14.0.1")  # CVE-2023-47248: arbitrary code on reading IPC/Parquet files
    assert floor["torch"] >= Version("2.6")  # CVE-2025-32434: torch.load(weights_only=True) still ran code
    import pyarrow
    import torch

    assert Version(pyarrow.__version__) >= floor["pyarrow"]
    assert Version(torch.__version__.split("+")[0]) >= floor["torch"]


def test_polars_reads_the_checksummed_file_like_any_parquet(tmp_path):
    path = tmp_path / "p.parquet"
    _paired().save(path)
    frame = pl.read_parquet(path)
    assert frame.height == 7 and frame["modality"].to_list()[:3] == ["image"] * 3
