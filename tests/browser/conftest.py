"""Real-browser tests: one JupyterLab server per session, Debian's Chromium through pytest-playwright.

- ``browser_type_launch_args`` points pytest-playwright at the system Chromium (``playwright install`` cannot
  download here); found as ``$BROWSER_PATH``, ``chromium`` or ``chromium-browser`` on PATH, or /usr/bin/chromium.
  Without one the browser tests are skipped with that reason.
- ``jupyter_lab`` starts ``python -m jupyter lab`` on 127.0.0.1, a free port and a random token (XSRF stays on),
  with temporary config, data, runtime, settings and workspace folders (the announcements toast and news fetching off,
  the notebook not windowed), serving a temporary folder that holds COPIES of ``panels_demo.ipynb`` and
  ``jscatter_demo.ipynb`` (JupyterLab's autosave never touches the committed notebooks). It is stopped through
  ``/api/shutdown`` (which also stops the kernels), then by its process id; any of its child processes still alive
  are ended by their process ids.
- Screenshots and the server log go to ``tests/browser/artifacts/`` (git-ignored).

What the test modules do alike (open a notebook in a page and run its cells, hover a marker, read an image's pixels,
rank a retrieval browser's failures) is in ``_lab.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ARTIFACTS = HERE / "artifacts"
NOTEBOOK = HERE / "panels_demo.ipynb"
#: The notebooks the server serves (copies); see make_panels_demo.py.
NOTEBOOKS = (NOTEBOOK, HERE / "jscatter_demo.ipynb")
#: nbmake (``make test`` passes ``--nbmake``) would execute the demo notebooks a second time, headless.
collect_ignore = [path.name for path in NOTEBOOKS]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SERVER_START_TIMEOUT = 90.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: real-browser test (JupyterLab + Chromium through playwright)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    """A screenshot of the page when a browser test fails (``FAILED-<test>.png`` in the artifacts)."""
    report = yield
    lab = getattr(item, "funcargs", {}).get("lab")
    if report.failed and report.when == "call" and lab is not None:
        try:
            lab.shot(f"FAILED-{item.name}")
        except Exception as exc:  # the page may be gone; the report matters more
            report.sections.append(("failure screenshot", f"not taken: {exc}"))
    return report


def chromium_path() -> str | None:
    """The system Chromium: ``$BROWSER_PATH``, then ``chromium`` / ``chromium-browser`` on PATH, /usr/bin/chromium."""
    for candidate in (os.environ.get("BROWSER_PATH"), shutil.which("chromium"), shutil.which("chromium-browser"),
                      "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's launch arguments with the system Chromium (the downloaded one does not exist here)."""
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium: install it (Debian/Ubuntu: apt-get install chromium) or set BROWSER_PATH")
    return {**browser_type_launch_args, "executable_path": path, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """The folder of screenshots and logs (kept after the run; emptied of the previous run's files first)."""
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.iterdir():
        if old.is_file() and old.suffix in (".png", ".log"):
            old.unlink()
    return ARTIFACTS


@dataclass(frozen=True)
class JupyterLab:
    """A running JupyterLab server: its base URL, token and the folder it serves."""

    url: str
    token: str
    root: Path
    pid: int

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(url: str, token: str, method: str = "GET", timeout: float = 5.0) -> bytes:
    request = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read()


def _write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")


def _children(pid: int) -> list:
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:  # psutil missing, or the process is gone
        return []


@pytest.fixture(scope="session")
def jupyter_lab(artifacts: Path, browser_type_launch_args: dict) -> Iterator[JupyterLab]:
    """One JupyterLab server for the session (loopback only, random token, XSRF on), stopped by its process id."""
    with tempfile.TemporaryDirectory(prefix="wb-browser-") as tmp:
        tmp_path = Path(tmp)
        root = tmp_path / "root"
        root.mkdir()
        for notebook in NOTEBOOKS:
            shutil.copy(notebook, root / notebook.name)
        config, settings = tmp_path / "config", tmp_path / "settings"
        _write_json(config / "labconfig" / "page_config.json",
                    {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
        _write_json(settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings",
                    {"fetchNews": "false", "checkForUpdates": False})
        # every cell stays in the DOM and laid out (plotly measures its container when it draws)
        _write_json(settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings",
                    {"windowingMode": "none"})
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
               "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
               "JUPYTER_DATA_DIR": str(tmp_path / "data"), "IPYTHONDIR": str(tmp_path / "ipython"),
               "WORKBENCH_CACHE_DIR": str(tmp_path / "cache")}
        env.pop("JUPYTER_TOKEN", None)
        port, token = _free_port(), secrets.token_hex(24)
        log = (artifacts / "jupyter-server.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             "--allow-root"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            while True:
                if process.poll() is not None:
                    pytest.fail(f"jupyter lab exited with code {process.returncode}; see {log.name}")
                try:
                    json.loads(_request(f"{url}/api/status", token))
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                    if time.monotonic() > deadline:
                        pytest.fail(f"jupyter lab did not answer /api/status within {SERVER_START_TIMEOUT:.0f} s")
                    time.sleep(0.25)
            yield JupyterLab(url=url, token=token, root=root, pid=process.pid)
        finally:
            children = _children(process.pid)
            if process.poll() is None:
                try:
                    _request(f"{url}/api/shutdown", token, method="POST")
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.terminate()
                    try:
                        process.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait(timeout=10)
            for child in children:  # kernels the server did not stop (by their own process ids)
                try:
                    child.wait(timeout=10)
                except Exception:
                    try:
                        child.kill()
                    except Exception:
                        pass
            log.close()
