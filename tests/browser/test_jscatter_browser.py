"""The jupyter-scatter EmbeddingExplorer in a real JupyterLab in Chromium: a lasso drawn with the mouse reaches the
kernel's ``explorer.selection``, a selection made in Python shows in the widget, hovering previews the item.

``jscatter_demo.ipynb`` (written by ``make_panels_demo.py``) shows three clusters of 40 image/text pairs, coloured
by cluster. The points are drawn with WebGL, so the tests find them in a screenshot: the pixels of each cluster's
colour give its place on the page. A lasso around one cluster must select exactly that cluster's 80 points, which
the tests know from how the notebook builds the data (never from the kernel). Screenshots go to
``tests/browser/artifacts/`` (``jscatter-*.png``).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from . import make_panels_demo as demo
from ._lab import CELL_TIMEOUT, STDERR, UI_TIMEOUT, Lab, expect, hover, open_lab, settle

#: The colour of cluster k (the explorer colours classes 0, 1, 2 with Okabe & Ito's first three colours).
CLUSTER_COLORS = {0: "#0072B2", 1: "#D55E00", 2: "#009E73"}
N_A = demo.CLUSTERS * demo.CLUSTER_SIZE
#: The lasso runs this many pixels outside a cluster's bounding box (the clusters are hundreds of pixels apart).
MARGIN = 14


def cluster_points(k: int) -> list[int]:
    """The point numbers of cluster ``k``: its image rows, then its text rows (numbered after all images)."""
    rows = list(range(k * demo.CLUSTER_SIZE, (k + 1) * demo.CLUSTER_SIZE))
    return rows + [N_A + r for r in rows]


class JscatterLab(Lab):
    """The jupyter-scatter notebook's page, with the explorer's widget and canvas."""

    @property
    def explorer(self) -> Any:
        return self.cell("explorer").locator(".jp-OutputArea-output .wb-embedding-explorer")

    @property
    def canvas(self) -> Any:
        return self.explorer.locator(".wb-jscatter canvas").first

    def cluster_boxes(self) -> dict[int, np.ndarray]:
        """Each cluster's bounding box on the page, ``[left, top, right, bottom]``, from a screenshot's pixels."""
        from PIL import Image

        canvas = self.canvas
        settle(canvas, centre=False)
        image = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")).astype(np.float64)
        box = canvas.bounding_box()
        legend = self.explorer.locator(".legend").first.bounding_box()
        owner = _colour_classes(image)
        if legend is not None:  # the legend's dots have the clusters' colours too
            x0, y0 = int(legend["x"] - box["x"]) - 2, int(legend["y"] - box["y"]) - 2
            owner[max(y0, 0): y0 + int(legend["height"]) + 4, max(x0, 0): x0 + int(legend["width"]) + 4] = -1
        boxes = {}
        for k in CLUSTER_COLORS:
            ys, xs = np.nonzero(owner == k)
            assert len(xs) > 100, f"cluster {k} ({CLUSTER_COLORS[k]}) is not drawn: {len(xs)} pixels of its colour"
            boxes[k] = np.array([xs.min() + box["x"], ys.min() + box["y"], xs.max() + box["x"], ys.max() + box["y"]])
        return boxes

    def lasso(self, around: np.ndarray, long_press: bool = False) -> None:
        """Drag a lasso (a rectangle MARGIN pixels outside ``around``); ``long_press``: hold the button first."""
        left, top, right, bottom = np.asarray(around) + np.array([-MARGIN, -MARGIN, MARGIN, MARGIN])
        mouse = self.page.mouse
        mouse.move(left, top)
        mouse.down()
        if long_press:
            self.page.wait_for_timeout(1200)  # regl-scatterplot starts the lasso after 750 ms without moving
        for x, y in ((right, top), (right, bottom), (left, bottom), (left, top + 6)):
            mouse.move(x, y, steps=8)
            self.page.wait_for_timeout(40)  # the lasso adds a vertex at most every 10 ms
        mouse.up()

    def front_end_selection(self) -> list[int]:
        """The points the widget shows as selected (regl-scatterplot's own state, on the widget's container)."""
        return sorted(self.explorer.evaluate(
            "el => Array.from(Array.from(el.querySelectorAll('*')).find(e => e.api).api.get('selectedPoints'))"))

    def wait_for_front_end_selection(self, expected: list[int]) -> list[int]:
        """Poll the widget's selection until it is ``expected`` (or UI_TIMEOUT passes); the last one seen."""
        seen: list[int] = []
        for _ in range(UI_TIMEOUT // 250):
            seen = self.front_end_selection()
            if seen == expected:
                break
            self.page.wait_for_timeout(250)
        return seen


def _colour_classes(image: np.ndarray) -> np.ndarray:
    """Per pixel: the cluster whose colour it shows (a point's colour blended over white), or -1."""
    white = np.array([255.0, 255.0, 255.0])
    residuals, strengths = [], []
    for colour in CLUSTER_COLORS.values():
        direction = np.array([int(colour[i: i + 2], 16) for i in (1, 3, 5)], dtype=np.float64) - white
        alpha = (image - white) @ direction / (direction @ direction)
        residuals.append(np.linalg.norm(image - white - alpha[..., None] * direction, axis=-1))
        strengths.append(alpha)
    residual, strength = np.stack(residuals), np.stack(strengths)
    best = residual.argmin(axis=0)
    pick = best[None]
    ok = (np.take_along_axis(residual, pick, 0)[0] < 20) & (np.take_along_axis(strength, pick, 0)[0] > 0.5)
    return np.where(ok, best, -1)


@pytest.fixture(scope="module")
def lab(browser: Any, jupyter_lab: Any, artifacts: Path) -> Iterator[JscatterLab]:
    """The jupyter-scatter notebook opened in JupyterLab, with its data and explorer cells run once."""
    with open_lab(browser, jupyter_lab, artifacts, demo.JSCATTER_NOTEBOOK.name, [c[0] for c in demo.JSCATTER_CELLS],
                  ("setup", "explorer"), name="jscatter-opening-the-notebook", lab_type=JscatterLab,
                  ready=lambda lab: expect(lab.canvas).to_be_visible(timeout=CELL_TIMEOUT),
                  console_log="jscatter-browser-console.log") as result:
        yield result


def test_committed_jscatter_notebook_is_generated_and_stripped() -> None:
    text = demo.JSCATTER_NOTEBOOK.read_text(encoding="utf-8")
    assert text == demo.render(demo.JSCATTER_CELLS), "jscatter_demo.ipynb is out of date: run make_panels_demo.py"
    for cell in json.loads(text)["cells"]:
        assert not cell.get("outputs") and cell.get("execution_count") is None


@pytest.mark.browser
def test_jscatter_explorer_draws_the_three_clusters(lab: JscatterLab) -> None:
    expect(lab.explorer).to_be_visible()
    expect(lab.explorer.locator(".legend")).to_contain_text("cluster")
    box = lab.canvas.bounding_box()
    assert box is not None and box["width"] >= 700 and box["height"] >= 500, box
    boxes = lab.cluster_boxes()
    lab.shot("jscatter-01-rendered", lab.explorer)
    # three separate blobs, each small against the gaps between them (so a lasso can take exactly one)
    for k, mine in boxes.items():
        assert (mine[2] - mine[0]) < 160 and (mine[3] - mine[1]) < 160, (k, mine)
        for j, other in boxes.items():
            if j != k:
                apart = max(other[0] - mine[2], mine[0] - other[2], other[1] - mine[3], mine[1] - other[3])
                assert apart > 3 * MARGIN, (k, j, mine, other)
    state = lab.kernel_json("state")
    assert state["backend"] == "jscatter" and state["n_a"] == N_A and state["selected"] == []
    expect(lab.page.locator(".wb-message.wb-error")).to_have_count(0)
    expect(lab.page.locator(STDERR)).to_have_count(0)
    assert not lab.page_errors, lab.page_errors


@pytest.mark.browser
def test_jscatter_lasso_selection_reaches_explorer_selection(lab: JscatterLab) -> None:
    panel = lab.explorer
    table = panel.locator(".wb-selection-table")
    panel.get_by_title("Activate lasso selection").click()
    lab.lasso(lab.cluster_boxes()[1])  # measured right before the drag: running a cell scrolls the page
    expected = cluster_points(1)
    assert lab.wait_for_front_end_selection(expected) == expected  # exactly cluster 1: 40 images, 40 captions
    expect(table).to_contain_text(f"{len(expected)} selected", timeout=UI_TIMEOUT)
    lab.shot("jscatter-02-lasso-cluster-1", lab.canvas)
    state = lab.kernel_json("state")
    assert state["selected"] == expected
    assert state["rows"] == len(expected) * state["k"]
    expect(table.locator("table.wb-neighbours tbody tr")).to_have_count(50 * state["k"])  # 50 items listed

    # pan mode: a long press starts the lasso; the new selection replaces the old one
    panel.get_by_title("Activate pan & zoom").click()
    lab.lasso(lab.cluster_boxes()[0], long_press=True)
    expected = cluster_points(0)
    assert lab.wait_for_front_end_selection(expected) == expected
    lab.shot("jscatter-03-long-press-lasso-cluster-0", lab.canvas)
    assert lab.kernel_json("state")["selected"] == expected
    expect(table).to_contain_text(f"{len(expected)} selected")
    expect(lab.page.locator(".wb-message.wb-error")).to_have_count(0)
    assert not lab.page_errors, lab.page_errors


@pytest.mark.browser
def test_jscatter_selection_from_python_shows_in_the_widget(lab: JscatterLab) -> None:
    cell = lab.run("select")
    expected = cluster_points(2)[::2]  # what the cell selects: every other point of cluster 2
    expect(cell.locator(".jp-OutputArea-output").first).to_have_text(str(len(expected)))
    assert lab.wait_for_front_end_selection(expected) == expected
    expect(lab.explorer.locator(".wb-selection-table")).to_contain_text(f"{len(expected)} selected")
    assert lab.kernel_json("state")["selected"] == expected


@pytest.mark.browser
def test_jscatter_hover_previews_the_item(lab: JscatterLab) -> None:
    panel = lab.explorer
    left, top, right, bottom = lab.cluster_boxes()[0]
    centre = ((left + right) / 2, (top + bottom) / 2)
    hover(lab.page, *centre, approach=60, steps=10)
    preview = panel.locator(".wb-preview-text")
    expect(preview).to_contain_text(re.compile(r"(image|text) · id \d+"), timeout=UI_TIMEOUT)
    # the side preview (from the kernel) and the tooltip (in the page) settle on the same hovered item
    side = tip = None
    for _ in range(UI_TIMEOUT // 250):
        side = re.search(r"(image|text) · id (\d+)", preview.inner_text())
        tip = re.search(r"Modality\s+(image|text)\s+Id\s+(\d+)", panel.locator(".wb-jscatter").inner_text())
        if side and tip and side.groups() == tip.groups():
            break
        lab.page.wait_for_timeout(250)
    assert side and tip and side.groups() == tip.groups(), (side, tip)
    modality, item = side.groups()
    assert int(item) // demo.CLUSTER_SIZE == 0  # the hovered item is one of cluster 0's
    # the tooltip's preview, fetched from the kernel: the image's thumbnail, or a card with the caption
    kind = "png" if modality == "image" else "svg"
    lab.page.wait_for_function(
        "kind => Array.from(document.querySelectorAll('.wb-jscatter div')).some(d =>"
        " d.style.backgroundImage.startsWith('url(\"data:image/' + kind))", arg=kind, timeout=UI_TIMEOUT)
    lab.shot("jscatter-04-hover", lab.canvas)
    lab.page.mouse.move(left - 200, top - 200)
