"""RetrievalBrowser: the top-k results of any query, the correct matches marked, and the worst failures.

Directions: ``"a_to_b"`` (a row queries every row of b) and ``"b_to_a"``. A gallery item is *relevant* to a query
when the two form a pair of ``paired.pairs``. Scores are cosines (float32 dot products of the stored unit rows);
results are ordered by score, ties by lower gallery row. Failures use the ranks of
:func:`workbench.retrieval.per_query_ranks` (pessimistic: a tie with an irrelevant item counts against the match).
With an ``encoder``, a typed query is embedded with ``encoder.encode(modality, [text])`` and searched in the other
modality.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import polars as pl

from workbench._params import check_choice, check_int
from workbench.data import Embeddings, PairedEmbeddings
from workbench.panels._base import Panel
from workbench.panels._html import html_table

__all__ = ["DIRECTIONS", "RetrievalBrowser"]

DIRECTIONS = ("a_to_b", "b_to_a")


class RetrievalBrowser(Panel):
    """Browse cross-modal retrieval: pick a query (or type one), see the top ``k``, and the worst failures.

    Parameters
    ----------
    paired : PairedEmbeddings
    encoder : Encoder, optional
        Anything with ``encode(modality, items)`` (see :mod:`workbench.encoders`); enables :meth:`search`.
    k : int, default 10
        Results per query.
    query_modality : str, default "text"
        The modality of typed queries (passed to ``encoder.encode``).

    Examples
    --------
    >>> import numpy as np, workbench
    >>> paired = workbench.PairedEmbeddings.from_arrays(np.eye(3), np.eye(3) + 0.1, modalities=("image", "text"))
    >>> browser = RetrievalBrowser(paired, k=2)
    >>> browser.query(1).select("rank", "gallery_row", "relevant").rows()
    [(1, 1, True), (2, 0, False)]
    >>> browser.failures().height      # every query finds its match first
    0
    """

    css_class = "wb-retrieval-browser"

    def __init__(self, paired: PairedEmbeddings, encoder: Any = None, k: int = 10, *,
                 query_modality: str = "text") -> None:
        if not isinstance(paired, PairedEmbeddings):
            raise TypeError(f"RetrievalBrowser needs a PairedEmbeddings, got {type(paired).__name__}")
        self.paired, self.encoder, self.k, self.query_modality = paired, encoder, check_int(k, "k"), query_modality
        self._ranks: dict[str, np.ndarray] = {}
        self._direction = "a_to_b"
        self._row = 0
        self._text: str | None = None
        self._last: pl.DataFrame | None = None
        self._ui: dict[str, Any] = {}

    # -- sides ----------------------------------------------------------------------------------------------------
    def _sides(self, direction: str) -> tuple[Embeddings, Embeddings, np.ndarray]:
        """(query side, gallery side, relevance pairs as (query row, gallery row))."""
        check_choice(direction, "direction", DIRECTIONS)
        if direction == "a_to_b":
            return self.paired.a, self.paired.b, self.paired.pairs
        return self.paired.b, self.paired.a, self.paired.pairs[:, ::-1]

    def _direction_label(self, direction: str) -> str:
        q, g, _ = self._sides(direction)
        return f"{q.modality} → {g.modality}"

    @property
    def direction(self) -> str:
        """The direction on show ("a_to_b" or "b_to_a")."""
        return self._direction

    # -- queries --------------------------------------------------------------------------------------------------
    def _results(self, vector: np.ndarray, gallery: Embeddings, relevant: set[int] | None) -> pl.DataFrame:
        scores = gallery.vectors @ vector
        k = min(self.k, len(gallery))
        top = np.argsort(-scores, kind="stable")[:k]
        frame: dict[str, Any] = {
            "rank": np.arange(1, k + 1),
            "gallery_row": top,
            "id": gallery.metadata.get_column("id").gather(top),
        }
        if "caption" in gallery.metadata.columns:
            frame["caption"] = gallery.metadata.get_column("caption").cast(pl.String).gather(top)
        frame["score"] = scores[top].astype(np.float64)
        frame["relevant"] = pl.Series([None] * k, dtype=pl.Boolean) if relevant is None else [
            int(r) in relevant for r in top]
        return pl.DataFrame(frame)

    def query(self, i: int, direction: str = "a_to_b") -> pl.DataFrame:
        """The top ``k`` gallery items for query row ``i`` (also shown in the widget).

        Returns
        -------
        polars.DataFrame
            ``rank``, ``gallery_row``, ``id``, ``caption`` (when the gallery has captions), ``score`` (cosine) and
            ``relevant`` (the item is paired with the query).
        """
        queries, gallery, pairs = self._sides(direction)
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < len(queries):
            raise ValueError(f"query row must be an integer in [0, {len(queries)}) of {queries.modality}, got {i!r}")
        relevant = set(pairs[pairs[:, 0] == i, 1].tolist())
        result = self._results(queries.vectors[int(i)], gallery, relevant)
        self._direction, self._row, self._text, self._last = direction, int(i), None, result
        self._refresh(result)
        return result

    def search(self, text: str, *, gallery: str | None = None) -> pl.DataFrame:
        """Embed a typed query with the encoder and return the top ``k`` items of the gallery side.

        ``gallery`` ("a" or "b") defaults to the side whose modality is not ``query_modality``. ``relevant`` is
        null (a typed query has no ground truth).
        """
        if self.encoder is None:
            raise ValueError("typed queries need an encoder: RetrievalBrowser(paired, encoder=...)")
        if not isinstance(text, str) or not text.strip():
            raise ValueError("type a non-empty query")
        if gallery is None:
            candidates = [s for s, e in (("a", self.paired.a), ("b", self.paired.b))
                          if e.modality != self.query_modality]
            if len(candidates) != 1:
                raise ValueError(f"cannot tell which side to search for a {self.query_modality} query "
                                 f"(modalities {self.paired.modalities}); pass gallery='a' or 'b'")
            gallery = candidates[0]
        if gallery not in ("a", "b"):
            raise ValueError(f"gallery must be 'a' or 'b', got {gallery!r}")
        side = self.paired.a if gallery == "a" else self.paired.b
        vector = np.asarray(self.encoder.encode(self.query_modality, [text]), dtype=np.float64)
        if vector.ndim != 2 or vector.shape != (1, side.dim):
            raise ValueError(f"the encoder returned shape {vector.shape} for one query; the {side.modality} "
                             f"embeddings have {side.dim} dimensions")
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0:
            raise ValueError("the encoder returned a zero or non-finite embedding for the query")
        result = self._results((vector[0] / norm).astype(np.float32), side, None)
        self._text, self._last = text, result
        self._direction = "b_to_a" if gallery == "a" else "a_to_b"
        self._refresh(result)
        return result

    def ranks(self, direction: str = "a_to_b") -> pl.DataFrame:
        """Every paired query with the rank of its first relevant item (``query_row``, ``rank``)."""
        queries, gallery, pairs = self._sides(direction)
        if direction not in self._ranks:
            from workbench.retrieval import per_query_ranks

            rows = np.unique(pairs[:, 0])
            relevance = np.stack([np.searchsorted(rows, pairs[:, 0]), pairs[:, 1]], axis=1)
            self._ranks[direction] = np.stack([rows, per_query_ranks(queries.vectors[rows], gallery.vectors,
                                                                     relevance).ranks], axis=1)
        both = self._ranks[direction]
        return pl.DataFrame({"query_row": both[:, 0], "rank": both[:, 1]})

    def failures(self, n: int | None = 20, direction: str = "a_to_b") -> pl.DataFrame:
        """The worst queries: those whose first relevant item is not ranked first, worst rank first.

        Returns
        -------
        polars.DataFrame
            ``query_row``, ``query_id``, ``query_caption`` (when the queries have captions), ``rank`` (of the first
            relevant item, from :func:`~workbench.retrieval.per_query_ranks`), ``match_row`` / ``match_id`` /
            ``match_score`` (the best relevant item), ``top_row`` / ``top_id`` / ``top_score`` (what came first);
            ordered by rank (descending), then query row. At most ``n`` rows (all with ``n=None``).
        """
        queries, gallery, pairs = self._sides(direction)
        ranked = self.ranks(direction).filter(pl.col("rank") > 1).sort(["rank", "query_row"],
                                                                       descending=[True, False])
        if n is not None:
            ranked = ranked.head(check_int(n, "n", low=0))
        rows = ranked.get_column("query_row").to_numpy()
        scores = queries.vectors[rows] @ gallery.vectors.T if len(rows) else np.empty((0, len(gallery)))
        top = np.argmax(scores, axis=1) if len(rows) else np.empty(0, dtype=np.int64)
        match = np.empty(len(rows), dtype=np.int64)
        for r, q in enumerate(rows):
            candidates = pairs[pairs[:, 0] == q, 1]
            match[r] = candidates[np.argmax(scores[r, candidates])]
        frame: dict[str, Any] = {"query_row": rows, "query_id": queries.metadata.get_column("id").gather(rows)}
        if "caption" in queries.metadata.columns:
            frame["query_caption"] = queries.metadata.get_column("caption").cast(pl.String).gather(rows)
        frame.update({
            "rank": ranked.get_column("rank"),
            "match_row": match, "match_id": gallery.metadata.get_column("id").gather(match),
            "match_score": scores[np.arange(len(rows)), match].astype(np.float64),
            "top_row": top, "top_id": gallery.metadata.get_column("id").gather(top),
            "top_score": scores[np.arange(len(rows)), top].astype(np.float64),
        })
        return pl.DataFrame(frame)

    # -- display --------------------------------------------------------------------------------------------------
    def _query_html(self) -> str:
        if self._text is not None:
            return f"<b>typed query</b>: {html.escape(self._text)}"
        queries, _, _ = self._sides(self._direction)
        meta = queries.metadata.row(self._row, named=True)
        caption = f" · {html.escape(str(meta['caption']))}" if meta.get("caption") is not None else ""
        return f"<b>{html.escape(queries.modality)} row {self._row}</b> · id {html.escape(str(meta['id']))}{caption}"

    def _current(self) -> pl.DataFrame:
        """The results on show (query row 0 of a until a query is made)."""
        if self._last is None:
            queries, gallery, pairs = self._sides(self._direction)
            relevant = set(pairs[pairs[:, 0] == self._row, 1].tolist())
            self._last = self._results(queries.vectors[self._row], gallery, relevant)
        return self._last

    def figure(self) -> Any:
        """A static bar chart of the current query's top-k scores (relevant items in green)."""
        import plotly.graph_objects as go

        result = self._current()
        labels = [f"{r}. {html.escape(str(i))}" for r, i in zip(result["rank"], result["id"], strict=True)]
        colors = ["#009E73" if rel else "#999999" for rel in result["relevant"].fill_null(False)]
        fig = go.Figure(go.Bar(x=result["score"].to_list(), y=labels, orientation="h", marker={"color": colors},
                               name="score", hovertext=result.get_column("caption").to_list()
                               if "caption" in result.columns else None))
        fig.update_layout(title={"text": f"{self._direction_label(self._direction)}: {self._query_html()}",
                                 "font": {"size": 13}},
                          template="simple_white", xaxis_title="cosine", yaxis={"autorange": "reversed"},
                          width=640, height=max(250, 40 + 28 * len(labels)))
        return fig

    def _build_widget(self) -> Any:
        import ipywidgets as widgets
        import plotly.graph_objects as go

        direction = widgets.ToggleButtons(options=[(self._direction_label(d), d) for d in DIRECTIONS],
                                          value=self._direction, description="direction")
        direction.add_class("wb-direction")
        queries, _, _ = self._sides(self._direction)
        row = widgets.IntSlider(value=self._row, min=0, max=len(queries) - 1, description="query row",
                                continuous_update=False, style={"description_width": "initial"})
        row.add_class("wb-query-row")
        controls = [direction, row]
        text = None
        if self.encoder is not None:
            text = widgets.Text(placeholder=f"type a {self.query_modality} query and press Enter",
                                description="search", continuous_update=False)
            text.add_class("wb-query-text")
            controls.append(text)
        query = widgets.HTML(value="")
        query.add_class("wb-query")
        results = widgets.HTML(value="")
        results.add_class("wb-results")
        chart = go.FigureWidget(self.figure())
        chart.add_class("wb-results-chart")
        failures = widgets.HTML(value="")
        failures.add_class("wb-failures")
        self._ui = {"direction": direction, "row": row, "text": text, "query": query, "results": results,
                    "chart": chart, "failures": failures}
        direction.observe(self._guarded(self._on_direction), names="value")
        row.observe(self._guarded(lambda change: self.query(int(change["new"]), self._direction)), names="value")
        if text is not None:
            text.observe(self._guarded(lambda change: change["new"] and self.search(change["new"])), names="value")
        self._refresh(self._current(), failures=True)
        return widgets.VBox([widgets.HBox(controls), self._message_widget(), query,
                             widgets.HBox([results, chart]), failures])

    def _on_direction(self, change: dict[str, Any]) -> None:
        queries, _, _ = self._sides(change["new"])
        self._ui["row"].max = len(queries) - 1
        self.query(min(self._row, len(queries) - 1), change["new"])

    def _refresh(self, result: pl.DataFrame, failures: bool = False) -> None:
        if not self._ui:
            return
        ui = self._ui
        if ui["direction"].value != self._direction:
            ui["direction"].value = self._direction
        if getattr(self, "_failures_shown", None) != self._direction:
            failures = True
        if self._text is None and ui["row"].value != self._row:
            ui["row"].value = self._row
        ui["query"].value = self._query_html()
        ui["results"].value = html_table(result, css_class="wb-results-table",
                                         caption=f"top {len(result)} ({self._direction_label(self._direction)})")
        fig = self.figure()
        with ui["chart"].batch_update():
            ui["chart"].data[0].update(fig.data[0])
            ui["chart"].layout.update(fig.layout)
        if failures:
            self._failures_shown = self._direction
            worst = self.failures(20, self._direction)
            ui["failures"].value = html_table(
                worst, css_class="wb-failures-table",
                caption=f"worst failures ({self._direction_label(self._direction)}): queries whose match is not "
                        f"first, by rank ({self.ranks(self._direction).height} queries, "
                        f"R@1 {np.mean(self.ranks(self._direction)['rank'].to_numpy() == 1):.3f})")
