"""The panels on the built-in real-media set ``emoji/names`` in a real JupyterLab (Chromium).

The set is loaded as shipped (Noto Emoji thumbnails with their CLDR names, the precomputed pretrained embeddings),
cut to the first :data:`N_PAIRS` pairs of its test split to stay fast. Its metadata carries ``caption`` (the
emoji's name), ``path`` (the emoji's image file, on both sides) and ``label`` (its group). The notebook is written
by this module into the server's folder, and the same setup code runs here (``SETUP``), so every value checked
against the page (captions, file pixels, failure ranks) is computed here from the set and the files, independently
of the kernel.

Checked: hovering an emoji's image point shows its thumbnail as an ``<img>`` whose pixels are the image file's,
and its name; clicking a RetrievalBrowser failure row opens the query with the query's media (the emoji's image and
name) and the top-ranked item's media (the wrong emoji's image and name).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.browser.test_media_browser import (
    KERNEL_IDLE_TIMEOUT,
    UI_TIMEOUT,
    Page,
    _expect,
    _file_pixels,
    _pixels,
    isolated_image_marker,
)

NOTEBOOK_NAME = "emoji_demo.ipynb"
#: Pairs of the test split shown (each an image and its name: 2 * N_PAIRS points).
N_PAIRS = 200

#: Builds ``paired`` (run by the notebook's kernel, and here for the expected values).
SETUP = f"""\
import numpy as np

import workbench

emoji = workbench.datasets.load("emoji/names")
paired = emoji.subset(np.flatnonzero((emoji.a.metadata["split"] == "test").to_numpy())[:{N_PAIRS}])
# a second system: the same names with seeded noise; the flip ledger of noisy -> shipped embeddings
from workbench.retrieval import flip_ledger

noise = np.random.default_rng(0).normal(size=paired.b.vectors.shape)
noisy = workbench.PairedEmbeddings.from_arrays(paired.a.vectors, paired.b.vectors + 0.06 * noise,
                                               modalities=paired.modalities, metadata_a=paired.a.metadata,
                                               metadata_b=paired.b.metadata)
ledger = flip_ledger(noisy, paired)
"""

CELLS: list[tuple[str, str]] = [
    ("setup", SETUP + "paired"),
    ("explorer", "from workbench.panels import EmbeddingExplorer, RetrievalBrowser\n\n"
                 "explorer = EmbeddingExplorer(paired, color_by='label')\nexplorer"),
    ("browser", "browser = RetrievalBrowser(paired, k=5)\nbrowser"),
    ("flips", "flips = RetrievalBrowser(paired, queries=ledger, k=3)\nflips"),
    ("state", "import json\nprint(json.dumps({'row': browser._row, 'direction': browser.direction}))"),
]


class EmojiPage(Page):
    def cell(self, cell_id: str) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell").nth([c[0] for c in CELLS].index(cell_id))


def _notebook() -> str:
    cells = [{"cell_type": "code", "id": cid, "metadata": {}, "source": src.splitlines(keepends=True),
              "execution_count": None, "outputs": []} for cid, src in CELLS]
    return json.dumps({"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}}}, indent=1)


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    """The names ``SETUP`` defines (``paired``, ``noisy``, ``ledger``), run here."""
    scope: dict[str, Any] = {}
    exec(SETUP, scope)  # the test's own code, shared with the notebook
    return scope


@pytest.fixture(scope="module")
def paired(setup: dict[str, Any]) -> Any:
    data = setup["paired"]
    assert len(data.a) == len(data.b) == N_PAIRS
    assert set(data.a.metadata["split"].to_list()) == {"test"}
    return data


@pytest.fixture(scope="module")
def lab(browser: Any, jupyter_lab: Any, artifacts: Path) -> Iterator[EmojiPage]:
    (jupyter_lab.root / NOTEBOOK_NAME).write_text(_notebook(), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1600, "height": 1300})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    result = EmojiPage(page, artifacts)
    try:
        page.goto(jupyter_lab.notebook_url(NOTEBOOK_NAME))
        _expect()(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=KERNEL_IDLE_TIMEOUT)
        for cell_id in ("setup", "explorer", "browser", "flips"):
            result.run(cell_id)
        _expect()(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=KERNEL_IDLE_TIMEOUT)
        yield result
        assert not errors, errors
    except Exception:
        result.shot("FAILED-emoji-notebook")
        raise
    finally:
        context.close()


def _canvas_pixels(image: Any) -> np.ndarray:
    """The RGB pixels an ``<img>`` element shows (drawn on a canvas in the page)."""
    shown = image.evaluate("""img => { const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight; const g = c.getContext('2d');
        g.drawImage(img, 0, 0); return {w: c.width, h: c.height,
        data: Array.from(g.getImageData(0, 0, c.width, c.height).data)}; }""")
    return np.array(shown["data"], dtype=np.uint8).reshape(shown["h"], shown["w"], 4)[..., :3]


@pytest.mark.browser
def test_hovering_an_emoji_shows_its_image_and_its_name(lab: EmojiPage, paired: Any) -> None:
    expect = _expect()
    panel = lab.cell("explorer").locator(".wb-embedding-explorer")
    plot = panel.locator(".js-plotly-plot").first
    expect(plot).to_be_visible(timeout=UI_TIMEOUT)
    target = isolated_image_marker(lab, plot, 2 * N_PAIRS)
    row = target["index"]
    name = paired.a.metadata["caption"][row]
    lab.page.mouse.move(target["px"] - 30, target["py"] - 30)
    lab.page.mouse.move(target["px"], target["py"], steps=5)
    tooltip = plot.locator(".hoverlayer .hovertext")
    expect(tooltip).to_be_visible(timeout=UI_TIMEOUT)
    expect(tooltip).to_contain_text(name)
    preview = panel.locator(".wb-preview")
    expect(preview.locator(".wb-preview-text")).to_contain_text(name, timeout=UI_TIMEOUT)
    image = preview.locator("img.wb-preview-image")
    expect(image).to_be_visible(timeout=UI_TIMEOUT)
    lab.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    want = _file_pixels(paired.a.metadata["path"][row])  # the shipped emoji image (64 x 64)
    got = _canvas_pixels(image)
    assert got.shape == want.shape and np.array_equal(got, want)
    lab.shot("emoji-01-hover", panel)


@pytest.mark.browser
def test_clicking_an_emoji_failure_row_shows_the_query_and_the_top_item(lab: EmojiPage, paired: Any) -> None:
    expect = _expect()
    panel = lab.cell("browser").locator(".wb-retrieval-browser")
    # the failures, computed here from the float32 unit rows: image queries whose name is not ranked first
    scores = paired.a.vectors @ paired.b.vectors.T
    own = np.diag(scores)
    ranks = 1 + (scores > own[:, None]).sum(axis=1) + ((scores == own[:, None]).sum(axis=1) - 1)
    failing = sorted((q for q in range(N_PAIRS) if ranks[q] > 1), key=lambda q: (-ranks[q], q))
    assert 20 < len(failing) < N_PAIRS, "a pretrained-tower set both finds and misses names"
    rows = panel.locator(".wb-failure-row")
    expect(rows).to_have_count(20, timeout=UI_TIMEOUT)
    position = 3
    target = failing[position]
    row = rows.nth(position)
    expect(row).to_contain_text(f"query image row {target} · rank {ranks[target]}")
    row.scroll_into_view_if_needed()
    row.locator("button.wb-open-query").click()
    detail = panel.locator(".wb-query")
    expect(detail).to_contain_text(f"image row {target}", timeout=UI_TIMEOUT)
    expect(detail).to_contain_text(f"ranked {ranks[target]}")
    # the query's media: the emoji's image (the file's pixels) and its name
    query_img = detail.locator(".wb-detail-query img.wb-thumb")
    expect(query_img).to_be_visible()
    assert np.array_equal(_pixels(query_img.get_attribute("src")), _file_pixels(paired.a.metadata["path"][target]))
    expect(detail.locator(".wb-detail-query .wb-caption")).to_have_text(paired.a.metadata["caption"][target])
    expect(detail.locator(".wb-detail-match .wb-caption")).to_have_text(paired.b.metadata["caption"][target])
    # the top-ranked item: a wrong name, shown with its emoji's image
    best = int(np.argsort(-scores[target], kind="stable")[0])
    assert best != target
    first = panel.locator(".wb-results table tbody tr").first
    expect(first.locator(".wb-caption")).to_have_text(paired.b.metadata["caption"][best])
    first_img = first.locator("img.wb-thumb")
    expect(first_img).to_be_visible()
    assert np.array_equal(_pixels(first_img.get_attribute("src")), _file_pixels(paired.b.metadata["path"][best]))
    state = json.loads(lab.run("state").locator(".jp-OutputArea-output").first.inner_text())
    assert state == {"row": target, "direction": "a_to_b"}
    lab.shot("emoji-02-failure-opened", panel)


@pytest.mark.browser
def test_a_flip_ledger_lists_each_flipped_emoji_with_its_change(lab: EmojiPage, paired: Any,
                                                                  setup: dict[str, Any]) -> None:
    expect = _expect()
    panel = lab.cell("flips").locator(".wb-retrieval-browser")
    # the flips, computed here by brute force: image queries whose name is ranked first in one system only
    def ranks(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        scores = a @ b.T
        return 1 + (scores >= np.diag(scores)[:, None]).sum(axis=1) - 1

    noisy = setup["noisy"]
    before, after = ranks(noisy.a.vectors, noisy.b.vectors), ranks(paired.a.vectors, paired.b.vectors)
    flipped = np.flatnonzero((before == 1) != (after == 1))
    assert 2 <= len(flipped) and setup["ledger"].frame["query"].to_list() == flipped.tolist()
    rows = panel.locator(".wb-failure-row")
    expect(rows).to_have_count(len(flipped), timeout=UI_TIMEOUT)
    gained = int(np.sum(after[flipped] == 1))
    expect(panel.locator(".wb-failures")).to_contain_text(
        f"{len(flipped)} flipped queries (image → text) of the flip ledger: {gained} gained")
    for position in (0, len(flipped) - 1):
        q = int(flipped[position])
        change = "gained" if after[q] == 1 else "lost"
        row = rows.nth(position)
        expect(row.locator(f".wb-flip-{change}")).to_have_text(f"{change}: rank {before[q]} → {after[q]}")
        expect(row).to_contain_text(f"query image row {q} · rank {after[q]}")
        thumb = row.locator("img.wb-thumb").first  # the flipped query's emoji
        expect(thumb).to_be_visible()
        assert np.array_equal(_pixels(thumb.get_attribute("src")), _file_pixels(paired.a.metadata["path"][q]))
        expect(row.locator(".wb-caption").first).to_have_text(paired.a.metadata["caption"][q])
    rows.last.scroll_into_view_if_needed()
    rows.last.locator("button.wb-open-query").click()
    expect(panel.locator(".wb-query")).to_contain_text(f"image row {int(flipped[-1])}", timeout=UI_TIMEOUT)
    lab.shot("emoji-03-flip-ledger", panel)
