"""RetrievalBrowser: the top-k results of any query, the correct matches marked, and the worst failures.

Directions: ``"a_to_b"`` (a row queries every row of b) and ``"b_to_a"``. A gallery item is *relevant* to a query
when the two form a pair of ``paired.pairs``. Scores are cosines (float32 dot products of the stored unit rows);
results are ordered by score, ties by lower gallery row. Failures use the ranks of
:func:`workbench.retrieval.per_query_ranks` (pessimistic: a tie with an irrelevant item counts against the match).
With an ``encoder``, a typed query is embedded with ``encoder.encode(modality, [text])`` and searched in the other
modality.

Media: where the metadata has ``path`` (an image or sound file), ``image`` (raw image bytes) or ``caption`` columns,
the widget shows every item by its thumbnail or sound player and caption: the opened query, its correct match, the
top-ranked items, and each row of the list of queries (the worst failures, or the rows given as ``queries=``). A
row's "open" button opens that query. Without such columns the panel says which column would enable previews.

Flip ledgers: ``queries=`` also takes a :class:`workbench.retrieval.FlipLedger` (or its ``frame``): the browser then
lists exactly the ledger's flipped queries, each with its change ("gained": miss -> hit, "lost": hit -> miss) and
its rank before and after, beside its media (:meth:`listed` gains ``change``, ``before_rank`` and ``after_rank``).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import polars as pl

from workbench._params import check_choice, check_int
from workbench.data import Embeddings, PairedEmbeddings
from workbench.panels._base import Panel
from workbench.panels._html import html_table
from workbench.panels._media import media_html, missing_media_hint

__all__ = ["DIRECTIONS", "RetrievalBrowser"]

DIRECTIONS = ("a_to_b", "b_to_a")
#: Side of the thumbnails in the results table and the list of queries, and in the opened query (pixels).
LIST_THUMBNAIL, DETAIL_THUMBNAIL = 64, 160


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
    queries : iterable of int, FlipLedger, or mapping of direction to either, optional
        The query rows the widget lists (and :meth:`listed` returns), in the order given, whatever their rank: e.g.
        the queries whose rank changed between two systems. A :class:`~workbench.retrieval.FlipLedger` (or its
        ``frame``: columns ``query``, ``change``, ``before_rank``, ``after_rank`` [, ``query_id``]) lists its
        flipped queries with their change; its ``query`` values are query rows of the direction it applies to
        (``flip_ledger(..., direction=d)`` of systems over this set), and a ``query_id`` column must match those
        rows' ids. An iterable or ledger applies to ``direction``; a mapping such as ``{"b_to_a": rows}`` to the
        directions it names. Default: the ``n_listed`` worst failures.
    direction : "a_to_b" or "b_to_a", default "a_to_b"
        The direction shown first.
    n_listed : int, default 20
        Failures listed when ``queries`` gives none for a direction.

    Examples
    --------
    >>> import numpy as np, workbench
    >>> paired = workbench.PairedEmbeddings.from_arrays(np.eye(3), np.eye(3) + 0.1, modalities=("image", "text"))
    >>> browser = RetrievalBrowser(paired, k=2)
    >>> browser.query(1).select("rank", "gallery_row", "relevant").rows()
    [(1, 1, True), (2, 0, False)]
    >>> browser.failures().height      # every query finds its match first
    0
    >>> RetrievalBrowser(paired, queries=[2, 0]).listed().select("query_row", "rank").rows()
    [(2, 1), (0, 1)]
    >>> from workbench.retrieval import flip_ledger
    >>> mixed = np.array([[0.6, 0.8, 0], [0.8, 0.6, 0], [0, 0, 1]])   # texts 0 and 1 closer to the other image
    >>> noisy = workbench.PairedEmbeddings.from_arrays(np.eye(3), mixed, modalities=("image", "text"))
    >>> ledger = flip_ledger(noisy, paired)          # queries 0 and 1 go from rank 2 to rank 1
    >>> RetrievalBrowser(paired, queries=ledger).listed().select("query_row", "change", "before_rank", "rank").rows()
    [(0, 'gained', 2, 1), (1, 'gained', 2, 1)]
    """

    css_class = "wb-retrieval-browser"

    def __init__(self, paired: PairedEmbeddings, encoder: Any = None, k: int = 10, *,
                 query_modality: str = "text", queries: Iterable[int] | Mapping[str, Iterable[int]] | None = None,
                 direction: str = "a_to_b", n_listed: int = 20) -> None:
        if not isinstance(paired, PairedEmbeddings):
            raise TypeError(f"RetrievalBrowser needs a PairedEmbeddings, got {type(paired).__name__}")
        self.paired, self.encoder, self.k, self.query_modality = paired, encoder, check_int(k, "k"), query_modality
        self.n_listed = check_int(n_listed, "n_listed", low=0)
        self._ranks: dict[str, np.ndarray] = {}
        self._direction = check_choice(direction, "direction", DIRECTIONS)
        self._flips: dict[str, pl.DataFrame] = {}
        self._queries = self._checked_queries(queries)
        first = self._queries.get(self._direction)
        self._row = int(first[0]) if first is not None and len(first) else 0
        self._text: str | None = None
        self._last: pl.DataFrame | None = None
        self._ui: dict[str, Any] = {}

    def _checked_queries(self, queries: Any) -> dict[str, np.ndarray]:
        if queries is None:
            return {}
        if isinstance(queries, str | bytes):
            raise TypeError("queries must be query rows (integers) or a mapping of direction to rows, got a string")
        given = dict(queries) if isinstance(queries, Mapping) else {self._direction: queries}
        out = {}
        for direction, rows in given.items():
            q, g, pairs = self._sides(direction)
            ledger = self._ledger_frame(rows, direction)
            if ledger is not None:
                self._flips[direction] = ledger
                rows = ledger.get_column("query").to_list()
            arr = np.asarray(list(rows))
            if arr.size == 0:
                arr = arr.astype(np.int64)
            if arr.ndim != 1 or arr.dtype.kind not in "iu":
                raise TypeError(f"queries for {direction!r} must be integer rows of {q.modality}, got {arr[:5]!r}")
            bad = arr[(arr < 0) | (arr >= len(q))]
            if bad.size:
                raise ValueError(f"queries for {direction!r}: rows must be in [0, {len(q)}) of {q.modality}, "
                                 f"got {bad[:5].tolist()}")
            unpaired = np.setdiff1d(arr, pairs[:, 0])
            if unpaired.size:
                raise ValueError(f"queries for {direction!r}: {q.modality} rows {unpaired[:5].tolist()} have no "
                                 f"matching {g.modality} item (no pair), so they have no rank to list")
            out[direction] = arr.astype(np.int64)
            if ledger is not None and "query_id" in ledger.columns:
                ids = q.metadata.get_column("id").gather(arr).cast(pl.String)
                wrong = np.flatnonzero(~(ids == ledger.get_column("query_id").cast(pl.String)).to_numpy())
                if wrong.size:
                    r = int(arr[wrong[0]])
                    raise ValueError(
                        f"queries for {direction!r}: the flip ledger's query {r} has id "
                        f"{ledger['query_id'][int(wrong[0])]!r} but {q.modality} row {r} of this set has id "
                        f"{ids[int(wrong[0])]!r}; make the ledger from systems over this set, in this direction "
                        f"(flip_ledger(..., direction={direction!r}))")
        return out

    @staticmethod
    def _ledger_frame(value: Any, direction: str) -> pl.DataFrame | None:
        """The frame of a FlipLedger (or a ledger frame itself), checked; None for plain query rows."""
        from workbench.retrieval import FlipLedger

        if isinstance(value, FlipLedger):
            value = value.frame
        if not isinstance(value, pl.DataFrame):
            return None
        missing = [c for c in ("query", "change", "before_rank", "after_rank") if c not in value.columns]
        if missing:
            raise ValueError(f"queries for {direction!r}: a frame must be a flip ledger's (workbench.retrieval."
                             f"flip_ledger(...).frame) with columns query, change, before_rank, after_rank; "
                             f"missing {missing}")
        bad = sorted(set(value.get_column("change").to_list()) - {"gained", "lost"})
        if bad:
            raise ValueError(f"queries for {direction!r}: a flip ledger's change is 'gained' or 'lost', got {bad}")
        return value

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
        ranked = self.ranks(direction).filter(pl.col("rank") > 1).sort(["rank", "query_row"],
                                                                       descending=[True, False])
        if n is not None:
            ranked = ranked.head(check_int(n, "n", low=0))
        return self._query_frame(ranked.get_column("query_row").to_numpy(), ranked.get_column("rank"), direction)

    def listed(self, direction: str | None = None) -> pl.DataFrame:
        """The queries the widget lists for ``direction`` (default: the one on show), as :meth:`failures` frames.

        The rows given as ``queries=`` in their order (whatever their rank), else the ``n_listed`` worst failures.
        """
        direction = self._direction if direction is None else direction
        check_choice(direction, "direction", DIRECTIONS)
        rows = self._queries.get(direction)
        if rows is None:
            return self.failures(self.n_listed, direction)
        ranks = self.ranks(direction)
        rank_of = dict(zip(ranks.get_column("query_row").to_list(), ranks.get_column("rank").to_list(), strict=True))
        frame = self._query_frame(rows, pl.Series("rank", [rank_of[int(r)] for r in rows], dtype=pl.Int64), direction)
        flips = self._flips.get(direction)
        if flips is None:
            return frame
        return frame.with_columns(flips.get_column("change").alias("change"),
                                  flips.get_column("before_rank").cast(pl.Int64).alias("before_rank"),
                                  flips.get_column("after_rank").cast(pl.Int64).alias("after_rank"))

    def _query_frame(self, rows: np.ndarray, rank: pl.Series, direction: str) -> pl.DataFrame:
        """Query rows with their rank, best relevant item and top item (the columns of :meth:`failures`)."""
        queries, gallery, pairs = self._sides(direction)
        rows = np.asarray(rows, dtype=np.int64)
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
            "rank": rank,
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

    def _hints(self) -> list[str]:
        """Sentences naming the metadata columns that would enable previews, one per side without media."""
        return [h for h in (missing_media_hint(e.metadata.columns, e.modality) for e in (self.paired.a, self.paired.b))
                if h]

    def _item_html(self, side: Embeddings, row: int, size: int, max_caption: int = 120) -> str:
        """An item's media and caption (or its id when it has neither)."""
        meta = side.metadata.row(int(row), named=True)
        return media_html(meta, size, max_caption=max_caption) or (
            f"<div class='wb-item'>{html.escape(side.modality)} id {html.escape(str(meta['id']))}</div>")

    def _detail_html(self) -> str:
        """The opened query: its media and caption, and its correct match with the match's rank and score."""
        hints = "".join(f"<div class='wb-media-hint'><small><i>{html.escape(h)}</i></small></div>"
                        for h in self._hints())
        if self._text is not None:
            return f"<div class='wb-detail'><b>typed query</b>: {html.escape(self._text)}{hints}</div>"
        queries, gallery, pairs = self._sides(self._direction)
        head = (f"<div><b>{html.escape(queries.modality)} row {self._row}</b> · id "
                f"{html.escape(str(queries.metadata.get_column('id')[self._row]))}</div>")
        query = (f"<div class='wb-detail-query' style='margin-right:2em'>{head}"
                 f"{self._item_html(queries, self._row, DETAIL_THUMBNAIL)}</div>")
        candidates = pairs[pairs[:, 0] == self._row, 1]
        if len(candidates) == 0:
            match = "<div class='wb-detail-match'><i>no correct match (this query has no pair)</i></div>"
        else:
            scores = gallery.vectors[candidates] @ queries.vectors[self._row]
            best = int(candidates[int(np.argmax(scores))])
            ranks = self.ranks(self._direction)
            rank = ranks.filter(pl.col("query_row") == self._row).get_column("rank").item()
            mark = "found first" if rank == 1 else f"ranked {rank}"
            match = (f"<div class='wb-detail-match'><div><b>correct match</b>: {html.escape(gallery.modality)} row "
                     f"{best} · {mark} · score {float(np.max(scores)):.4f}</div>"
                     f"{self._item_html(gallery, best, DETAIL_THUMBNAIL)}</div>")
        return f"<div class='wb-detail' style='display:flex;align-items:flex-start'>{query}{match}</div>{hints}"

    def _results_html(self, result: pl.DataFrame) -> str:
        """The results table, with each item's media and caption in a first column ``item`` when there are any."""
        _, gallery, _ = self._sides(self._direction)
        caption = f"top {len(result)} ({self._direction_label(self._direction)})"
        if missing_media_hint(gallery.metadata.columns, gallery.modality):
            return html_table(result, css_class="wb-results-table", caption=caption)
        shown = result.select(pl.col("gallery_row").alias("item"), *result.columns)
        cells = {int(r): self._item_html(gallery, int(r), LIST_THUMBNAIL, 80) for r in result["gallery_row"]}
        return html_table(shown, css_class="wb-results-table", caption=caption,
                          formatters={"item": lambda r: cells[int(r)]})

    def _listing_row_html(self, row: dict[str, Any], direction: str) -> str:
        """One listed query: its media, its correct match and the item ranked first, with rank and scores."""
        queries, gallery, _ = self._sides(direction)

        def cell(title: str, body: str) -> str:
            return (f"<div style='display:inline-block;vertical-align:top;width:230px;margin-right:1em'>"
                    f"<small><b>{title}</b></small>{body}</div>")

        change = ""
        if row.get("change") is not None:
            colour = "#009E73" if row["change"] == "gained" else "#D55E00"
            change = (f"<span class='wb-flip wb-flip-{html.escape(row['change'])}' style='color:{colour}'><b>"
                      f"{html.escape(row['change'])}</b>: rank {row['before_rank']} → {row['after_rank']}</span> · ")
        return (cell(f"{change}query {html.escape(queries.modality)} row {row['query_row']} · rank {row['rank']}",
                     self._item_html(queries, row["query_row"], LIST_THUMBNAIL, 80))
                + cell(f"correct match · score {row['match_score']:.4f}",
                       self._item_html(gallery, row["match_row"], LIST_THUMBNAIL, 80))
                + cell(f"ranked first · score {row['top_score']:.4f}",
                       self._item_html(gallery, row["top_row"], LIST_THUMBNAIL, 80)))

    def open(self, i: int, direction: str | None = None) -> pl.DataFrame:
        """Open query row ``i`` (what a listed row's "open" button does): :meth:`query` in ``direction``."""
        return self.query(i, self._direction if direction is None else direction)

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
        failure_rows = widgets.VBox([])
        failure_rows.add_class("wb-failure-rows")
        self._ui = {"direction": direction, "row": row, "text": text, "query": query, "results": results,
                    "chart": chart, "failures": failures, "failure_rows": failure_rows}
        direction.observe(self._guarded(self._on_direction), names="value")
        row.observe(self._guarded(lambda change: self.query(int(change["new"]), self._direction)), names="value")
        if text is not None:
            text.observe(self._guarded(lambda change: change["new"] and self.search(change["new"])), names="value")
        self._refresh(self._current(), failures=True)
        return widgets.VBox([widgets.HBox(controls), self._message_widget(), query,
                             widgets.HBox([results, chart]), failures, failure_rows])

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
        ui["query"].value = self._detail_html()
        ui["results"].value = self._results_html(result)
        fig = self.figure()
        with ui["chart"].batch_update():
            ui["chart"].data[0].update(fig.data[0])
            ui["chart"].layout.update(fig.layout)
        if failures:
            self._failures_shown = self._direction
            self._show_listing()

    def _show_listing(self) -> None:
        """The list of queries (worst failures, or the ``queries`` given), each row with an "open" button."""
        import ipywidgets as widgets

        direction = self._direction
        listed = self.listed(direction)
        ranks = self.ranks(direction)
        r1 = float(np.mean(ranks["rank"].to_numpy() == 1))
        label = self._direction_label(direction)
        if direction in self._flips:
            n = dict(listed.get_column("change").value_counts().rows())
            title = (f"{listed.height} flipped queries ({label}) of the flip ledger: {n.get('gained', 0)} gained "
                     f"(miss → hit), {n.get('lost', 0)} lost (hit → miss); ranks on this set: {ranks.height} "
                     f"queries in all, R@1 {r1:.3f}")
        elif direction in self._queries:
            title = (f"{listed.height} chosen queries ({label}), in the order given, with the rank of their match "
                     f"({ranks.height} queries in all, R@1 {r1:.3f})")
        else:
            title = (f"worst failures ({label}): queries whose match is not first, by rank ({ranks.height} queries, "
                     f"R@1 {r1:.3f}); open one to see its results")
        self._ui["failures"].value = f"<div class='wb-table-caption'><b>{html.escape(title)}</b></div>" + (
            "" if listed.height else "<div><i>none</i></div>")
        rows = []
        for item in listed.iter_rows(named=True):
            button = widgets.Button(description=f"open #{item['query_row']}", tooltip="open this query",
                                    layout={"width": "110px", "flex": "0 0 auto"})
            button.add_class("wb-open-query")
            button.on_click(self._guarded(lambda _, q=int(item["query_row"]), d=direction: self.open(q, d)))
            body = widgets.HTML(value=self._listing_row_html(item, direction))
            line = widgets.HBox([button, body], layout={"border_bottom": "1px solid #ddd", "padding": "4px 0"})
            line.add_class("wb-failure-row")
            rows.append(line)
        self._ui["failure_rows"].children = tuple(rows)
