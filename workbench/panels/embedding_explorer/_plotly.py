"""The plotly view of :class:`~workbench.panels.EmbeddingExplorer`: ``Scattergl`` traces, static or in a widget.

:class:`PlotlyFigure` draws the explorer's current state as plotly traces and a layout (one trace per modality, the
pair lines below them, legend entries or a colour bar); :meth:`PlotlyFigure.figure` is the explorer's static
``figure()``. :class:`PlotlyView` puts them into a ``FigureWidget`` (the explorer's widget for ``backend="plotly"``):
hovering or clicking a point inspects it, a box or lasso selection (or a click) selects points, and the explorer's
changes are shown in place. plotly is imported only when traces are built.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import polars as pl

from workbench.panels._colors import NEUTRAL, OKABE_ITO, plotly_colorscale
from workbench.panels.embedding_explorer._shared import MAX_LEGEND_CLASSES, METHOD_NAMES

__all__ = ["FADED_OPACITY", "MATCH_OPACITY", "PlotlyFigure", "PlotlyView"]

_EPS = 1e-3
#: Marker opacity of the points that match a search, and of the rest.
MATCH_OPACITY, FADED_OPACITY = 1.0, 0.1


class PlotlyFigure:
    """Plotly traces and layout of an explorer's current state (projection, colours, pair lines, selection).

    Parameters
    ----------
    explorer : EmbeddingExplorer
        Read, never changed (hover texts are kept here per colouring).
    """

    def __init__(self, explorer: Any) -> None:
        self.explorer = explorer
        self._hover_cache: tuple[tuple[str, int], list[str]] | None = None

    def figure(self) -> Any:
        """A static plotly figure of the current view (projection, colours, pair lines, selection)."""
        import plotly.graph_objects as go

        fig = go.Figure(data=self.traces(go), layout=self.layout())
        self.mark_selection(fig)
        return fig

    def traces(self, go: Any) -> list[Any]:
        """The pair lines (when shown), then the two point traces, then the legend entries."""
        lines = [self.pair_trace(go)] if self.explorer.show_pairs else []
        return lines + self.point_traces(go) + self.legend_traces(go)

    def hover_text(self) -> list[str]:
        """Each point's hover text: its modality and its id, caption, label, colour column and path."""
        e = self.explorer
        cached = self._hover_cache
        if cached is not None and cached[0] == (e.color_by, id(e._custom)):
            return cached[1]
        texts: list[str] = []
        for side in (e.paired.a, e.paired.b):
            columns = [c for c in dict.fromkeys(("id", "caption", "label", e.color_by, "path"))
                       if c in side.metadata.columns]
            for row in side.metadata.select(columns).iter_rows():
                texts.append("<br>".join([f"<b>{html.escape(side.modality)}</b>"] + [
                    f"{html.escape(c)}: {html.escape(str(v))[:120]}" for c, v in zip(columns, row, strict=True)]))
        if e._custom is not None and e.color_by == e._custom.name:  # values given as color_by
            name = html.escape(e.color_by)
            texts = [f"{t}<br>{name}: {html.escape(_short(v))}" for t, v in zip(texts, e._custom.to_list(),
                                                                               strict=True)]
        self._hover_cache = ((e.color_by, id(e._custom)), texts)
        return texts

    def marker_colors(self) -> tuple[list[Any], dict[str, Any]]:
        """Per-trace marker colour settings: a colour per modality, or a colour INDEX per point mapped through a
        colorscale (plotly validates and sends numbers as one block; 100,000 colour strings take seconds).

        Categorical: index 0 is "no value" (grey), index i >= 1 is class i - 1; the colorscale has one stop per
        index, at ``i / n_classes``, so each index hits its class colour exactly. Continuous: 0 is "no value", real
        values map to ``[EPS, 1]`` of a Viridis scale that starts at ``EPS`` (nothing falls between 0 and EPS).
        """
        e = self.explorer
        _, mapping = e.colors()
        parts = (slice(0, e.n_a), slice(e.n_a, None))
        if mapping["kind"] == "modality":
            return [OKABE_ITO[0], OKABE_ITO[1]], {}
        if mapping["kind"] == "categorical":
            classes = mapping["classes"]
            n = len(classes)
            values = e._column_values(e.color_by)
            if values.dtype != pl.String and classes and isinstance(classes[0], str):
                values = values.cast(pl.String)
            index = {value: i + 1 for i, value in enumerate(classes)}
            numbers = np.array([0 if v is None else index[v] for v in values.to_list()], dtype=np.float64)
            scale = [[0.0, NEUTRAL]] + [[(i + 1) / n, mapping["colors"][c]] for i, c in enumerate(classes)]
            extra = {"colorscale": scale, "cmin": 0, "cmax": n, "showscale": False}
        else:
            v = e._column_values(e.color_by).cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64)
            span = mapping["vmax"] - mapping["vmin"]
            t = np.zeros_like(v) if not span > 0 else (v - mapping["vmin"]) / span
            numbers = np.where(np.isfinite(v), _EPS + (1 - _EPS) * np.clip(np.nan_to_num(t), 0, 1), 0.0)
            scale = [[0.0, NEUTRAL]] + [[_EPS + (1 - _EPS) * s, c] for s, c in plotly_colorscale()]
            extra = {"colorscale": scale, "cmin": 0, "cmax": 1, "showscale": False}
        return [numbers[part] for part in parts], extra

    def point_traces(self, go: Any) -> list[Any]:
        """One ``Scattergl`` per modality (``meta={"side": "a"}`` and ``"b"``): circles for a, diamonds for b."""
        e = self.explorer
        coords = e.coords
        colors, extra = self.marker_colors()
        hover = self.hover_text()
        size = 6 if e.n_points <= 5000 else 4 if e.n_points <= 50_000 else 3
        opacity, sizes = self.match_style(size)
        traces = []
        for side, (emb, part, symbol) in enumerate(((e.paired.a, slice(0, e.n_a), "circle"),
                                                     (e.paired.b, slice(e.n_a, None), "diamond"))):
            traces.append(go.Scattergl(
                x=coords[part, 0], y=coords[part, 1], mode="markers", name=f"{emb.modality} ({len(emb)})",
                marker={"color": colors[side], "size": sizes[side], "opacity": opacity[side], "symbol": symbol,
                        **extra},
                text=hover[part], hovertemplate="%{text}<extra></extra>", meta={"side": "ab"[side]},
                selected={"marker": {"opacity": 1.0}}, unselected={"marker": {"opacity": 0.25}},
            ))
        return traces

    def match_style(self, size: int) -> tuple[list[Any], list[Any]]:
        """Marker opacity and size of each point trace: one value each without a search; with one, per point:
        matches opaque and larger (:data:`MATCH_OPACITY`), the rest faded (:data:`FADED_OPACITY`)."""
        e = self.explorer
        matches = e.matches
        if matches is None:
            return [0.8, 0.8], [size, size]
        hit = np.zeros(e.n_points, dtype=bool)
        hit[matches] = True
        opacity = np.where(hit, MATCH_OPACITY, FADED_OPACITY)
        sizes = np.where(hit, size + 4, size)
        parts = (slice(0, e.n_a), slice(e.n_a, None))
        return [opacity[p] for p in parts], [sizes[p] for p in parts]

    def pair_trace(self, go: Any) -> Any:
        """A line per pair (at most ``max_pair_lines``, a seeded sample beyond), as one trace of separated lines."""
        e = self.explorer
        coords = e.coords
        pairs = e.paired.pairs
        if len(pairs) > e.max_pair_lines:
            keep = np.sort(np.random.default_rng(e.seed).choice(len(pairs), e.max_pair_lines, replace=False))
            pairs = pairs[keep]
        ia, ib = pairs[:, 0], pairs[:, 1] + e.n_a
        gap = np.full(len(ia), np.nan)
        xs = np.column_stack([coords[ia, 0], coords[ib, 0], gap]).ravel()
        ys = np.column_stack([coords[ia, 1], coords[ib, 1], gap]).ravel()
        name = "pairs" if len(pairs) == e.paired.n_pairs else f"pairs ({len(pairs)} of {e.paired.n_pairs})"
        return go.Scattergl(x=xs, y=ys, mode="lines", name=name, hoverinfo="skip", meta={"side": "pairs"},
                            line={"color": "rgba(120,120,120,0.35)", "width": 1}, connectgaps=False)

    def legend_traces(self, go: Any) -> list[Any]:
        """A colour bar (continuous), an entry per class (at most :data:`MAX_LEGEND_CLASSES`), or nothing."""
        e = self.explorer
        _, mapping = e.colors()
        if mapping["kind"] == "continuous":
            return [go.Scattergl(
                x=[None], y=[None], mode="markers", name=f"{e.color_by} scale", showlegend=False,
                hoverinfo="skip", meta={"side": "legend"},
                marker={"colorscale": plotly_colorscale(), "cmin": mapping["vmin"], "cmax": mapping["vmax"],
                        "color": [mapping["vmin"]], "showscale": True,
                        "colorbar": {"title": {"text": e.color_by}, "thickness": 12}})]
        if mapping["kind"] != "categorical" or len(mapping["classes"]) > MAX_LEGEND_CLASSES:
            return []
        entries = [(f"{e.color_by} = {v}", c) for v, c in mapping["colors"].items()]
        if mapping["missing"]:
            entries.append((f"{e.color_by}: no value", NEUTRAL))
        return [go.Scattergl(x=[None], y=[None], mode="markers", name=name, marker={"color": colour, "size": 8},
                             legendgroup="colour", hoverinfo="skip", meta={"side": "legend"})
                for name, colour in entries]

    def layout(self) -> dict[str, Any]:
        """Title (model, modalities, method, colouring), axis titles, size and selection mode."""
        e = self.explorer
        x_title, y_title = e._axis_titles()
        _, mapping = e.colors()
        subtitle = ""
        if mapping["kind"] == "categorical" and len(mapping["classes"]) > MAX_LEGEND_CLASSES:
            subtitle = f" · colour: {e.color_by} ({len(mapping['classes'])} classes; hover for the class)"
        elif mapping["kind"] != "modality":
            subtitle = f" · colour: {e.color_by}"
        method = METHOD_NAMES[e.projection]
        title = f"{e.paired.model}: {e.paired.a.modality} and {e.paired.b.modality} ({method}){subtitle}"
        return {"title": {"text": html.escape(title), "font": {"size": 13}}, "template": "simple_white",
                "xaxis": {"title": {"text": x_title}}, "yaxis": {"title": {"text": y_title}},
                "legend": {"itemsizing": "constant"}, "width": 720, "height": 560, "dragmode": "select",
                "clickmode": "event+select", "margin": {"l": 50, "r": 10, "t": 50, "b": 50}}

    def mark_selection(self, fig: Any) -> None:
        """Set the point traces' ``selectedpoints`` to the explorer's selection (None when nothing is selected)."""
        e = self.explorer
        sel = e.selected
        for trace in fig.data:
            side = (trace.meta or {}).get("side")
            if side == "a":
                trace.selectedpoints = sel[sel < e.n_a].tolist() if len(sel) else None
            elif side == "b":
                trace.selectedpoints = (sel[sel >= e.n_a] - e.n_a).tolist() if len(sel) else None


class PlotlyView(PlotlyFigure):
    """A plotly ``FigureWidget`` that mirrors an explorer (built by it for ``backend="plotly"``).

    Hover or click on a point -> ``explorer.inspect``; a box, lasso or click selection -> ``explorer.select``.
    ``widget`` is the ``FigureWidget``.
    """

    def __init__(self, explorer: Any) -> None:
        import plotly.graph_objects as go

        super().__init__(explorer)
        self._trace_selection: dict[int, list[int]] = {}
        self.widget = go.FigureWidget(data=self.traces(go), layout=self.layout())
        self._connect()

    def _connect(self) -> None:
        """Hover/click -> preview; selection (box, lasso, click) -> the table. Callbacks on the two point traces."""
        e = self.explorer
        for trace in self.widget.data:
            side = (trace.meta or {}).get("side")
            if side not in ("a", "b"):
                continue
            offset = 0 if side == "a" else e.n_a
            trace.on_hover(e._guarded(self._on_point(offset)))
            trace.on_click(e._guarded(self._on_point(offset)))
            trace.on_selection(e._guarded(self._on_select(side)))
            trace.on_deselect(e._guarded(self._on_select(side, clear=True)))

    def _on_point(self, offset: int) -> Any:
        def handler(trace: Any, points: Any, state: Any) -> None:
            if points.point_inds:
                self.explorer.inspect(offset + int(points.point_inds[0]))

        return handler

    def _on_select(self, side: str, clear: bool = False) -> Any:
        # plotly calls every trace's callback for one event, a's trace before b's: b's commits the union
        def handler(trace: Any, points: Any, selector: Any = None) -> None:  # on_deselect passes no selector
            inds = [] if clear else list(points.point_inds)
            self._trace_selection[0 if side == "a" else 1] = inds
            if side == "b":
                a = np.asarray(self._trace_selection.get(0, []), dtype=np.int64)
                b = np.asarray(self._trace_selection.get(1, []), dtype=np.int64) + self.explorer.n_a
                self._trace_selection = {}
                self.explorer.select(np.concatenate([a, b]))

        return handler

    def refresh(self, positions: bool = False, colors: bool = False, lines: bool = False) -> None:
        """Show the explorer's current coordinates, colours and pair lines (what changed)."""
        import plotly.graph_objects as go

        plot = self.widget
        fresh = self.point_traces(go)
        with plot.batch_update():
            for trace in plot.data:
                side = (trace.meta or {}).get("side")
                if side in ("a", "b"):
                    new = fresh[0 if side == "a" else 1]
                    if positions:
                        trace.x, trace.y = new.x, new.y
                    if colors:
                        trace.marker = new.marker
                        trace.text = new.text
            plot.layout.update(self.layout())
        if colors or lines or positions:
            keep = [t for t in plot.data if (t.meta or {}).get("side") in ("a", "b")]
            plot.data = keep  # drop the old pair lines and legend entries (callbacks stay on the kept traces)
            extra = self.legend_traces(go)
            if extra:
                plot.add_traces(extra)
            if self.explorer.show_pairs:
                plot.add_trace(self.pair_trace(go))
                plot.data = (plot.data[-1], *plot.data[:-1])  # lines below the points

    def show_matches(self) -> None:
        """Show the explorer's search: matches highlighted, the rest faded (or every point alike without one)."""
        e = self.explorer
        size = 6 if e.n_points <= 5000 else 4 if e.n_points <= 50_000 else 3
        opacity, sizes = self.match_style(size)
        with self.widget.batch_update():
            for trace in self.widget.data:
                side = (trace.meta or {}).get("side")
                if side in ("a", "b"):
                    i = 0 if side == "a" else 1
                    trace.marker.opacity, trace.marker.size = opacity[i], sizes[i]

    def show_selection(self, selected: np.ndarray) -> None:
        """Show the explorer's selection as the traces' selected points."""
        with self.widget.batch_update():
            self.mark_selection(self.widget)


def _short(value: Any) -> str:
    """A value for a hover text: floats with 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)[:120]
