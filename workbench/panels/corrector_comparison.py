"""CorrectorComparison: :func:`workbench.compare.compare_correctors` as a table and a bar chart of the changes.

The chart shows, per corrector, the change relative to ``none`` (no correction) of R@1 in both directions and of
the centroid distance, on held-out pairs. Error bars are the corrector's own 95% interval moved by the same
baseline: ``[lo - none, hi - none]``. They leave out the baseline's own uncertainty; since both rows are measured
on the same queries, a paired test (:func:`workbench.retrieval.paired_bootstrap_test`) is the sharper question of
whether a change is real.

The table also shows the bias-corrected ``centroid_gap`` with its interval and noise floor (see
:func:`workbench.compare.centroid_gap`): the plug-in centroid distance of a few hundred pairs is biased upward, so a
small corrected gap should be read against the floor.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from workbench.data import PairedEmbeddings
from workbench.export import metric_label
from workbench.figures import LEGEND_ROW
from workbench.panels._base import Panel
from workbench.panels._colors import OKABE_ITO
from workbench.panels._html import format_value, html_table

__all__ = ["CorrectorComparison"]

#: A retrieval metric column (``image_to_text_R@1``), not its interval or test columns (``..._R@1_p_holm``).
_RECALL = re.compile(r"_R@\d+$")
#: Metrics shown in the widget's table (every column stays in :attr:`CorrectorComparison.table`).
TABLE_METRICS = ("centroid_distance", "centroid_gap", "relative_modality_gap", "mean_matched_cosine",
                 "modality_probe_accuracy")


class CorrectorComparison(Panel):
    """Correctors side by side on held-out pairs: the table with intervals, and the changes as grouped bars.

    Parameters
    ----------
    paired : PairedEmbeddings
    correctors : sequence of estimators, or mapping of name to estimator
        As :func:`workbench.compare.compare_correctors`.
    **compare_kwargs
        Passed on (``test_fraction``, ``seed``, ``ks``, ``n_resamples``, ``probe``, ``progress``: a progress bar
        over the correctors while they are fitted and evaluated, shown by default).

    A table computed earlier (and saved, say, with ``table.write_parquet``) is shown without refitting by
    :meth:`from_table`.

    Examples
    --------
    >>> import workbench
    >>> from workbench.correct import MeanCenter
    >>> comparison = CorrectorComparison(workbench.datasets.load("liang2022/clip"), [MeanCenter()],
    ...                                  n_resamples=20, probe=False, progress=False)
    >>> comparison.table["corrector"].to_list()
    ['none', 'MeanCenter()']
    >>> [t.name for t in comparison.figure().data]
    ['Δ R@1 image→text', 'Δ R@1 text→image', 'Δ centroid distance']
    """

    css_class = "wb-corrector-comparison"

    def __init__(self, paired: PairedEmbeddings, correctors: Sequence[Any] | Mapping[str, Any],
                 **compare_kwargs: Any) -> None:
        from workbench.compare import compare_correctors

        if not isinstance(paired, PairedEmbeddings):
            raise TypeError(f"CorrectorComparison needs a PairedEmbeddings, got {type(paired).__name__}")
        if len(correctors) == 0:
            raise ValueError("give at least one corrector to compare with no correction")
        self.paired: PairedEmbeddings | None = paired
        self.model = paired.model
        self.compare_kwargs = dict(compare_kwargs)
        self._table = compare_correctors(paired, correctors, **compare_kwargs)
        self._ui: dict[str, Any] = {}

    @classmethod
    def from_table(cls, table: pl.DataFrame, model: str = "") -> CorrectorComparison:
        """Show a :func:`~workbench.compare.compare_correctors` table computed earlier, without refitting.

        Parameters
        ----------
        table : polars.DataFrame
            ``none`` first, then one row per corrector, with ``n_test``, ``centroid_distance`` and two ``*_R@1``
            columns, each metric with its ``_lo`` / ``_hi`` interval columns.
        model : str
            Named in the chart's title.

        Examples
        --------
        >>> import workbench
        >>> from workbench.compare import compare_correctors
        >>> from workbench.correct import MeanCenter
        >>> table = compare_correctors(workbench.datasets.load("liang2022/clip"), [MeanCenter()], n_resamples=20,
        ...                            probe=False, progress=False)
        >>> CorrectorComparison.from_table(table, model="CLIP").changes()["corrector"].unique().to_list()
        ['MeanCenter()']
        """
        if not isinstance(table, pl.DataFrame):
            raise TypeError(f"from_table needs a polars DataFrame, got {type(table).__name__}")
        r1 = [c for c in table.columns if c.endswith("_R@1")]
        needed = ["corrector", "n_test", "centroid_distance", *r1[:2]]
        needed += [f"{m}_{end}" for m in ("centroid_distance", *r1[:2]) for end in ("lo", "hi")]
        missing = [c for c in needed if c not in table.columns]
        if len(r1) < 2 or missing:
            raise ValueError(f"not a compare_correctors table: missing columns {missing or ['two *_R@1 columns']}")
        if table.height < 2 or table["corrector"][0] != "none":
            raise ValueError("the table must start with the 'none' row and hold at least one corrector")
        panel = cls.__new__(cls)
        panel.paired, panel.model, panel.compare_kwargs = None, str(model), {}
        panel._table, panel._ui = table, {}
        return panel

    @property
    def table(self) -> pl.DataFrame:
        """The :func:`~workbench.compare.compare_correctors` table (``none`` first)."""
        return self._table

    @property
    def r1_columns(self) -> tuple[str, str]:
        """The two R@1 columns (first modality querying the second, then back), e.g. ``image_to_text_R@1``."""
        columns = [c for c in self._table.columns if c.endswith("_R@1")]
        return columns[0], columns[1]

    def changes(self) -> pl.DataFrame:
        """Per corrector (not ``none``): ``metric``, ``change`` (value - none), ``lo`` and ``hi`` (interval - none)."""
        baseline = self._table.row(0, named=True)
        rows = []
        for metric in (*self.r1_columns, "centroid_distance"):
            for record in self._table.slice(1).iter_rows(named=True):
                lo, hi = record.get(f"{metric}_lo"), record.get(f"{metric}_hi")
                rows.append({
                    "corrector": record["corrector"], "metric": metric,
                    "change": record[metric] - baseline[metric],
                    "lo": None if lo is None else lo - baseline[metric],
                    "hi": None if hi is None else hi - baseline[metric],
                })
        return pl.DataFrame(rows, schema={"corrector": pl.String, "metric": pl.String, "change": pl.Float64,
                                          "lo": pl.Float64, "hi": pl.Float64})

    def _label(self, metric: str) -> str:
        return f"Δ {metric_label(metric)}"

    def figure(self, title: bool = True) -> Any:
        """Grouped bars: the change of R@1 (both ways) and of the centroid distance per corrector, with intervals.

        The legend is one row above the bars (clear of the rotated corrector names); ``title=False`` leaves the
        title out (for a paper, whose caption says it).
        """
        import plotly.graph_objects as go

        changes = self.changes()
        fig = go.Figure()
        for k, metric in enumerate((*self.r1_columns, "centroid_distance")):
            part = changes.filter(pl.col("metric") == metric)
            change = part["change"].to_numpy()
            lo = part["lo"].fill_null(np.nan).to_numpy()
            hi = part["hi"].fill_null(np.nan).to_numpy()
            fig.add_trace(go.Bar(
                x=part["corrector"].to_list(), y=change, name=self._label(metric), marker={"color": OKABE_ITO[k]},
                error_y={"type": "data", "symmetric": False, "array": np.nan_to_num(hi - change),
                         "arrayminus": np.nan_to_num(change - lo), "thickness": 1.2},
            ))
        n_test = self._table["n_test"][0]
        text = html.escape(f"{self.model + ': ' if self.model else ''}change against no correction "
                           f"({n_test} held-out pairs, 95% intervals)")
        fig.update_layout(
            barmode="group", template="simple_white", width=760, height=440,
            title={"text": text, "font": {"size": 13}, "y": 0.98, "yanchor": "top"} if title else None,
            yaxis_title="change against no correction", legend=LEGEND_ROW,
            margin={"t": 90 if title else 40},
        )
        fig.update_xaxes(automargin=True)
        fig.add_hline(y=0, line={"color": "#444", "width": 1})
        return fig

    def _html(self) -> str:
        """The table: human labels as headers (the column keys on hover), values with their intervals, and with
        ``compare_correctors(significance=True)``'s columns the system letters and the letters each row beats."""
        table = self._table
        modalities = self.paired.modalities if self.paired is not None else ("image", "text")
        metrics = [m for m in TABLE_METRICS if m in table.columns and table[m].null_count() < table.height]
        metrics += [c for c in table.columns if _RECALL.search(c)]
        cells: dict[str, list[str]] = {"corrector": [html.escape(str(c)) for c in table["corrector"]]}
        significance = "system" in table.columns
        if significance:
            cells["system"] = [html.escape(str(v)) for v in table["system"]]
        for m in metrics:
            values = table[m].to_list()
            los, his = (table.get_column(f"{m}_{end}").to_list() if f"{m}_{end}" in table.columns
                        else [None] * table.height for end in ("lo", "hi"))
            cells[m] = [format_value(v) + ("" if lo is None or hi is None else f" <small>[{lo:.3f}, {hi:.3f}]</small>")
                        for v, lo, hi in zip(values, los, his, strict=True)]
            if m == "centroid_gap" and "centroid_gap_noise_floor" in table.columns:  # and what 0 gap would show
                floors = table["centroid_gap_noise_floor"].to_list()
                cells[m] = [c if f is None else f"{c} <small>noise floor {f:.3f}</small>"
                            for c, f in zip(cells[m], floors, strict=True)]
            if f"{m}_sig" in table.columns:
                cells[m] = [c + _letters_html(row, m) for c, row in zip(cells[m], table.iter_rows(named=True),
                                                                         strict=True)]
        frame = pl.DataFrame(cells)
        caption = f"held-out metrics ({table['n_test'][0]} test pairs; 95% intervals)"
        if significance:
            caption += ("; superscripts: the systems (letters) a row beats, exact McNemar tests over every pair of "
                        "rows, Holm-adjusted, 5% (hover a value for its test against none)")
        labels = {c: metric_label(c, modalities) for c in frame.columns if c not in ("corrector", "system")}
        return html_table(frame, css_class="wb-comparison", formatters=dict.fromkeys(frame.columns, str),
                          caption=caption, labels=labels)

    def _build_widget(self) -> Any:
        import ipywidgets as widgets
        import plotly.graph_objects as go

        table = widgets.HTML(value=self._html())
        table.add_class("wb-comparison-table")
        chart = go.FigureWidget(self.figure())
        chart.add_class("wb-comparison-chart")
        self._ui = {"table": table, "chart": chart}
        return widgets.VBox([self._message_widget(), table, chart])


def _letters_html(row: dict[str, Any], metric: str) -> str:
    """The superscript letters of the rows this row beats at ``metric``, its tests against none in the title."""
    letters = row.get(f"{metric}_sig") or ""
    notes = [f"beats {', '.join(letters)}" if letters else "beats no other row"]
    p, holm, mde = row.get(f"{metric}_p"), row.get(f"{metric}_p_holm"), row.get(f"{metric}_mde")
    if p is not None and p == p:
        notes.append(f"against none: exact McNemar p = {p:.3g}" + ("" if holm is None else f", Holm {holm:.3g}"))
    if mde is not None and mde == mde:
        notes.append(f"smallest change detectable at 80% power: {mde:.3f}")
    return f"<sup class='wb-sig' title='{html.escape('; '.join(notes))}'>{html.escape(letters)}</sup>"
