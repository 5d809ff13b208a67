"""EmbeddingExplorer: neighbours against a direct argsort, colours, pair lines, previews, the projection cache."""

from __future__ import annotations

import io
import wave

import numpy as np
import polars as pl
import pytest

from workbench import PairedEmbeddings
from workbench.panels import EmbeddingExplorer, MessagePanel
from workbench.panels._colors import NEUTRAL, category_color
from workbench.projection import _project as projection

pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def paired(rng):
    n_a, n_b, dim = 30, 45, 12
    pairs = np.stack([np.arange(n_b) % n_a, np.arange(n_b)], axis=1)  # some images have two captions
    return PairedEmbeddings.from_arrays(
        rng.normal(size=(n_a, dim)) + 1.0, rng.normal(size=(n_b, dim)) - 1.0, modalities=("image", "text"),
        pairs=pairs, metadata_a={"id": [f"img{i}" for i in range(n_a)], "label": rng.integers(0, 4, n_a)},
        metadata_b={"caption": [f"caption <{i}>" for i in range(n_b)], "score": rng.normal(size=n_b)})


def _points(trace_index, inds):
    from plotly.callbacks import Points

    return Points(point_inds=list(inds), xs=[0.0] * len(inds), ys=[0.0] * len(inds), trace_name="",
                  trace_index=trace_index)


def test_selection_equals_a_direct_nearest_neighbour_computation(paired):
    explorer = EmbeddingExplorer(paired, k=4)
    chosen = [2, 17, 30, 31, 74]  # three images, two captions
    explorer.select(chosen)
    table = explorer.selection
    assert table.height == 4 * len(chosen) and table["point"].unique().sort().to_list() == chosen
    a = paired.a.vectors.astype(np.float64)
    b = paired.b.vectors.astype(np.float64)
    pair_set = set(map(tuple, paired.pairs.tolist()))
    for point in chosen:
        part = table.filter(pl.col("point") == point).sort("rank")
        if point < 30:
            scores, query_row, other_ids = a[point] @ b.T, point, paired.b.ids
        else:
            scores, query_row, other_ids = b[point - 30] @ a.T, point - 30, paired.a.ids
        order = np.argsort(-scores, kind="stable")[:4]
        assert part["row"].to_list() == [query_row] * 4
        assert part["neighbour_row"].to_list() == order.tolist()
        np.testing.assert_allclose(part["cosine"].to_numpy(), scores[order], atol=1e-6)
        # ids are strings on one side and integers on the other: the mixed column holds strings
        assert part["neighbour_id"].to_list() == [str(i) for i in other_ids.gather(order).to_list()]
        expected_pair = [((query_row, n) if point < 30 else (n, query_row)) in pair_set for n in order]
        assert part["is_pair"].to_list() == expected_pair
    # captions: a caption's own, and the neighbour's for image queries
    first_caption = table.filter(pl.col("point") == 31)["caption"][0]
    assert first_caption == "caption <1>"
    assert table.filter(pl.col("point") == 2)["neighbour_caption"].to_list()[0].startswith("caption <")
    explorer.select([])
    assert explorer.selection.height == 0


def test_box_or_lasso_selection_in_the_widget_fills_the_table(paired):
    explorer = EmbeddingExplorer(paired, k=2)
    explorer.widget  # noqa: B018
    plot = explorer._ui["plot"]
    traces = [t for t in plot.data if t.meta["side"] in ("a", "b")]
    # plotly dispatches one selection event to every trace, in order
    traces[0]._dispatch_on_selection(_points(0, [1, 5]), None)
    traces[1]._dispatch_on_selection(_points(1, [0]), None)
    np.testing.assert_array_equal(explorer.selected, [1, 5, 30])
    html = explorer._ui["table"].value
    assert "3 selected" in html and "img5" in html and "caption &lt;0&gt;" in html
    assert list(traces[0].selectedpoints) == [1, 5] and list(traces[1].selectedpoints) == [0]
    traces[0]._dispatch_on_deselect(_points(0, []))
    traces[1]._dispatch_on_deselect(_points(1, []))
    assert len(explorer.selected) == 0 and "select points" in explorer._ui["table"].value


def test_a_300_class_column_gets_300_colours_without_a_legend_explosion(rng):
    n = 600
    labels = np.arange(n) % 300
    paired = PairedEmbeddings.from_arrays(rng.normal(size=(n, 8)), rng.normal(size=(n, 8)),
                                          metadata_a={"label": labels})
    explorer = EmbeddingExplorer(paired, color_by="label")
    colors, mapping = explorer.colors()
    assert mapping["kind"] == "categorical" and mapping["classes"] == list(range(300))
    assert len(set(colors[:n])) == 300 and set(colors[n:]) == {NEUTRAL}  # b has no label column
    assert colors[7] == category_color(7) and colors[307] == category_color(7)
    fig = explorer.figure()
    assert len(fig.data) == 2  # one trace per modality: no legend entry per class
    a_trace = fig.data[0]
    # colour index i -> stop i of the colorscale (0 = no value)
    scale = dict((round(s * 300), c) for s, c in a_trace.marker.colorscale)
    assert len(set(scale.values())) == 301 and scale[0] == NEUTRAL
    assert [scale[int(i)] for i in a_trace.marker.color] == colors[:n]
    assert set(fig.data[1].marker.color) == {0.0}
    assert "300 classes" in fig.layout.title.text


def test_few_classes_get_legend_entries_and_continuous_columns_a_colour_bar(paired):
    explorer = EmbeddingExplorer(paired, color_by="label")
    names = [t.name for t in explorer.figure().data]
    assert names[:2] == ["image (30)", "text (45)"]
    assert "label = 0" in names and "label: no value" in names  # the texts have no label
    explorer.color_by = "score"
    colors, mapping = explorer.colors()
    scores = paired.b.metadata["score"].to_numpy()
    assert mapping["kind"] == "continuous" and mapping["vmin"] == scores.min() and mapping["vmax"] == scores.max()
    assert colors[30 + int(np.argmin(scores))] == "#440154" and colors[30 + int(np.argmax(scores))] == "#FDE725"
    assert set(colors[:30]) == {NEUTRAL}
    fig = explorer.figure()
    bar = fig.data[-1]
    assert bar.marker.showscale and bar.marker.cmin == mapping["vmin"] and bar.marker.cmax == mapping["vmax"]
    t = np.asarray(fig.data[1].marker.color)
    assert np.all(np.diff(t[np.argsort(scores)]) >= 0)  # monotone in the value
    with pytest.raises(ValueError, match="needs numbers"):
        EmbeddingExplorer(paired, color_by="caption", color_kind="continuous")


def test_pair_lines_toggle_adds_and_removes_the_trace(paired):
    explorer = EmbeddingExplorer(paired)
    assert "pairs" not in [t.name for t in explorer.figure().data]
    explorer.widget  # noqa: B018
    plot = explorer._ui["plot"]
    explorer._ui["lines"].value = True  # the checkbox
    assert explorer.show_pairs and plot.data[0].name == "pairs"
    lines = plot.data[0]
    assert len(lines.x) == 3 * paired.n_pairs
    coords = explorer.coords
    i, j = paired.pairs[4]
    assert (lines.x[12], lines.y[12]) == (coords[i, 0], coords[i, 1])
    assert (lines.x[13], lines.x[14]) == (coords[30 + j, 0], None) or np.isnan(lines.x[14])
    explorer.show_pairs = False
    assert "pairs" not in [t.name for t in plot.data] and not explorer._ui["lines"].value
    # callbacks survive the trace reshuffle
    plot.data[1]._dispatch_on_selection(_points(1, [2]), None)
    np.testing.assert_array_equal(explorer.selected, [32])


def test_projection_cache_across_explorers_and_processes(paired, tmp_path, monkeypatch):
    calls = []

    def fake_umap(arr, seed, **params):
        calls.append(params)
        return np.random.default_rng(seed).normal(size=(len(arr), 2))

    monkeypatch.setitem(projection._FITTERS, "umap", fake_umap)
    first = EmbeddingExplorer(paired, projection="umap", seed=5, cache_dir=tmp_path,
                              projection_params={"n_neighbors": 8}).coords
    again = EmbeddingExplorer(paired, projection="umap", seed=5, cache_dir=tmp_path,
                              projection_params={"n_neighbors": 8}).coords
    assert len(calls) == 1 and calls[0]["n_neighbors"] == 8 and calls[0]["metric"] == "cosine"
    np.testing.assert_array_equal(first, again)
    files = list(tmp_path.glob("*/*.npz"))
    assert len(files) == 1
    projection.clear_memory_cache()  # a new kernel: only the file remains
    monkeypatch.setitem(projection._FITTERS, "umap", lambda *a, **k: pytest.fail("recomputed"))
    np.testing.assert_array_equal(EmbeddingExplorer(paired, projection="umap", seed=5, cache_dir=tmp_path,
                                                    projection_params={"n_neighbors": 8}).coords, first)


def test_projection_switch_in_the_widget_uses_tsne(paired):
    from threadpoolctl import threadpool_limits

    explorer = EmbeddingExplorer(paired, projection_params={"max_iter": 250})
    explorer.widget  # noqa: B018
    with threadpool_limits(1, user_api="openmp"):  # t-SNE's OpenMP threads stall ~100x on a busy 2-core machine
        explorer._ui["projection"].value = "tsne"
    assert explorer.projection == "tsne"
    coords = explorer.coords
    plot = explorer._ui["plot"]
    np.testing.assert_allclose(plot.data[0].x, coords[:30, 0])
    assert plot.layout.xaxis.title.text == "t-SNE 1"


def test_previews_of_images_sounds_and_captions(rng, tmp_path):
    from PIL import Image

    image_path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, size=(300, 200, 3), dtype=np.uint8)).save(image_path)
    sound_path = tmp_path / "beep.wav"
    with wave.open(str(sound_path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.sin(np.arange(800) / 3) * 2000).astype("<i2").tobytes())
    paired = PairedEmbeddings.from_arrays(
        rng.normal(size=(3, 6)), rng.normal(size=(3, 6)), modalities=("image", "audio"),
        metadata_a={"path": [str(image_path), str(tmp_path / "missing.png"), None]},
        metadata_b={"path": [str(sound_path), None, None], "caption": ["a beep", "silence", None]})
    explorer = EmbeddingExplorer(paired)
    explorer.widget  # noqa: B018
    ui = explorer._ui
    assert explorer.inspect(0)["kind"] == "image"
    thumb = Image.open(io.BytesIO(ui["image"].value))
    assert max(thumb.size) <= 220 and ui["image"].layout.display == ""
    info = explorer.inspect(3)
    assert info["kind"] == "audio" and info["caption"] == "a beep"
    assert ui["audio"].value == sound_path.read_bytes() and ui["image"].layout.display == "none"
    assert "a beep" in ui["preview_text"].value
    assert "file not found" in explorer.inspect(1)["message"]
    assert "nothing to preview" in explorer.inspect(2)["message"]
    assert "nothing to preview" in ui["preview_text"].value
    # hovering drives the same view
    plot = ui["plot"]
    plot.data[1]._dispatch_on_hover(_points(1, [1]), None)
    assert "silence" in ui["preview_text"].value


def test_bad_input_raises_in_python_and_shows_a_message_on_the_widget_path(paired, rng):
    with pytest.raises(ValueError, match=r"color_by='nope'.*available: 'modality', 'id', 'label', 'caption', 'score'"):
        EmbeddingExplorer(paired, color_by="nope")
    one_pair = PairedEmbeddings.from_arrays(rng.normal(size=(1, 4)), rng.normal(size=(1, 4)))
    with pytest.raises(ValueError, match="needs at least 3 points, got 2"):
        EmbeddingExplorer(one_pair)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        EmbeddingExplorer(paired, k=0)
    with pytest.raises(ValueError, match="unknown projection"):
        EmbeddingExplorer(paired, projection="mds")
    panel = EmbeddingExplorer.show(paired, color_by="nope")
    assert isinstance(panel, MessagePanel)
    message = panel.widget.children[0]
    assert "wb-message" in message._dom_classes and "available:" in message.value
    assert "needs at least 3 points" in EmbeddingExplorer.show(one_pair).message

    # a control whose change fails shows the message in the panel, and the panel keeps working
    empty = PairedEmbeddings.from_arrays(rng.normal(size=(5, 4)), rng.normal(size=(5, 4)),
                                         metadata_a={"note": [None] * 5})
    explorer = EmbeddingExplorer(empty)
    explorer.widget  # noqa: B018
    explorer._ui["color"].value = "note"
    assert "has no values" in explorer._message.value and explorer.color_by == "modality"
    explorer._ui["color"].value = "id"
    assert explorer.color_by == "id" and explorer._message.value == ""


def test_a_column_of_unique_ids_colours_without_hanging_and_colours_cycle_past_the_distinct_limit(rng):
    from workbench.panels._colors import MAX_DISTINCT

    distinct = [category_color(k) for k in range(MAX_DISTINCT)]
    assert len(set(distinct)) == MAX_DISTINCT  # used to loop forever past about 1,900 classes
    assert all(len(c) == 7 and c.startswith("#") for c in distinct)
    assert [category_color(MAX_DISTINCT + k) for k in (0, 1, 4095)] == [distinct[0], distinct[1], distinct[4095]]
    n = 6000
    paired = PairedEmbeddings.from_arrays(rng.normal(size=(n, 8)), rng.normal(size=(n, 8)),
                                          metadata_a={"item": [f"item-{i:05d}" for i in range(n)]})
    colors, mapping = EmbeddingExplorer(paired, color_by="item").colors()
    assert mapping["kind"] == "categorical" and len(mapping["classes"]) == n
    assert colors[:n] == [distinct[k % MAX_DISTINCT] for k in range(n)]


def test_neighbour_search_in_small_blocks_equals_a_full_stable_sort(rng):
    from workbench.panels._media import top_k

    queries = rng.normal(size=(37, 6)).astype(np.float32)
    gallery = np.round(rng.normal(size=(500, 6)), 1).astype(np.float32)
    gallery[250:260] = gallery[0]  # exact ties: the lower row wins
    full = queries @ gallery.T
    expected = np.argsort(-full, axis=1, kind="stable")[:, :5]
    for max_block in (1 << 25, 1000, 1):  # one block; 2 queries per block; one query per block
        rows, scores = top_k(queries, gallery, 5, max_block=max_block)
        np.testing.assert_array_equal(rows, expected)
        np.testing.assert_array_equal(scores, np.take_along_axis(full, expected, axis=1))


# -- media, search --------------------------------------------------------------------------------------------------
def _png(colour, size=(40, 30)):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _img_colours(html_text):
    """The centre colour of every <img src="data:image/png;base64,..."> in an HTML text, in order."""
    import base64
    import re

    from PIL import Image

    out = []
    for data in re.findall(r"<img class='wb-thumb'[^>]*src='data:image/png;base64,([^']+)'", html_text):
        im = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
        out.append(im.getpixel((im.width // 2, im.height // 2)))
    return out


def test_search_matches_substrings_of_captions_and_metadata_and_fades_the_rest(rng, tmp_path):
    n = 12
    colours = ["red", "green", "blue"]
    paired = PairedEmbeddings.from_arrays(
        rng.normal(size=(n, 6)), rng.normal(size=(n, 6)), modalities=("image", "text"),
        metadata_a={"label": [colours[i % 3] for i in range(n)], "path": [f"/tmp/Red/{i}.png" for i in range(n)]},
        metadata_b={"caption": [f"a {'Red' if i % 4 == 0 else 'small'} shape number {i}" for i in range(n)]})
    explorer = EmbeddingExplorer(paired, cache_dir=tmp_path)
    assert explorer.matches is None
    explorer.widget  # noqa: B018
    ui = explorer._ui
    ui["search"].value = "RED"  # typed in the widget's search box
    # expected by hand: a rows whose label is red (not their paths), b rows whose caption says Red
    expected = [i for i in range(n) if i % 3 == 0] + [n + i for i in range(n) if i % 4 == 0]
    assert explorer.matches.tolist() == expected and explorer.search_text == "RED"
    assert ui["search_count"].value == f"{len(expected)} of {2 * n} points match &#x27;RED&#x27;"
    traces = [t for t in ui["plot"].data if (t.meta or {}).get("side") in ("a", "b")]
    for side, trace in enumerate(traces):
        hit = [side * n + i in expected for i in range(n)]
        assert list(trace.marker.opacity) == [1.0 if h else 0.1 for h in hit]
        assert list(trace.marker.size) == [10 if h else 6 for h in hit]
    assert explorer.search("shape number 1").tolist() == [n + 1, n + 10, n + 11]
    assert ui["search"].value == "shape number 1"  # a search from Python shows in the box
    explorer.search("")
    assert explorer.matches is None and ui["search_count"].value == ""
    assert all(t.marker.opacity == 0.8 for t in traces)
    assert explorer.search("no such words").tolist() == []
    with pytest.raises(TypeError, match="search text must be a string"):
        explorer.search(3)


def test_image_bytes_previews_and_thumbnails_in_the_selection_table(rng, tmp_path):
    from PIL import Image

    n = 6
    colours = [(255, 0, 0), (0, 200, 0), (0, 0, 255), (250, 250, 0), (0, 250, 250), (120, 0, 120)]
    vectors = np.eye(n, 8) + 0.01 * rng.normal(size=(n, 8))
    paired = PairedEmbeddings.from_arrays(
        vectors, vectors, modalities=("image", "text"),
        metadata_a={"image": [_png(c) for c in colours]},
        metadata_b={"caption": [f"caption of {i}" for i in range(n)]})
    explorer = EmbeddingExplorer(paired, k=1, cache_dir=tmp_path)
    explorer.widget  # noqa: B018
    ui = explorer._ui
    info = explorer.inspect(2)
    assert info["kind"] == "image" and info["image"] == _png(colours[2])
    thumb = Image.open(io.BytesIO(ui["image"].value)).convert("RGB")
    assert thumb.getpixel((5, 5)) == colours[2] and ui["image"].layout.display == ""
    explorer.select([1, n + 4])  # image 1 (neighbour: caption 1), caption 4 (neighbour: image 4)
    table = ui["table"].value
    assert "<th>item</th>" in table and "<th>neighbour</th>" in table
    # item, neighbour per row: image 1 then caption 1 (text, no image); caption 4 then image 4
    assert _img_colours(table) == [colours[1], colours[4]]
    assert "caption of 1" in table and "caption of 4" in table
    assert explorer.selection["neighbour_row"].to_list() == [1, 4]


def test_a_set_without_media_names_the_columns_that_would_enable_previews(rng, tmp_path):
    paired = PairedEmbeddings.from_arrays(rng.normal(size=(5, 4)), rng.normal(size=(5, 4)),
                                          modalities=("image", "text"))
    explorer = EmbeddingExplorer(paired, cache_dir=tmp_path)
    explorer.widget  # noqa: B018
    for text in (explorer._ui["preview_text"].value, explorer.inspect(7)["message"]):
        assert all(f"&#x27;{c}&#x27;" in text or f"'{c}'" in text for c in ("path", "image", "caption")), text
    explorer.select([0])
    assert "<th>item</th>" not in explorer._ui["table"].value  # no media column without media


def test_color_by_values_of_ones_own_per_point_or_per_pair(rng):
    from workbench.panels._colors import continuous_colors
    from workbench.similarity import neighbourhood_agreement

    n = 25
    perm = rng.permutation(n)  # a row i pairs with b row perm[i]
    a = rng.normal(size=(n, 8))
    b = np.empty_like(a)
    b[perm] = a + 0.8 * rng.normal(size=a.shape)
    paired = PairedEmbeddings.from_arrays(a, b, modalities=("image", "text"), pairs=np.stack([np.arange(n), perm], 1),
                                          metadata_a={"label": ["x"] * n})
    # where image and text neighbourhoods agree, one value per pair (pair j: a row j, b row perm[j])
    agreement = neighbourhood_agreement(*paired.matched(), k=5)
    assert len(agreement) == n and agreement.min() < agreement.max()
    explorer = EmbeddingExplorer(paired, color_by=pl.Series("agreement", agreement))
    assert explorer.color_by == "agreement" and explorer.color_options == ["modality", "id", "label", "agreement"]
    per_point = np.empty(2 * n)
    per_point[:n] = agreement
    per_point[n + perm] = agreement
    colors, mapping = explorer.colors()
    assert mapping["kind"] == "continuous" and (mapping["vmin"], mapping["vmax"]) == (agreement.min(), agreement.max())
    assert colors == continuous_colors(per_point, agreement.min(), agreement.max())
    low = int(np.argmin(agreement))
    assert colors[low] == colors[n + perm[low]] == "#440154"  # both points of the least-agreeing pair
    fig = explorer.figure()
    assert fig.data[-1].marker.showscale and fig.data[-1].marker.colorbar.title.text == "agreement"
    # in the widget: the hover text names the value; new values (one per point; an array: "values") take the menu slot
    explorer.widget  # noqa: B018
    hover = explorer._view.hover_text()
    assert hover[n + perm[low]].endswith(f"agreement: {agreement[low]:.4g}")
    explorer.color_by = np.arange(2 * n, dtype=float)
    menu = explorer._ui["color"]
    assert menu.value == "values" and list(menu.options) == ["modality", "id", "label", "values"]  # not "agreement"
    assert explorer.colors()[0][0] == "#440154" and explorer.colors()[0][-1] == "#FDE725"
    menu.value = "label"
    assert explorer.colors()[1]["kind"] == "categorical"
    menu.value = "values"
    assert explorer.colors()[1]["kind"] == "continuous"
    # bad values: the message says what fits; the colouring on show stays
    with pytest.raises(ValueError, match=r"color_by has 7 values: give one per point \(50: the 25 image rows, then "
                                         r"the 25 text rows\) or one per pair \(25\)"):
        explorer.color_by = np.zeros(7)
    with pytest.raises(ValueError, match=r"named 'label', which is already a colouring"):
        explorer.color_by = pl.Series("label", np.zeros(2 * n))
    with pytest.raises(TypeError, match="one value per point"):
        explorer.color_by = np.zeros((2 * n, 2))
    assert explorer.color_by == "values" and menu.value == "values"
    many = PairedEmbeddings.from_arrays(a, b[:20], modalities=("image", "text"),
                                        pairs=np.stack([np.arange(20), np.arange(20)], 1))
    with pytest.raises(ValueError, match=r"give one per point \(45: the 25 image rows, then the 20 text rows\)$"):
        EmbeddingExplorer(many, color_by=np.zeros(20))
