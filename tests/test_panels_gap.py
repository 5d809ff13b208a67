"""GapExplorer: every value on show against the analysis core run on the corrected data, independently."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import PairedEmbeddings, datasets
from workbench.correct import GapShift, LinearAdapter, MeanCenter
from workbench.gap import clip_loss, gap_report
from workbench.panels import GapExplorer
from workbench.panels.gap_explorer import metric_css_class
from workbench.projection import pca_2d
from workbench.retrieval import matched_ranks, per_query_ranks

DELTAS = (-1.0, -0.35, 0.0, 0.5, 1.0)


@pytest.fixture(scope="module")
def clip():
    return datasets.load("liang2022/clip")


@pytest.fixture(scope="module")
def clip_explorer(clip):
    return GapExplorer(clip)


@pytest.fixture(scope="module")
def clip_axes(clip):
    """The mean and first two principal axes of the original CLIP points, by an SVD (independent of sklearn)."""
    from threadpoolctl import threadpool_limits

    original = np.concatenate([clip.a.vectors, clip.b.vectors]).astype(np.float64)
    mean = original.mean(axis=0)
    with threadpool_limits(1, user_api="blas"):  # threaded OpenBLAS LAPACK stalls on a busy 2-core machine
        _, _, vt = np.linalg.svd(original - mean, full_matrices=False)
    return mean, vt[:2]


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _assert_ranks_match(shown, expected, queries, gallery, relevance, tol=1e-5):
    """Ranks equal, except for queries with an irrelevant item within float32 rounding of their match."""
    scores = _unit(queries) @ _unit(gallery).T
    best = np.full(len(queries), -np.inf)
    np.maximum.at(best, relevance[:, 0], scores[relevance[:, 0], relevance[:, 1]])
    near = np.abs(scores - best[:, None]) < tol
    near[relevance[:, 0], relevance[:, 1]] = False
    ambiguous = near.any(axis=1)
    np.testing.assert_array_equal(shown[~ambiguous], expected[~ambiguous])
    assert ambiguous.mean() < 0.02


def _assert_metrics(shown, expected, atol=2e-6):
    for key, value in expected.items():
        if key == "modality_probe_accuracy":
            assert shown[key] is None  # computed on demand only
        elif value is None:
            assert shown[key] is None, key
        else:
            assert shown[key] == pytest.approx(value, abs=atol), key


@pytest.mark.parametrize("delta", DELTAS)
def test_slider_values_match_gap_report_of_gapshift_on_clip(clip, clip_explorer, clip_axes, delta):
    explorer = clip_explorer
    explorer.delta = delta
    assert explorer.delta == delta and explorer.corrector == "GapShift"
    a, b = clip.matched()
    a2, b2 = GapShift(delta).fit(a, b).transform(a, b)
    shown = explorer.metrics
    _assert_metrics(shown, gap_report(a2, b2, probe=False))
    ranks_ab, ranks_ba = matched_ranks(a2, b2)
    diag = np.repeat(np.arange(len(a))[:, None], 2, axis=1)
    _assert_ranks_match(explorer.ranks[0], ranks_ab, a2, b2, diag)
    _assert_ranks_match(explorer.ranks[1], ranks_ba, b2, a2, diag)
    for k in (1, 5, 10):
        assert shown[f"a_to_b_R@{k}"] == pytest.approx(np.mean(ranks_ab <= k), abs=1.5 / len(a))
        assert shown[f"b_to_a_R@{k}"] == pytest.approx(np.mean(ranks_ba <= k), abs=1.5 / len(a))
    assert shown["clip_loss"] == pytest.approx(clip_loss(a2, b2), rel=1e-5)
    # the view: the PCA fitted once on the ORIGINAL points, applied to the moved ones
    mean, axes = clip_axes
    expected = (np.concatenate([a2, b2]).astype(np.float64) - mean) @ axes.T
    coords = explorer.coords
    for k in range(2):
        sign = np.sign(np.dot(coords[:, k], expected[:, k]))
        np.testing.assert_allclose(coords[:, k], sign * expected[:, k], atol=1e-5)
    np.testing.assert_allclose(coords, explorer.pca.transform(np.concatenate([a2, b2])), atol=1e-5)


def test_delta_zero_shows_the_model_as_embedded(clip, clip_explorer):
    clip_explorer.delta = 0.0
    np.testing.assert_allclose(clip_explorer.coords, pca_2d(np.concatenate([clip.a.vectors, clip.b.vectors]))[0],
                               atol=1e-5)
    assert clip_explorer.metrics["centroid_distance"] == pytest.approx(0.8514, abs=1e-4)
    assert clip_explorer.metrics["a_to_b_R@1"] == 0.552


def test_many_to_many_with_distractors_and_subsampled_uniformity(rng):
    n_img, per_image, dim = 40, 3, 16
    centres = rng.normal(size=(n_img, dim)) + 2.0
    images = np.concatenate([centres + 0.3 * rng.normal(size=(n_img, dim)), rng.normal(size=(5, dim)) + 2.0])
    captions = np.repeat(centres, per_image, axis=0) - 4.0 + 0.8 * rng.normal(size=(n_img * per_image, dim))
    captions = np.concatenate([captions, rng.normal(size=(7, dim)) - 2.0])  # unpaired distractors on both sides
    pairs = np.stack([np.repeat(np.arange(n_img), per_image), np.arange(n_img * per_image)], axis=1)
    paired = PairedEmbeddings.from_arrays(images, captions, modalities=("image", "text"), pairs=pairs)
    explorer = GapExplorer(paired, uniformity_rows=30, seed=4)
    assert "uniformity_b" in explorer.notes and "30 of 120" in explorer.notes["uniformity_b"]
    rows_a, rows_b = paired.paired_rows()
    for delta in (-0.6, 0.4, 1.0):
        explorer.delta = delta
        a2, b2 = GapShift(delta).fit(*paired.matched()).transform(paired.a.vectors, paired.b.vectors)
        moved = PairedEmbeddings.from_arrays(a2, b2, pairs=pairs)
        _assert_metrics(explorer.metrics, gap_report(moved, probe=False, max_rows=30, seed=4))
        assert explorer.metrics["clip_loss"] == pytest.approx(clip_loss(moved), rel=1e-5)
        rel_a = np.stack([np.searchsorted(rows_a, pairs[:, 0]), pairs[:, 1]], axis=1)
        rel_b = np.stack([np.searchsorted(rows_b, pairs[:, 1]), pairs[:, 0]], axis=1)
        ranks_a = per_query_ranks(a2[rows_a], b2, rel_a).ranks
        ranks_b = per_query_ranks(b2[rows_b], a2, rel_b).ranks
        _assert_ranks_match(explorer.ranks[0], ranks_a, a2[rows_a], b2, rel_a)
        _assert_ranks_match(explorer.ranks[1], ranks_b, b2[rows_b], a2, rel_b)
        assert explorer.metrics["a_to_b_R@5"] == pytest.approx(np.mean(ranks_a <= 5), abs=1.5 / len(rows_a))


def test_switching_to_meancenter_shows_the_fitted_corrector(clip):
    explorer = GapExplorer(clip, corrector=GapShift(0.5))
    assert explorer.delta == 0.5
    explorer.corrector = "MeanCenter"
    a, b = clip.matched()
    a2, b2 = MeanCenter().fit(a, b).transform(a, b)
    _assert_metrics(explorer.metrics, gap_report(a2, b2, probe=False))
    ranks_ab, ranks_ba = matched_ranks(a2, b2)
    np.testing.assert_array_equal(explorer.ranks[0], ranks_ab)
    assert explorer.metrics["b_to_a_R@10"] == np.mean(ranks_ba <= 10)
    assert explorer.metrics["clip_loss"] == pytest.approx(clip_loss(a2, b2), rel=1e-6)
    np.testing.assert_allclose(explorer.coords, explorer.pca.transform(np.concatenate([a2, b2])), atol=1e-9)
    explorer.delta = 0.25  # the slider acts on GapShift
    assert explorer.corrector == "GapShift"
    assert explorer.metrics["centroid_distance"] == pytest.approx(
        gap_report(*GapShift(0.25).fit(a, b).transform(a, b), probe=False)["centroid_distance"], abs=1e-6)


def test_trained_correctors_are_fitted_once_and_cached(clip):
    explorer = GapExplorer(clip.sample(120, seed=0))
    explorer.corrector = LinearAdapter(epochs=2, lr=1e-3)
    fitted = explorer.fitted_["LinearAdapter"]
    first = explorer.metrics
    explorer.corrector = "GapShift"
    explorer.corrector = "LinearAdapter"
    assert explorer.fitted_["LinearAdapter"] is fitted and explorer.metrics == first
    assert fitted.epochs == 2  # the given instance's settings


def test_probe_on_demand(clip_explorer):
    clip_explorer.delta = 0.0
    assert clip_explorer.metrics["modality_probe_accuracy"] is None
    assert "compute_probe" in clip_explorer.notes["modality_probe_accuracy"]
    assert clip_explorer.compute_probe() == 1.0 == clip_explorer.metrics["modality_probe_accuracy"]
    clip_explorer.delta = 0.1  # a change hides it again (it belongs to the old state)
    assert clip_explorer.metrics["modality_probe_accuracy"] is None


def test_bad_input_raises_in_python_and_shows_a_message_in_the_widget(clip):
    with pytest.raises(ValueError, match="unknown corrector 'nope'"):
        GapExplorer(clip, corrector="nope")
    explorer = GapExplorer(clip.sample(50, seed=1))
    with pytest.raises(ValueError, match=r"delta must lie in \[-1.0, 1.0\]"):
        explorer.delta = 1.5
    with pytest.raises(TypeError, match="delta must be a number"):
        explorer.delta = "big"
    one = PairedEmbeddings.from_arrays(np.eye(3)[:1], np.eye(3)[1:2])
    with pytest.raises(ValueError, match="at least 2 paired items"):
        GapExplorer(one)
    panel = GapExplorer.show(one)
    assert "at least 2 paired items" in panel.widget.children[0].value
    assert "wb-error" in panel.widget.children[0]._dom_classes


def test_widget_structure_and_round_trip(clip):
    import ipywidgets as widgets
    import plotly.graph_objects as go

    explorer = GapExplorer(clip)
    box = explorer.widget
    assert isinstance(box, widgets.VBox) and {"wb-panel", "wb-gap-explorer"} <= set(box._dom_classes)
    ui = explorer._ui
    assert "wb-gap-delta" in ui["slider"]._dom_classes and ui["slider"].description == "delta"
    assert "wb-gap-corrector" in ui["dropdown"]._dom_classes
    assert isinstance(ui["view"], go.FigureWidget) and "wb-gap-view" in ui["view"]._dom_classes
    readouts = ui["readouts"]
    assert set(readouts) == set(explorer.metrics)
    assert metric_css_class("centroid_distance") in readouts["centroid_distance"]._dom_classes

    ui["slider"].value = 0.75  # a slider move
    a, b = clip.matched()
    expected = gap_report(*GapShift(0.75).fit(a, b).transform(a, b), probe=False)
    assert explorer.delta == 0.75
    assert readouts["centroid_distance"].value == f"{expected['centroid_distance']:.4f}"
    assert readouts["a_to_b_R@1"].value == f"{explorer.metrics['a_to_b_R@1']:.4f}"
    n_a = len(clip.a)
    np.testing.assert_allclose(ui["view"].data[0].x, explorer.coords[:n_a, 0])
    np.testing.assert_allclose(ui["view"].data[1].y, explorer.coords[n_a:, 1])

    explorer.delta = -0.5  # Python moves the slider
    assert ui["slider"].value == -0.5
    ui["dropdown"].value = "Standardize"
    assert explorer.corrector == "Standardize" and "wb-inactive" in ui["slider"]._dom_classes
    explorer.corrector = "GapShift"
    assert ui["dropdown"].value == "GapShift"
    ui["slider"].value = 0.0
    assert readouts["centroid_distance"].value == "0.8514"

    fig = explorer.figure()
    assert isinstance(fig, go.Figure) and not isinstance(fig, go.FigureWidget)
    assert [t.name for t in fig.data] == ["image (500)", "text (500)", "centroids"]
    assert "GapShift(delta=+0.00)" in fig.layout.title.text


def test_a_fitted_corrector_shows_the_in_sample_badge_and_disables_the_slider(clip):
    explorer = GapExplorer(clip)
    ui = explorer._ui if explorer._ui else (explorer.widget, explorer._ui)[1]
    assert not explorer.in_sample and ui["badge"].value == "" and ui["badge"].layout.display == "none"
    assert not ui["slider"].disabled
    ui["dropdown"].value = "Procrustes"
    # Procrustes fitted on the 500 pairs on show retrieves almost perfectly: the number the badge warns about
    assert explorer.in_sample and explorer.metrics["a_to_b_R@1"] > 0.85
    assert "fitted on these pairs (in-sample)" in ui["badge"].value and "Procrustes" in ui["badge"].value
    assert ui["badge"].layout.display is None and ui["slider"].disabled
    explorer.delta = 0.5  # Python may still move it: that selects GapShift and enables the slider again
    assert explorer.corrector == "GapShift" and not ui["slider"].disabled and ui["badge"].value == ""


def test_a_gap_report_shows_a_table_with_human_labels_in_a_notebook():
    import re

    paired = datasets.load("liang2022/videoclip")
    report = gap_report(paired, probe=False)
    page = report._repr_html_()
    rows = dict(re.findall(r"<th style='text-align:left'>([^<]+)</th><td>([^<]+)</td>", page))
    assert len(rows) == len(report)
    assert rows["mean cosine within video"] == f"{report['intra_cosine_a']:.4f}"
    assert rows["mean cosine within text"] == f"{report['intra_cosine_b']:.4f}"
    assert rows["centroid distance"] == f"{report['centroid_distance']:.4f}"
    assert rows["modality probe accuracy"] == "–" and "_" not in "".join(rows)
