"""RetrievalBrowser: top-k against a direct argsort, failures against per_query_ranks, typed queries."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench import PairedEmbeddings, datasets
from workbench.panels import RetrievalBrowser
from workbench.retrieval import per_query_ranks


@pytest.fixture(scope="module")
def clip():
    return datasets.load("liang2022/clip")


@pytest.fixture
def coco_like(rng):
    """20 images with 3 captions each, plus 4 distractor captions."""
    images = rng.normal(size=(20, 16))
    captions = np.concatenate([np.repeat(images, 3, axis=0) + 1.2 * rng.normal(size=(60, 16)),
                               rng.normal(size=(4, 16))])
    pairs = np.stack([np.repeat(np.arange(20), 3), np.arange(60)], axis=1)
    return PairedEmbeddings.from_arrays(images, captions, modalities=("image", "text"), pairs=pairs,
                                        metadata_b={"caption": [f"text {j}" for j in range(64)]})


def test_query_results_equal_a_direct_argsort(coco_like):
    browser = RetrievalBrowser(coco_like, k=7)
    for i in (0, 13):
        result = browser.query(i, "a_to_b")
        scores = coco_like.b.vectors @ coco_like.a.vectors[i]
        order = np.argsort(-scores, kind="stable")[:7]
        assert result.columns == ["rank", "gallery_row", "id", "caption", "score", "relevant"]
        assert result["gallery_row"].to_list() == order.tolist() and result["rank"].to_list() == list(range(1, 8))
        np.testing.assert_allclose(result["score"].to_numpy(), scores[order], rtol=0, atol=0)
        assert result["relevant"].to_list() == [3 * i <= j < 3 * i + 3 for j in order]
        assert result["caption"].to_list() == [f"text {j}" for j in order]
    back = browser.query(61, "b_to_a")  # caption 61 is a distractor: nothing is relevant
    scores = coco_like.a.vectors @ coco_like.b.vectors[61]
    assert back["gallery_row"].to_list() == np.argsort(-scores, kind="stable")[:7].tolist()
    assert not back["relevant"].any() and "caption" not in back.columns


def test_failures_are_ordered_by_rank_and_equal_per_query_ranks(clip):
    browser = RetrievalBrowser(clip)
    a, b = clip.matched()
    for direction, (queries, gallery) in (("a_to_b", (a, b)), ("b_to_a", (b, a))):
        ranks = per_query_ranks(queries, gallery, np.repeat(np.arange(500)[:, None], 2, axis=1)).ranks
        failures = browser.failures(n=None, direction=direction)
        expected = sorted(((int(r), q) for q, r in enumerate(ranks) if r > 1), key=lambda t: (-t[0], t[1]))
        assert list(zip(failures["rank"], failures["query_row"], strict=True)) == expected
        assert browser.failures(n=20, direction=direction).height == 20
        worst = failures.row(0, named=True)
        scores = gallery @ queries[worst["query_row"]]
        assert worst["match_row"] == worst["query_row"]
        assert worst["top_row"] == int(np.argmax(scores)) and worst["top_score"] == pytest.approx(scores.max())
        assert worst["rank"] == 1 + int(np.sum(scores >= scores[worst["query_row"]])) - 1
        np.testing.assert_array_equal(browser.ranks(direction)["rank"].to_numpy(), ranks)


def test_many_to_many_failures_use_the_best_relevant_item(coco_like):
    browser = RetrievalBrowser(coco_like)
    failures = browser.failures(n=None)
    pairs = coco_like.pairs
    relevance = np.stack([pairs[:, 0], pairs[:, 1]], axis=1)
    ranks = per_query_ranks(coco_like.a.vectors, coco_like.b.vectors, relevance).ranks
    assert sorted(failures["rank"].to_list(), reverse=True) == sorted(ranks[ranks > 1].tolist(), reverse=True)
    for row in failures.iter_rows(named=True):
        candidates = pairs[pairs[:, 0] == row["query_row"], 1]
        scores = coco_like.b.vectors[candidates] @ coco_like.a.vectors[row["query_row"]]
        assert row["match_row"] == candidates[np.argmax(scores)]


class FakeEncoder:
    def __init__(self, vector):
        self.vector, self.calls = vector, []

    def encode(self, modality, items, batch_size=32):
        self.calls.append((modality, list(items)))
        return self.vector[None, :] * 3.0


def test_typed_queries_use_the_encoder(coco_like):
    encoder = FakeEncoder(coco_like.a.vectors[4].astype(np.float64))
    browser = RetrievalBrowser(coco_like, encoder=encoder, k=5)
    result = browser.search("a dog on a sofa")  # text queries search the images
    assert encoder.calls == [("text", ["a dog on a sofa"])]
    scores = coco_like.a.vectors @ coco_like.a.vectors[4]
    assert result["gallery_row"].to_list() == np.argsort(-scores, kind="stable")[:5].tolist()
    assert result["relevant"].null_count() == 5
    assert result["score"][0] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="need an encoder"):
        RetrievalBrowser(coco_like).search("x")
    with pytest.raises(ValueError, match="non-empty"):
        browser.search("  ")


def test_bad_queries_raise(coco_like):
    browser = RetrievalBrowser(coco_like)
    with pytest.raises(ValueError, match=r"query row must be an integer in \[0, 20\) of image"):
        browser.query(20)
    with pytest.raises(ValueError, match="direction must be one of"):
        browser.query(0, "up")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        RetrievalBrowser(coco_like, k=0)


def test_widget_follows_the_controls(coco_like):
    import ipywidgets as widgets
    import plotly.graph_objects as go

    encoder = FakeEncoder(coco_like.a.vectors[2].astype(np.float64))
    browser = RetrievalBrowser(coco_like, encoder=encoder, k=4)
    box = browser.widget
    assert isinstance(box, widgets.VBox) and "wb-retrieval-browser" in box._dom_classes
    ui = browser._ui
    assert "wb-direction" in ui["direction"]._dom_classes and "wb-query-row" in ui["row"]._dom_classes
    assert isinstance(ui["chart"], go.FigureWidget)
    ui["row"].value = 5
    assert "image row 5" in ui["query"].value
    expected = browser.query(5)
    assert all(f"<td class='num'>{r}</td>" in ui["results"].value for r in expected["gallery_row"])
    assert "✓" in ui["results"].value or not expected["relevant"].any()
    assert list(ui["chart"].data[0].x) == pytest.approx(expected["score"].to_list())
    ui["direction"].value = "b_to_a"
    assert browser.direction == "b_to_a" and "text → image" in ui["failures"].value
    ui["text"].value = "a typed query"
    assert "typed query" in ui["query"].value and encoder.calls[-1] == ("text", ["a typed query"])
    fig = browser.figure()
    assert isinstance(fig, go.Figure) and len(fig.data[0].x) == 4
    assert isinstance(browser.failures(), pl.DataFrame)


# -- queries=, media --------------------------------------------------------------------------------------------------
def test_queries_lists_the_given_rows_in_order_with_their_ranks(coco_like):
    relevance = np.stack([coco_like.pairs[:, 0], coco_like.pairs[:, 1]], axis=1)
    ranks = per_query_ranks(coco_like.a.vectors, coco_like.b.vectors, relevance).ranks
    browser = RetrievalBrowser(coco_like, queries=[13, 2, 7])
    listed = browser.listed()
    assert listed["query_row"].to_list() == [13, 2, 7]
    assert listed["rank"].to_list() == [int(ranks[13]), int(ranks[2]), int(ranks[7])]
    assert browser.query(13).height == 10 and browser._row == 13
    assert RetrievalBrowser(coco_like, queries=[13, 2, 7])._row == 13  # the first listed query opens first
    # without queries for a direction: the worst failures
    assert browser.listed("b_to_a").equals(browser.failures(20, "b_to_a"))
    # a mapping names its directions; caption rows 60-63 have no pair (no rank) and are refused
    back = RetrievalBrowser(coco_like, queries={"b_to_a": [59, 0]})
    assert back.listed("b_to_a")["query_row"].to_list() == [59, 0] and back.listed().equals(back.failures())
    assert back.listed("b_to_a")["match_row"].to_list() == [19, 0]
    with pytest.raises(ValueError, match=r"have no matching image item"):
        RetrievalBrowser(coco_like, queries={"b_to_a": [61]})
    with pytest.raises(ValueError, match=r"rows must be in \[0, 20\) of image"):
        RetrievalBrowser(coco_like, queries=[20])
    with pytest.raises(TypeError, match="integer rows"):
        RetrievalBrowser(coco_like, queries=[0.5])
    with pytest.raises(ValueError, match="direction must be one of"):
        RetrievalBrowser(coco_like, queries={"up": [0]})


@pytest.fixture
def media_pairs(rng, tmp_path):
    """8 image files of distinct colours with captions; captions 1 and 5 are swapped, so images 1 and 5 fail."""
    import wave

    from PIL import Image

    colours = [(255, 0, 0), (0, 160, 0), (0, 0, 255), (240, 240, 0), (0, 240, 240), (160, 0, 160), (90, 90, 90),
               (250, 150, 0)]
    paths = []
    for i, c in enumerate(colours):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.new("RGB", (50, 40), c).save(paths[-1])
    sound = tmp_path / "tone.wav"
    with wave.open(str(sound), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.sin(np.arange(800) / 3) * 2000).astype("<i2").tobytes())
    images = np.eye(8, 12) + 0.05 * rng.normal(size=(8, 12))
    texts = images[[0, 5, 2, 3, 4, 1, 6, 7]] + 0.05 * rng.normal(size=(8, 12))
    paired = PairedEmbeddings.from_arrays(
        images, texts, modalities=("image", "text"),
        metadata_a={"path": paths, "caption": [f"picture {i}" for i in range(8)]},
        metadata_b={"caption": [f"words about {i}" for i in range(8)], "path": [str(sound)] + [None] * 7})
    return paired, colours, sound


def _img_colours(html_text):
    import base64
    import io
    import re

    from PIL import Image

    out = []
    for data in re.findall(r"<img class='wb-thumb'[^>]*src='data:image/png;base64,([^']+)'", html_text):
        im = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
        out.append(im.getpixel((im.width // 2, im.height // 2)))
    return out


def test_the_widget_shows_the_media_of_the_query_its_match_and_the_top_items(media_pairs):
    paired, colours, sound = media_pairs
    browser = RetrievalBrowser(paired, k=3)
    browser.widget  # noqa: B018
    ui = browser._ui
    failures = browser.failures(n=None, direction="b_to_a")
    assert sorted(failures["query_row"].to_list()) == [1, 5]  # captions 1 and 5 describe images 5 and 1
    ui["direction"].value = "b_to_a"
    rows = ui["failure_rows"].children
    assert [r.children[0].description for r in rows] == [f"open #{q}" for q in failures["query_row"]]
    # each listed row: the query (a caption, no image), its correct match's image, the image ranked first
    first = failures.row(0, named=True)
    body = rows[0].children[1].value
    assert _img_colours(body) == [colours[first["match_row"]], colours[first["top_row"]]]
    assert f"words about {first['query_row']}" in body
    # clicking the row's button opens the query: its correct match and the top items with their media
    rows[0].children[0].click()
    assert browser.direction == "b_to_a" and browser._row == first["query_row"]
    detail = ui["query"].value
    assert f"text row {first['query_row']}" in detail and f"ranked {first['rank']}" in detail
    assert _img_colours(detail) == [colours[first["match_row"]]]
    top = browser.query(first["query_row"], "b_to_a")["gallery_row"].to_list()
    assert _img_colours(ui["results"].value) == [colours[r] for r in top]
    assert "<th>item</th>" in ui["results"].value and "picture " + str(top[0]) in ui["results"].value
    # a sound in the metadata becomes a player; image queries show their own picture
    browser.query(0, "b_to_a")
    import base64

    wav = "data:audio/wav;base64," + base64.b64encode(sound.read_bytes()).decode()
    assert "<audio class='wb-sound'" in ui["query"].value and f"src='{wav}'" in ui["query"].value
    browser.query(4, "a_to_b")
    assert _img_colours(ui["query"].value)[0] == colours[4] and "found first" in ui["query"].value
    assert "no preview" not in ui["query"].value


def test_a_set_without_media_says_which_columns_would_show_items(coco_like):
    browser = RetrievalBrowser(coco_like)
    browser.widget  # noqa: B018
    detail = browser._ui["query"].value
    assert "no preview for image items" in detail and "add one to see the items" in detail
    assert all(f"&#x27;{c}&#x27;" in detail for c in ("path", "image", "caption"))
    assert "no preview for text items" not in detail  # the captions are something to show
    assert "<th>item</th>" in browser._ui["results"].value  # the captions of the gallery
    assert "<img" not in browser._ui["results"].value


# -- a flip ledger as queries= ----------------------------------------------------------------------------------------
def _brute_ranks(queries, gallery):
    """1-based rank of each query's own item (row i with row i), ties counted against it, by direct comparison."""
    scores = queries @ gallery.T
    own = np.diag(scores)
    return 1 + (scores >= own[:, None]).sum(axis=1) - 1


def test_a_flip_ledger_lists_its_flipped_queries_with_their_change(clip):
    from workbench.retrieval import flip_ledger

    rng = np.random.default_rng(3)
    noisy = PairedEmbeddings.from_arrays(clip.a.vectors, clip.b.vectors + 0.04 * rng.normal(size=clip.b.vectors.shape),
                                         modalities=clip.modalities, metadata_a=clip.a.metadata,
                                         metadata_b=clip.b.metadata)
    for direction, (q_before, g_before, q_after, g_after) in (
            ("a_to_b", (noisy.a.vectors, noisy.b.vectors, clip.a.vectors, clip.b.vectors)),
            ("b_to_a", (noisy.b.vectors, noisy.a.vectors, clip.b.vectors, clip.a.vectors))):
        ledger = flip_ledger(noisy, clip, direction=direction)
        before, after = _brute_ranks(q_before, g_before), _brute_ranks(q_after, g_after)
        flipped = np.flatnonzero((before == 1) != (after == 1))
        assert 0 < len(flipped) and ledger.frame["query"].to_list() == flipped.tolist()
        for given in (ledger, ledger.frame, {direction: ledger}):
            browser = RetrievalBrowser(clip, queries=given, direction=direction)
            listed = browser.listed(direction)
            assert listed["query_row"].to_list() == flipped.tolist()
            assert listed["change"].to_list() == ["gained" if after[q] == 1 else "lost" for q in flipped]
            assert listed["before_rank"].to_list() == before[flipped].tolist()
            assert listed["after_rank"].to_list() == after[flipped].tolist()
            assert listed["rank"].to_list() == after[flipped].tolist()  # the browser's own ranks on the after set
            assert browser._row == int(flipped[0])
    # the widget lists each flipped query with its change beside its item
    ledger = flip_ledger(noisy, clip)
    browser = RetrievalBrowser(clip, queries=ledger)
    browser.widget  # noqa: B018
    rows = browser._ui["failure_rows"].children
    assert [r.children[0].description for r in rows] == [f"open #{q}" for q in ledger.frame["query"]]
    for line, flip in zip(rows, ledger.frame.iter_rows(named=True), strict=True):
        body = line.children[1].value
        assert f"class='wb-flip wb-flip-{flip['change']}'" in body
        assert f"{flip['change']}</b>: rank {flip['before_rank']} → {flip['after_rank']}" in body
    title = browser._ui["failures"].value
    assert f"{ledger.frame.height} flipped queries" in title
    assert f"{ledger.gained} gained" in title and f"{ledger.lost} lost" in title
    rows[0].children[0].click()
    assert browser._row == int(ledger.frame["query"][0])


def test_a_flip_ledger_of_other_queries_or_a_wrong_frame_is_refused(clip):
    from workbench.retrieval import flip_ledger

    ledger = flip_ledger(np.array([1, 2, 1, 3, 1]), np.array([2, 1, 1, 1, 1]))
    wrong_ids = ledger.frame.with_columns(pl.Series("query_id", ["x", "y", "z"]))
    with pytest.raises(ValueError, match=r"flip ledger's query 0 has id 'x' but image row 0 of this set has id"):
        RetrievalBrowser(clip, queries=wrong_ids)
    with pytest.raises(ValueError, match=r"missing \['change'\]"):
        RetrievalBrowser(clip, queries=ledger.frame.drop("change"))
    with pytest.raises(ValueError, match=r"'gained' or 'lost', got \['same'\]"):
        RetrievalBrowser(clip, queries=ledger.frame.with_columns(pl.lit("same").alias("change")))
    assert RetrievalBrowser(clip, queries=ledger).listed()["query_row"].to_list() == [0, 1, 3]
