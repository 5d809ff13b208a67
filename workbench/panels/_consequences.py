"""The GapExplorer's consequences readout: what the gap changes beside R@K, following the slider.

:meth:`GapExplorer.show_consequences` makes one :class:`ConsequencesReadout`; each change of the explorer's slider
or corrector then recomputes :func:`workbench.gap.consequences` on a seeded sample of the explorer's pairs (500 by
default, so a move costs a fraction of a second; values are cached per setting) with the explorer's own correction:
``GapShift(delta)`` fitted on all the explorer's pairs, or the explorer's fitted corrector. The readout shows each
value with its bootstrap interval.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import polars as pl

from workbench._params import check_int, check_seed
from workbench.correct import GapShift
from workbench.gap import consequences
from workbench.panels._base import Panel

__all__ = ["ConsequencesReadout"]

#: The metrics on show, with their labels ({a}, {b}: the modalities).
SHOWN = (
    ("mixed_own_share_a", "own share, mixed search ({a} queries)"),
    ("mixed_own_share_b", "own share, mixed search ({b} queries)"),
    ("cluster_modality_homogeneity", "clusters split by modality"),
    ("pair_co_clustered", "pairs in one cluster"),
    ("cluster_v_measure", "cluster V-measure vs labels"),
    ("flip_noise_a_to_b", "top-1 flips under noise ({a}→{b})"),
    ("flip_int8_a_to_b", "top-1 flips under int8 ({a}→{b})"),
    ("intra_direct_ndcg@10_a", "{a}→{a} NDCG@10 direct"),
    ("intra_via_b_ndcg@10_a", "{a}→{a} NDCG@10 through {b}"),
)


class ConsequencesReadout(Panel):
    """A compact table of :func:`workbench.gap.consequences` for what a GapExplorer shows.

    Parameters
    ----------
    explorer : GapExplorer
        The explorer to follow (its pairs, slider and corrector).
    labels : array-like, optional
        One class label per pair of the explorer's ``paired`` (for the clustering scores against labels and the
        label-based relevance).
    max_pairs : int, default 500
        A seeded sample of this many pairs is evaluated (all when fewer).
    n_boot, seed : bootstrap resamples and the seed of the sample, k-means, the noise and the resamples.

    Examples
    --------
    >>> import workbench
    >>> from workbench.panels import GapExplorer
    >>> explorer = GapExplorer(workbench.datasets.load("liang2022/clip"))
    >>> readout = explorer.show_consequences(max_pairs=200, n_boot=20)
    >>> before = readout.values["mixed_own_share_a"]
    >>> explorer.delta = 1.0
    >>> readout.values["mixed_own_share_a"] < before
    True
    """

    css_class = "wb-gap-consequences"

    def __init__(self, explorer: Any, *, labels: Any = None, max_pairs: int = 500, n_boot: int = 100,
                 seed: int = 0) -> None:
        self.explorer = explorer
        paired = explorer.paired
        max_pairs, self.n_boot, self.seed = check_int(max_pairs, "max_pairs", low=2), check_int(n_boot, "n_boot"), \
            check_seed(seed)
        chosen = np.arange(paired.n_pairs)
        if paired.n_pairs > max_pairs:
            chosen = np.sort(np.random.default_rng(seed).choice(paired.n_pairs, size=max_pairs, replace=False))
        self.sample = paired.subset(chosen) if len(chosen) < paired.n_pairs else paired
        if labels is not None:
            labels = np.asarray(labels)
            if len(labels) != paired.n_pairs:
                raise ValueError(f"labels must hold one label per pair of the explorer ({paired.n_pairs}), got "
                                 f"{len(labels)}")
            labels = labels[chosen]
        self.labels = labels
        self.note = (f"a seeded sample of {len(chosen)} of {paired.n_pairs} pairs" if len(chosen) < paired.n_pairs
                     else f"all {paired.n_pairs} pairs")
        self._cache: dict[tuple[str, float], pl.DataFrame] = {}
        self._ui: dict[str, Any] = {}
        self.frame = self._compute()

    def _setting(self) -> tuple[tuple[str, float], Any]:
        e = self.explorer
        if e.corrector == "GapShift":
            return ("GapShift", e.delta), GapShift(delta=e.delta).fit(e.paired)
        return (e.corrector, 0.0), e.fitted_[e.corrector]

    def _compute(self) -> pl.DataFrame:
        key, corrector = self._setting()
        if key not in self._cache:
            self._cache[key] = consequences(self.sample, labels=self.labels, corrector=corrector,
                                            n_boot=self.n_boot, seed=self.seed)
        return self._cache[key]

    def update(self) -> None:
        """Recompute for the explorer's current setting (the explorer calls it on every change)."""
        self.frame = self._compute()
        if self._ui:
            self._ui["table"].value = self.html()

    @property
    def values(self) -> dict[str, float | None]:
        """Every consequence's value at the explorer's current setting."""
        return dict(zip(self.frame["metric"].to_list(), self.frame["value"].to_list(), strict=True))

    def html(self) -> str:
        """The readout as an HTML table (rows with an undefined value are left out)."""
        a, b = (html.escape(m) for m in self.explorer.paired.modalities)
        rows = {r["metric"]: r for r in self.frame.iter_rows(named=True)}
        cells = []
        for metric, label in SHOWN:
            row = rows.get(metric)
            if row is None or row["value"] is None:
                continue
            cells.append(f"<tr class='wb-consequence-{metric.replace('@', '').replace('_', '-')}'>"
                         f"<td>{label.format(a=a, b=b)}</td><td><b>{row['value']:.3f}</b></td>"
                         f"<td><small>[{row['low']:.3f}, {row['high']:.3f}]</small></td></tr>")
        return ("<table><tr><th colspan='3'>what the gap changes</th></tr>" + "".join(cells) +
                f"</table><small>{html.escape(self.note)}; 95% bootstrap intervals</small>")

    def _build_widget(self) -> Any:
        import ipywidgets as widgets

        table = widgets.HTML(value=self.html())
        table.add_class("wb-gap-consequences-table")
        self._ui = {"table": table}
        return widgets.VBox([table])

    def figure(self) -> Any:
        """The values on show with their intervals as a plotly table."""
        import plotly.graph_objects as go

        f = self.frame.drop_nulls("value")
        return go.Figure(go.Table(header={"values": ["metric", "value", "low", "high"]},
                                  cells={"values": [f["metric"].to_list(), *(f[c].round(4).to_list()
                                                                             for c in ("value", "low", "high"))]}))
