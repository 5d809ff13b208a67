"""workbench.panels as a package: light imports, and every panel's widget, display and static figure."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workbench import datasets

FRONT_END = ("plotly", "ipywidgets", "umap", "anywidget")


def test_import_and_python_api_load_no_front_end(tmp_path):
    """One fresh interpreter: modules after the import, after using every controller, after building a widget."""
    code = f"""
import os, sys
def loaded():
    print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}})))
os.environ["WORKBENCH_CACHE_DIR"] = r"{tmp_path}"
import workbench.panels
loaded()
import workbench
from workbench.panels import EmbeddingExplorer, GapExplorer, RetrievalBrowser, TrainingMonitor
paired = workbench.datasets.load("liang2022/clip").sample(60, seed=0)
g = GapExplorer(paired); g.delta = 0.5; g.corrector = "MeanCenter"
e = EmbeddingExplorer(paired); e.select([0, 70]); e.selection; e.inspect(3)
r = RetrievalBrowser(paired); r.query(2); r.failures()
TrainingMonitor().callback({{"epoch": 1, "loss": 1.0}})
loaded()
e.widget
loaded()
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    after_import, after_api, after_widget = (set(line.split()) for line in out.stdout.splitlines())
    assert not after_import & {*FRONT_END, "numpy"}, after_import & {*FRONT_END, "numpy"}
    assert not after_api & set(FRONT_END), after_api & set(FRONT_END)
    assert {"plotly", "ipywidgets"} <= after_widget


@pytest.fixture(scope="module")
def panels(tmp_path_factory):
    import os

    from workbench.correct import MeanCenter
    from workbench.panels import CorrectorComparison, EmbeddingExplorer, GapExplorer, RetrievalBrowser, TrainingMonitor

    os.environ.setdefault("WORKBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    paired = datasets.load("liang2022/clip").sample(80, seed=0)
    monitor = TrainingMonitor()
    monitor.callback({"epoch": 1, "loss": 2.0, "temperature": 0.07, "centroid_distance": 0.5, "r1_a_to_b": 0.1,
                      "r1_b_to_a": 0.2})
    return {
        "EmbeddingExplorer": EmbeddingExplorer(paired, cache_dir=tmp_path_factory.mktemp("projections")),
        "GapExplorer": GapExplorer(paired),
        "RetrievalBrowser": RetrievalBrowser(paired, k=3),
        "CorrectorComparison": CorrectorComparison(paired, [MeanCenter()], n_resamples=10, probe=False),
        "TrainingMonitor": monitor,
    }


@pytest.mark.parametrize("name", ["EmbeddingExplorer", "GapExplorer", "RetrievalBrowser", "CorrectorComparison",
                                  "TrainingMonitor"])
def test_every_panel_builds_a_widget_displays_and_exports_a_figure(panels, name):
    import ipywidgets as widgets
    import plotly.graph_objects as go

    panel = panels[name]
    fig = panel.figure()
    assert type(fig) is go.Figure and len(fig.data) >= 1
    assert fig.to_dict()["data"]  # serialisable, as for export
    box = panel.widget
    assert isinstance(box, widgets.Box) and box is panel.widget  # built once
    assert "wb-panel" in box._dom_classes and panel.css_class in box._dom_classes
    assert any(isinstance(w, go.FigureWidget) for w in _descendants(box))
    assert any("wb-message" in w._dom_classes for w in _descendants(box) if hasattr(w, "_dom_classes"))
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == box.model_id
    panel._ipython_display_()  # no front end: a no-op display, and no error


def _descendants(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _descendants(child)


def test_lazy_attributes():
    import workbench.panels as panels

    assert set(panels.__all__) <= set(dir(panels))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        panels.Nope  # noqa: B018
    assert panels.GapExplorer is panels.gap_explorer.GapExplorer
