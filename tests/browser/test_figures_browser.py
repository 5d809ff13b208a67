"""Plot fixes seen in a real JupyterLab in Chromium (issue 16, items 3 and 6):

- the loss landscape's dashed "model's own gap" line is drawn with a visible width (the ``simple_white`` template's
  shape defaults drew it 0 wide in notebooks and HTML reports);
- the CorrectorComparison legend box does not cover the corrector names under the bars;
- GapExplorer shows the "fitted on these pairs (in-sample)" badge, and disables the δ slider, when a fitted
  corrector is picked in its dropdown, and hides the badge again for GapShift.

The notebook is written by this module into the folder the session's JupyterLab serves (``jupyter_lab.root``),
so it needs no committed file; its cells are ``CELLS`` below.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

NOTEBOOK = "figures_demo.ipynb"
KERNEL_IDLE_TIMEOUT = 60_000
CELL_TIMEOUT = 180_000
UI_TIMEOUT = 60_000

CELLS: list[tuple[str, str]] = [
    ("setup", """\
import workbench
from workbench.correct import GapShift, MeanCenter, Procrustes
from workbench.figures import loss_landscape_figure
from workbench.gap import gap_loss_landscape
from workbench.panels import CorrectorComparison, GapExplorer

paired = workbench.datasets.load("liang2022/clip").sample(200)"""),
    ("landscape", "loss_landscape_figure(gap_loss_landscape(paired), paired.modalities)"),
    ("comparison", """\
CorrectorComparison(paired, [GapShift(1.0), MeanCenter(), Procrustes()], n_resamples=50, probe=False,
                    progress=False)"""),
    ("gap", """\
gap = GapExplorer(paired)
gap"""),
]

#: JS: the rendered dashed vertical line of a plot (its path's computed stroke and box).
VLINE_JS = """gd => [...gd.querySelectorAll('.shapelayer path')].map(p => {
  const s = getComputedStyle(p), r = p.getBoundingClientRect();
  return {width: parseFloat(s.strokeWidth), opacity: parseFloat(s.strokeOpacity), dash: s.strokeDasharray,
          height: r.height};
})"""
#: JS: the legend box and the x tick labels of a plot, in page pixels.
LEGEND_JS = """gd => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  return {legend: box(gd.querySelector('g.legend')),
          ticks: [...gd.querySelectorAll('g.xtick text')].map(t => ({text: t.textContent, box: box(t)}))};
}"""


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _notebook() -> str:
    cells = [{"cell_type": "code", "execution_count": None, "id": cell_id, "metadata": {}, "outputs": [],
              "source": source} for cell_id, source in CELLS]
    return json.dumps({"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)",
                                                                    "language": "python", "name": "python3"}},
                       "nbformat": 4, "nbformat_minor": 5}, indent=1)


class Page:
    def __init__(self, page: Any, artifacts: Path) -> None:
        self.page, self.artifacts = page, artifacts

    def cell(self, cell_id: str) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell").nth([c for c, _ in CELLS].index(cell_id))

    def run(self, cell_id: str) -> Any:
        cell = self.cell(cell_id)
        prompt = cell.locator(".jp-InputPrompt")
        prompt.scroll_into_view_if_needed()
        prompt.click()
        self.page.keyboard.press("Shift+Enter")
        _expect()(prompt).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=CELL_TIMEOUT)
        return cell

    def shot(self, name: str, locator: Any = None) -> None:
        (locator or self.page).screenshot(path=str(self.artifacts / f"{name}.png"))


@pytest.fixture(scope="module")
def lab(browser: Any, jupyter_lab: Any, artifacts: Path) -> Iterator[Page]:
    (jupyter_lab.root / NOTEBOOK).write_text(_notebook(), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1600, "height": 1300})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT)
    result = Page(page, artifacts)
    try:
        page.goto(jupyter_lab.notebook_url(NOTEBOOK))
        _expect()(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=KERNEL_IDLE_TIMEOUT)
        for cell_id, _ in CELLS:
            result.run(cell_id)
        _expect()(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=KERNEL_IDLE_TIMEOUT)
        yield result
    except Exception:
        result.shot("FAILED-figures-demo")
        raise
    finally:
        context.close()


@pytest.mark.browser
def test_the_loss_landscape_draws_its_dashed_line_with_a_visible_width(lab: Page) -> None:
    plot = lab.cell("landscape").locator(".js-plotly-plot").first  # the output element itself is the plot
    _expect()(plot).to_be_visible(timeout=UI_TIMEOUT)
    lines = plot.evaluate(VLINE_JS)
    lab.shot("figures-01-landscape", plot)
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["width"] >= 1.0 and line["opacity"] > 0 and line["height"] > 100  # spans the plot, drawn
    assert line["dash"] not in ("", "none")  # dashed


@pytest.mark.browser
def test_the_comparison_legend_does_not_cover_the_corrector_names(lab: Page) -> None:
    plot = lab.cell("comparison").locator(".wb-corrector-comparison .js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    _expect()(plot).to_be_visible(timeout=UI_TIMEOUT)
    _expect()(plot.locator("g.legend").first).to_be_attached(timeout=UI_TIMEOUT)
    _expect()(plot.locator("g.xtick text").first).to_be_visible(timeout=UI_TIMEOUT)
    found = plot.evaluate(LEGEND_JS)
    lab.shot("figures-02-comparison", plot)
    names = [t["text"] for t in found["ticks"]]
    assert names == ["GapShift()", "MeanCenter()", "Procrustes()"]
    left, top, right, bottom = found["legend"]
    assert right > left and bottom > top
    for tick in found["ticks"]:
        l2, t2, r2, b2 = tick["box"]
        overlap = min(right, r2) - max(left, l2) > 0 and min(bottom, b2) - max(top, t2) > 0
        assert not overlap, (tick, found["legend"])


@pytest.mark.browser
def test_a_fitted_corrector_shows_the_in_sample_badge_and_disables_the_slider(lab: Page) -> None:
    panel = lab.cell("gap").locator(".wb-gap-explorer")
    badge = panel.locator(".wb-gap-insample")
    slider = panel.locator(".wb-gap-delta")
    _expect()(slider).to_be_visible(timeout=UI_TIMEOUT)
    _expect()(badge).to_be_hidden()
    _expect()(slider.locator(".noUi-target")).not_to_have_attribute("disabled", re.compile(".*"))

    panel.locator(".wb-gap-corrector select").select_option("Procrustes")
    _expect()(badge).to_be_visible(timeout=UI_TIMEOUT)
    _expect()(badge).to_contain_text("fitted on these pairs (in-sample)")
    _expect()(badge).to_contain_text("Procrustes")
    track = slider.locator(".noUi-target")  # noUiSlider marks a disabled slider with a `disabled` attribute
    _expect()(track).to_have_attribute("disabled", re.compile(".*"), timeout=UI_TIMEOUT)
    lab.shot("figures-03-gap-in-sample", panel)

    panel.locator(".wb-gap-corrector select").select_option("GapShift")
    _expect()(badge).to_be_hidden(timeout=UI_TIMEOUT)
    _expect()(track).not_to_have_attribute("disabled", re.compile(".*"), timeout=UI_TIMEOUT)
