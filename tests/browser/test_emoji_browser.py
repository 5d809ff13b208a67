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
def lab(browser: Any, jupyter_lab: Any, artifacts: Path) -> Iterator[Lab]:
    write_notebook(jupyter_lab.root / NOTEBOOK_NAME, CELLS)
    with open_lab(browser, jupyter_lab, artifacts, NOTEBOOK_NAME, [c[0] for c in CELLS],
                  ("setup", "explorer", "browser", "flips"), name="emoji-notebook", no_page_errors=True) as result:
        yield result


@pytest.mark.browser
def test_hovering_an_emoji_shows_its_image_and_its_name(lab: Lab, paired: Any) -> None:
    panel = lab.cell("explorer").locator(".wb-embedding-explorer")
    row, tooltip, preview = hover_image_marker(lab.page, panel, 2 * N_PAIRS)
    name = paired.a.metadata["caption"][row]
    expect(tooltip).to_contain_text(name)
    expect(preview.locator(".wb-preview-text")).to_contain_text(name, timeout=UI_TIMEOUT)
    want = file_pixels(paired.a.metadata["path"][row])  # the shipped emoji image (64 x 64)
    got = image_pixels(lab.page, preview.locator("img.wb-preview-image"))
    assert got.shape == want.shape and np.array_equal(got, want)
    lab.shot("emoji-01-hover", panel)


@pytest.mark.browser
def test_clicking_an_emoji_failure_row_shows_the_query_and_the_top_item(lab: Lab, paired: Any) -> None:
    panel = lab.cell("browser").locator(".wb-retrieval-browser")
    # the failures, computed here from the float32 unit rows: image queries whose name is not ranked first
    scores = paired.a.vectors @ paired.b.vectors.T
    ranks = query_ranks(scores)
    failing = worst_first(ranks)
    assert 20 < len(failing) < N_PAIRS, "a pretrained-tower set both finds and misses names"
    rows = panel.locator(".wb-failure-row")
    expect(rows).to_have_count(20, timeout=UI_TIMEOUT)
    position = 3
    target = failing[position]
    row = rows.nth(position)
    expect(row).to_contain_text(f"query image row {target} · rank {ranks[target]}")
    open_query(row)
    detail = panel.locator(".wb-query")
    expect(detail).to_contain_text(f"image row {target}", timeout=UI_TIMEOUT)
    expect(detail).to_contain_text(f"ranked {ranks[target]}")
    # the query's media: the emoji's image (the file's pixels) and its name
    query_img = detail.locator(".wb-detail-query img.wb-thumb")
    assert np.array_equal(thumb_pixels(query_img), file_pixels(paired.a.metadata["path"][target]))
    expect(detail.locator(".wb-detail-query .wb-caption")).to_have_text(paired.a.metadata["caption"][target])
    expect(detail.locator(".wb-detail-match .wb-caption")).to_have_text(paired.b.metadata["caption"][target])
    # the top-ranked item: a wrong name, shown with its emoji's image
    best = int(np.argsort(-scores[target], kind="stable")[0])
    assert best != target
    first = panel.locator(".wb-results table tbody tr").first
    expect(first.locator(".wb-caption")).to_have_text(paired.b.metadata["caption"][best])
    first_img = first.locator("img.wb-thumb")
    assert np.array_equal(thumb_pixels(first_img), file_pixels(paired.b.metadata["path"][best]))
    state = lab.kernel_json("state")
    assert state == {"row": target, "direction": "a_to_b"}
    lab.shot("emoji-02-failure-opened", panel)


@pytest.mark.browser
def test_a_flip_ledger_lists_each_flipped_emoji_with_its_change(lab: Lab, paired: Any,
                                                                  setup: dict[str, Any]) -> None:
    panel = lab.cell("flips").locator(".wb-retrieval-browser")
    # the flips, computed here by brute force: image queries whose name is ranked first in one system only
    noisy = setup["noisy"]
    before = query_ranks(noisy.a.vectors @ noisy.b.vectors.T)
    after = query_ranks(paired.a.vectors @ paired.b.vectors.T)
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
        assert np.array_equal(thumb_pixels(thumb), file_pixels(paired.a.metadata["path"][q]))
        expect(row.locator(".wb-caption").first).to_have_text(paired.a.metadata["caption"][q])
    open_query(rows.last)
    expect(panel.locator(".wb-query")).to_contain_text(f"image row {int(flipped[-1])}", timeout=UI_TIMEOUT)
    lab.shot("emoji-03-flip-ledger", panel)
