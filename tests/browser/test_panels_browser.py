"""The panels in a real JupyterLab in Chromium: they render, and the browser's interactions reach the kernel.

The module-scoped ``lab`` fixture opens ``panels_demo.ipynb`` once and runs its panel cells once (Shift+Enter);
the tests then interact with what is on the page and check it against values computed here, independently of the
kernel. Screenshots of every step are kept in ``tests/browser/artifacts/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from . import make_panels_demo as demo
from ._lab import POINTS_JS, STDERR, UI_TIMEOUT, Lab, expect, hover, isolated_marker, open_lab, settle

#: Panel cell id -> the CSS class of the panel it shows (each panel holds a plotly figure).
PANELS = {"gap": "wb-gap-explorer", "embedding": "wb-embedding-explorer", "retrieval": "wb-retrieval-browser",
          "comparison": "wb-corrector-comparison", "training": "wb-training-monitor"}


# -- helpers ------------------------------------------------------------------------------------------------------
class PanelsLab(Lab):
    """The demo notebook's page, with each panel (and its plotly figure) by its cell id."""

    def panel(self, cell_id: str) -> Any:
        return self.cell(cell_id).locator(f".jp-OutputArea-output .{PANELS[cell_id]}")

    def plot(self, cell_id: str) -> Any:
        return self.panel(cell_id).locator(".js-plotly-plot").first


@pytest.fixture(scope="module")
def lab(browser: Any, jupyter_lab: Any, artifacts: Path) -> Iterator[PanelsLab]:
    """The demo notebook opened in JupyterLab with every panel cell run once."""
    with open_lab(browser, jupyter_lab, artifacts, demo.NOTEBOOK.name, [c[0] for c in demo.CELLS],
                  ("setup", *PANELS), name="opening-the-notebook", lab_type=PanelsLab,
                  opened_shot="01-notebook-opened", console_log="browser-console.log") as result:
        yield result


@pytest.fixture(scope="module")
def paired() -> Any:
    """The pairs the notebook shows, loaded here (in the test process) for independent expected values."""
    import workbench

    return workbench.datasets.load("liang2022/clip").sample(demo.N_PAIRS)


# -- the committed notebook -----------------------------------------------------------------------------------------
def test_committed_notebook_is_generated_and_stripped() -> None:
    text = demo.NOTEBOOK.read_text(encoding="utf-8")
    assert text == demo.render(), "panels_demo.ipynb is out of date: run python tests/browser/make_panels_demo.py"
    for cell in json.loads(text)["cells"]:
        assert not cell.get("outputs") and cell.get("execution_count") is None


# -- 1. every panel renders -----------------------------------------------------------------------------------------
def _settled(plot: Any, script: str, done: Any, timeout_s: float = UI_TIMEOUT / 1000) -> Any:
    """The value of ``script`` on a plot once ``done(value)`` holds, or the last value after ``timeout_s``."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        value = plot.evaluate(script)
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


@pytest.mark.browser
def test_every_panel_renders(lab: PanelsLab) -> None:
    for cell_id, css in PANELS.items():
        panel = lab.panel(cell_id)
        expect(panel).to_be_visible(timeout=UI_TIMEOUT)
        plot = lab.plot(cell_id)
        expect(plot).to_be_visible(timeout=UI_TIMEOUT)
        expect(plot.locator(".main-svg").first).to_be_attached()
        box = plot.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 200, (css, box)
        lab.shot(f"02-panel-{cell_id}", panel)
    # the figures carry the data (not an empty shell): 200 points per modality, 6 epochs of training; a widget's
    # figure can be attached before its data arrives from the kernel on a loaded machine, so each is awaited
    sizes = _settled(lab.plot("gap"), "gd => gd._fullData.map(t => t.x ? t.x.length : 0)",
                     lambda v: v[:2] == [demo.N_PAIRS, demo.N_PAIRS])
    assert sizes[:2] == [demo.N_PAIRS, demo.N_PAIRS], sizes
    sizes = _settled(lab.plot("embedding"), "gd => gd._fullData.map(t => t.x ? t.x.length : 0)",
                     lambda v: v[:2] == [demo.N_PAIRS, demo.N_PAIRS])
    assert sizes[:2] == [demo.N_PAIRS, demo.N_PAIRS], sizes
    epochs = _settled(lab.plot("training"), "gd => gd._fullData.map(t => Array.from(t.x || []))",
                      lambda v: bool(v) and v[0] == [1, 2, 3, 4, 5, 6])
    assert epochs[0] == [1, 2, 3, 4, 5, 6], epochs
    bars = _settled(lab.plot("comparison"),
                    "gd => gd._fullData.filter(t => t.type === 'bar').map(t => t.x.length)",
                    lambda v: v == [2, 2, 2])
    assert bars == [2, 2, 2], bars
    expect(lab.panel("retrieval").locator(".wb-results table tbody tr")).to_have_count(10)
    # no error message of a panel, no traceback or warning on stderr, no uncaught error in the page
    expect(lab.page.locator(".wb-message.wb-error")).to_have_count(0)
    expect(lab.page.locator(STDERR)).to_have_count(0)
    assert not lab.page_errors, lab.page_errors
    lab.shot("02-all-panels-run")


# -- 2. the GapExplorer slider moves the metrics --------------------------------------------------------------------
@pytest.mark.browser
def test_gap_slider_updates_the_centroid_distance(lab: PanelsLab, paired: Any) -> None:
    from workbench.correct import GapShift
    from workbench.gap import gap_report

    panel = lab.panel("gap")
    readout = panel.locator(".wb-gap-delta .widget-readout")
    shown = panel.locator(".wb-metric-centroid-distance .widget-html-content")
    expect(readout).to_have_text("+0.00")
    a, b = paired.matched()

    def expected(delta: float) -> str:
        return f"{gap_report(*GapShift(delta).fit(a, b).transform(a, b), probe=False)['centroid_distance']:.4f}"

    assert shown.inner_text() == expected(0.0)
    handle = panel.locator(".wb-gap-delta [role=slider]")
    handle.focus()
    for _ in range(5):
        lab.page.keyboard.press("ArrowRight")
    expect(readout).to_have_text("+0.25", timeout=UI_TIMEOUT)  # five steps of 0.05
    delta = float(readout.inner_text())
    want = expected(delta)
    expect(shown).to_have_text(want, timeout=UI_TIMEOUT)
    assert abs(float(shown.inner_text()) - float(want)) <= 0.5e-4
    assert want != expected(0.0)
    expect(lab.plot("gap").locator(".gtitle")).to_contain_text(f"delta=+{delta:.2f}")
    expect(lab.plot("gap").locator(".gtitle")).to_contain_text(f"centroid distance {want}")
    lab.shot("03-gap-slider-moved", panel)
    state = lab.kernel_json("gap-state")
    assert state["delta"] == pytest.approx(delta)
    assert f"{state['centroid_distance']:.4f}" == want
    expect(lab.page.locator(".wb-message.wb-error")).to_have_count(0)


# -- 3. hovering a point shows its tooltip and the preview ------------------------------------------------------------
@pytest.mark.browser
def test_embedding_hover_shows_the_point(lab: PanelsLab) -> None:
    plot = lab.plot("embedding")
    target, area = isolated_marker(plot, 2 * demo.N_PAIRS)  # the most isolated marker: the tooltip can only be its
    point_id = re.search(r"id: (\d+)", target["text"]).group(1)
    modality = "image" if target["side"] == "a" else "text"
    hover(lab.page, target["px"], target["py"])
    tooltip = plot.locator(".hoverlayer .hovertext")
    expect(tooltip).to_be_visible(timeout=UI_TIMEOUT)
    expect(tooltip).to_contain_text(f"id: {point_id}")
    expect(tooltip).to_contain_text(modality)
    # the hover reached the kernel: its preview names the same item
    preview = lab.panel("embedding").locator(".wb-preview-text")
    expect(preview).to_contain_text(f"{modality} · id {point_id}", timeout=UI_TIMEOUT)
    lab.shot("04-embedding-hover")
    lab.page.mouse.move(area["left"] - 40, area["top"] - 40)


# -- 4. a box selection fills the neighbour table ----------------------------------------------------------------------
@pytest.mark.browser
def test_embedding_box_select_fills_the_table(lab: PanelsLab, paired: Any) -> None:
    page = lab.page
    panel = lab.panel("embedding")
    plot = lab.plot("embedding")
    settle(plot)
    plot.hover()
    panel.locator(".modebar-btn[data-title='Box Select']").click()
    info = plot.evaluate(POINTS_JS)
    points = info["points"]
    xy = np.array([[p["px"], p["py"]] for p in points])
    number = np.array([p["index"] + (0 if p["side"] == "a" else demo.N_PAIRS) for p in points])
    # a square around the densest part, grown until it holds 8+ markers (plotly's select box is the drag)
    centre = np.median(xy, axis=0)
    for half in range(8, 200, 4):
        lo, hi = centre - half, centre + half
        strictly = np.all((xy > lo + 2) & (xy < hi - 2), axis=1)
        if strictly.sum() >= 8:
            break
    area = info["area"]  # keep the drag inside the plotting area (a drag outside it is no selection)
    lo = np.maximum(lo, [area["left"] + 1, area["top"] + 1])
    hi = np.minimum(hi, [area["left"] + area["width"] - 1, area["top"] + area["height"] - 1])
    strictly = np.all((xy > lo + 2) & (xy < hi - 2), axis=1)
    loosely = np.all((xy >= lo - 2) & (xy <= hi + 2), axis=1)
    plot.evaluate("gd => { window.__wbSelected = null; gd.on('plotly_selected', ev => { window.__wbSelected ="
                  " ev ? ev.points.map(p => [p.curveNumber, p.pointNumber]) : []; }); }")
    page.mouse.move(*lo)
    page.mouse.down()
    page.mouse.move(*(lo + (hi - lo) / 2), steps=5)
    page.mouse.move(*hi, steps=5)
    lab.shot("05-embedding-box-drawn")
    page.mouse.up()

    rows = panel.locator(".wb-selection-table table.wb-neighbours tbody tr")
    expect(rows.first).to_be_visible(timeout=UI_TIMEOUT)
    page.wait_for_function("() => window.__wbSelected !== null")
    curves = plot.evaluate("gd => gd._fullData.map(t => t.meta && t.meta.side)")
    front = sorted(index + (0 if curves[curve] == "a" else demo.N_PAIRS)
                   for curve, index in page.evaluate("window.__wbSelected"))
    state = lab.kernel_json("selection-state")
    selected = state["selected"]
    panel.evaluate("el => el.scrollIntoView({block: 'start'})")
    lab.shot("05-embedding-box-selected")

    # the kernel holds what the browser selected: every marker well inside the box, none well outside
    assert selected == front
    assert set(number[strictly]) <= set(selected) <= set(number[loosely])
    assert len(selected) >= 8
    k = state["k"]
    assert state["rows"] == len(selected) * k
    expect(rows).to_have_count(min(len(selected), 50) * k, timeout=UI_TIMEOUT)
    expect(panel.locator(".wb-selection-table")).to_contain_text(f"{len(selected)} selected")

    # every listed neighbour and cosine, recomputed here from the embeddings
    headers = panel.locator(".wb-selection-table table.wb-neighbours thead th").all_inner_texts()
    table = [dict(zip(headers, r, strict=True)) for r in panel.locator(
        ".wb-selection-table table.wb-neighbours tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.cells).map(c => c.innerText))")]
    listed = set()
    for row in table:
        mine, other = (paired.a, paired.b) if row["modality"] == "image" else (paired.b, paired.a)
        r, rank, n = int(row["row"]), int(row["rank"]), int(row["neighbour_row"])
        listed.add(r + (0 if row["modality"] == "image" else state["n_a"]))
        scores = other.vectors @ mine.vectors[r]
        assert abs(float(row["cosine"]) - float(scores[n])) <= 0.5e-4 + 1e-6, row
        assert int(np.argsort(-scores, kind="stable")[rank - 1]) == n, row
        assert -1.0 <= float(row["cosine"]) <= 1.0
    assert listed == set(selected[:50])
    expect(page.locator(".wb-message.wb-error")).to_have_count(0)
    expect(page.locator(STDERR)).to_have_count(0)
