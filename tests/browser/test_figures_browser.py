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

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ._lab import UI_TIMEOUT, Lab, expect, open_lab, write_notebook

NOTEBOOK = "figures_demo.ipynb"

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


@pytest.fixture(scope="module")
def lab(browser: Any, jupyter_lab: Any, artifacts: Path) -> Iterator[Lab]:
    write_notebook(jupyter_lab.root / NOTEBOOK, CELLS)
    cell_ids = [cell_id for cell_id, _ in CELLS]
    with open_lab(browser, jupyter_lab, artifacts, NOTEBOOK, cell_ids, cell_ids, name="figures-demo") as result:
        yield result


@pytest.mark.browser
def test_the_loss_landscape_draws_its_dashed_line_with_a_visible_width(lab: Lab) -> None:
    plot = lab.cell("landscape").locator(".js-plotly-plot").first  # the output element itself is the plot
    expect(plot).to_be_visible(timeout=UI_TIMEOUT)
    lines = plot.evaluate(VLINE_JS)
    lab.shot("figures-01-landscape", plot)
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["width"] >= 1.0 and line["opacity"] > 0 and line["height"] > 100  # spans the plot, drawn
    assert line["dash"] not in ("", "none")  # dashed


@pytest.mark.browser
def test_the_comparison_legend_does_not_cover_the_corrector_names(lab: Lab) -> None:
    plot = lab.cell("comparison").locator(".wb-corrector-comparison .js-plotly-plot").first
    plot.scroll_into_view_if_needed()
    expect(plot).to_be_visible(timeout=UI_TIMEOUT)
    expect(plot.locator("g.legend").first).to_be_attached(timeout=UI_TIMEOUT)
    expect(plot.locator("g.xtick text").first).to_be_visible(timeout=UI_TIMEOUT)
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
def test_a_fitted_corrector_shows_the_in_sample_badge_and_disables_the_slider(lab: Lab) -> None:
    panel = lab.cell("gap").locator(".wb-gap-explorer")
    badge = panel.locator(".wb-gap-insample")
    slider = panel.locator(".wb-gap-delta")
    expect(slider).to_be_visible(timeout=UI_TIMEOUT)
    expect(badge).to_be_hidden()
    expect(slider.locator(".noUi-target")).not_to_have_attribute("disabled", re.compile(".*"))

    panel.locator(".wb-gap-corrector select").select_option("Procrustes")
    expect(badge).to_be_visible(timeout=UI_TIMEOUT)
    expect(badge).to_contain_text("fitted on these pairs (in-sample)")
    expect(badge).to_contain_text("Procrustes")
    track = slider.locator(".noUi-target")  # noUiSlider marks a disabled slider with a `disabled` attribute
    expect(track).to_have_attribute("disabled", re.compile(".*"), timeout=UI_TIMEOUT)
    lab.shot("figures-03-gap-in-sample", panel)

    panel.locator(".wb-gap-corrector select").select_option("GapShift")
    expect(badge).to_be_hidden(timeout=UI_TIMEOUT)
    expect(track).not_to_have_attribute("disabled", re.compile(".*"), timeout=UI_TIMEOUT)
