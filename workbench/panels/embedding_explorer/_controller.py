"""EmbeddingExplorer: both modalities in one 2-D projection, coloured, previewed, and their cross-modal neighbours.

Points are every row of ``paired.a`` then every row of ``paired.b`` ("point" numbers run over both: point ``p`` is
row ``p`` of a for ``p < N_a``, else row ``p - N_a`` of b). The projection (PCA, UMAP or t-SNE of all points
together) comes from :func:`workbench.projection.project`: seeded and cached on disk. Colours: by modality, or by
any metadata column of either side (see :mod:`workbench.panels._colors` for the mapping; items whose side lacks the
column, and null values, are grey). Hovering or clicking a point shows its caption, image thumbnail or sound (from
the metadata's ``caption`` and ``path`` columns); a box or lasso selection lists every selected item with its ``k``
nearest neighbours of the OTHER modality in the original embedding space (cosine), also as a polars DataFrame
(:attr:`EmbeddingExplorer.selection`).

Two views show the same controller: plotly (``Scattergl`` in a ``FigureWidget``; box and lasso selection, hover
previews) and jupyter-scatter (WebGL through anywidget, for up to millions of points: a lasso from its toolbar or a
long press, tooltips that preview images, sounds or captions; see :mod:`workbench.panels._jscatter`).
``backend="auto"`` picks jupyter-scatter above :data:`JSCATTER_MIN_POINTS` points when it is installed (plotly's
WebGL scatter breaks down near a million points: plotly.js #5178).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from workbench.data import PairedEmbeddings
from workbench.panels import _jscatter
from workbench.panels._base import Panel
from workbench.panels._colors import NEUTRAL, OKABE_ITO, category_color, continuous_colors, plotly_colorscale
from workbench.panels._html import html_table
from workbench.panels._media import AUDIO_SUFFIXES, IMAGE_SUFFIXES, thumbnail, top_k
from workbench.projection import METHODS, project

__all__ = ["BACKENDS", "JSCATTER_MIN_POINTS", "EmbeddingExplorer"]

#: Categorical colourings with at most this many classes get a legend entry per class.
MAX_LEGEND_CLASSES = 12
#: The views: "plotly", "jscatter" (jupyter-scatter) or "auto" (jscatter above JSCATTER_MIN_POINTS when installed).
BACKENDS = ("auto", "plotly", "jscatter")
#: ``backend="auto"`` uses jupyter-scatter for more points than this (and plotly up to it).
JSCATTER_MIN_POINTS = 100_000
#: Points needed for a 2-D projection by each method.
MIN_POINTS = {"pca": 3, "umap": 4, "tsne": 4}
_EPS = 1e-3


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Stack frames whose columns may differ in type between the two sides (differing columns become strings)."""
    try:
        return pl.concat(frames, how="diagonal_relaxed")
    except (pl.exceptions.SchemaError, pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
        types: dict[str, set[Any]] = {}
        for f in frames:
            for name, dtype in f.schema.items():
                types.setdefault(name, set()).add(dtype)
        mixed = {name: pl.String for name, seen in types.items() if len(seen) > 1}
        return pl.concat([f.cast({c: t for c, t in mixed.items() if c in f.columns}) for f in frames],
                         how="diagonal_relaxed")


class EmbeddingExplorer(Panel):
    """Both modalities in one 2-D projection, coloured by modality or any metadata column.

    Parameters
    ----------
    paired : PairedEmbeddings
        At least 3 points in all (4 for UMAP and t-SNE).
    projection : "pca", "umap" or "tsne", default "pca"
        See :func:`workbench.projection.project` (seeded, cached in ``$WORKBENCH_CACHE_DIR/projections``).
    color_by : str, default "modality"
        ``"modality"`` or a metadata column present on either side.
    seed : int, default 0
        The projection's seed.
    k : int, default 5
        Cross-modal neighbours listed per selected item.
    projection_params : dict, optional
        Extra UMAP / t-SNE parameters (e.g. ``{"n_neighbors": 30}``).
    cache_dir : path, optional
        Projection cache folder (default :func:`workbench.projection.default_projection_dir`).
    color_kind : "auto", "categorical" or "continuous", default "auto"
        "auto" treats float columns as continuous and every other column as categorical (class ids).
    show_pairs : bool, default False
        Draw a line between the two points of every pair (at most ``max_pair_lines``, a seeded sample beyond).
    max_table_items : int, default 50
        Selected items listed in the widget's table (:attr:`selection` holds them all).
    backend : "auto", "plotly" or "jscatter", default "auto"
        The widget's view (:attr:`backend` holds the one chosen). "plotly": a plotly ``FigureWidget``. "jscatter":
        jupyter-scatter (``pip install "alignment-workbench[scale]"``), WebGL for millions of points. "auto":
        jscatter for more than :data:`JSCATTER_MIN_POINTS` points when jupyter-scatter is installed, else plotly.
        The controller API (selection, colours, projection, pair lines, :meth:`figure`) is the same for both.

    Raises
    ------
    ValueError
        Too few points, an unknown projection, a ``color_by`` that is not a column (the message names the
        available ones), a column without values, ``color_kind="continuous"`` for a non-numeric column, ``k < 1``,
        an unknown ``backend``.
        The widget path (``EmbeddingExplorer.show(...)`` and the panel's own controls) shows these messages in the
        panel instead.
    ImportError
        ``backend="jscatter"`` without jupyter-scatter installed (the message says how to install it).

    Examples
    --------
    >>> import numpy as np, tempfile, workbench
    >>> rng = np.random.default_rng(0)
    >>> paired = workbench.PairedEmbeddings.from_arrays(
    ...     rng.normal(size=(20, 8)), rng.normal(size=(20, 8)), modalities=("image", "text"),
    ...     metadata_b={"caption": [f"caption {i}" for i in range(20)]})
    >>> explorer = EmbeddingExplorer(paired, k=3, cache_dir=tempfile.mkdtemp())
    >>> explorer.coords.shape
    (40, 2)
    >>> explorer.select([0, 25])
    >>> explorer.selection.select("point", "rank", "neighbour_row").head(2).rows()
    [(0, 1, 13), (0, 2, 11)]
    >>> explorer.backend  # 40 points: plotly (jupyter-scatter is chosen above 100,000)
    'plotly'
    """

    css_class = "wb-embedding-explorer"

    def __init__(
        self,
        paired: PairedEmbeddings,
        projection: str = "pca",
        color_by: str = "modality",
        seed: int = 0,
        k: int = 5,
        *,
        projection_params: dict[str, Any] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        color_kind: str = "auto",
        show_pairs: bool = False,
        max_pair_lines: int = 20_000,
        max_table_items: int = 50,
        backend: str = "auto",
    ) -> None:
        if not isinstance(paired, PairedEmbeddings):
            raise TypeError(f"EmbeddingExplorer needs a PairedEmbeddings, got {type(paired).__name__}")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if color_kind not in ("auto", "categorical", "continuous"):
            raise ValueError(f"color_kind must be 'auto', 'categorical' or 'continuous', got {color_kind!r}")
        if not isinstance(backend, str) or backend not in BACKENDS:
            raise ValueError(f"backend must be 'auto', 'plotly' or 'jscatter', got {backend!r}")
        self.paired, self.seed, self.k = paired, int(seed), int(k)
        self.n_a, self.n_b = len(paired.a), len(paired.b)
        self.n_points = self.n_a + self.n_b
        self.backend = self._checked_backend(backend)
        self.cache_dir = cache_dir
        self.projection_params = dict(projection_params or {})
        self.max_pair_lines, self.max_table_items = int(max_pair_lines), int(max_table_items)
        self._color_kind = color_kind
        self._coords: dict[tuple[Any, ...], np.ndarray] = {}
        self._projection = self._checked_projection(projection)
        self._color_by = self._checked_color(color_by)
        self._show_pairs = bool(show_pairs)
        self._selected = np.empty(0, dtype=np.int64)
        self._selection: pl.DataFrame | None = None
        self._inspected: dict[str, Any] | None = None
        self._ui: dict[str, Any] = {}
        self._trace_selection: dict[int, list[int]] = {}
        self._view: Any = None  # the jupyter-scatter view (backend "jscatter"), made with the widget

    # -- validation -----------------------------------------------------------------------------------------------
    def _checked_backend(self, backend: str) -> str:
        if backend == "auto":
            return "jscatter" if self.n_points > JSCATTER_MIN_POINTS and _jscatter.available() else "plotly"
        if backend == "jscatter" and not _jscatter.available():
            raise ImportError(f"backend='jscatter' needs jupyter-scatter: {_jscatter.INSTALL_HINT} "
                              "(or pip install jupyter-scatter), or use backend='plotly'")
        return backend

    def _checked_projection(self, projection: str) -> str:
        if projection not in METHODS:
            raise ValueError(f"unknown projection {projection!r}; choose one of {list(METHODS)}")
        if self.n_points < MIN_POINTS[projection]:
            a, b = self.paired.modalities
            raise ValueError(
                f"a 2-D {projection} projection needs at least {MIN_POINTS[projection]} points, got {self.n_points} "
                f"({self.n_a} {a} and {self.n_b} {b})"
            )
        return projection

    @property
    def color_options(self) -> list[str]:
        """What ``color_by`` accepts: "modality" and every metadata column of either side."""
        columns = list(self.paired.a.metadata.columns)
        columns += [c for c in self.paired.b.metadata.columns if c not in columns]
        return ["modality", *columns]

    def _checked_color(self, color_by: str) -> str:
        options = self.color_options
        if color_by not in options:
            raise ValueError(f"color_by={color_by!r} is not 'modality' or a metadata column; available: "
                             + ", ".join(repr(o) for o in options))
        if color_by != "modality":
            values = self._column_values(color_by)
            if values.null_count() == len(values):
                raise ValueError(f"color_by={color_by!r}: the column has no values (all {len(values)} are missing)")
            if self._color_kind == "continuous" and not values.dtype.is_numeric():
                raise ValueError(f"color_by={color_by!r} holds {values.dtype} values: a continuous colouring needs "
                                 "numbers (use color_kind='categorical')")
        return color_by

    def _column_values(self, column: str) -> pl.Series:
        """The column over all points (a rows then b rows); null where a side lacks it."""
        parts = []
        for e in (self.paired.a, self.paired.b):
            if column in e.metadata.columns:
                parts.append(e.metadata.select(pl.col(column)))
            else:
                parts.append(pl.DataFrame({column: [None] * len(e)}))
        return _concat(parts).get_column(column)

    # -- state ----------------------------------------------------------------------------------------------------
    @property
    def projection(self) -> str:
        """The projection method on show; setting it recomputes the view (or reads it from the cache)."""
        return self._projection

    @projection.setter
    def projection(self, value: str) -> None:
        self._projection = self._checked_projection(value)
        self._refresh_points(positions=True)

    @property
    def color_by(self) -> str:
        """The colouring on show ("modality" or a metadata column)."""
        return self._color_by

    @color_by.setter
    def color_by(self, value: str) -> None:
        self._color_by = self._checked_color(value)
        self._refresh_points(colors=True)

    @property
    def show_pairs(self) -> bool:
        """Whether lines join matched pairs (setting it adds or removes the "pairs" trace)."""
        return self._show_pairs

    @show_pairs.setter
    def show_pairs(self, value: bool) -> None:
        self._show_pairs = bool(value)
        self._refresh_points(lines=True)

    @property
    def coords(self) -> np.ndarray:
        """2-D coordinates of every point (a rows, then b rows), from the cache when this view was made before."""
        key = (self._projection, tuple(sorted(self.projection_params.items())), self.seed)
        if key not in self._coords:
            params = self.projection_params if self._projection != "pca" else {}
            x = np.concatenate([self.paired.a.vectors, self.paired.b.vectors])
            self._coords[key] = project(x, self._projection, seed=self.seed, cache_dir=self.cache_dir, **params)
        return self._coords[key]

    def _axis_titles(self) -> tuple[str, str]:
        if self._projection != "pca":
            name = {"umap": "UMAP", "tsne": "t-SNE"}[self._projection]
            return f"{name} 1", f"{name} 2"
        if not hasattr(self, "_total_variance"):  # of all points, for the explained variance ratios
            total = 0.0
            n = self.n_points
            mean = (self.paired.a.vectors.sum(axis=0, dtype=np.float64)
                    + self.paired.b.vectors.sum(axis=0, dtype=np.float64)) / n
            for e in (self.paired.a, self.paired.b):
                for s in range(0, len(e), 8192):
                    block = e.vectors[s : s + 8192].astype(np.float64) - mean
                    total += float(np.einsum("ij,ij->", block, block))
            self._total_variance = total / n
        total = self._total_variance
        ratio = self.coords.var(axis=0) / total if total > 0 else np.zeros(2)
        return f"PC 1 ({ratio[0]:.1%} of variance)", f"PC 2 ({ratio[1]:.1%} of variance)"

    def point_modality(self, point: int) -> tuple[str, int]:
        """``("a" or "b", row)`` of a point number."""
        if isinstance(point, bool) or not isinstance(point, int | np.integer) or not 0 <= point < self.n_points:
            raise ValueError(f"point must be an integer in [0, {self.n_points}), got {point!r}")
        return ("a", int(point)) if point < self.n_a else ("b", int(point) - self.n_a)

    @property
    def points(self) -> pl.DataFrame:
        """One row per point: ``point``, ``side``, ``modality``, ``row``, ``id``, ``x``, ``y``, ``color``."""
        coords = self.coords
        colors, _ = self.colors()
        ids = _concat([self.paired.a.metadata.select("id"), self.paired.b.metadata.select("id")]).get_column("id")
        return pl.DataFrame({
            "point": np.arange(self.n_points), "side": ["a"] * self.n_a + ["b"] * self.n_b,
            "modality": [self.paired.a.modality] * self.n_a + [self.paired.b.modality] * self.n_b,
            "row": np.concatenate([np.arange(self.n_a), np.arange(self.n_b)]), "id": ids,
            "x": coords[:, 0], "y": coords[:, 1], "color": colors,
        })

    def colors(self) -> tuple[list[str], dict[str, Any]]:
        """Per-point hex colours and the mapping: ``{"kind": ..., ...}``.

        ``kind`` "modality" (``colors``: modality -> colour), "categorical" (``classes``: sorted values,
        ``colors``: value -> colour, class i gets :func:`~workbench.panels._colors.category_color` ``(i)``) or
        "continuous" (``vmin``, ``vmax`` over Viridis). Missing values are :data:`~workbench.panels._colors.NEUTRAL`.
        """
        cached = getattr(self, "_colors_cache", None)
        if cached is not None and cached[0] == self._color_by:
            return list(cached[1]), dict(cached[2])
        colors, mapping = self._compute_colors()
        self._colors_cache = (self._color_by, colors, mapping)
        return list(colors), dict(mapping)

    def _compute_colors(self) -> tuple[list[str], dict[str, Any]]:
        if self._color_by == "modality":
            a, b = self.paired.modalities
            return [OKABE_ITO[0]] * self.n_a + [OKABE_ITO[1]] * self.n_b, {
                "kind": "modality", "colors": {a: OKABE_ITO[0], b: OKABE_ITO[1]}}
        values = self._column_values(self._color_by)
        continuous = self._color_kind == "continuous" or (self._color_kind == "auto" and values.dtype.is_float())
        if continuous:
            v = values.cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64)
            finite = v[np.isfinite(v)]
            vmin, vmax = float(finite.min()), float(finite.max())
            return continuous_colors(v, vmin, vmax), {"kind": "continuous", "vmin": vmin, "vmax": vmax,
                                                       "missing": int((~np.isfinite(v)).sum())}
        present = values.drop_nulls()
        try:
            classes = present.unique().sort().to_list()
        except pl.exceptions.InvalidOperationError:
            classes = sorted(present.cast(pl.String).unique().to_list())
            values = values.cast(pl.String)
        index = {value: i for i, value in enumerate(classes)}
        mapping = {value: category_color(i) for value, i in index.items()}
        colors = [NEUTRAL if v is None else mapping[v] for v in values.to_list()]
        return colors, {"kind": "categorical", "classes": classes, "colors": mapping,
                        "missing": int(values.null_count())}

    # -- selection ------------------------------------------------------------------------------------------------
    def select(self, points: Any) -> None:
        """Select points by number (as a box or lasso selection does); fills :attr:`selection` and the table."""
        arr = np.asarray(list(points) if not isinstance(points, np.ndarray) else points)
        if arr.size and (arr.dtype.kind not in "iu" or arr.min() < 0 or arr.max() >= self.n_points):
            raise ValueError(f"points must be integers in [0, {self.n_points}), got {arr[:5].tolist()}...")
        self._selected = np.unique(arr.astype(np.int64))
        self._selection = None
        self._refresh_selection()

    @property
    def selected(self) -> np.ndarray:
        """The selected point numbers (sorted)."""
        return self._selected.copy()

    @property
    def selection(self) -> pl.DataFrame:
        """The selected items with their ``k`` nearest cross-modal neighbours in the original space.

        One row per (selected point, neighbour): ``point``, ``modality``, ``row``, ``id``, ``caption`` (when either
        side has one), ``rank`` (1 = nearest), ``neighbour_row`` (a row of the other modality), ``neighbour_id``,
        ``neighbour_caption``, ``cosine`` and ``is_pair`` (the neighbour is paired with the item). Neighbours are
        ordered by cosine (float32 dot products of the stored unit rows), ties by lower row.
        """
        if self._selection is None:
            self._selection = self._neighbour_table(self._selected)
        return self._selection

    def _neighbour_table(self, points: np.ndarray) -> pl.DataFrame:
        has_caption = any("caption" in e.metadata.columns for e in (self.paired.a, self.paired.b))
        frames = []
        for side in ("a", "b"):
            mine, other = (self.paired.a, self.paired.b) if side == "a" else (self.paired.b, self.paired.a)
            rows = points[points < self.n_a] if side == "a" else points[points >= self.n_a] - self.n_a
            if len(rows) == 0:
                continue
            k = min(self.k, len(other))
            order, scores = top_k(mine.vectors[rows], other.vectors, k)
            pair_col = (0, 1) if side == "a" else (1, 0)
            paired_with = set(map(tuple, self.paired.pairs[:, pair_col].tolist()))
            row_rep = np.repeat(rows, k)
            neighbour = order.ravel()
            frame = {
                "point": row_rep + (0 if side == "a" else self.n_a),
                "modality": [mine.modality] * len(row_rep),
                "row": row_rep,
                "id": mine.metadata.get_column("id").gather(row_rep),
                "rank": np.tile(np.arange(1, k + 1), len(rows)),
                "neighbour_row": neighbour,
                "neighbour_id": other.metadata.get_column("id").gather(neighbour),
                "cosine": scores.ravel().astype(np.float64),
                "is_pair": [(int(r), int(n)) in paired_with for r, n in zip(row_rep, neighbour, strict=True)],
            }
            df = pl.DataFrame(frame)
            if has_caption:
                df = df.with_columns(
                    _caption(mine, row_rep).alias("caption"), _caption(other, neighbour).alias("neighbour_caption"))
            frames.append(df)
        if not frames:
            schema: dict[str, Any] = {"point": pl.Int64, "modality": pl.String, "row": pl.Int64, "id": pl.Int64,
                                      "rank": pl.Int64, "neighbour_row": pl.Int64, "neighbour_id": pl.Int64,
                                      "cosine": pl.Float64, "is_pair": pl.Boolean}
            if has_caption:
                schema.update({"caption": pl.String, "neighbour_caption": pl.String})
            return pl.DataFrame(schema=schema)
        columns = ["point", "modality", "row", "id"] + (["caption"] if has_caption else []) + [
            "rank", "neighbour_row", "neighbour_id"] + (["neighbour_caption"] if has_caption else []) + [
            "cosine", "is_pair"]
        return _concat(frames).select(columns)

    # -- previews -------------------------------------------------------------------------------------------------
    def inspect(self, point: int) -> dict[str, Any]:
        """What the side view shows for a point (hover or click): ``modality``, ``id``, ``caption``, ``path`` and
        ``kind`` ("image", "audio" or "none"), with a ``message`` when there is nothing to preview."""
        side, row = self.point_modality(point)
        e = self.paired.a if side == "a" else self.paired.b
        meta = e.metadata.row(row, named=True)
        info: dict[str, Any] = {"point": int(point), "modality": e.modality, "row": row, "id": meta["id"],
                                "caption": meta.get("caption"), "path": meta.get("path"), "kind": "none",
                                "message": ""}
        path = info["path"]
        if path is None:
            if info["caption"] is None:
                info["message"] = f"no caption or path in the {e.modality} metadata: nothing to preview"
        else:
            suffix = Path(str(path)).suffix.lower()
            if not Path(str(path)).is_file():
                info["message"] = f"file not found: {path}"
            elif suffix in IMAGE_SUFFIXES:
                info["kind"] = "image"
            elif suffix in AUDIO_SUFFIXES:
                info["kind"] = "audio"
            else:
                info["message"] = f"no preview for {suffix or 'extensionless'} files: {path}"
        self._inspected = info
        self._refresh_preview()
        return info

    # -- figures --------------------------------------------------------------------------------------------------
    def _hover_text(self) -> list[str]:
        cached = getattr(self, "_hover_cache", None)
        if cached is not None and cached[0] == self._color_by:
            return cached[1]
        texts: list[str] = []
        for e in (self.paired.a, self.paired.b):
            columns = [c for c in dict.fromkeys(("id", "caption", "label", self._color_by, "path"))
                       if c in e.metadata.columns]
            for row in e.metadata.select(columns).iter_rows():
                texts.append("<br>".join([f"<b>{html.escape(e.modality)}</b>"] + [
                    f"{html.escape(c)}: {html.escape(str(v))[:120]}" for c, v in zip(columns, row, strict=True)]))
        self._hover_cache = (self._color_by, texts)
        return texts

    def _marker_colors(self) -> tuple[list[Any], dict[str, Any]]:
        """Per-trace marker colour settings: a colour per modality, or a colour INDEX per point mapped through a
        colorscale (plotly validates and sends numbers as one block; 100,000 colour strings take seconds).

        Categorical: index 0 is "no value" (grey), index i >= 1 is class i - 1; the colorscale has one stop per
        index, at ``i / n_classes``, so each index hits its class colour exactly. Continuous: 0 is "no value", real
        values map to ``[EPS, 1]`` of a Viridis scale that starts at ``EPS`` (nothing falls between 0 and EPS).
        """
        _, mapping = self.colors()
        parts = (slice(0, self.n_a), slice(self.n_a, None))
        if mapping["kind"] == "modality":
            return [OKABE_ITO[0], OKABE_ITO[1]], {}
        if mapping["kind"] == "categorical":
            classes = mapping["classes"]
            n = len(classes)
            values = self._column_values(self._color_by)
            if values.dtype != pl.String and classes and isinstance(classes[0], str):
                values = values.cast(pl.String)
            index = {value: i + 1 for i, value in enumerate(classes)}
            numbers = np.array([0 if v is None else index[v] for v in values.to_list()], dtype=np.float64)
            scale = [[0.0, NEUTRAL]] + [[(i + 1) / n, mapping["colors"][c]] for i, c in enumerate(classes)]
            extra = {"colorscale": scale, "cmin": 0, "cmax": n, "showscale": False}
        else:
            v = self._column_values(self._color_by).cast(pl.Float64).fill_nan(None).to_numpy().astype(np.float64)
            span = mapping["vmax"] - mapping["vmin"]
            t = np.zeros_like(v) if not span > 0 else (v - mapping["vmin"]) / span
            numbers = np.where(np.isfinite(v), _EPS + (1 - _EPS) * np.clip(np.nan_to_num(t), 0, 1), 0.0)
            scale = [[0.0, NEUTRAL]] + [[_EPS + (1 - _EPS) * s, c] for s, c in plotly_colorscale()]
            extra = {"colorscale": scale, "cmin": 0, "cmax": 1, "showscale": False}
        return [numbers[part] for part in parts], extra

    def _point_traces(self, go: Any) -> list[Any]:
        coords = self.coords
        colors, extra = self._marker_colors()
        hover = self._hover_text()
        size = 6 if self.n_points <= 5000 else 4 if self.n_points <= 50_000 else 3
        traces = []
        for side, (e, part, symbol) in enumerate(((self.paired.a, slice(0, self.n_a), "circle"),
                                                   (self.paired.b, slice(self.n_a, None), "diamond"))):
            traces.append(go.Scattergl(
                x=coords[part, 0], y=coords[part, 1], mode="markers", name=f"{e.modality} ({len(e)})",
                marker={"color": colors[side], "size": size, "opacity": 0.8, "symbol": symbol, **extra},
                text=hover[part], hovertemplate="%{text}<extra></extra>", meta={"side": "ab"[side]},
                selected={"marker": {"opacity": 1.0}}, unselected={"marker": {"opacity": 0.25}},
            ))
        return traces

    def _pair_trace(self, go: Any) -> Any:
        coords = self.coords
        pairs = self.paired.pairs
        if len(pairs) > self.max_pair_lines:
            keep = np.sort(np.random.default_rng(self.seed).choice(len(pairs), self.max_pair_lines, replace=False))
            pairs = pairs[keep]
        ia, ib = pairs[:, 0], pairs[:, 1] + self.n_a
        gap = np.full(len(ia), np.nan)
        xs = np.column_stack([coords[ia, 0], coords[ib, 0], gap]).ravel()
        ys = np.column_stack([coords[ia, 1], coords[ib, 1], gap]).ravel()
        name = "pairs" if len(pairs) == self.paired.n_pairs else f"pairs ({len(pairs)} of {self.paired.n_pairs})"
        return go.Scattergl(x=xs, y=ys, mode="lines", name=name, hoverinfo="skip", meta={"side": "pairs"},
                            line={"color": "rgba(120,120,120,0.35)", "width": 1}, connectgaps=False)

    def _legend_traces(self, go: Any) -> list[Any]:
        _, mapping = self.colors()
        if mapping["kind"] == "continuous":
            return [go.Scattergl(
                x=[None], y=[None], mode="markers", name=f"{self._color_by} scale", showlegend=False,
                hoverinfo="skip", meta={"side": "legend"},
                marker={"colorscale": plotly_colorscale(), "cmin": mapping["vmin"], "cmax": mapping["vmax"],
                        "color": [mapping["vmin"]], "showscale": True,
                        "colorbar": {"title": {"text": self._color_by}, "thickness": 12}})]
        if mapping["kind"] != "categorical" or len(mapping["classes"]) > MAX_LEGEND_CLASSES:
            return []
        entries = [(f"{self._color_by} = {v}", c) for v, c in mapping["colors"].items()]
        if mapping["missing"]:
            entries.append((f"{self._color_by}: no value", NEUTRAL))
        return [go.Scattergl(x=[None], y=[None], mode="markers", name=name, marker={"color": colour, "size": 8},
                             legendgroup="colour", hoverinfo="skip", meta={"side": "legend"})
                for name, colour in entries]

    def _layout(self) -> dict[str, Any]:
        x_title, y_title = self._axis_titles()
        _, mapping = self.colors()
        subtitle = ""
        if mapping["kind"] == "categorical" and len(mapping["classes"]) > MAX_LEGEND_CLASSES:
            subtitle = f" · colour: {self._color_by} ({len(mapping['classes'])} classes; hover for the class)"
        elif mapping["kind"] != "modality":
            subtitle = f" · colour: {self._color_by}"
        method = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}[self._projection]
        title = f"{self.paired.model}: {self.paired.a.modality} and {self.paired.b.modality} ({method}){subtitle}"
        return {"title": {"text": html.escape(title), "font": {"size": 13}}, "template": "simple_white",
                "xaxis": {"title": {"text": x_title}}, "yaxis": {"title": {"text": y_title}},
                "legend": {"itemsizing": "constant"}, "width": 720, "height": 560, "dragmode": "select",
                "clickmode": "event+select", "margin": {"l": 50, "r": 10, "t": 50, "b": 50}}

    def _traces(self, go: Any) -> list[Any]:
        lines = [self._pair_trace(go)] if self._show_pairs else []
        return lines + self._point_traces(go) + self._legend_traces(go)

    def figure(self) -> Any:
        """A static plotly figure of the current view (projection, colours, pair lines, selection)."""
        import plotly.graph_objects as go

        fig = go.Figure(data=self._traces(go), layout=self._layout())
        self._mark_selection(fig)
        return fig

    def _mark_selection(self, fig: Any) -> None:
        sel = self._selected
        for trace in fig.data:
            side = (trace.meta or {}).get("side")
            if side == "a":
                trace.selectedpoints = sel[sel < self.n_a].tolist() if len(sel) else None
            elif side == "b":
                trace.selectedpoints = (sel[sel >= self.n_a] - self.n_a).tolist() if len(sel) else None

    # -- the widget -----------------------------------------------------------------------------------------------
    def _build_widget(self) -> Any:
        import ipywidgets as widgets

        if self.backend == "plotly":
            import plotly.graph_objects as go

        projection = widgets.Dropdown(options=list(METHODS), value=self._projection, description="projection")
        projection.add_class("wb-projection")
        color = widgets.Dropdown(options=self.color_options, value=self._color_by, description="colour")
        color.add_class("wb-color-by")
        lines = widgets.Checkbox(value=self._show_pairs, description="pair lines", indent=False)
        lines.add_class("wb-pair-lines")
        if self.backend == "jscatter":
            self._view = _jscatter.JScatterView(self)
            plot = self._view.widget
        else:
            plot = go.FigureWidget(data=self._traces(go), layout=self._layout())
        plot.add_class("wb-embedding-plot")
        preview_text = widgets.HTML(value="<small>hover over or click a point</small>")
        preview_text.add_class("wb-preview-text")
        image = widgets.Image(layout={"display": "none", "max_width": "220px"})
        image.add_class("wb-preview-image")
        audio = widgets.Audio(autoplay=False, controls=True, layout={"display": "none"})
        audio.add_class("wb-preview-audio")
        preview = widgets.VBox([preview_text, image, audio], layout={"width": "240px"})
        preview.add_class("wb-preview")
        table = widgets.HTML(value="<small>select points (box or lasso) to list their cross-modal neighbours</small>")
        table.add_class("wb-selection-table")
        self._ui = {"projection": projection, "color": color, "lines": lines, "plot": plot,
                    "preview_text": preview_text, "image": image, "audio": audio, "table": table}
        projection.observe(self._guarded(self._on_control("projection")), names="value")
        color.observe(self._guarded(self._on_control("color_by")), names="value")
        lines.observe(self._guarded(self._on_control("show_pairs")), names="value")
        if self._view is None:
            self._connect(plot)
        self._refresh_selection()
        self._refresh_preview()
        return widgets.VBox([widgets.HBox([projection, color, lines]), self._message_widget(),
                             widgets.HBox([plot, preview]), table])

    def _on_control(self, name: str) -> Any:
        def handler(change: dict[str, Any]) -> None:
            if getattr(self, name) != change["new"]:
                setattr(self, name, change["new"])

        return handler

    def _connect(self, plot: Any) -> None:
        """Hover/click -> preview; selection (box, lasso, click) -> the table. Callbacks on the two point traces."""
        for trace in plot.data:
            side = (trace.meta or {}).get("side")
            if side not in ("a", "b"):
                continue
            offset = 0 if side == "a" else self.n_a
            trace.on_hover(self._guarded(self._on_point(offset)))
            trace.on_click(self._guarded(self._on_point(offset)))
            trace.on_selection(self._guarded(self._on_select(side)))
            trace.on_deselect(self._guarded(self._on_select(side, clear=True)))

    def _on_point(self, offset: int) -> Any:
        def handler(trace: Any, points: Any, state: Any) -> None:
            if points.point_inds:
                self.inspect(offset + int(points.point_inds[0]))

        return handler

    def _on_select(self, side: str, clear: bool = False) -> Any:
        # plotly calls every trace's callback for one event, a's trace before b's: b's commits the union
        def handler(trace: Any, points: Any, selector: Any = None) -> None:  # on_deselect passes no selector
            inds = [] if clear else list(points.point_inds)
            self._trace_selection[0 if side == "a" else 1] = inds
            if side == "b":
                a = np.asarray(self._trace_selection.get(0, []), dtype=np.int64)
                b = np.asarray(self._trace_selection.get(1, []), dtype=np.int64) + self.n_a
                self._trace_selection = {}
                self.select(np.concatenate([a, b]))

        return handler

    def _refresh_points(self, positions: bool = False, colors: bool = False, lines: bool = False) -> None:
        if not self._ui:
            return
        ui = self._ui
        plot = ui["plot"]
        for control, value in (("projection", self._projection), ("color", self._color_by),
                               ("lines", self._show_pairs)):
            if ui[control].value != value:
                ui[control].value = value
        if self._view is not None:
            self._view.refresh(positions=positions, colors=colors, lines=lines)
            return
        import plotly.graph_objects as go

        fresh = self._point_traces(go)
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
            plot.layout.update(self._layout())
        if colors or lines or positions:
            keep = [t for t in plot.data if (t.meta or {}).get("side") in ("a", "b")]
            plot.data = keep  # drop the old pair lines and legend entries (callbacks stay on the kept traces)
            extra = self._legend_traces(go)
            if extra:
                plot.add_traces(extra)
            if self._show_pairs:
                plot.add_trace(self._pair_trace(go))
                plot.data = (plot.data[-1], *plot.data[:-1])  # lines below the points

    def _refresh_selection(self) -> None:
        if not self._ui:
            return
        ui = self._ui
        sel = self._selected
        if self._view is not None:
            self._view.show_selection(sel)
        else:
            with ui["plot"].batch_update():
                self._mark_selection(ui["plot"])
        if len(sel) == 0:
            ui["table"].value = "<small>select points (box or lasso) to list their cross-modal neighbours</small>"
            return
        shown = sel[: self.max_table_items]
        table = self._neighbour_table(shown) if len(shown) < len(sel) else self.selection
        note = f"{len(sel)} selected" + (f"; the first {len(shown)} listed" if len(shown) < len(sel) else "")
        ui["table"].value = html_table(
            table.drop("point"), css_class="wb-neighbours",
            caption=f"{note}, each with its {self.k} nearest items of the other modality (cosine, original space)")

    def _refresh_preview(self) -> None:
        if not self._ui or self._inspected is None:
            return
        ui, info = self._ui, self._inspected
        lines = [f"<b>{html.escape(info['modality'])}</b> · id {html.escape(str(info['id']))}"]
        if info["caption"] is not None:
            lines.append(html.escape(str(info["caption"])))
        if info["message"]:
            lines.append(f"<span class='wb-preview-message'><i>{html.escape(info['message'])}</i></span>")
        ui["preview_text"].value = "<br>".join(lines)
        ui["image"].layout.display = "none"
        ui["audio"].layout.display = "none"
        if info["kind"] == "image":
            ui["image"].value, ui["image"].format = thumbnail(info["path"])
            ui["image"].layout.display = ""
        elif info["kind"] == "audio":
            path = Path(str(info["path"]))
            ui["audio"].format = AUDIO_SUFFIXES[path.suffix.lower()]
            ui["audio"].value = path.read_bytes()
            ui["audio"].layout.display = ""


def _caption(e: Any, rows: np.ndarray) -> pl.Series:
    if "caption" in e.metadata.columns:
        return e.metadata.get_column("caption").cast(pl.String).gather(rows)
    return pl.Series([None] * len(rows), dtype=pl.String)
