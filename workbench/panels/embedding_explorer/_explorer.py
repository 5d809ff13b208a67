"""The explorer as a panel: the controller with its widget (controls, a plotly or jupyter-scatter view, a preview
and the neighbour table) and its static figure."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import workbench.panels.embedding_explorer._jscatter as _jscatter
from workbench.panels._base import Panel
from workbench.panels._html import html_table
from workbench.panels._media import AUDIO_SUFFIXES, media_html, missing_media_hint, thumbnail
from workbench.panels.embedding_explorer._controller import EmbeddingController
from workbench.panels.embedding_explorer._plotly import PlotlyFigure, PlotlyView
from workbench.projection import METHODS

__all__ = ["JSCATTER_MIN_POINTS", "EmbeddingExplorer"]

#: ``backend="auto"`` uses jupyter-scatter for more points than this (and plotly up to it).
JSCATTER_MIN_POINTS = 100_000

_NO_SELECTION = "<small>select points (box or lasso) to list their cross-modal neighbours</small>"
#: Side of the thumbnails in the selection table (pixels).
TABLE_THUMBNAIL = 48


class EmbeddingExplorer(EmbeddingController, Panel):
    """Both modalities in one 2-D projection, coloured by modality or any metadata column.

    Parameters
    ----------
    paired : PairedEmbeddings
        At least 3 points in all (4 for UMAP and t-SNE).
    projection : "pca", "umap" or "tsne", default "pca"
        See :func:`workbench.projection.project` (seeded, cached in ``$WORKBENCH_CACHE_DIR/projections``).
    color_by : str or 1-D values, default "modality"
        ``"modality"``, a metadata column present on either side, or values of your own (a polars Series, named by
        its name, or an array or list, named "values"): one per point (the a rows, then the b rows), or, for a
        one-to-one set, one per pair (value j colours both points of pair j). Floats colour continuously (Viridis
        with a colour bar); the values join the colour menu under their name (one such colouring at a time: new
        values replace the previous ones). E.g. where the two modalities' neighbourhoods agree, per pair:
        ``pl.Series("agreement", workbench.similarity.neighbourhood_agreement(*paired.matched(), k=10))``.
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
    #: The widget's parts by name (None until ``.widget`` is built).
    _ui: dict[str, Any] | None = None
    #: The view in the widget: a PlotlyView or a JScatterView (None until ``.widget`` is built).
    _view: Any = None
    _menu_sync = False
    _plotly: PlotlyFigure | None = None

    def _resolve_backend(self, backend: str) -> str:
        if backend == "auto":
            return "jscatter" if self.n_points > JSCATTER_MIN_POINTS and _jscatter.available() else "plotly"
        if backend == "jscatter" and not _jscatter.available():
            raise ImportError(f"backend='jscatter' needs jupyter-scatter: {_jscatter.INSTALL_HINT} "
                              "(or pip install jupyter-scatter), or use backend='plotly'")
        return backend

    def figure(self) -> Any:
        """A static plotly figure of the current view (projection, colours, pair lines, selection)."""
        if self._plotly is None:
            self._plotly = PlotlyFigure(self)
        return self._plotly.figure()

    # -- the widget -----------------------------------------------------------------------------------------------
    def _build_widget(self) -> Any:
        import ipywidgets as widgets

        projection = widgets.Dropdown(options=list(METHODS), value=self._projection, description="projection")
        projection.add_class("wb-projection")
        color = widgets.Dropdown(options=self.color_options, value=self._color_by, description="colour")
        color.add_class("wb-color-by")
        lines = widgets.Checkbox(value=self._show_pairs, description="pair lines", indent=False)
        lines.add_class("wb-pair-lines")
        if self.backend == "jscatter":
            self._view = _jscatter.JScatterView(self)
        else:
            self._view = self._plotly = PlotlyView(self)
        plot = self._view.widget
        plot.add_class("wb-embedding-plot")
        hints = [h for h in (missing_media_hint(e.metadata.columns, e.modality)
                             for e in (self.paired.a, self.paired.b)) if h]
        start = "<small>hover over or click a point</small>" + "".join(
            f"<br><small class='wb-media-hint'><i>{html.escape(h)}</i></small>" for h in hints)
        preview_text = widgets.HTML(value=start)
        preview_text.add_class("wb-preview-text")
        image = widgets.Image(layout={"display": "none", "max_width": "220px"})
        image.add_class("wb-preview-image")
        audio = widgets.Audio(autoplay=False, controls=True, layout={"display": "none"})
        audio.add_class("wb-preview-audio")
        preview = widgets.VBox([preview_text, image, audio], layout={"width": "240px"})
        preview.add_class("wb-preview")
        table = widgets.HTML(value=_NO_SELECTION)
        table.add_class("wb-selection-table")
        search = widgets.Text(value=self._search, placeholder="search captions and metadata", description="search",
                              continuous_update=True)
        search.add_class("wb-search")
        search_count = widgets.HTML(value=html.escape(self._search_summary()))
        search_count.add_class("wb-search-count")
        self._ui = {"projection": projection, "color": color, "lines": lines, "plot": plot,
                    "preview_text": preview_text, "image": image, "audio": audio, "table": table,
                    "search": search, "search_count": search_count}
        search.observe(self._guarded(lambda change: self.search(change["new"])), names="value")
        projection.observe(self._guarded(self._on_control("projection")), names="value")
        color.observe(self._guarded(self._on_control("color_by")), names="value")
        lines.observe(self._guarded(self._on_control("show_pairs")), names="value")
        self._refresh_selection()
        self._refresh_preview()
        if self._matches is not None:
            self._refresh_search()
        return widgets.VBox([widgets.HBox([projection, color, lines]), widgets.HBox([search, search_count]),
                             self._message_widget(),
                             widgets.HBox([plot, preview]), table])

    def _on_control(self, name: str) -> Any:
        def handler(change: dict[str, Any]) -> None:
            if not self._menu_sync and getattr(self, name) != change["new"]:
                setattr(self, name, change["new"])

        return handler

    def _refresh_points(self, positions: bool = False, colors: bool = False, lines: bool = False) -> None:
        if not self._ui:
            return
        ui = self._ui
        if list(ui["color"].options) != self.color_options:  # new values given as color_by join the menu
            self._menu_sync = True  # the menu jumps to its first option meanwhile: not a choice of the user's
            try:
                ui["color"].options = self.color_options
            finally:
                self._menu_sync = False
        for control, value in (("projection", self._projection), ("color", self._color_by),
                               ("lines", self._show_pairs)):
            if ui[control].value != value:
                ui[control].value = value
        self._view.refresh(positions=positions, colors=colors, lines=lines)

    def _refresh_selection(self) -> None:
        if not self._ui:
            return
        ui = self._ui
        sel = self._selected
        self._view.show_selection(sel)
        if len(sel) == 0:
            ui["table"].value = _NO_SELECTION
            return
        shown = sel[: self.max_table_items]
        table = self._neighbour_table(shown) if len(shown) < len(sel) else self.selection
        note = f"{len(sel)} selected" + (f"; the first {len(shown)} listed" if len(shown) < len(sel) else "")
        shown, formatters = self._with_previews(table)
        ui["table"].value = html_table(
            shown, css_class="wb-neighbours", formatters=formatters,
            caption=f"{note}, each with its {self.k} nearest items of the other modality (cosine, original space)")

    def _with_previews(self, table: Any) -> tuple[Any, dict[str, Any]]:
        """The neighbour table as shown: the item's and the neighbour's media (thumbnail or player, and caption)
        as first columns ``item`` and ``neighbour`` when either side has media or captions, and html formatters."""
        import polars as pl

        sides = (self.paired.a, self.paired.b)
        if all(missing_media_hint(e.metadata.columns, e.modality) for e in sides):
            return table.drop("point"), {}
        point = table.get_column("point").to_numpy()
        other = table.get_column("neighbour_row").to_numpy() + (point < self.n_a) * self.n_a
        shown = table.drop("point").with_columns(item=pl.Series(point), neighbour=pl.Series(other))
        front = ["item", "modality", "row", "id", "rank", "neighbour"]
        shown = shown.select(front + [c for c in shown.columns if c not in front])
        cells = {p: self._media_cell(int(p)) for p in set(point.tolist()) | set(other.tolist())}
        return shown, {"item": cells.__getitem__, "neighbour": cells.__getitem__}

    def _media_cell(self, point: int) -> str:
        side, row = self.point_modality(point)
        e = self.paired.a if side == "a" else self.paired.b
        return media_html(e.metadata.row(row, named=True), TABLE_THUMBNAIL, max_caption=60) or "—"

    def _refresh_search(self) -> None:
        if not self._ui:
            return
        if self._ui["search"].value != self._search:
            self._ui["search"].value = self._search
        self._ui["search_count"].value = html.escape(self._search_summary())
        self._view.show_matches()

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
            ui["image"].value, ui["image"].format = thumbnail(info["image"] or info["path"])
            ui["image"].layout.display = ""
        elif info["kind"] == "audio":
            path = Path(str(info["path"]))
            ui["audio"].format = AUDIO_SUFFIXES[path.suffix.lower()]
            ui["audio"].value = path.read_bytes()
            ui["audio"].layout.display = ""
