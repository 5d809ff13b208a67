"""The jupyter-scatter view of :class:`~workbench.panels.EmbeddingExplorer`: WebGL points, up to millions of them.

jupyter-scatter (an anywidget over regl-scatterplot) draws every point with WebGL: a 1,000,000-point widget builds in
well under a second and pans smoothly, where plotly's ``Scattergl`` breaks down near a million points (plotly.js
#5178). The explorer uses this view for ``backend="jscatter"``, and for ``backend="auto"`` above
:data:`~workbench.panels.embedding_explorer.JSCATTER_MIN_POINTS` points when jupyter-scatter is installed
(``pip install "alignment-workbench[scale]"``). Nothing here imports jupyter-scatter until a view is built.

The controller (:class:`~workbench.panels.EmbeddingExplorer`) keeps the state; this view only mirrors it:

- Mouse: drag pans, the wheel zooms. **Lasso**: press the toolbar's lasso button ("Activate lasso selection"), then
  drag around the points; or, in pan mode, press and hold for about 0.75 s, then drag. A click selects one point, a
  double click clears the selection. The selection (the widget's ``selection`` traitlet: point numbers) becomes
  ``explorer.selection``; ``explorer.select(...)`` shows in the widget.
- Colours: the explorer's colouring as categories (:func:`color_categories`): modality, the classes of a column, or
  a continuous column in :data:`LEVELS` steps of Viridis; missing values grey.
- Hover: a tooltip with the modality, id, caption and colour class, and a preview of the item fetched from the
  kernel when needed (a thumbnail, a sound, or the caption: :meth:`JScatterView.preview`); the explorer's side
  preview follows the hovered point as in the plotly view.
- Pair lines: each point can carry one line in jupyter-scatter, so the view draws the pairs of a matching (the
  first pair of every point, at most ``explorer.max_pair_lines``) and says how many pairs it leaves out.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import io
import wave
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from workbench.panels._colors import NEUTRAL, OKABE_ITO, continuous_colors
from workbench.panels._media import AUDIO_SUFFIXES, IMAGE_SUFFIXES, thumbnail
from workbench.panels.embedding_explorer._shared import MAX_LEGEND_CLASSES, point_ids, text_column

__all__ = ["FADED_OPACITY", "INSTALL_HINT", "LEVELS", "JScatterView", "available", "color_categories", "pair_matching"]

#: How to install jupyter-scatter (named by the error when it is missing).
INSTALL_HINT = 'pip install "alignment-workbench[scale]"'
#: Steps of a continuous colouring (each a colour of Viridis; at most half a step from the exact colour).
LEVELS = 256
#: Opacity of the points that do not match a search.
FADED_OPACITY = 0.1
#: Previews kept per view (the most recently hovered points).
PREVIEW_CACHE = 256
#: Larger sound files are not sent as a tooltip preview (the side preview still plays them).
MAX_AUDIO_BYTES = 8 * 2**20
_MIME = {"wav": "audio/wav", "mpeg": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac", "mp4": "audio/mp4"}


def available() -> bool:
    """Whether jupyter-scatter can be imported (checked without importing it).

    Examples
    --------
    >>> isinstance(available(), bool)
    True
    """
    return importlib.util.find_spec("jscatter") is not None


def _unique_labels(labels: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for label in labels:
        new, i = label, 2
        while new in seen:
            new, i = f"{label} ({i})", i + 1
        seen.add(new)
        out.append(new)
    return out


def color_categories(explorer: Any) -> tuple[np.ndarray, list[str], list[str]]:
    """The explorer's colouring as categories: a code per point, and each code's label and hex colour.

    ``colors[codes[p]]`` is the colour of point ``p`` in :meth:`EmbeddingExplorer.colors` (exactly for modality and
    categorical colourings; for a continuous one within half of one of :data:`LEVELS` steps). Labels are unique:
    the modality, ``str(value)`` of a class, ``"no value"``, or the value at the middle of a continuous step.

    Examples
    --------
    >>> import numpy as np, tempfile, workbench
    >>> from workbench.panels import EmbeddingExplorer
    >>> paired = workbench.PairedEmbeddings.from_arrays(np.eye(3, 4), np.eye(3, 4)[::-1], modalities=("image", "text"),
    ...                                                 metadata_a={"label": ["x", "y", None]})
    >>> explorer = EmbeddingExplorer(paired, color_by="label", backend="plotly", cache_dir=tempfile.mkdtemp())
    >>> codes, labels, colors = color_categories(explorer)
    >>> codes.tolist(), labels
    ([1, 2, 0, 0, 0, 0], ['no value', 'x', 'y'])
    """
    _, mapping = explorer.colors()
    kind = mapping["kind"]
    if kind == "modality":
        a, b = explorer.paired.modalities
        codes = np.repeat(np.array([0, 1], dtype=np.int64), [explorer.n_a, explorer.n_b])
        labels = [a, b] if a != b else [f"{a} (a)", f"{b} (b)"]
        return codes, labels, [OKABE_ITO[0], OKABE_ITO[1]]
    values = explorer._column_values(explorer.color_by)
    if kind == "categorical":
        classes = mapping["classes"]
        if values.dtype != pl.String and classes and isinstance(classes[0], str):
            values = values.cast(pl.String)
        codes = values.replace_strict(classes, list(range(1, len(classes) + 1)), default=0,
                                      return_dtype=pl.Int64).fill_null(0).to_numpy()
        labels = _unique_labels(["no value", *(str(c) for c in classes)])
        return codes.astype(np.int64), labels, [NEUTRAL, *(mapping["colors"][c] for c in classes)]
    v = values.cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64)
    vmin, vmax = mapping["vmin"], mapping["vmax"]
    span = vmax - vmin
    t = np.zeros_like(v) if not span > 0 else (v - vmin) / span
    step = np.rint(np.clip(np.nan_to_num(t), 0.0, 1.0) * (LEVELS - 1)).astype(np.int64)
    codes = np.where(np.isfinite(v), 1 + step, 0)
    middles = vmin + np.arange(LEVELS) / (LEVELS - 1) * span
    labels = _unique_labels(["no value", *(f"{m:.4g}" for m in middles)])
    return codes, labels, [NEUTRAL, *continuous_colors(middles, vmin, vmax)]


def pair_matching(pairs: np.ndarray, limit: int, seed: int = 0) -> np.ndarray:
    """The pairs drawn as lines: the first pair of every a row and of every b row (a matching), at most ``limit``.

    ``pairs`` holds ``(a row, b row)`` rows; the result is a subset of them in which no row occurs twice (a line
    joins exactly two points in jupyter-scatter). Beyond ``limit`` a seeded sample is kept.

    Examples
    --------
    >>> pair_matching(np.array([[0, 0], [0, 1], [1, 0], [2, 2]]), limit=10).tolist()
    [[0, 0], [2, 2]]
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    _, first_a = np.unique(pairs[:, 0], return_index=True)
    kept = pairs[np.sort(first_a)]
    _, first_b = np.unique(kept[:, 1], return_index=True)
    kept = kept[np.sort(first_b)]
    if len(kept) > limit:
        kept = kept[np.sort(np.random.default_rng(seed).choice(len(kept), limit, replace=False))]
    return kept


def _svg_card(text: str) -> str:
    """A small SVG image holding ``text`` (up to four lines), as a data URL: the image preview of a text item."""
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > 34:
            lines.append(line)
            line = ""
        line = f"{line} {word}".strip()
    lines.append(line)
    if len(lines) > 4:
        lines = [*lines[:3], lines[3][:31] + "..."]
    spans = "".join(f'<tspan x="10" dy="{18 if i else 0}">{html.escape(s)}</tspan>' for i, s in enumerate(lines))
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="260" height="96"><rect width="100%" height="100%" '
           f'fill="#f6f6f6"/><text x="10" y="24" font-family="sans-serif" font-size="14" fill="#333">{spans}</text>'
           "</svg>")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _silence() -> str:
    """A 10 ms silent WAV as a data URL: the sound preview of an item without one (no stale sound plays)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 80)
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()


def _padded(values: np.ndarray, margin: float = 0.05) -> tuple[float, float]:
    """The range of ``values`` widened by ``margin`` of its span on each side (points at the edge stay whole)."""
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = margin * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


def _jsonable(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, int | float | str | bool) else str(value)


class JScatterView:
    """A jupyter-scatter widget that mirrors an :class:`~workbench.panels.EmbeddingExplorer` (built by it).

    Parameters
    ----------
    explorer : EmbeddingExplorer
        The controller: its coordinates, colours and selection are shown; the widget's selection and hovered point
        are passed back to it (through its ``select`` and ``inspect``).

    Attributes
    ----------
    scatter : jscatter.Scatter
        The jupyter-scatter object; ``widget`` is its anywidget (``scatter.widget``).
    preview_type : "image", "audio", "text" or None
        What the tooltip previews: images when either side has image files in its ``path`` column, else sounds,
        else captions; None when there is nothing to preview.

    Examples
    --------
    >>> import numpy as np, tempfile, workbench
    >>> from workbench.panels import EmbeddingExplorer
    >>> rng = np.random.default_rng(0)
    >>> paired = workbench.PairedEmbeddings.from_arrays(rng.normal(size=(20, 8)), rng.normal(size=(20, 8)))
    >>> explorer = EmbeddingExplorer(paired, backend="jscatter", cache_dir=tempfile.mkdtemp())
    >>> view = JScatterView(explorer)  # what explorer.widget holds for backend="jscatter"
    >>> view.widget.selection = np.array([3, 21], dtype=np.uint32)  # what a lasso in the browser does
    >>> explorer.selected.tolist()
    [3, 21]
    """

    def __init__(self, explorer: Any) -> None:
        import jscatter
        import pandas as pd

        self.explorer = explorer
        self._syncing = False
        self._previews: OrderedDict[int, str] = OrderedDict()
        self.properties = self._property_frame()
        self.paths = self._path_column()
        self.preview_type = self._preview_type()
        coords = explorer.coords
        n = explorer.n_points
        x_title, y_title = explorer._axis_titles()
        frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1]})
        for column in self.properties.columns:
            frame[column] = self.properties.get_column(column).to_pandas()
        self.scatter = jscatter.Scatter(
            x="x", y="y", data=frame, x_scale=_padded(coords[:, 0]), y_scale=_padded(coords[:, 1]),
            width=720, height=560, size=6 if n <= 5000 else 4 if n <= 50_000 else 2,
            axes=True, axes_labels=[x_title, y_title], legend_position="top-right",
            tooltip=True, tooltip_properties=["color", *self.properties.columns], tooltip_histograms=False,
            tooltip_preview="preview" if self.preview_type else None, tooltip_preview_type=self.preview_type or "text",
            tooltip_preview_image_height=120, tooltip_preview_text_lines=4,
        )
        self.pairs_drawn = 0
        self._apply_colors()
        self._apply_lines()
        widget = self.scatter.widget
        widget.color_title = explorer.color_by
        widget.selection = explorer.selected.astype(np.uint32)
        # jupyter-scatter answers the front end's tooltip requests from its data frame, one point at a time; this
        # answers them from the explorer instead, so previews are made only for the points hovered
        widget._handle_tooltip = explorer._guarded(self._answer_tooltip)
        widget.observe(explorer._guarded(self._on_selection), names="selection")
        widget.observe(explorer._guarded(self._on_hover), names="hovering")
        widget.add_class("wb-jscatter")
        self.widget = widget

    # -- the data shown -------------------------------------------------------------------------------------------
    def _property_frame(self) -> pl.DataFrame:
        """The tooltip's columns over all points: modality, id and caption (when either side has captions)."""
        e = self.explorer
        a, b = e.paired.a, e.paired.b
        columns: dict[str, Any] = {
            "modality": pl.Series([a.modality] * e.n_a + [b.modality] * e.n_b, dtype=pl.String),
            "id": point_ids(e.paired),
        }
        if any("caption" in m.metadata.columns for m in (a, b)):
            captions = pl.concat([text_column(a, "caption"), text_column(b, "caption")])
            columns["caption"] = captions.get_column("caption")
        return pl.DataFrame(columns)

    def _path_column(self) -> pl.Series:
        e = self.explorer
        return pl.concat([text_column(e.paired.a, "path"), text_column(e.paired.b, "path")]).get_column("path")

    def _preview_type(self) -> str | None:
        suffixes = self.paths.str.extract(r"(\.[^./\\]+)$").str.to_lowercase().drop_nulls().unique().to_list()
        if any(s in IMAGE_SUFFIXES for s in suffixes):
            return "image"
        if any(s in AUDIO_SUFFIXES for s in suffixes):
            return "audio"
        return "text" if "caption" in self.properties.columns else None

    # -- updates from the explorer --------------------------------------------------------------------------------
    def refresh(self, positions: bool = False, colors: bool = False, lines: bool = False) -> None:
        """Show the explorer's current coordinates, colours and pair lines (what changed)."""
        if positions:
            coords = self.explorer.coords
            x, y = coords[:, 0], coords[:, 1]
            self.scatter.xy(x=x, y=y, x_scale=_padded(x), y_scale=_padded(y))
            self.scatter.axes(labels=list(self.explorer._axis_titles()))
        if colors:
            self._apply_colors()
        if lines or (positions and self.explorer.show_pairs):
            self._apply_lines()

    def _apply_colors(self) -> None:
        import pandas as pd

        codes, labels, colors = color_categories(self.explorer)
        present = np.flatnonzero(np.bincount(codes, minlength=len(labels)))
        renumber = np.full(len(labels), -1, dtype=np.int64)
        renumber[present] = np.arange(len(present))
        categories = [labels[i] for i in present]
        series = pd.Series(pd.Categorical.from_codes(renumber[codes], categories=categories))
        # colours as a list in category order (category i -> colour i): a dict map makes jupyter-scatter match keys
        # to categories one by one (quadratic), and with extra or reordered keys its legend shows the wrong colours
        self.scatter.color(by=series, map=[colors[i] for i in present], labeling={"variable": self.explorer.color_by})
        self.scatter.update_widget("color_title", self.explorer.color_by)  # the tooltip's name of the colour
        _, mapping = self.explorer.colors()
        legend = mapping["kind"] == "modality" or (
            mapping["kind"] == "categorical" and len(mapping["classes"]) <= MAX_LEGEND_CLASSES)
        self.scatter.legend(legend)
        self.category_colors = {labels[i]: colors[i] for i in present}

    def _apply_lines(self) -> None:
        e = self.explorer
        if not e.show_pairs:
            if self.scatter.connect()["by"] is not None:
                self.scatter.connect(by=None)
            self.pairs_drawn = 0
            if e.message.startswith("pair lines:"):
                e._show_message("")
            return
        kept = pair_matching(e.paired.pairs, e.max_pair_lines, e.seed)
        group = np.arange(e.n_points, dtype=np.int64) + len(kept)  # a group of its own for every unpaired point
        group[kept[:, 0]] = np.arange(len(kept))
        group[kept[:, 1] + e.n_a] = np.arange(len(kept))
        self.scatter.connect(by=group, straight=True)
        self.pairs_drawn = len(kept)
        if len(kept) < e.paired.n_pairs:
            e._show_message(f"pair lines: {len(kept)} of {e.paired.n_pairs} pairs drawn (one line per point in the "
                            "jupyter-scatter view; figure() draws every pair)", kind="info")

    def show_matches(self) -> None:
        """Show the explorer's search: matching points opaque, the rest faded (the default opacity without one)."""
        matches = self.explorer.matches
        if matches is None:
            self.scatter.opacity(by=None)
            return
        hit = np.zeros(self.explorer.n_points, dtype=np.float64)
        hit[matches] = 1.0
        # a list, not an array: jscatter 1.0 compares `by` with a string
        self.scatter.opacity(by=hit.tolist(), map=[FADED_OPACITY, 1.0], norm=(0.0, 1.0))

    def show_selection(self, selected: np.ndarray) -> None:
        """Show ``selected`` (point numbers) as the widget's selection."""
        current = self.widget.selection if self.widget.selection is not None else np.empty(0)
        if np.array_equal(np.sort(np.asarray(current, dtype=np.int64)), selected):
            return
        self._syncing = True
        try:
            self.scatter.selection(selected.astype(np.uint32))
        finally:
            self._syncing = False

    # -- events from the widget -----------------------------------------------------------------------------------
    def _on_selection(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        new = change["new"]
        points = np.empty(0, dtype=np.int64) if new is None else np.asarray(new)
        if points.dtype.kind == "f":
            points = points.astype(np.int64)
        try:
            self.explorer.select(points)
        except ValueError:
            self.show_selection(self.explorer.selected)  # the widget shows the selection that stands
            raise

    def _on_hover(self, change: dict[str, Any]) -> None:
        if change["new"] is not None and 0 <= change["new"] < self.explorer.n_points:
            self.explorer.inspect(int(change["new"]))

    def _answer_tooltip(self, event: dict[str, Any]) -> None:
        point = int(event["index"])
        row = self.properties.row(point, named=True)
        self.widget.send({
            "type": "tooltip", "index": point,
            "preview": self.preview(point) if event.get("preview") else None,
            "properties": {p: _jsonable(row[p]) for p in event.get("properties") or [] if p in row},
        })

    def preview(self, point: int) -> str | None:
        """The tooltip preview of a point: a data URL (a PNG thumbnail, the sound file, or for an item without one
        an SVG card with its caption, or silence), or the caption text; None when nothing is previewed."""
        if self.preview_type is None:
            return None
        if point in self._previews:
            self._previews.move_to_end(point)
            return self._previews[point]
        value = self._make_preview(point)
        self._previews[point] = value
        if len(self._previews) > PREVIEW_CACHE:
            self._previews.popitem(last=False)
        return value

    def _make_preview(self, point: int) -> str:
        row = self.properties.row(point, named=True)
        caption = row.get("caption")
        path = self.paths[point]
        suffix = Path(str(path)).suffix.lower() if path is not None else ""
        found = path is not None and Path(str(path)).is_file()
        if self.preview_type == "image":
            if found and suffix in IMAGE_SUFFIXES:
                data, fmt = thumbnail(str(path))
                return f"data:image/{fmt};base64," + base64.b64encode(data).decode()
            text = caption or (f"{row['modality']} {row['id']}: " + ("file not found" if path else "no image"))
            return _svg_card(str(text))
        if self.preview_type == "audio":
            if found and suffix in AUDIO_SUFFIXES and Path(str(path)).stat().st_size <= MAX_AUDIO_BYTES:
                data = Path(str(path)).read_bytes()
                return f"data:{_MIME[AUDIO_SUFFIXES[suffix]]};base64," + base64.b64encode(data).decode()
            return _silence()
        return str(caption) if caption else f"({row['modality']} {row['id']}: no caption)"
