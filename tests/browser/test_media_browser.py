"""The panels on a real-media set in a real JupyterLab (Chromium): they show the items themselves.

The set is a synthetic ``shapes`` world written as a folder of PNG files (``World.to_folder``) with a caption per
image, its ids, paths, captions and shape labels in the metadata (the media contract of the panels); the embeddings
are the items' attributes plus seeded noise, so retrieval fails on some queries. The notebook is written by this
module into the server's folder (nothing committed), and its setup code runs here too (``SETUP``), so every value
checked against the page is computed here, independently of the kernel.

Checked: hovering a point shows its thumbnail as an ``<img>`` (its pixels are the image file's) and its caption;
typing in the EmbeddingExplorer's search box highlights the matching points and fades the rest; clicking a
RetrievalBrowser failure row opens that query with the query's and the top item's media.
"""

from __future__ import annotations

import base64
import io
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

#: Waits (milliseconds): generous, for a loaded 2-core machine.
KERNEL_IDLE_TIMEOUT = 60_000
CELL_TIMEOUT = 180_000
UI_TIMEOUT = 60_000
NOTEBOOK_NAME = "media_demo.ipynb"
#: Items of the world (each an image and its caption: 2 * N_ITEMS points).
N_ITEMS = 30
#: The search typed into the EmbeddingExplorer.
SEARCH = "circle"

#: Builds ``paired`` from a new folder ``folder`` (run by the notebook's kernel, and here for the expected values).
SETUP = f"""\
import numpy as np
import polars as pl

import workbench
from workbench.datasets.worlds import shapes

world = shapes({N_ITEMS}, seed=0, size=64)
world.to_folder(folder)
items = world.items
paths = [str(Path(folder) / f"{{i:06d}}.png") for i in items["id"].to_list()]
codes = np.concatenate([np.eye(k)[items[f"{{c}}_code"].to_numpy()] for c, k in
                        (("shape", 6), ("color", 6), ("size", 2), ("position", 5))], axis=1)
rng = np.random.default_rng(0)
meta = {{"id": items["id"], "caption": items["caption"], "label": items["shape"]}}
paired = workbench.PairedEmbeddings.from_arrays(
    codes + 0.45 * rng.normal(size=codes.shape), codes + 0.45 * rng.normal(size=codes.shape),
    modalities=("image", "text"), metadata_a={{**meta, "path": paths}}, metadata_b=meta)
"""

CELLS: list[tuple[str, str]] = [
    ("setup", "import tempfile\nfrom pathlib import Path\n\nfolder = Path(tempfile.mkdtemp()) / 'shapes'\n" + SETUP
     + "paired"),
    ("explorer", "from workbench.panels import EmbeddingExplorer, RetrievalBrowser\n\n"
                 "explorer = EmbeddingExplorer(paired)\nexplorer"),
    ("browser", "browser = RetrievalBrowser(paired, k=5)\nbrowser"),
    ("state", "import json\nprint(json.dumps({'matches': None if explorer.matches is None else "
              "explorer.matches.tolist(), 'row': browser._row, 'direction': browser.direction}))"),
]

#: JS: the explorer's point traces with every marker's page position and hover text.
POINTS_JS = """gd => {
  const fl = gd._fullLayout, xa = fl.xaxis, ya = fl.yaxis, r = gd.getBoundingClientRect();
  const points = [];
  gd._fullData.forEach((t, i) => {
    const side = t.meta && t.meta.side;
    if (side !== 'a' && side !== 'b') return;
    for (let j = 0; j < t.x.length; j++) {
      points.push({side: side, index: j, text: String(t.text[j]),
                   px: r.left + xa._offset + xa.d2p(t.x[j]), py: r.top + ya._offset + ya.d2p(t.y[j])});
    }
  });
  return {points: points,
          area: {left: r.left + xa._offset, top: r.top + ya._offset, width: xa._length, height: ya._length}};
}"""


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _notebook() -> str:
    cells = [{"cell_type": "code", "id": cid, "metadata": {}, "source": src.splitlines(keepends=True),
              "execution_count": None, "outputs": []} for cid, src in CELLS]
    return json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}}, indent=1)


def _pixels(src: str) -> np.ndarray:
    """The RGB pixels of a ``data:image/png;base64,...`` URI."""
    from PIL import Image

    assert src.startswith("data:image/png;base64,"), src[:40]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"))


def _file_pixels(path: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


class Page:
    def __init__(self, page: Any, artifacts: Path) -> None:
        self.page, self.artifacts = page, artifacts

    def cell(self, cell_id: str) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell").nth([c[0] for c in CELLS].index(cell_id))

    def run(self, cell_id: str) -> Any:
        cell = self.cell(cell_id)
        prompt = cell.locator(".jp-InputPrompt")
        prompt.scroll_into_view_if_needed()
        prompt.click()
        self.page.keyboard.press("Shift+Enter")
        _expect()(prompt).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=CELL_TIMEOUT)
        return cell

    def state(self) -> dict[str, Any]:
        output = self.run("state").locator(".jp-OutputArea-output").first
        _expect()(output).to_contain_text("{", timeout=UI_TIMEOUT)
        return json.loads(output.inner_text())

    def shot(self, name: str, locator: Any = None) -> None:
        (locator or self.page).screenshot(path=str(self.artifacts / f"{name}.png"))


@pytest.fixture(scope="module")
def paired() -> Any:
    """The set the notebook shows, built here from the same code in a folder of this process."""
    with tempfile.TemporaryDirectory() as tmp:
        scope: dict[str, Any] = {"folder": Path(tmp) / "shapes", "Path": Path}
        exec(SETUP, scope)  # the test's own code, shared with the notebook
        yield scope["paired"], Path(tmp) / "shapes"


@pytest.fixture(scope="module")
def lab(browser: Any, jupyter_lab: Any, artifacts: Path) -> Iterator[Page]:
    (jupyter_lab.root / NOTEBOOK_NAME).write_text(_notebook(), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1600, "height": 1300})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    result = Page(page, artifacts)
    try:
        page.goto(jupyter_lab.notebook_url(NOTEBOOK_NAME))
        _expect()(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=KERNEL_IDLE_TIMEOUT)
        for cell_id in ("setup", "explorer", "browser"):
            result.run(cell_id)
        _expect()(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=KERNEL_IDLE_TIMEOUT)
        yield result
        assert not errors, errors
    except Exception:
        result.shot("FAILED-media-notebook")
        raise
    finally:
        context.close()


def _in_kernel_folder(path: str, local_folder: Path) -> Path:
    """The file of this process's copy of the world that corresponds to a path in the kernel's folder."""
    return local_folder / Path(path).name


def isolated_image_marker(lab: Any, plot: Any, n_points: int) -> dict[str, Any]:
    """The image-side marker farthest from every other marker, inside the plot area (so hovering it hits it alone).

    Scrolls the plot into view and checks that it draws ``n_points`` markers.
    """
    plot.evaluate("gd => gd.scrollIntoView({block: 'center'})")
    lab.page.wait_for_timeout(300)
    info = plot.evaluate(POINTS_JS)
    points, area = info["points"], info["area"]
    assert len(points) == n_points
    xy = np.array([[p["px"], p["py"]] for p in points])
    inside = ((xy[:, 0] > area["left"] + 10) & (xy[:, 0] < area["left"] + area["width"] - 10)
              & (xy[:, 1] > area["top"] + 10) & (xy[:, 1] < area["top"] + area["height"] - 10))
    distances = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1)
    np.fill_diagonal(distances, np.inf)
    is_image = np.array([p["side"] == "a" for p in points])
    isolation = np.where(inside & is_image, distances.min(axis=1), -1.0)
    assert isolation.max() > 3, "no image marker is apart from the others"
    return points[int(np.argmax(isolation))]


@pytest.mark.browser
def test_hover_shows_the_thumbnail_and_the_caption(lab: Page, paired: Any) -> None:
    expect = _expect()
    data, folder = paired
    panel = lab.cell("explorer").locator(".wb-embedding-explorer")
    plot = panel.locator(".js-plotly-plot").first
    expect(plot).to_be_visible(timeout=UI_TIMEOUT)
    target = isolated_image_marker(lab, plot, 2 * N_ITEMS)
    row = target["index"]
    caption = data.a.metadata["caption"][row]
    lab.page.mouse.move(target["px"] - 30, target["py"] - 30)
    lab.page.mouse.move(target["px"], target["py"], steps=5)
    tooltip = plot.locator(".hoverlayer .hovertext")
    expect(tooltip).to_be_visible(timeout=UI_TIMEOUT)
    expect(tooltip).to_contain_text(caption)
    # the side preview: the caption and an <img> whose pixels are the image file's
    preview = panel.locator(".wb-preview")
    expect(preview.locator(".wb-preview-text")).to_contain_text(caption, timeout=UI_TIMEOUT)
    image = preview.locator("img.wb-preview-image")
    expect(image).to_be_visible(timeout=UI_TIMEOUT)
    lab.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    shown = image.evaluate("""img => { const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight; const g = c.getContext('2d');
        g.drawImage(img, 0, 0); return {w: c.width, h: c.height,
        data: Array.from(g.getImageData(0, 0, c.width, c.height).data)}; }""")
    want = _file_pixels(str(_in_kernel_folder(data.a.metadata["path"][row], folder)))
    got = np.array(shown["data"], dtype=np.uint8).reshape(shown["h"], shown["w"], 4)[..., :3]
    assert got.shape == want.shape and np.array_equal(got, want)
    lab.shot("media-01-hover", panel)


@pytest.mark.browser
def test_typing_in_the_search_box_highlights_the_matches(lab: Page, paired: Any) -> None:
    expect = _expect()
    data, _ = paired
    panel = lab.cell("explorer").locator(".wb-embedding-explorer")
    captions = data.a.metadata["caption"].to_list() + data.b.metadata["caption"].to_list()
    labels = data.a.metadata["label"].to_list() + data.b.metadata["label"].to_list()
    expected = [p for p in range(2 * N_ITEMS) if SEARCH in captions[p].lower() or SEARCH in labels[p].lower()]
    assert 0 < len(expected) < 2 * N_ITEMS
    box = panel.locator(".wb-search input")
    box.scroll_into_view_if_needed()
    box.click()
    box.press_sequentially(SEARCH, delay=50)
    count = panel.locator(".wb-search-count")
    expect(count).to_contain_text(f"{len(expected)} of {2 * N_ITEMS} points match", timeout=UI_TIMEOUT)
    plot = panel.locator(".js-plotly-plot").first
    lab.page.wait_for_function(
        "gd => gd._fullData.some(t => Array.isArray(t.marker.opacity) || ArrayBuffer.isView(t.marker.opacity))",
        arg=plot.element_handle(), timeout=UI_TIMEOUT)
    opacity = plot.evaluate("""gd => gd._fullData.filter(t => t.meta && (t.meta.side === 'a' || t.meta.side === 'b'))
        .map(t => Array.from(t.marker.opacity))""")
    flat = np.concatenate([np.asarray(o, dtype=float) for o in opacity])
    assert np.flatnonzero(flat == 1.0).tolist() == expected
    assert np.all(flat[np.setdiff1d(np.arange(2 * N_ITEMS), expected)] < 0.5)
    assert lab.state()["matches"] == expected
    lab.shot("media-02-search", panel)


@pytest.mark.browser
def test_clicking_a_failure_row_shows_the_query_and_the_top_item(lab: Page, paired: Any) -> None:
    expect = _expect()
    data, folder = paired
    panel = lab.cell("browser").locator(".wb-retrieval-browser")
    # the failures, computed here: image queries whose caption is not ranked first (ties count against them)
    scores = data.a.vectors @ data.b.vectors.T
    own = np.diag(scores)
    ranks = 1 + (scores > own[:, None]).sum(axis=1) + ((scores == own[:, None]).sum(axis=1) - 1)
    failing = sorted((q for q in range(N_ITEMS) if ranks[q] > 1), key=lambda q: (-ranks[q], q))
    assert failing, "the set has no failures to browse"
    rows = panel.locator(".wb-failure-row")
    expect(rows).to_have_count(min(20, len(failing)), timeout=UI_TIMEOUT)
    target = failing[min(2, len(failing) - 1)]
    row = rows.nth(failing.index(target))
    expect(row).to_contain_text(f"query image row {target} · rank {ranks[target]}")
    row.scroll_into_view_if_needed()
    row.locator("button.wb-open-query").click()
    detail = panel.locator(".wb-query")
    expect(detail).to_contain_text(f"image row {target}", timeout=UI_TIMEOUT)
    expect(detail).to_contain_text(f"ranked {ranks[target]}")
    # the query's media: its image (pixels of its file) and caption; its correct match: the caption
    query_img = detail.locator(".wb-detail-query img.wb-thumb")
    expect(query_img).to_be_visible()
    want = _file_pixels(str(_in_kernel_folder(data.a.metadata["path"][target], folder)))
    assert np.array_equal(_pixels(query_img.get_attribute("src")), want)
    expect(detail.locator(".wb-detail-query .wb-caption")).to_have_text(data.a.metadata["caption"][target])
    expect(detail.locator(".wb-detail-match .wb-caption")).to_have_text(data.b.metadata["caption"][target])
    # the top-ranked items, first the one that beat the match, each with its caption
    top = np.argsort(-scores[target], kind="stable")[:5]
    results = panel.locator(".wb-results table tbody tr")
    expect(results).to_have_count(5)
    for r, item in enumerate(top):
        expect(results.nth(r).locator(".wb-caption")).to_have_text(data.b.metadata["caption"][int(item)])
    assert int(top[0]) != target
    state = lab.state()
    assert state["row"] == target and state["direction"] == "a_to_b"
    lab.shot("media-03-failure-opened", panel)

    # the other direction: a caption query, whose top item is an image (its thumbnail is the file's pixels)
    panel.locator(".wb-direction button", has_text="text → image").click()
    back = 1 + (scores.T > own[:, None]).sum(axis=1) + ((scores.T == own[:, None]).sum(axis=1) - 1)
    worst = sorted((q for q in range(N_ITEMS) if back[q] > 1), key=lambda q: (-back[q], q))
    expect(rows.first).to_contain_text(f"query text row {worst[0]} · rank {back[worst[0]]}", timeout=UI_TIMEOUT)
    rows.first.locator("button.wb-open-query").click()
    expect(detail).to_contain_text(f"text row {worst[0]}", timeout=UI_TIMEOUT)
    best = int(np.argsort(-scores[:, worst[0]], kind="stable")[0])
    first_img = results.first.locator("img.wb-thumb")
    expect(first_img).to_be_visible()
    want = _file_pixels(str(_in_kernel_folder(data.a.metadata["path"][best], folder)))
    assert np.array_equal(_pixels(first_img.get_attribute("src")), want)
    expect(results.first.locator(".wb-caption")).to_have_text(data.a.metadata["caption"][best])
    lab.shot("media-04-caption-query-opened", panel)
