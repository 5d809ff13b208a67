"""The panels in a real JupyterLab in Chromium: they render, and the browser's interactions reach the kernel.

The module-scoped ``lab`` fixture opens ``panels_demo.ipynb`` once and runs its panel cells once (Shift+Enter);
the tests then interact with what is on the page and check it against values computed here, independently of the
kernel. Screenshots of every step are kept in ``tests/browser/artifacts/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from . import make_panels_demo as demo

#: Waits (milliseconds): generous, for a loaded 2-core machine.
KERNEL_IDLE_TIMEOUT = 60_000
CELL_TIMEOUT = 180_000
UI_TIMEOUT = 60_000
#: Panel cell id -> the CSS class of the panel it shows (each panel holds a plotly figure).
PANELS = {"gap": "wb-gap-explorer", "embedding": "wb-embedding-explorer", "retrieval": "wb-retrieval-browser",
          "comparison": "wb-corrector-comparison", "training": "wb-training-monitor"}
STDERR = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'
#: JS: the point traces of an EmbeddingExplorer plot with every marker's page position.
POINTS_JS = """gd => {
  const fl = gd._fullLayout, xa = fl.xaxis, ya = fl.yaxis, r = gd.getBoundingClientRect();
  const points = [];
  gd._fullData.forEach((t, i) => {
    const side = t.meta && t.meta.side;
    if (side !== 'a' && side !== 'b') return;
    for (let j = 0; j < t.x.length; j++) {
      points.push({curve: i, side: side, index: j, text: String(t.text[j]),
                   px: r.left + xa._offset + xa.d2p(t.x[j]), py: r.top + ya._offset + ya.d2p(t.y[j])});
    }
  });
  return {points: points,
          area: {left: r.left + xa._offset, top: r.top + ya._offset, width: xa._length, height: ya._length}};
}"""


# -- helpers ------------------------------------------------------------------------------------------------------
def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


@dataclass
class Lab:
    """The notebook page, with the browser's console errors and uncaught page errors seen so far."""

    page: Any
    artifacts: Path
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def cell(self, cell_id: str) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell").nth(demo.cell_index(cell_id))

    def run(self, cell_id: str) -> Any:
        """Select the cell, press Shift+Enter and wait until it has run (its prompt shows an execution count)."""
        cell = self.cell(cell_id)
        prompt = cell.locator(".jp-InputPrompt")
        prompt.scroll_into_view_if_needed()
        prompt.click()
        self.page.keyboard.press("Shift+Enter")
        _expect()(prompt).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=CELL_TIMEOUT)
        return cell

    def kernel_json(self, cell_id: str) -> dict[str, Any]:
        """Run a read-back cell and parse the JSON it prints."""
        cell = self.run(cell_id)
        output = cell.locator(".jp-OutputArea-output").first
        _expect()(output).to_contain_text("{", timeout=UI_TIMEOUT)
        return json.loads(output.inner_text())

    def shot(self, name: str, locator: Any = None) -> Path:
        path = self.artifacts / f"{name}.png"
        (locator or self.page).screenshot(path=str(path))
        return path

    def panel(self, cell_id: str) -> Any:
        return self.cell(cell_id).locator(f".jp-OutputArea-output .{PANELS[cell_id]}")

    def plot(self, cell_id: str) -> Any:
        return self.panel(cell_id).locator(".js-plotly-plot").first


@pytest.fixture(scope="module")
def lab(browser: Any, jupyter_lab: Any, artifacts: Path) -> Iterator[Lab]:
    """The demo notebook opened in JupyterLab with every panel cell run once."""
    context = browser.new_context(viewport={"width": 1600, "height": 1300})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT)
    result = Lab(page=page, artifacts=artifacts)
    page.on("pageerror", lambda error: result.page_errors.append(str(error)))
    page.on("console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None)
    try:
        try:
            page.goto(jupyter_lab.notebook_url(demo.NOTEBOOK.name))
            _expect()(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=KERNEL_IDLE_TIMEOUT)
            result.shot("01-notebook-opened")
            for cell_id in ("setup", *PANELS):
                result.run(cell_id)
            _expect()(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=KERNEL_IDLE_TIMEOUT)
        except Exception:
            result.shot("FAILED-opening-the-notebook")
            raise
        yield result
    finally:
        (artifacts / "browser-console.log").write_text(
            "page errors:\n" + "\n".join(result.page_errors) + "\n\nconsole errors:\n"
            + "\n".join(result.console_errors) + "\n", encoding="utf-8")
        context.close()


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
def test_every_panel_renders(lab: Lab) -> None:
    expect = _expect()
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
def test_gap_slider_updates_the_centroid_distance(lab: Lab, paired: Any) -> None:
    from workbench.correct import GapShift
    from workbench.gap import gap_report

    expect = _expect()
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
def test_embedding_hover_shows_the_point(lab: Lab) -> None:
    expect = _expect()
    plot = lab.plot("embedding")
    plot.evaluate("gd => gd.scrollIntoView({block: 'center'})")
    lab.page.wait_for_timeout(300)  # let the scroll settle before measuring positions
    info = plot.evaluate(POINTS_JS)
    points, area = info["points"], info["area"]
    assert len(points) == 2 * demo.N_PAIRS
    xy = np.array([[p["px"], p["py"]] for p in points])
    inside = ((xy[:, 0] > area["left"] + 10) & (xy[:, 0] < area["left"] + area["width"] - 10)
              & (xy[:, 1] > area["top"] + 10) & (xy[:, 1] < area["top"] + area["height"] - 10))
    distances = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1)
    np.fill_diagonal(distances, np.inf)
    isolation = np.where(inside, distances.min(axis=1), -1.0)
    target = points[int(np.argmax(isolation))]  # the most isolated marker: the tooltip can only be its
    assert isolation.max() > 3, "no marker is apart from the others"
    point_id = re.search(r"id: (\d+)", target["text"]).group(1)
    modality = "image" if target["side"] == "a" else "text"
    lab.page.mouse.move(target["px"] - 30, target["py"] - 30)
    lab.page.mouse.move(target["px"], target["py"], steps=5)
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
def test_embedding_box_select_fills_the_table(lab: Lab, paired: Any) -> None:
    expect = _expect()
    page = lab.page
    panel = lab.panel("embedding")
    plot = lab.plot("embedding")
    plot.evaluate("gd => gd.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(300)
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
