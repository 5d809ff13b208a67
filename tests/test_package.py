"""Packaging facts: a light import, the public API, the console script, stripped notebooks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import workbench

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "plotly", "ipywidgets", "sklearn", "umap", "open_clip", "numba")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return {m.split(".")[0] for m in out.stdout.split()}


def test_import_workbench_loads_no_heavy_library():
    loaded = _modules_after("import workbench")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
    assert "numpy" not in loaded and "polars" not in loaded  # nothing but the package itself


def test_loading_a_builtin_set_still_needs_no_torch_or_plotly():
    loaded = _modules_after("import workbench; workbench.datasets.load('liang2022/clip'); workbench.gap")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_public_api_resolves():
    for name in workbench.__all__:
        assert getattr(workbench, name) is not None
    assert "PairedEmbeddings" in dir(workbench)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        workbench.nope  # noqa: B018


def test_console_script_runs():
    exe = Path(sys.executable).parent / "workbench"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"workbench {workbench.__version__}"


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(notebook):
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, notebook.name
