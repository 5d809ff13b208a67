"""EmbeddingExplorer on jupyter-scatter: the backend choice, the widget's selection and hover reaching the controller,
colours, moves, pair lines and tooltip previews, each checked against values computed here (no browser: the widget's
traitlets are set as the front end sets them)."""

from __future__ import annotations

import base64
import io
import time
import wave

import numpy as np
import polars as pl
import pytest

from workbench import PairedEmbeddings
from workbench.panels import EmbeddingExplorer, MessagePanel
from workbench.panels._colors import NEUTRAL, OKABE_ITO, category_color, continuous_colors
from workbench.panels.embedding_explorer import _explorer as embedding_explorer
from workbench.panels.embedding_explorer import _jscatter as jscatter_view
from workbench.projection import _project as projection

pytest.importorskip("jscatter")


pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def paired(rng):
    n_a, n_b, dim = 30, 45, 12
    pairs = np.stack([np.arange(n_b) % n_a, np.arange(n_b)], axis=1)  # images 0-14 have two captions
    labels = [None if i in (3, 7) else int(v) for i, v in enumerate(rng.integers(0, 4, n_a))]
    return PairedEmbeddings.from_arrays(
        rng.normal(size=(n_a, dim)) + 1.0, rng.normal(size=(n_b, dim)) - 1.0, modalities=("image", "text"),
        pairs=pairs, metadata_a={"id": [f"img{i}" for i in range(n_a)], "label": pl.Series(labels, dtype=pl.Int64)},
        metadata_b={"caption": [f"caption <{i}>" for i in range(n_b)], "score": rng.normal(size=n_b)})


def _explorer(paired, **kwargs):
    explorer = EmbeddingExplorer(paired, backend="jscatter", **kwargs)
    explorer.widget  # noqa: B018
    return explorer, explorer._view.widget


def _hex(rgba) -> str:
    return "#" + "".join(f"{round(c * 255):02X}" for c in rgba[:3])


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i: i + 2], 16) for i in (1, 3, 5)])


def _point_colours(widget) -> list[str]:
    """Each point's colour as the front end draws it: its category (points[:, 2]) indexes the colour list."""
    return [_hex(widget.color[int(code)]) for code in widget.points[:, 2]]


def _tiny(n, rng, **kwargs):
    return PairedEmbeddings.from_arrays(rng.normal(size=(n, 2)), rng.normal(size=(n, 2)), **kwargs)


# -- the backend ----------------------------------------------------------------------------------------------------
def test_auto_backend_is_plotly_up_to_100000_points_and_jscatter_above(rng):
    assert embedding_explorer.JSCATTER_MIN_POINTS == 100_000
    pairs = np.stack([np.arange(50_000)] * 2, axis=1)
    at_threshold = PairedEmbeddings.from_arrays(rng.normal(size=(50_000, 2)), rng.normal(size=(50_000, 2)))
    above = PairedEmbeddings.from_arrays(rng.normal(size=(50_001, 2)), rng.normal(size=(50_000, 2)), pairs=pairs)
    assert (len(at_threshold.a) + len(at_threshold.b), len(above.a) + len(above.b)) == (100_000, 100_001)
    assert EmbeddingExplorer(at_threshold).backend == "plotly"
    assert EmbeddingExplorer(above).backend == "jscatter"
    assert EmbeddingExplorer(above, backend="plotly").backend == "plotly"
    small = _tiny(10, rng)
    assert EmbeddingExplorer(small).backend == "plotly"
    assert EmbeddingExplorer(small, backend="jscatter").backend == "jscatter"


def test_without_jupyter_scatter_auto_falls_back_and_an_explicit_request_says_how_to_install(rng, monkeypatch):
    monkeypatch.setattr(jscatter_view, "available", lambda: False)
    monkeypatch.setattr(embedding_explorer, "JSCATTER_MIN_POINTS", 10)
    paired = _tiny(20, rng)
    assert EmbeddingExplorer(paired).backend == "plotly"
    with pytest.raises(ImportError, match=r'pip install "alignment-workbench\[scale\]"'):
        EmbeddingExplorer(paired, backend="jscatter")
    monkeypatch.setattr(jscatter_view, "available", lambda: True)
    assert EmbeddingExplorer(paired).backend == "jscatter"  # 40 points > 10


@pytest.mark.parametrize("bad", ["bokeh", "JSCATTER", "", None, 1])
def test_an_unknown_backend_is_a_value_error_and_a_message_on_the_widget_path(rng, bad):
    paired = _tiny(5, rng)
    with pytest.raises(ValueError, match=r"backend must be 'auto', 'plotly' or 'jscatter', got"):
        EmbeddingExplorer(paired, backend=bad)
    panel = EmbeddingExplorer.show(paired, backend=bad)
    assert isinstance(panel, MessagePanel) and "backend must be" in panel.message


def test_the_jscatter_widget_holds_every_point_where_the_explorer_puts_it(paired):
    explorer, widget = _explorer(paired)
    assert type(widget).__module__.startswith("jscatter")
    assert "wb-embedding-plot" in widget._dom_classes and "wb-jscatter" in widget._dom_classes
    assert explorer._ui["plot"] is widget
    coords = explorer.coords
    for axis in (0, 1):  # jupyter-scatter maps [lo, hi] to [-1, 1]: the data range plus 5% on each side
        lo, hi = coords[:, axis].min(), coords[:, axis].max()
        lo, hi = lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)
        np.testing.assert_allclose(widget.x_scale_domain if axis == 0 else widget.y_scale_domain, [lo, hi])
        np.testing.assert_allclose(widget.points[:, axis], 2 * (coords[:, axis] - lo) / (hi - lo) - 1, atol=1e-9)
    assert widget.axes_labels == list(explorer._axis_titles()) and widget.axes_labels[0].startswith("PC 1 (")


# -- selection --------------------------------------------------------------------------------------------------------
def test_a_lasso_in_the_widget_becomes_the_explorer_selection(paired):
    explorer, widget = _explorer(paired, k=3)
    # what the front end sends after a lasso: the indices of the points inside, in any order, as uint32
    widget.selection = np.array([31, 5, 1], dtype=np.uint32)
    np.testing.assert_array_equal(explorer.selected, [1, 5, 31])
    assert explorer.selected.dtype == np.int64
    table = explorer.selection
    assert table["point"].unique().sort().to_list() == [1, 5, 31] and table.height == 9
    # point 31 is caption 1: its neighbours are images, by cosine in the original space
    scores = paired.a.vectors @ paired.b.vectors[1]
    assert table.filter(pl.col("point") == 31)["neighbour_row"].to_list() == np.argsort(-scores,
                                                                                      kind="stable")[:3].tolist()
    html = explorer._ui["table"].value
    assert "3 selected" in html and "img5" in html and "caption &lt;1&gt;" in html
    # the same selection made through the plotly view's controller gives the same table
    plotly = EmbeddingExplorer(paired, k=3, backend="plotly")
    plotly.select([1, 5, 31])
    assert plotly.selection.equals(table)
    # a click on the background: an empty selection
    widget.selection = np.array([], dtype=np.uint32)
    assert len(explorer.selected) == 0 and explorer.selection.height == 0
    assert "select points" in explorer._ui["table"].value


def test_a_selection_made_in_python_shows_in_the_widget_and_does_not_echo(paired, monkeypatch):
    explorer, widget = _explorer(paired)
    calls = []
    select = explorer.select
    monkeypatch.setattr(explorer, "select", lambda points: (calls.append(list(points)), select(points))[1])
    explorer.select([40, 2, 2])
    assert sorted(widget.selection.tolist()) == [2, 40]
    assert explorer._view.scatter.selection().tolist() == [2, 40]
    assert calls == [[40, 2, 2]]  # setting the widget from Python does not call select() again
    widget.selection = np.array([7], dtype=np.uint32)
    assert calls[-1] == [7] and explorer.selected.tolist() == [7]


def test_a_selection_made_before_the_widget_is_shown_when_it_is_built(paired):
    explorer = EmbeddingExplorer(paired, backend="jscatter")
    explorer.select([3, 33])
    assert explorer._view is None  # nothing built yet
    assert sorted(explorer.widget and explorer._view.widget.selection.tolist()) == [3, 33]


def test_bad_points_from_the_widget_show_a_message_and_keep_the_selection(paired):
    explorer, widget = _explorer(paired)
    explorer.select([4])
    widget.selection = np.array([4, 500], dtype=np.uint32)  # beyond the 75 points
    assert "points must be integers in [0, 75)" in explorer._message.value
    assert explorer.selected.tolist() == [4] and widget.selection.tolist() == [4]  # the widget shows it again


# -- hover and previews ------------------------------------------------------------------------------------------------
def test_hovering_in_the_widget_drives_the_side_preview(paired):
    explorer, widget = _explorer(paired)
    widget.hovering = 32
    assert explorer._inspected["point"] == 32 and "caption &lt;2&gt;" in explorer._ui["preview_text"].value
    widget.hovering = None  # the pointer left the points: the preview stays
    assert explorer._inspected["point"] == 32


def _tooltip(widget, monkeypatch, point, properties=("modality", "id", "caption")):
    """Ask for a point's tooltip as the front end does; the message the kernel sends back."""
    sent = []
    monkeypatch.setattr(widget, "send", lambda content, buffers=None: sent.append(content))
    widget._handle_custom_msg({"type": "tooltip", "index": point, "properties": list(properties),
                               "preview": "preview"}, [])
    assert len(sent) == 1 and sent[0]["type"] == "tooltip" and sent[0]["index"] == point
    return sent[0]


def _decode(url: str) -> tuple[str, bytes]:
    head, data = url.split(",", 1)
    assert head.startswith("data:") and head.endswith(";base64")
    return head[5:-7], base64.b64decode(data)


def test_image_tooltips_show_a_thumbnail_or_a_card_with_the_caption(rng, tmp_path, monkeypatch):
    from PIL import Image

    image_path = tmp_path / "photo.png"
    yy, xx = np.mgrid[0:300, 0:200]
    pixels = np.stack([yy * 255 // 299, xx * 255 // 199, np.full_like(yy, 90)], axis=-1).astype(np.uint8)
    Image.fromarray(pixels).save(image_path)
    paired = PairedEmbeddings.from_arrays(
        rng.normal(size=(3, 6)), rng.normal(size=(3, 6)), modalities=("image", "text"),
        metadata_a={"path": [str(image_path), str(tmp_path / "missing.png"), None]},
        metadata_b={"caption": ["a <red> dog", None, "x"]})
    explorer, widget = _explorer(paired)
    assert explorer._view.preview_type == "image" and widget.tooltip_preview_type == "image"
    answer = _tooltip(widget, monkeypatch, 0)
    assert answer["properties"] == {"modality": "image", "id": 0, "caption": ""}
    mime, data = _decode(answer["preview"])
    thumb = Image.open(io.BytesIO(data))
    assert mime == "image/png" and thumb.size == (147, 220)  # 200 x 300 scaled to fit 220
    expected = Image.fromarray(pixels).resize((147, 220), Image.Resampling.BICUBIC)
    assert np.abs(np.asarray(thumb, dtype=float) - np.asarray(expected, dtype=float)).max() <= 3  # a gradient
    answer = _tooltip(widget, monkeypatch, 3)  # caption 0: an SVG card with the (escaped) caption
    mime, data = _decode(answer["preview"])
    assert mime == "image/svg+xml" and "a &lt;red&gt; dog" in data.decode()
    assert answer["properties"] == {"modality": "text", "id": 0, "caption": "a <red> dog"}
    assert "file not found" in _decode(_tooltip(widget, monkeypatch, 1)["preview"])[1].decode()
    assert "no image" in _decode(_tooltip(widget, monkeypatch, 4)["preview"])[1].decode()  # no caption either


def test_sound_tooltips_send_the_file_and_silence_for_items_without_one(rng, tmp_path, monkeypatch):
    sound_path = tmp_path / "beep.wav"
    with wave.open(str(sound_path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes((np.sin(np.arange(800) / 3) * 2000).astype("<i2").tobytes())
    paired = PairedEmbeddings.from_arrays(
        rng.normal(size=(2, 6)), rng.normal(size=(2, 6)), modalities=("audio", "text"),
        metadata_a={"path": [str(sound_path), None]}, metadata_b={"caption": ["a beep", "silence"]})
    _, widget = _explorer(paired)
    assert widget.tooltip_preview_type == "audio"
    mime, data = _decode(_tooltip(widget, monkeypatch, 0)["preview"])
    assert mime == "audio/wav" and data == sound_path.read_bytes()
    for point in (1, 2):  # a row without a sound, and a caption: silence (no stale sound plays)
        mime, data = _decode(_tooltip(widget, monkeypatch, point)["preview"])
        with wave.open(io.BytesIO(data)) as w:
            frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        assert mime == "audio/wav" and len(frames) > 0 and not frames.any()


def test_caption_tooltips_and_no_preview_without_captions_or_files(rng, monkeypatch):
    paired = PairedEmbeddings.from_arrays(rng.normal(size=(2, 6)), rng.normal(size=(2, 6)),
                                          metadata_b={"caption": ["first", None]})
    _, widget = _explorer(paired)
    assert widget.tooltip_preview_type == "text"
    assert _tooltip(widget, monkeypatch, 2)["preview"] == "first"
    assert _tooltip(widget, monkeypatch, 3)["preview"] == "(b 1: no caption)"
    bare = _tiny(3, rng)
    _, widget = _explorer(bare)
    assert widget.tooltip_preview is None
    assert _tooltip(widget, monkeypatch, 0, properties=("modality", "id")) == {
        "type": "tooltip", "index": 0, "preview": None, "properties": {"modality": "a", "id": 0}}


# -- colours -----------------------------------------------------------------------------------------------------------
def test_modality_colours_and_legend(paired):
    _, widget = _explorer(paired)
    assert _point_colours(widget) == [OKABE_ITO[0]] * 30 + [OKABE_ITO[1]] * 45
    assert widget.legend and [(label, _hex(c)) for label, c, _ in widget.legend_encoding["color"]["values"]] == [
        ("image", OKABE_ITO[0]), ("text", OKABE_ITO[1])]
    assert widget.color_title == "modality"


def test_categorical_colours_with_missing_values_follow_the_colour_control(paired):
    explorer, widget = _explorer(paired)
    explorer._ui["color"].value = "label"  # the dropdown
    assert explorer.color_by == "label" and widget.color_title == "label"
    labels = paired.a.metadata["label"].to_list()
    classes = sorted({v for v in labels if v is not None})
    expected = [NEUTRAL if v is None else category_color(classes.index(v)) for v in labels] + [NEUTRAL] * 45
    assert _point_colours(widget) == expected == explorer.colors()[0]
    legend = {label: _hex(c) for label, c, _ in widget.legend_encoding["color"]["values"]}
    assert legend == {"no value": NEUTRAL, **{str(v): category_color(i) for i, v in enumerate(classes)}}


def test_300_classes_get_300_colours_and_no_legend(rng):
    n = 600
    paired = PairedEmbeddings.from_arrays(rng.normal(size=(n, 8)), rng.normal(size=(n, 8)),
                                          metadata_a={"label": np.arange(n) % 300})
    _, widget = _explorer(paired, color_by="label")
    colours = _point_colours(widget)
    assert colours[:n] == [category_color(v % 300) for v in range(n)] and set(colours[n:]) == {NEUTRAL}
    assert len(set(colours)) == 301 and not widget.legend


def test_continuous_colours_are_within_half_a_step_of_viridis(paired):
    _, widget = _explorer(paired, color_by="score")
    scores = paired.b.metadata["score"].to_numpy()
    exact = continuous_colors(scores, scores.min(), scores.max())
    drawn = _point_colours(widget)
    assert drawn[:30] == [NEUTRAL] * 30
    error = np.abs(np.stack([_rgb(c) for c in drawn[30:]]) - np.stack([_rgb(c) for c in exact]))
    assert error.max() <= 2  # 256 steps over a scale whose 10 stops are at most ~60 levels apart per channel
    assert drawn[30 + int(np.argmin(scores))] == "#440154" and drawn[30 + int(np.argmax(scores))] == "#FDE725"
    assert not widget.legend


def test_color_categories_is_exact_for_classes_and_labels_are_unique(rng):
    paired = PairedEmbeddings.from_arrays(rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), modalities=("x", "x"),
                                          metadata_a={"kind": ["no value", "b", None, "b"]})
    explorer = EmbeddingExplorer(paired, color_by="kind", backend="plotly")
    codes, labels, colours = jscatter_view.color_categories(explorer)
    assert labels == ["no value", "b", "no value (2)"] and codes.tolist() == [2, 1, 0, 1, 0, 0, 0, 0]
    assert [colours[c] for c in codes] == explorer.colors()[0]
    explorer.color_by = "modality"
    codes, labels, _ = jscatter_view.color_categories(explorer)
    assert labels == ["x (a)", "x (b)"] and codes.tolist() == [0] * 4 + [1] * 4


# -- projection and pair lines -----------------------------------------------------------------------------------------
def test_switching_the_projection_moves_the_points_and_renames_the_axes(paired, monkeypatch):
    monkeypatch.setitem(projection._FITTERS, "umap",
                        lambda arr, seed, **params: np.random.default_rng(seed).normal(size=(len(arr), 2)) * 10)
    explorer, widget = _explorer(paired)
    explorer._ui["projection"].value = "umap"
    coords = explorer.coords
    lo, hi = coords[:, 0].min(), coords[:, 0].max()
    lo, hi = lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)
    np.testing.assert_allclose(widget.points[:, 0], 2 * (coords[:, 0] - lo) / (hi - lo) - 1, atol=1e-9)
    assert widget.axes_labels == ["UMAP 1", "UMAP 2"]
    assert _point_colours(widget) == [OKABE_ITO[0]] * 30 + [OKABE_ITO[1]] * 45  # colours kept


def test_pair_lines_join_the_pairs_of_a_matching(paired):
    explorer, widget = _explorer(paired)
    explorer._ui["lines"].value = True
    assert explorer.show_pairs and widget.connect
    group = widget.points[:, 4]
    # pairs are (i % 30, i): images 0-14 have two captions; one line per point: caption i for image i
    for i in range(30):
        together = np.flatnonzero(group == group[i])
        assert together.tolist() == [i, 30 + i]
    for point in range(60, 75):  # captions 30-44 (their image already has a line) stand alone
        assert np.count_nonzero(group == group[point]) == 1
    assert explorer._view.pairs_drawn == 30 and "30 of 45 pairs drawn" in explorer.message
    explorer.show_pairs = False
    assert not widget.connect and not explorer._ui["lines"].value and explorer.message == ""


def test_pair_matching_keeps_a_seeded_sample_beyond_the_limit():
    pairs = np.stack([np.arange(100), np.arange(100)[::-1]], axis=1)
    kept = jscatter_view.pair_matching(pairs, limit=10, seed=3)
    assert len(kept) == 10 and set(map(tuple, kept.tolist())) <= set(map(tuple, pairs.tolist()))
    np.testing.assert_array_equal(kept, jscatter_view.pair_matching(pairs, limit=10, seed=3))
    assert len(np.unique(kept[:, 0])) == 10 and len(np.unique(kept[:, 1])) == 10


# -- scale -------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_million_point_explorer_builds_its_widget_in_seconds_and_syncs_the_selection(tmp_path):
    rng = np.random.default_rng(0)
    n = 500_000
    paired = PairedEmbeddings.from_arrays(rng.normal(size=(n, 4)).astype(np.float32),
                                          rng.normal(size=(n, 4)).astype(np.float32),
                                          metadata_a={"label": rng.integers(0, 20, n)})
    explorer = EmbeddingExplorer(paired, color_by="label", cache_dir=tmp_path)
    assert explorer.backend == "jscatter"
    explorer.coords  # noqa: B018  (the PCA: not the widget's cost)
    start = time.perf_counter()
    widget = explorer.widget and explorer._view.widget
    built = time.perf_counter() - start
    assert widget.points.shape == (2 * n, 4) and built < 30, built
    chosen = np.array([5, 600_000, 999_999, 17], dtype=np.uint32)
    widget.selection = chosen
    np.testing.assert_array_equal(explorer.selected, np.sort(chosen))
    assert "4 selected" in explorer._ui["table"].value


def test_search_fades_the_points_that_do_not_match(paired):
    explorer, widget = _explorer(paired)
    explorer._ui["search"].value = "caption <1"  # captions 1 and 10-19: b rows, points 30 + row
    expected = [30 + 1] + [30 + i for i in range(10, 20)]
    assert explorer.matches.tolist() == expected
    points = np.asarray(widget.points)
    assert widget.opacity_by == "valueB"  # the 4th column of the points carries the match flag
    np.testing.assert_array_equal(np.flatnonzero(points[:, 3] == 1.0), expected)
    assert list(widget.opacity) == [jscatter_view.FADED_OPACITY, 1.0]
    explorer.search("")
    assert widget.opacity_by is None and explorer.matches is None
