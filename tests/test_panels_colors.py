"""Point colours: a categorical column of colour names is drawn in those colours (checked against the CSS colour
table as matplotlib ships it, an independent source), any other column in the package palette."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import PairedEmbeddings
from workbench.panels import EmbeddingExplorer
from workbench.panels._colors import CSS_COLORS, NEUTRAL, category_color, category_colors


def test_the_css_table_matches_matplotlibs():
    colors = pytest.importorskip("matplotlib.colors")
    assert {k: v.upper() for k, v in colors.CSS4_COLORS.items()} == CSS_COLORS


def test_colour_names_are_drawn_in_their_own_colours():
    rng = np.random.default_rng(0)
    names = ["green", "red", "Steel Blue", None] * 5
    paired = PairedEmbeddings.from_arrays(rng.normal(size=(20, 6)), rng.normal(size=(20, 6)),
                                          metadata_a={"colour": names})
    explorer = EmbeddingExplorer(paired, color_by="colour")
    colours, mapping = explorer.colors()
    expected = {"green": "#008000", "red": "#FF0000", "Steel Blue": "#4682B4"}
    assert mapping["colors"] == expected
    assert colours[:4] == ["#008000", "#FF0000", "#4682B4", NEUTRAL]
    # the plotly view maps each point's class index through a colorscale whose stops are those colours
    trace = explorer.figure().data[0]
    stops = {round(s * 3): c for s, c in trace.marker.colorscale}
    assert [stops[int(i)] for i in trace.marker.color[:4]] == colours[:4]


def test_other_categories_keep_the_palette():
    assert category_colors(["dog", "green"]) == {"dog": category_color(0), "green": category_color(1)}
    assert category_colors([1, 2]) == {1: category_color(0), 2: category_color(1)}
