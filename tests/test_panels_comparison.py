"""CorrectorComparison: the table is compare_correctors' and the bars carry its differences and intervals."""

from __future__ import annotations

import numpy as np
import pytest
from polars.testing import assert_frame_equal

from workbench import datasets
from workbench.compare import compare_correctors
from workbench.correct import GapShift, MeanCenter
from workbench.panels import CorrectorComparison

ARGS = {"n_resamples": 20, "probe": False, "seed": 3}


@pytest.fixture(scope="module")
def clip():
    return datasets.load("liang2022/clip").sample(240, seed=0)


@pytest.fixture(scope="module")
def comparison(clip):
    return CorrectorComparison(clip, [GapShift(1.0), MeanCenter()], **ARGS)


def test_table_equals_compare_correctors(clip, comparison):
    expected = compare_correctors(clip, [GapShift(1.0), MeanCenter()], **ARGS)
    assert_frame_equal(comparison.table, expected)


def test_bars_show_the_changes_against_none_with_their_intervals(comparison):
    table = comparison.table
    fig = comparison.figure()
    assert [t.name for t in fig.data] == ["Δ R@1 image→text", "Δ R@1 text→image", "Δ centroid distance"]
    none = table.row(0, named=True)
    for trace, metric in zip(fig.data, ["image_to_text_R@1", "text_to_image_R@1", "centroid_distance"],
                             strict=True):
        assert list(trace.x) == ["GapShift()", "MeanCenter()"]
        values = table[metric].to_numpy()[1:]
        np.testing.assert_allclose(trace.y, values - none[metric])
        np.testing.assert_allclose(trace.error_y.array, table[f"{metric}_hi"].to_numpy()[1:] - values)
        np.testing.assert_allclose(trace.error_y.arrayminus, values - table[f"{metric}_lo"].to_numpy()[1:])
    assert fig.data[2].y[0] < -0.5  # GapShift(1), fitted on the training half, closes most of the held-out gap


def test_widget_shows_the_table_and_the_chart(comparison):
    import ipywidgets as widgets
    import plotly.graph_objects as go

    box = comparison.widget
    assert isinstance(box, widgets.VBox) and "wb-corrector-comparison" in box._dom_classes
    table, chart = comparison._ui["table"], comparison._ui["chart"]
    assert "wb-comparison-table" in table._dom_classes and "wb-comparison-chart" in chart._dom_classes
    assert "MeanCenter()" in table.value and "image_to_text_R@1" in table.value
    # headers are human labels; the column key stays on the header (its title, shown on hover)
    assert "<th title='image_to_text_R@1'>R@1 image→text</th>" in table.value
    assert "<th title='centroid_distance'>centroid distance</th>" in table.value
    assert "<th>image_to_text_R@1</th>" not in table.value and "R@1 text→image</th>" in table.value
    value = comparison.table["centroid_distance"][1]
    assert f"{value:.4f} <small>[" in table.value
    assert isinstance(chart, go.FigureWidget) and len(chart.data) == 3


def test_no_corrector_is_an_error(clip):
    with pytest.raises(ValueError, match="at least one corrector"):
        CorrectorComparison(clip, [])


def test_a_saved_table_is_shown_without_refitting(comparison, tmp_path, monkeypatch):
    import polars as pl

    import workbench.compare

    path = tmp_path / "comparison.parquet"
    comparison.table.write_parquet(path)
    monkeypatch.setattr(workbench.compare, "compare_correctors", lambda *a, **k: pytest.fail("refitted"))
    shown = CorrectorComparison.from_table(pl.read_parquet(path), model=comparison.model)
    assert_frame_equal(shown.changes(), comparison.changes())
    for ours, theirs in zip(shown.figure().data, comparison.figure().data, strict=True):
        np.testing.assert_array_equal(ours.y, theirs.y)
        np.testing.assert_array_equal(ours.error_y.array, theirs.error_y.array)
    assert shown.figure().layout.title.text == comparison.figure().layout.title.text
    assert "MeanCenter()" in shown.widget.children[1].value

    with pytest.raises(ValueError, match="missing columns"):
        CorrectorComparison.from_table(comparison.table.drop("centroid_distance_lo"))
    with pytest.raises(ValueError, match="'none' row"):
        CorrectorComparison.from_table(comparison.table.reverse())
    with pytest.raises(TypeError, match="polars DataFrame"):
        CorrectorComparison.from_table(comparison.table.to_dicts())


def test_a_significance_table_shows_the_letters_and_keeps_its_test_columns_out_of_the_headers(clip, comparison):
    import re

    table = compare_correctors(clip, [GapShift(1.0), MeanCenter()], significance=True, **ARGS)
    assert {"system", "image_to_text_R@1_p", "image_to_text_R@1_p_holm", "image_to_text_R@1_sig",
            "image_to_text_R@1_mde"} <= set(table.columns)
    shown = CorrectorComparison.from_table(table, model=comparison.model)
    html_text = shown.widget.children[1].value
    headers = re.findall(r"<th[^>]*>([^<]*)</th>", html_text)
    assert headers[:2] == ["corrector", "system"]
    assert not any(h.endswith(("_p", "_p_holm", "_sig", "_mde")) or "p holm" in h or " sig" in h for h in headers)
    assert headers.count("R@1 image→text") == 1 and "R@10 text→image" in headers
    rows = re.findall(r"<tr>(.*?)</tr>", html_text.split("<tbody>")[1])
    assert len(rows) == table.height == 3
    column = headers.index("R@1 image→text")
    for tr, record in zip(rows, table.iter_rows(named=True), strict=True):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", tr)
        assert cells[1] == record["system"]
        sup = re.search(r"<sup class='wb-sig' title='([^']*)'>([a-z]*)</sup>", cells[column])
        assert sup is not None and sup.group(2) == record["image_to_text_R@1_sig"]
        assert cells[column].startswith(f"{record['image_to_text_R@1']:.4f}")
        if record["image_to_text_R@1_p"] is not None:
            assert f"exact McNemar p = {record['image_to_text_R@1_p']:.3g}" in sup.group(1)
            assert f"Holm {record['image_to_text_R@1_p_holm']:.3g}" in sup.group(1)
    assert "superscripts: the systems (letters) a row beats" in html_text
    # the bars are those of the table without the tests
    for ours, theirs in zip(shown.figure().data, comparison.figure().data, strict=True):
        np.testing.assert_array_equal(ours.y, theirs.y)
