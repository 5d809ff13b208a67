"""The paper style: THE palette, column widths, fonts and a plotly template; :func:`paper_figure` applies them.

This is the one place report, figures and panels take their colours from (:data:`PALETTE`). The style:

- width 3.3 in (``"single"`` column) or 6.9 in (``"double"``), or any width in inches; one layout unit is one
  PostScript point (72 per inch), so PDF and SVG pages are exactly that wide and font sizes are in points;
- serif text (Times New Roman, falling back to Times, Liberation Serif, Nimbus Roman, serif) at 8 pt, 7 pt tick
  labels and legend, 9 pt title;
- the Okabe-Ito colour-blind-safe palette (:data:`PALETTE`) as colorway, Viridis as colour scale;
- a compact legend: symbols as large as the trace's own (not plotly's 16-pixel constant), 30 points wide
  (plotly's least), entries in a row where the figure asks for one (the
  package's figures put one row above the plot area, :data:`workbench.figures.LEGEND_ROW`); such a row starts at
  the figure's left edge, so it may use the left margin's width too (fewer wrapped rows at a single column);
- white background, 0.5 pt black axis lines with outside ticks, no grid, tight margins (grown only as far as tick
  labels and axis titles need);
- point clouds sized for print: markers of scatter traces with more than :data:`DENSE_POINTS` points are at most
  :data:`DENSE_MARKER_PT` points across (screen-sized markers of a few pixels become blots at column width);
- no interactive artefacts: traces hidden behind a legend click (``visible="legendonly"``) lose their legend entry,
  dropdowns (``updatemenus``) and sliders are removed, WebGL traces (``scattergl``, used
  above :data:`workbench.figures.WEBGL_ABOVE` points) become SVG traces so PDF and SVG stay vector (up to
  :data:`VECTOR_POINTS_MAX` points); static exports carry no modebar.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from workbench._params import check_number

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "COLUMN_WIDTHS",
    "DENSE_MARKER_PT",
    "DENSE_POINTS",
    "FONT_FAMILY",
    "FONT_SIZE",
    "PALETTE",
    "POINTS_PER_INCH",
    "SMALL_FONT_SIZE",
    "TITLE_FONT_SIZE",
    "VECTOR_POINTS_MAX",
    "paper_figure",
]

#: Okabe & Ito's colour-blind-safe palette (blue, vermillion, bluish green, orange, sky blue, reddish purple,
#: yellow, black): the colours of every figure, report and panel.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
#: Column widths in inches (a common two-column journal/conference layout).
COLUMN_WIDTHS = {"single": 3.3, "double": 6.9}
#: Layout units per inch: one unit is one PostScript point.
POINTS_PER_INCH = 72
#: The font stack: Times New Roman where installed, a metric-compatible or similar serif elsewhere.
FONT_FAMILY = "Times New Roman, Times, Liberation Serif, Nimbus Roman, serif"
#: Font sizes in points: text and axis titles, tick labels / legend / annotations, figure title.
FONT_SIZE, SMALL_FONT_SIZE, TITLE_FONT_SIZE = 8, 7, 9
#: WebGL traces are converted to SVG traces while a figure's WebGL traces hold at most this many points.
VECTOR_POINTS_MAX = 100_000
#: Scatter traces with more points than this are point clouds: their markers are capped at DENSE_MARKER_PT.
DENSE_POINTS = 100
DENSE_MARKER_PT = 2.5
#: Width and height limits in inches -- mostly to catch pixels passed as inches.
MIN_INCHES, MAX_INCHES = 0.5, 20.0


#: Left and right margins (points) before plotly grows them for tick labels and axis titles.
MARGIN = {"l": 36, "r": 6}

Width = Literal["single", "double"] | float


def _inches(name: str, value: Any) -> float:
    inches = check_number(value, name)
    if not MIN_INCHES <= inches <= MAX_INCHES:
        raise ValueError(
            f"{name} is in inches and must be between {MIN_INCHES} and {MAX_INCHES}, got {value!r} (pixels? a "
            f"single column is {COLUMN_WIDTHS['single']} in, a double column {COLUMN_WIDTHS['double']} in)"
        )
    return inches


def _size(width: Width, height: float | None) -> tuple[str, float, float]:
    """``(label, width_in, height_in)``; the default height is ``min(0.75 * width, 3.5)`` inches."""
    if isinstance(width, str):
        key = width.strip().lower()
        if key not in COLUMN_WIDTHS:
            raise ValueError(
                f"width must be 'single' ({COLUMN_WIDTHS['single']} in), 'double' ({COLUMN_WIDTHS['double']} in) "
                f"or a number of inches, got {width!r}"
            )
        label, width_in = key, COLUMN_WIDTHS[key]
    else:
        label, width_in = "custom", _inches("width", width)
    height_in = round(min(0.75 * width_in, 3.5), 6) if height is None else _inches("height", height)
    return label, width_in, height_in


def _paper_template() -> go.layout.Template:
    import plotly.graph_objects as go

    small = {"size": SMALL_FONT_SIZE}
    axis = {
        "showline": True, "linewidth": 0.5, "linecolor": "#000000", "mirror": False,
        "ticks": "outside", "ticklen": 3, "tickwidth": 0.5, "tickcolor": "#000000", "tickfont": small,
        "showgrid": False, "zeroline": False, "automargin": True,
        "title": {"font": {"size": FONT_SIZE}, "standoff": 4},
    }
    colorbar = {"outlinewidth": 0, "thickness": 8, "ticks": "outside", "ticklen": 3, "tickwidth": 0.5,
                "tickfont": small}
    return go.layout.Template(
        layout={
            "font": {"family": FONT_FAMILY, "size": FONT_SIZE, "color": "#000000"},
            "title": {"font": {"size": TITLE_FONT_SIZE}, "x": 0.5, "xanchor": "center"},
            "xaxis": axis,
            "yaxis": axis,
            "legend": {"font": small, "bgcolor": "rgba(255,255,255,0)", "borderwidth": 0, "itemsizing": "trace",
                       "itemwidth": 30, "tracegroupgap": 2},
            "colorway": list(PALETTE),
            "colorscale": {"sequential": "Viridis", "sequentialminus": "Viridis"},
            "coloraxis": {"colorbar": colorbar},
            "annotationdefaults": {"font": small},
            "paper_bgcolor": "#FFFFFF",
            "plot_bgcolor": "#FFFFFF",
        },
        data={
            "scatter": [{"marker": {"size": 4, "line": {"width": 0}}, "line": {"width": 1.0}}],
            "bar": [{"marker": {"line": {"width": 0}}}],
            "heatmap": [{"colorbar": colorbar}],
        },
    )


def _widen_legend_row(fig: Any) -> None:
    """Let a legend row above the plot area start at the figure's left edge instead of the plot area's.

    A horizontal legend anchored at the plot area's left (``x=0``) may use only the plot area's width, so at a
    single column its entries wrap one per row. Anchored just left of the plot area, plotly lets the row use the
    left margin's width too (``margin.l + plot width``); placing it at ``-margin.l / plot width`` starts it at the
    figure's edge (or a little inside it, where plotly grows the margins), so a few short entries stay one row.
    """
    legend = fig.layout.legend
    above = legend.y is not None and (legend.y > 1 or (legend.y == 1 and legend.yanchor == "bottom"))
    left = legend.x == 0 and legend.xanchor in (None, "left") and legend.xref in (None, "paper")
    if legend.orientation != "h" or not above or not left:
        return
    plot_width = fig.layout.width - MARGIN["l"] - MARGIN["r"]
    legend.x = -MARGIN["l"] / plot_width


def _n_points(trace: Any) -> int:
    return max((len(v) for v in (trace.x, trace.y) if v is not None), default=0)


def paper_figure(fig: Any, width: Width = "single", height: float | None = None) -> go.Figure:
    """A copy of ``fig`` in the paper style (see the module docstring); ``fig`` is left unchanged.

    Parameters
    ----------
    fig : plotly Figure, FigureWidget or figure dict
    width : "single", "double" or float, default "single"
        3.3 in, 6.9 in, or a width in inches.
    height : float, optional
        Inches; by default ``min(0.75 * width, 3.5)``.

    Returns
    -------
    plotly.graph_objects.Figure
        Sized in points (``layout.width == width * 72``). Settings made explicitly on ``fig`` (say an axis range
        or a marker colour) are kept; the template, size, global font, colorway, background and margins are set,
        interactive menus and sliders are removed.

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> styled = paper_figure(go.Figure(go.Scatter(y=[1, 3, 2])), width="double")
    >>> styled.layout.width, styled.layout.height, styled.layout.font.size
    (496.8, 252.0, 8)
    >>> styled.layout.colorway[:2]
    ('#0072B2', '#D55E00')
    """
    import plotly.graph_objects as go
    from plotly.basedatatypes import BaseFigure

    _, width_in, height_in = _size(width, height)
    if not isinstance(fig, (BaseFigure, Mapping)):
        raise TypeError(f"expected a plotly figure or a figure dict, got {type(fig).__name__}")
    try:
        base = go.Figure(fig)  # a validated deep copy
    except ValueError as exc:
        raise ValueError(f"not a valid plotly figure: {exc}") from None
    data = list(base.data)
    if sum(_n_points(t) for t in data if t.type == "scattergl") <= VECTOR_POINTS_MAX:
        for i, trace in enumerate(data):
            if trace.type == "scattergl":
                props = trace.to_plotly_json()
                props.pop("type", None)
                with contextlib.suppress(ValueError):  # an attribute only WebGL has: keep the WebGL trace
                    data[i] = go.Scatter(props)
    for trace in data:
        if trace.type in ("scatter", "scattergl") and _n_points(trace) > DENSE_POINTS:
            size = trace.marker.size
            if size is None:
                trace.marker.size = DENSE_MARKER_PT
            elif np.isscalar(size):  # plotly validated it: a number (np.isscalar's guard admits str and bytes too)
                trace.marker.size = min(float(cast(float, size)), DENSE_MARKER_PT)
            else:
                trace.marker.size = np.minimum(np.asarray(size, dtype=np.float64), DENSE_MARKER_PT)
    for trace in data:
        if trace.visible == "legendonly":  # nothing can switch it on in print: no legend entry either
            trace.showlegend = False
    styled = go.Figure(data=data, layout=base.layout)  # frames (animations) are dropped
    has_title = bool(styled.layout.title.text)
    styled.update_layout(
        template=_paper_template(),
        width=round(width_in * POINTS_PER_INCH, 6),
        height=round(height_in * POINTS_PER_INCH, 6),
        autosize=False,
        font={"family": FONT_FAMILY, "size": FONT_SIZE, "color": "#000000"},
        colorway=list(PALETTE),
        paper_bgcolor="#FFFFFF",
        plot_bgcolor="#FFFFFF",
        margin={"l": MARGIN["l"], "r": MARGIN["r"], "t": 22 if has_title else 6, "b": 30, "pad": 0,
                "autoexpand": True},
    )
    _widen_legend_row(styled)
    styled.layout.updatemenus = ()  # (update_layout merges lists, so assign)
    styled.layout.sliders = ()
    return styled
