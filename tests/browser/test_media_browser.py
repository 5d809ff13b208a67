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

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ._lab import (
    UI_TIMEOUT,
    Lab,
    expect,
    file_pixels,
    hover_image_marker,
    image_pixels,
    open_lab,
    open_query,
    query_ranks,
    thumb_pixels,
    worst_first,
    write_notebook,
)

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


@pytest.fixture(scope="module")
def paired() -> Any:
    """The set the notebook shows, built here from the same code in a folder of this process."""
    with tempfile.TemporaryDirectory() as tmp:
        scope: dict[str, Any] = {"folder": Path(tmp) / "shapes", "Path": Path}
        exec(SETUP, scope)  # the test's own code, shared with the notebook
        yield scope["paired"], Path(tmp) / "shapes"


@pytest.fixture(scope="module")
def lab(browser: Any, jupyter_lab: Any, artifacts: Path) -> Iterator[Lab]:
    write_notebook(jupyter_lab.root / NOTEBOOK_NAME, CELLS)
    with open_lab(browser, jupyter_lab, artifacts, NOTEBOOK_NAME, [c[0] for c in CELLS],
                  ("setup", "explorer", "browser"), name="media-notebook", no_page_errors=True) as result:
        yield result


def _in_kernel_folder(path: str, local_folder: Path) -> Path:
    """The file of this process's copy of the world that corresponds to a path in the kernel's folder."""
    return local_folder / Path(path).name


@pytest.mark.browser
def test_hover_shows_the_thumbnail_and_the_caption(lab: Lab, paired: Any) -> None:
    data, folder = paired
    panel = lab.cell("explorer").locator(".wb-embedding-explorer")
    row, tooltip, preview = hover_image_marker(lab.page, panel, 2 * N_ITEMS)
    caption = data.a.metadata["caption"][row]
    expect(tooltip).to_contain_text(caption)
    # the side preview: the caption and an <img> whose pixels are the image file's
    expect(preview.locator(".wb-preview-text")).to_contain_text(caption, timeout=UI_TIMEOUT)
    got = image_pixels(lab.page, preview.locator("img.wb-preview-image"))
    want = file_pixels(_in_kernel_folder(data.a.metadata["path"][row], folder))
    assert got.shape == want.shape and np.array_equal(got, want)
    lab.shot("media-01-hover", panel)


@pytest.mark.browser
def test_typing_in_the_search_box_highlights_the_matches(lab: Lab, paired: Any) -> None:
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
    assert lab.kernel_json("state")["matches"] == expected
    lab.shot("media-02-search", panel)


@pytest.mark.browser
def test_clicking_a_failure_row_shows_the_query_and_the_top_item(lab: Lab, paired: Any) -> None:
    data, folder = paired
    panel = lab.cell("browser").locator(".wb-retrieval-browser")
    # the failures, computed here: image queries whose caption is not ranked first (ties count against them)
    scores = data.a.vectors @ data.b.vectors.T
    ranks = query_ranks(scores)
    failing = worst_first(ranks)
    assert failing, "the set has no failures to browse"
    rows = panel.locator(".wb-failure-row")
    expect(rows).to_have_count(min(20, len(failing)), timeout=UI_TIMEOUT)
    target = failing[min(2, len(failing) - 1)]
    row = rows.nth(failing.index(target))
    expect(row).to_contain_text(f"query image row {target} · rank {ranks[target]}")
    open_query(row)
    detail = panel.locator(".wb-query")
    expect(detail).to_contain_text(f"image row {target}", timeout=UI_TIMEOUT)
    expect(detail).to_contain_text(f"ranked {ranks[target]}")
    # the query's media: its image (pixels of its file) and caption; its correct match: the caption
    want = file_pixels(_in_kernel_folder(data.a.metadata["path"][target], folder))
    assert np.array_equal(thumb_pixels(detail.locator(".wb-detail-query img.wb-thumb")), want)
    expect(detail.locator(".wb-detail-query .wb-caption")).to_have_text(data.a.metadata["caption"][target])
    expect(detail.locator(".wb-detail-match .wb-caption")).to_have_text(data.b.metadata["caption"][target])
    # the top-ranked items, first the one that beat the match, each with its caption
    top = np.argsort(-scores[target], kind="stable")[:5]
    results = panel.locator(".wb-results table tbody tr")
    expect(results).to_have_count(5)
    for r, item in enumerate(top):
        expect(results.nth(r).locator(".wb-caption")).to_have_text(data.b.metadata["caption"][int(item)])
    assert int(top[0]) != target
    state = lab.kernel_json("state")
    assert state["row"] == target and state["direction"] == "a_to_b"
    lab.shot("media-03-failure-opened", panel)

    # the other direction: a caption query, whose top item is an image (its thumbnail is the file's pixels)
    panel.locator(".wb-direction button", has_text="text → image").click()
    back = query_ranks(scores.T)
    worst = worst_first(back)
    expect(rows.first).to_contain_text(f"query text row {worst[0]} · rank {back[worst[0]]}", timeout=UI_TIMEOUT)
    open_query(rows.first)
    expect(detail).to_contain_text(f"text row {worst[0]}", timeout=UI_TIMEOUT)
    best = int(np.argsort(-scores[:, worst[0]], kind="stable")[0])
    want = file_pixels(_in_kernel_folder(data.a.metadata["path"][best], folder))
    assert np.array_equal(thumb_pixels(results.first.locator("img.wb-thumb")), want)
    expect(results.first.locator(".wb-caption")).to_have_text(data.a.metadata["caption"][best])
    lab.shot("media-04-caption-query-opened", panel)
