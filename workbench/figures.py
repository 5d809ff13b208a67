"""Figures of the analysis core, as plotly figures (interactive in notebooks and reports; static via export).

Each function takes core objects (a PairedEmbeddings, a metrics table) and returns a ``plotly.graph_objects.Figure``;
none computes anything the analysis modules do not already expose. Colours are :data:`workbench.export.PALETTE`;
axis titles and legend entries are the human labels of :func:`workbench.export.metric_label` ("R@1 image→text").

The figures carry no title unless one is given (a paper puts a caption under the figure; a notebook or report says
what a figure shows above it), and their legend is one compact row above the plot area (:data:`LEGEND_ROW`), where
it covers neither data nor tick labels at any width.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from workbench.data import PairedEmbeddings
from workbench.export import PALETTE, metric_label

__all__ = [
    "LEGEND_ROW",
    "MAX_PAIR_LINES",
    "WEBGL_ABOVE",
    "cosine_histogram_figure",
    "gap_dimensions_figure",
    "loss_landscape_figure",
    "pca_figure",
    "pca_grid_figure",
]

#: Above this many points the figure uses WebGL (Scattergl).
WEBGL_ABOVE = 5000
#: Lines joining matched pairs are drawn for at most this many pairs.
MAX_PAIR_LINES = 2000
#: The legend of every figure: one horizontal row (wrapping only when it must) just above the plot area.
LEGEND_ROW: dict[str, Any] = {"orientation": "h", "x": 0.0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"}


def _hover_text(paired: PairedEmbeddings) -> list[str]:
    texts: list[str] = []
    for e in (paired.a, paired.b):
        columns = [c for c in ("id", "caption", "label", "path") if c in e.metadata.columns]
        rows = e.metadata.select(columns).rows()
        texts.extend(
            "<br>".join(
                [f"<b>{html.escape(e.modality)}</b>"]
                + [f"{c}: {html.escape(str(v))[:120]}" for c, v in zip(columns, row, strict=True)]
            )
            for row in rows
        )
    return texts


def pca_figure(paired: PairedEmbeddings, title: str = "", seed: int = 0) -> Any:
    """Both modalities in one PCA projection (fitted on all their rows), coloured by modality.

    Matched pairs can be joined by lines (legend entry "pairs", hidden at first). ``title`` is shown only when given.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    from workbench.projection import pca_2d

    n_a = len(paired.a)
    coords, ratio = pca_2d(np.concatenate([paired.a.vectors, paired.b.vectors]), seed=seed)
    hover = _hover_text(paired)
    scatter = go.Scattergl if len(coords) > WEBGL_ABOVE else go.Scatter
    fig = go.Figure()
    if paired.n_pairs <= MAX_PAIR_LINES:
        ia, ib = paired.pairs[:, 0], paired.pairs[:, 1] + n_a
        xs = np.column_stack([coords[ia, 0], coords[ib, 0], np.full(len(ia), np.nan)]).ravel()
        ys = np.column_stack([coords[ia, 1], coords[ib, 1], np.full(len(ia), np.nan)]).ravel()
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", name="pairs", visible="legendonly", hoverinfo="skip",
                       line={"color": "rgba(120,120,120,0.35)", "width": 1})
        )
    for k, (e, part) in enumerate(((paired.a, slice(0, n_a)), (paired.b, slice(n_a, None)))):
        fig.add_trace(
            scatter(
                x=coords[part, 0], y=coords[part, 1], mode="markers", name=f"{e.modality} ({len(e)})",
                marker={"color": PALETTE[k], "size": 5, "opacity": 0.75},
                text=hover[part], hovertemplate="%{text}<extra></extra>",
            )
        )
    fig.update_layout(
        title=title or None,
        xaxis_title=f"PC 1 ({ratio[0]:.1%} of variance)",
        yaxis_title=f"PC 2 ({ratio[1]:.1%} of variance)",
        template="simple_white",
        legend=LEGEND_ROW,
        width=760,
        height=600,
    )
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def pca_grid_figure(sets: Mapping[str, PairedEmbeddings], cols: int = 4, seed: int = 0) -> Any:
    """Several paired sets, each in its own PCA (fitted on its two modalities), in a grid with SHARED axes, so
    that gaps compare by eye (Liang et al., NeurIPS 2022, Fig. 1). The first modality of every set is blue, the
    second vermillion; each panel is titled with the set's name and says how much variance its PCs hold.

    Examples
    --------
    >>> import workbench
    >>> fig = pca_grid_figure({n: workbench.datasets.load(n) for n in ("liang2022/clip", "liang2022/videoclip")})
    >>> len(fig.data), fig.layout.xaxis2.matches, [t.name for t in fig.data[:2]]
    (4, 'x', ['first modality (image, video)', 'second modality (text)'])
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from workbench.projection import pca_2d

    if not sets:
        raise ValueError("sets is empty: pass a mapping of names to PairedEmbeddings")
    cols = max(1, min(int(cols), len(sets)))
    rows = -(-len(sets) // cols)
    fig = make_subplots(rows=rows, cols=cols, shared_xaxes="all", shared_yaxes="all", subplot_titles=list(sets),
                        horizontal_spacing=0.03, vertical_spacing=0.12 if rows > 1 else 0.1)
    firsts = ", ".join(dict.fromkeys(p.a.modality for p in sets.values()))
    seconds = ", ".join(dict.fromkeys(p.b.modality for p in sets.values()))
    for i, paired in enumerate(sets.values()):
        coords, ratio = pca_2d(np.concatenate([paired.a.vectors, paired.b.vectors]), seed=seed)
        n_a = len(paired.a)
        for k, (part, name) in enumerate(((slice(0, n_a), f"first modality ({firsts})"),
                                          (slice(n_a, None), f"second modality ({seconds})"))):
            fig.add_trace(go.Scatter(
                x=coords[part, 0], y=coords[part, 1], mode="markers", name=name, legendgroup=str(k),
                showlegend=i == 0, marker={"color": PALETTE[k], "size": 3, "opacity": 0.6},
                hovertemplate=f"{html.escape((paired.a, paired.b)[k].modality)}<extra></extra>"),
                row=i // cols + 1, col=i % cols + 1)
        fig.layout.annotations[i].text += f"<br><sub>PC 1 {ratio[0]:.0%}, PC 2 {ratio[1]:.0%} of variance</sub>"
    fig.update_layout(template="simple_white", width=min(250 * cols + 80, 1100), height=230 * rows + 110,
                      # the legend under the bottom row's tick labels, clear of the panel titles
                      legend={"orientation": "h", "x": 0.0, "xanchor": "left", "yref": "container", "y": 0.0,
                              "yanchor": "bottom", "itemsizing": "constant"},
                      margin={"t": 70, "b": 70})
    fig.update_annotations(font_size=11)
    return fig


def cosine_histogram_figure(paired: PairedEmbeddings, bins: int = 60, title: str = "") -> Any:
    """Matched vs unmatched cross-modal cosines, and within-modality cosines (the cone effect), as densities.

    The x axis spans the bins that hold any cosine (with half a bin either side), not all of [-1, 1].
    """
    import plotly.graph_objects as go

    from workbench.gap import cosine_histograms

    h = cosine_histograms(paired, bins=bins)
    names = {"matched": "matched pairs", "unmatched": "unmatched pairs",
             "intra_a": f"within {paired.a.modality}", "intra_b": f"within {paired.b.modality}"}
    fig = go.Figure()
    used = h.filter(pl.col("density") > 0)
    for k, (kind, label) in enumerate(names.items()):
        part = h.filter(pl.col("kind") == kind)
        centres = ((part["bin_left"] + part["bin_right"]) / 2).to_numpy()
        fig.add_trace(go.Scatter(x=centres, y=part["density"].to_numpy(), mode="lines", name=label,
                                 line={"color": PALETTE[k], "width": 2, "dash": "solid" if k < 2 else "dot"}))
    fig.update_layout(title=title or None, xaxis_title="cosine similarity", yaxis_title="share of pairs",
                      template="simple_white", legend=LEGEND_ROW, width=760, height=420)
    if used.height:
        half = float((h["bin_right"][0] - h["bin_left"][0]) / 2)
        lo, hi = float(used["bin_left"].to_numpy().min()), float(used["bin_right"].to_numpy().max())
        fig.update_xaxes(range=[max(lo - half, -1.0), min(hi + half, 1.0)])
    return fig


def gap_dimensions_figure(paired: PairedEmbeddings, k: int = 20, title: str = "") -> Any:
    """The k coordinates carrying most of ||gap||^2, with their share (Schrodi et al., ICLR 2025)."""
    import plotly.graph_objects as go

    from workbench.gap import gap_dimensions

    dims = gap_dimensions(paired, k=min(k, paired.dim))
    fig = go.Figure(go.Bar(x=[str(d) for d in dims["dimension"]], y=dims["share"].to_numpy(),
                           marker_color=PALETTE[0], name="share of squared gap"))
    fig.add_trace(go.Scatter(x=[str(d) for d in dims["dimension"]], y=np.cumsum(dims["share"].to_numpy()),
                             mode="lines+markers", name="cumulative share", line={"color": PALETTE[1]}))
    fig.update_layout(title=title or None, xaxis_title="embedding dimension (largest share first)",
                      yaxis_title=metric_label("share"), xaxis_type="category", template="simple_white",
                      legend=LEGEND_ROW, width=760, height=420)
    return fig


def loss_landscape_figure(landscape: pl.DataFrame, modalities: tuple[str, str] = ("image", "text"),
                          title: str = "") -> Any:
    """CLIP loss and R@1 against the centroid distance as the gap is shifted (Liang et al. 2022, Fig. 3).

    A dashed vertical line marks the model's own gap (``delta == 0``); its width is set explicitly, since the
    ``simple_white`` template's shape defaults draw lines 0 wide. ``modalities`` name ``a`` and ``b`` in the labels.
    The loss is named by the left axis, drawn in the loss line's colour; the legend holds the two R@1 lines (so it
    stays one row even at single-column width).

    Examples
    --------
    >>> import workbench
    >>> from workbench.gap import gap_loss_landscape
    >>> fig = loss_landscape_figure(gap_loss_landscape(workbench.datasets.load("liang2022/clip")))
    >>> [t.name for t in fig.data], fig.layout.shapes[0].line.width
    (['CLIP loss', 'R@1 image→text', 'R@1 text→image'], 1.5)
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = landscape["centroid_distance"].to_numpy()
    # the loss is named by its own axis, in its colour: the legend holds the two R@1 lines, one row at any width
    fig.add_trace(go.Scatter(x=x, y=landscape["loss"].to_numpy(), mode="lines+markers", name="CLIP loss",
                             line={"color": PALETTE[0]}, showlegend=False), secondary_y=False)
    for k, col in enumerate(("r1_a_to_b", "r1_b_to_a")):
        fig.add_trace(go.Scatter(x=x, y=landscape[col].to_numpy(), mode="lines", name=metric_label(col, modalities),
                                 line={"color": PALETTE[1 + k], "dash": "dot"}), secondary_y=True)
    original = landscape.filter(pl.col("delta").abs() < 1e-9)
    if original.height:
        fig.add_vline(x=float(original["centroid_distance"][0]),
                      line={"dash": "dash", "color": "#666666", "width": 1.5})
    fig.update_layout(title=title or None, template="simple_white", legend=LEGEND_ROW, width=760, height=420)
    fig.update_xaxes(title_text="centroid distance after the shift (dashed: the model's own)")
    fig.update_yaxes(title={"text": "CLIP loss (solid, ●)", "font": {"color": PALETTE[0]}},
                     tickfont={"color": PALETTE[0]}, secondary_y=False)
    fig.update_yaxes(title_text="R@1", secondary_y=True, range=[0, 1], tickvals=[0, 0.25, 0.5, 0.75, 1],
                     automargin=True, title_standoff=6)
    return fig
