"""The explorer's controller: its state (projection, colouring, pair lines, selection) and what it computes from it.

Plain Python: no plotly, ipywidgets or jupyter-scatter (they are imported by the views, in
:mod:`~workbench.panels.embedding_explorer._plotly` and :mod:`~workbench.panels.embedding_explorer._jscatter`).
The controller calls three hooks when its state changes -- ``_refresh_points(positions=, colors=, lines=)``,
``_refresh_selection()`` and ``_refresh_preview()`` -- that do nothing here; :class:`EmbeddingExplorer` implements
them to update its widget.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from workbench._params import check_choice, check_int, check_seed
from workbench.data import PairedEmbeddings
from workbench.panels._colors import NEUTRAL, OKABE_ITO, category_colors, continuous_colors
from workbench.panels._media import AUDIO_SUFFIXES, IMAGE_SUFFIXES, missing_media_hint, top_k
from workbench.panels.embedding_explorer._shared import (
    BACKENDS,
    METHOD_NAMES,
    MIN_POINTS,
    caption_column,
    concat_frames,
    point_ids,
)
from workbench.projection import METHODS, project

__all__ = ["COLOR_KINDS", "EmbeddingController"]

#: What ``color_kind`` accepts.
COLOR_KINDS = ("auto", "categorical", "continuous")


class EmbeddingController:
    """The state and computations of :class:`~workbench.panels.EmbeddingExplorer`, without any widget.

    Takes the explorer's parameters (see there); ``backend`` is only checked to be one of :data:`BACKENDS` (the
    explorer resolves ``"auto"`` in :meth:`_resolve_backend`).

    Examples
    --------
    >>> import numpy as np, tempfile, workbench
    >>> rng = np.random.default_rng(0)
    >>> paired = workbench.PairedEmbeddings.from_arrays(rng.normal(size=(20, 8)), rng.normal(size=(20, 8)))
    >>> controller = EmbeddingController(paired, k=2, cache_dir=tempfile.mkdtemp())
    >>> controller.select([0, 25])
    >>> controller.selection.select("point", "rank", "neighbour_row").head(2).rows()
    [(0, 1, 13), (0, 2, 11)]
    """

    def __init__(
        self,
        paired: PairedEmbeddings,
        projection: str = "pca",
        color_by: Any = "modality",
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
        k = check_int(k, "k")
        check_choice(color_kind, "color_kind", COLOR_KINDS)
        if not isinstance(backend, str) or backend not in BACKENDS:
            raise ValueError(f"backend must be 'auto', 'plotly' or 'jscatter', got {backend!r}")
        self.paired, self.seed, self.k = paired, check_seed(seed), k
        self.n_a, self.n_b = len(paired.a), len(paired.b)
        self.n_points = self.n_a + self.n_b
        self.backend = self._resolve_backend(backend)
        self.cache_dir = cache_dir
        self.projection_params = dict(projection_params or {})
        self.max_pair_lines = check_int(max_pair_lines, "max_pair_lines", low=0)
        self.max_table_items = check_int(max_table_items, "max_table_items", low=0)
        self._color_kind = color_kind
        self._coords: dict[tuple[Any, ...], np.ndarray] = {}
        self._custom: pl.Series | None = None  # per-point values given as color_by (a rows, then b rows)
        self._projection = self._checked_projection(projection)
        self._color_by = self._checked_color(color_by)
        self._show_pairs = bool(show_pairs)
        self._selected = np.empty(0, dtype=np.int64)
        self._selection: pl.DataFrame | None = None
        self._inspected: dict[str, Any] | None = None
        self._colors_cache: tuple[str, list[str], dict[str, Any]] | None = None
        self._total_variance: float | None = None  # of all points, for PCA's explained variance ratios
        self._search = ""
        self._matches: np.ndarray | None = None

    # -- hooks of the views ---------------------------------------------------------------------------------------
    def _resolve_backend(self, backend: str) -> str:
        """The view that will show the points (a subclass with views resolves ``"auto"``); here: ``backend``."""
        return backend

    def _refresh_points(self, positions: bool = False, colors: bool = False, lines: bool = False) -> None:
        """Show new coordinates, colours or pair lines (no view here: nothing to do)."""

    def _refresh_selection(self) -> None:
        """Show the selection (no view here: nothing to do)."""

    def _refresh_preview(self) -> None:
        """Show the inspected point (no view here: nothing to do)."""

    def _refresh_search(self) -> None:
        """Show the search's matches (no view here: nothing to do)."""

    # -- validation -----------------------------------------------------------------------------------------------

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
        """The colourings by name: "modality", every metadata column of either side, and the name of per-point
        values given as ``color_by`` (when given)."""
        columns = list(self.paired.a.metadata.columns)
        columns += [c for c in self.paired.b.metadata.columns if c not in columns]
        return ["modality", *columns] + ([self._custom.name] if self._custom is not None else [])

    def _custom_values(self, values: Any) -> str:
        """Keep values given as ``color_by`` (one per point, or one per pair of a one-to-one set); their name."""
        if isinstance(values, pl.Series):
            name = values.name or "values"
        else:
            name = "values"
            array = np.asarray(values)
            if array.ndim != 1 or array.dtype.kind not in "biufUO":
                raise TypeError("color_by must be 'modality', a metadata column, or one value per point (a 1-D "
                                f"array, list or polars Series), got {type(values).__name__} of shape {array.shape}")
            values = pl.Series(name, array)
        taken = ["modality", *self.paired.a.metadata.columns, *self.paired.b.metadata.columns]
        if name in taken:
            raise ValueError(f"color_by values are named {name!r}, which is already a colouring (a metadata "
                             "column or 'modality'); rename them: pl.Series('<new name>', values)")
        n = len(values)
        if n == self.n_points:
            per_point = values
        elif n == len(self.paired.pairs) and self.paired.is_one_to_one:
            # value j belongs to pair j: a row pairs[j, 0] and b row pairs[j, 1]
            a_order, b_order = np.argsort(self.paired.pairs[:, 0]), np.argsort(self.paired.pairs[:, 1])
            per_point = pl.concat([values.gather(a_order), values.gather(b_order)])
        else:
            one_to_one = f" or one per pair ({len(self.paired.pairs)})" if self.paired.is_one_to_one else ""
            raise ValueError(f"color_by has {n} values: give one per point ({self.n_points}: the {self.n_a} "
                             f"{self.paired.a.modality} rows, then the {self.n_b} {self.paired.b.modality} "
                             f"rows){one_to_one}")
        self._custom = per_point.alias(name)
        self._colors_cache = None
        return name

    def _checked_color(self, color_by: Any) -> str:
        if not isinstance(color_by, str):
            previous = self._custom
            try:
                return self._checked_color(self._custom_values(color_by))
            except Exception:
                self._custom = previous
                raise
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
        if self._custom is not None and column == self._custom.name:
            return self._custom
        parts = []
        for e in (self.paired.a, self.paired.b):
            if column in e.metadata.columns:
                parts.append(e.metadata.select(pl.col(column)))
            else:
                parts.append(pl.DataFrame({column: [None] * len(e)}))
        return concat_frames(parts).get_column(column)

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
        """The colouring on show: "modality", a metadata column, or the name of values given as ``color_by``.

        Set it to a name, or to new per-point values (as the ``color_by`` parameter takes them)."""
        return self._color_by

    @color_by.setter
    def color_by(self, value: Any) -> None:
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
            name = METHOD_NAMES[self._projection]
            return f"{name} 1", f"{name} 2"
        if self._total_variance is None:  # of all points, for the explained variance ratios
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
        point = check_int(point, "point", low=0, high=self.n_points - 1)
        return ("a", int(point)) if point < self.n_a else ("b", int(point) - self.n_a)

    @property
    def points(self) -> pl.DataFrame:
        """One row per point: ``point``, ``side``, ``modality``, ``row``, ``id``, ``x``, ``y``, ``color``."""
        coords = self.coords
        colors, _ = self.colors()
        ids = point_ids(self.paired)
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
        cached = self._colors_cache
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
        mapping = category_colors(classes)  # colour names ('green', 'red') as themselves
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
                df = df.with_columns(caption_column(mine, row_rep).alias("caption"),
                                     caption_column(other, neighbour).alias("neighbour_caption"))
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
        return concat_frames(frames).select(columns)

    # -- search ---------------------------------------------------------------------------------------------------
    def search(self, text: str) -> np.ndarray:
        """Find the points whose caption or any other text or number in their metadata contains ``text``.

        Case-insensitive substring search over every metadata column except ``path`` and binary columns (``image``);
        the views highlight the matches and fade the rest. '' clears the search. Returns the matching point
        numbers (sorted), also in :attr:`matches`.
        """
        if not isinstance(text, str):
            raise TypeError(f"search text must be a string, got {type(text).__name__}")
        self._search = text
        if not text.strip():
            self._matches = None
        else:
            needle = text.strip().lower()
            hits = []
            for offset, e in ((0, self.paired.a), (self.n_a, self.paired.b)):
                found = np.zeros(len(e), dtype=bool)
                for column, dtype in e.metadata.schema.items():
                    if column == "path" or dtype == pl.Binary or dtype.is_nested():
                        continue
                    try:
                        values = e.metadata.get_column(column).cast(pl.String).str.to_lowercase()
                    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
                        continue  # a column with no text form (e.g. Python objects)
                    found |= values.str.contains(needle, literal=True).fill_null(False).to_numpy()
                hits.append(np.flatnonzero(found) + offset)
            self._matches = np.concatenate(hits).astype(np.int64)
        self._refresh_search()
        return np.empty(0, dtype=np.int64) if self._matches is None else self._matches.copy()

    @property
    def search_text(self) -> str:
        """The text of the current search ('' when none)."""
        return self._search

    @property
    def matches(self) -> np.ndarray | None:
        """The point numbers matching the current search (sorted), or None when there is no search."""
        return None if self._matches is None else self._matches.copy()

    def _search_summary(self) -> str:
        if self._matches is None:
            return ""
        return f"{len(self._matches)} of {self.n_points} points match {self._search.strip()!r}"

    # -- previews -------------------------------------------------------------------------------------------------
    def inspect(self, point: int) -> dict[str, Any]:
        """What the side view shows for a point (hover or click): ``modality``, ``id``, ``caption``, ``path``,
        ``image`` (the metadata's raw image bytes, or None) and ``kind`` ("image", "audio" or "none"), with a
        ``message`` when there is nothing to preview (on a set without media it names the metadata columns that
        would enable previews: ``path``, ``image``, ``caption``)."""
        side, row = self.point_modality(point)
        e = self.paired.a if side == "a" else self.paired.b
        meta = e.metadata.row(row, named=True)
        info: dict[str, Any] = {"point": int(point), "modality": e.modality, "row": row, "id": meta["id"],
                                "caption": meta.get("caption"), "path": meta.get("path"), "image": None,
                                "kind": "none", "message": ""}
        path = info["path"]
        image = meta.get("image")
        if isinstance(image, bytes | bytearray) and image:
            info["kind"], info["image"] = "image", bytes(image)
        elif path is None:
            if info["caption"] is None:
                hint = missing_media_hint(e.metadata.columns, e.modality) or "this row has no caption, path or image"
                info["message"] = f"nothing to preview: {hint}"
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
