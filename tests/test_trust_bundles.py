"""Trust (issue 13.13): no open doors (local Ray on loopback, safe loading)."""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

import workbench._cluster as cluster

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "workbench"


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
# pickle.loads of bytes this process made itself: the Ray store backend ships encoder batches to its own actors
_ALLOWED = {("workbench/store/_ray.py", "pickle.loads"): 2}


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
