"""Paper exports leave no text on other text or on the data: the package's figures are exported as SVG at single
and double column width and measured in Chromium (``tools/svg_layout.py``: every tick label, axis title and legend
entry as laid out by the browser); no box may overlap another or reach into a plot area. A deliberately broken
figure (a legend placed over the right axis) shows that the measurement finds overlaps."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import plotly.graph_objects as go
import pytest

from workbench import datasets, export
from workbench.correct import GapShift, MeanCenter
from workbench.figures import cosine_histogram_figure, gap_dimensions_figure, loss_landscape_figure, pca_figure
from workbench.gap import gap_loss_landscape
from workbench.panels import CorrectorComparison

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import svg_layout


def _chromium() -> str | None:
    try:
        return export.find_browser()
    except export.ExportError:
        return None


pytestmark = pytest.mark.skipif(_chromium() is None, reason="no Chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paired = datasets.load("liang2022/clip")
    comparison = CorrectorComparison(paired, [GapShift(delta=1.0), MeanCenter()], n_resamples=20, probe=False,
                                     progress=False)
    figs = {"pca": pca_figure(paired), "cosines": cosine_histogram_figure(paired),
            "gap_dimensions": gap_dimensions_figure(paired),
            "loss_landscape": loss_landscape_figure(gap_loss_landscape(paired), paired.modalities),
            "comparison": comparison.figure(title=False)}
    # the figure the issue saw: a vertical legend beside a right axis, over its tick labels and title
    broken = loss_landscape_figure(gap_loss_landscape(paired), paired.modalities)
    broken.update_layout(legend={"orientation": "v", "x": 1.0, "xanchor": "left", "y": 1.0, "yanchor": "top"})
    out = tmp_path_factory.mktemp("svg")
    paths = {}
    with export.export_session():
        for width in ("single", "double"):
            for name, fig in figs.items():
                export.save_figure(fig, out / f"{name}-{width}", formats="svg", width=width)
                paths[f"{name}-{width}"] = out / f"{name}-{width}.svg"
        export.save_figure(broken, out / "broken", formats="svg", width="single")
    paths["broken"] = out / "broken.svg"
    return paths


@pytest.fixture(scope="module")
def measured(exported: dict[str, Path]) -> dict[str, tuple[list[svg_layout.Box], list[svg_layout.Box]]]:
    names = list(exported)
    return dict(zip(names, svg_layout.measure([exported[n] for n in names], _chromium()), strict=True))


def test_no_text_overlaps_text_or_the_plot_area_at_either_width(measured):
    problems = {name: svg_layout.overlaps(*boxes) for name, boxes in measured.items() if name != "broken"}
    assert all(boxes[0] and boxes[1] for boxes in measured.values())  # text and a plot area were found
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_measurement_finds_a_legend_on_the_right_axis(measured):
    found = svg_layout.overlaps(*measured["broken"])
    assert any("legend: R@1" in line for line in found), found


def test_figures_have_no_title_human_labels_and_a_fitted_cosine_range(exported, measured):
    texts = {b.text for name, (boxes, _) in measured.items() if name != "broken" for b in boxes}
    assert not any(b.cls == "gtitle" for name, (boxes, _) in measured.items() for b in boxes if name != "broken")
    assert {"legend: R@1 image→text", "legend: R@1 text→image", "R@1", "share of squared gap"} <= texts
    assert not any("r1" in t or "_" in t or "||" in t for t in texts)
    fig = go.Figure(cosine_histogram_figure(datasets.load("liang2022/clip")))
    lo, hi = fig.layout.xaxis.range
    xs = [x for t in fig.data for x, y in zip(t.x, t.y, strict=True) if y > 0]
    assert lo <= min(xs) and max(xs) <= hi and hi - lo < 1.2  # [-1, 1] would be 2 wide


def test_single_column_legends_are_compact(measured):
    """At 3.3 in the legend row starts at the figure's edge: the loss landscape's two R@1 entries share one row
    (the loss is named by its own axis), the comparison's three entries take two rows, no legend takes three."""
    def rows(name: str) -> int:
        boxes, _ = measured[name]
        return len({round(b.top) for b in boxes if b.cls == "legend"})

    assert rows("loss_landscape-single") == 1 and rows("loss_landscape-double") == 1
    assert rows("comparison-single") == 2 and rows("comparison-double") == 1
    assert all(rows(name) <= 2 for name in measured if name != "broken")
    texts = {b.text for b in measured["loss_landscape-single"][0]}
    assert "CLIP loss (solid, ●)" in texts and not any(t.startswith("legend: CLIP") for t in texts)
