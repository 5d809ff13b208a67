"""Figures of where the gap sits and what it changes, as plotly figures (styled for print with
:func:`workbench.export.paper_figure`, saved with :func:`workbench.export.save_figure`).

- :func:`gap_decomposition_figure`: one three-panel figure for a paper: per-sample conformity of each modality
  (Levi & Gilboa, ICML 2025), the mean squared cross-modal distance and the squared Frechet distance split into their
  centroid part and the rest (:func:`workbench.gap.gap_decomposition`), and the share of the gap carried by the
  top-k dimensions (Schrodi et al., ICLR 2025);
- :func:`consequences_trace_figure`: consequences of the gap (:func:`workbench.gap.consequences_trace`) against
  GapShift's delta, with their bootstrap intervals as bands;
- :func:`gap_matrix_figure`: one metric of :func:`workbench.gap.gap_matrix` as a query x gallery heatmap.

Colours are :data:`workbench.export.PALETTE`. No function computes anything :mod:`workbench.gap` does not expose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from workbench.data import PairedEmbeddings
from workbench.export import PALETTE

__all__ = ["consequences_trace_figure", "gap_decomposition_figure", "gap_matrix_figure"]


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def gap_decomposition_figure(paired: PairedEmbeddings, *, ks: Sequence[int] = (1, 2, 5, 10, 20, 50, 100),
                             bins: int = 40) -> Any:
    """Conformity per modality, the centroid part vs the rest of the distance, and the top-k dimensions' share.

    Examples
    --------
    >>> import workbench
    >>> fig = gap_decomposition_figure(workbench.datasets.load("liang2022/clip"))
    >>> [trace.name for trace in fig.data][:4]
    ['image', 'text', 'centroid ||mu_a - mu_b||^2', 'spread of image (tr S)']
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from workbench.gap import conformity_frame, gap_decomposition

    ks = [k for k in ks if k <= paired.dim] or [paired.dim]
    parts = gap_decomposition(paired, ks=ks)
    conf = conformity_frame(paired)
    ma, mb = paired.modalities
    fig = make_subplots(rows=1, cols=3, column_widths=[0.38, 0.24, 0.38], horizontal_spacing=0.09,
                        subplot_titles=("Conformity (cosine to the modality mean)", "Where the distance lies",
                                        "Share of the gap in the top-k dimensions"))
    for i, m in enumerate((ma, mb)):
        values = conf.filter(pl.col("modality") == m)["conformity"].to_numpy()
        fig.add_trace(go.Histogram(x=values, nbinsx=bins, histnorm="probability density", name=m, opacity=0.6,
                                   marker_color=PALETTE[i], legendgroup="conformity"), row=1, col=1)
    bars = ["E||x - y||²", "Fréchet²"]
    stack = [("centroid ||mu_a - mu_b||^2", [parts["centroid_term"], parts["centroid_term"]], PALETTE[2]),
             (f"spread of {ma} (tr S)", [parts["spread_a"], 0.0], PALETTE[0]),
             (f"spread of {mb} (tr S)", [parts["spread_b"], 0.0], PALETTE[1]),
             ("covariance term", [0.0, parts["frechet_covariance_term"]], PALETTE[4])]
    for name, heights, colour in stack:
        fig.add_trace(go.Bar(x=bars, y=heights, name=name, marker_color=colour, legendgroup="parts"), row=1, col=2)
    shares = [parts[f"gap_top{k}_share"] for k in ks]
    fig.add_trace(go.Scatter(x=list(ks), y=shares, mode="lines+markers", name="top-k share of ||gap||²",
                             line={"color": PALETTE[5]}), row=1, col=3)
    fig.update_layout(barmode="stack", template="simple_white", width=1200, height=420,
                      title=(f"{paired.model}: the centroid carries {parts['centroid_share']:.0%} of the mean "
                             f"squared cross-modal distance, {parts['frechet_centroid_share']:.0%} of the Fréchet"))
    fig.update_xaxes(title_text="conformity", row=1, col=1)
    fig.update_yaxes(title_text="density", row=1, col=1)
    fig.update_yaxes(title_text="squared distance", row=1, col=2)
    fig.update_xaxes(title_text="k (dimensions)", type="log", row=1, col=3)
    fig.update_yaxes(title_text="share of ||gap||²", range=[0, 1.02], row=1, col=3)
    return fig


def consequences_trace_figure(trace: pl.DataFrame, metrics: Sequence[str] | None = None) -> Any:
    """The consequences against GapShift's delta, one line per metric with its interval as a band.

    ``trace`` is :func:`workbench.gap.consequences_trace`'s frame (rows without a delta are left out); ``metrics``
    picks the metric names (default: every defined one).

    Examples
    --------
    >>> trace = pl.DataFrame({"setting": ["d0", "d1"] * 2, "delta": [0.0, 1.0] * 2,
    ...                       "metric": ["a_to_b_R@1"] * 2 + ["mixed_own_share_a"] * 2, "value": [.55, .36, 1, .9],
    ...                       "low": [.5, .3, 1, .85], "high": [.6, .4, 1, .95]})
    >>> fig = consequences_trace_figure(trace, ["a_to_b_R@1", "mixed_own_share_a"])
    >>> [t.name for t in fig.data if t.showlegend is not False]
    ['a_to_b_R@1', 'mixed_own_share_a']
    """
    import plotly.graph_objects as go

    part = trace.filter(pl.col("delta").is_not_null() & pl.col("value").is_not_null())
    names = list(metrics) if metrics is not None else part["metric"].unique(maintain_order=True).to_list()
    missing = sorted(set(names) - set(part["metric"].to_list()))
    if missing:
        raise ValueError(f"metrics {missing} are not in the trace (or undefined there); it has "
                         f"{part['metric'].unique(maintain_order=True).to_list()}")
    fig = go.Figure()
    for i, name in enumerate(names):
        rows = part.filter(pl.col("metric") == name).sort("delta")
        x = rows["delta"].to_numpy()
        colour = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]),
                                 y=np.concatenate([rows["high"].to_numpy(), rows["low"].to_numpy()[::-1]]),
                                 fill="toself", fillcolor=_rgba(colour, 0.18), line={"width": 0},
                                 hoverinfo="skip", showlegend=False, legendgroup=name))
        fig.add_trace(go.Scatter(x=x, y=rows["value"].to_numpy(), mode="lines+markers", name=name,
                                 line={"color": colour}, legendgroup=name))
    fig.update_layout(title="What the gap changes along GapShift(delta)", xaxis_title="delta (1 closes the gap)",
                      yaxis_title="value (95% interval)", template="simple_white", width=760, height=440)
    return fig


def gap_matrix_figure(matrix: pl.DataFrame, metric: str = "centroid_distance") -> Any:
    """One metric of :func:`workbench.gap.gap_matrix` as a heatmap (rows: query modality, columns: gallery).

    Examples
    --------
    >>> frame = pl.DataFrame({"query": ["a", "b"], "gallery": ["b", "a"], "metric": ["R@1", "R@1"],
    ...                       "value": [0.5, 0.4], "low": [0.4, 0.3], "high": [0.6, 0.5], "n_queries": [9, 9]})
    >>> [list(row) for row in gap_matrix_figure(frame, "R@1").data[0].z]
    [[None, 0.5], [0.4, None]]
    """
    import plotly.graph_objects as go

    part = matrix.filter(pl.col("metric") == metric)
    if part.height == 0:
        raise ValueError(f"metric {metric!r} is not in the matrix; it has {matrix['metric'].unique().to_list()}")
    names = list(dict.fromkeys(part["query"].to_list() + part["gallery"].to_list()))
    index = {m: i for i, m in enumerate(names)}
    z: list[list[float | None]] = [[None] * len(names) for _ in names]
    text = [[""] * len(names) for _ in names]
    for q, g, v, lo, hi in part.select("query", "gallery", "value", "low", "high").iter_rows():
        z[index[q]][index[g]] = v
        text[index[q]][index[g]] = f"{v:.3f}<br>[{lo:.3f}, {hi:.3f}]"
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, text=text, texttemplate="%{text}", colorscale="Blues",
                               colorbar={"title": {"text": metric}}))
    fig.update_layout(title=f"{metric} between modalities (95% intervals)", xaxis_title="gallery",
                      yaxis_title="query", yaxis_autorange="reversed", template="simple_white", width=560, height=480)
    return fig
