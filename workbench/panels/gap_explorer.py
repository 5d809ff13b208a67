"""GapExplorer: slide the gap shift, or pick a corrector, and watch the gap metrics, R@K, the loss and the points.

The slider sets ``delta`` of :class:`workbench.correct.GapShift` (Liang et al., NeurIPS 2022): 0 is the model's own
embedding, 1 closes the gap, negative values widen it. Each move updates every :func:`workbench.gap.gap_report`
metric (the cross-validated modality probe on demand), R@1/5/10 in both directions, the CLIP loss and a 2-D view:
a PCA fitted ONCE on the original embeddings, through which the moved points are placed, so they move continuously.
The update costs one fused pass over a similarity matrix computed once (see :class:`workbench.gap.ShiftedGap`): about
60 ms for 5,000 pairs of 512-d embeddings on 2 cores. Other correctors are applied as fitted (each fitted once on the
matched rows, then cached; trained ones such as ``LinearAdapter`` are not retrained).
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.correct import ALL_CORRECTORS, GapShift
from workbench.data import PairedEmbeddings
from workbench.export import metric_label
from workbench.gap import ShiftedGap, ShiftResult, core_metrics
from workbench.panels._base import Panel
from workbench.panels._colors import OKABE_ITO
from workbench.panels._consequences import ConsequencesReadout

__all__ = ["GapExplorer", "metric_css_class"]

#: Keys of ``gap_report`` in its order (the explorer's metrics start with these).
REPORT_KEYS = ("centroid_distance", "paired_distance", "relative_modality_gap", "alignment", "uniformity_a",
               "uniformity_b", "mean_matched_cosine", "mean_unmatched_cosine", "intra_cosine_a", "intra_cosine_b",
               "modality_probe_accuracy", "gap_top1_share", "gap_top5_share", "gap_top20_share")
#: Most pairs the explorer keeps (a seeded sample above this; the similarity matrix is N_a x N_b float32).
MAX_PAIRS = 10_000
_CORRECTORS = {cls.__name__: cls for cls in ALL_CORRECTORS}


def metric_css_class(key: str) -> str:
    """The CSS class of a metric's readout widget (a DOM hook for browser tests).

    Examples
    --------
    >>> metric_css_class("centroid_distance"), metric_css_class("a_to_b_R@1")
    ('wb-metric-centroid-distance', 'wb-metric-a-to-b-r1')
    """
    return "wb-metric-" + key.lower().replace("@", "").replace("_", "-")


def _format(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


class GapExplorer(Panel):
    """Move the modalities along the gap (or correct them) and see what changes.

    Parameters
    ----------
    paired : PairedEmbeddings
        At least 2 paired items per modality. Above ``max_pairs`` pairs a seeded sample is explored (said in
        ``notes``).
    corrector : corrector class, instance or name, default GapShift
        The corrector shown first; one of :data:`workbench.correct.ALL_CORRECTORS`. An instance (e.g.
        ``AblateGapDimensions(k=5)``) is used for its class in the dropdown; a ``GapShift`` instance sets the
        starting ``delta``. Correctors are fitted on the matched rows of the pairs on show and evaluated on the same
        pairs (an in-sample view: an orthogonal ``Procrustes`` map fits 500 CLIP pairs almost perfectly), and the
        panel says so in a badge, "fitted on these pairs (in-sample)", while such a corrector is on show (the δ
        slider is then disabled: δ belongs to GapShift); for held-out numbers use
        :class:`~workbench.panels.CorrectorComparison`.
    delta : float, optional
        Starting slider value (default: the GapShift instance's delta, else 0).
    ks : R@K cut-offs, default (1, 5, 10).
    uniformity_rows : int, default 1000
        Uniformity (O(N^2)) uses a seeded subsample of this many items per modality when there are more --
        the subsample ``gap_report(..., max_rows=uniformity_rows, seed=seed)`` draws, so the values agree with it.
    max_pairs : int, default 10,000
    seed : int, default 0
        Seed of the samples, the probe's folds and the PCA.
    delta_range : (float, float), default (-1, 1)
        The slider's range (``delta`` outside it raises a ValueError).
    logit_scale, batch_size : the CLIP loss's (100 and 50, as Liang et al.).

    Attributes
    ----------
    delta : float
        The GapShift strength; setting it (Python or slider) selects GapShift and updates everything.
    corrector : str
        The name of the corrector on show; set it to a name, class or instance.
    metrics : dict
        The values on show: every ``gap_report`` key (``modality_probe_accuracy`` is None until
        :meth:`compute_probe`), ``a_to_b_R@k`` (paired a items query all b items), ``b_to_a_R@k`` and
        ``clip_loss``.
    coords : ndarray of shape (N_a + N_b, 2)
        The points on show (a rows, then b rows) in the PCA frame fitted on the original data (None when a
        corrector changes the dimension).

    Examples
    --------
    >>> import workbench
    >>> explorer = GapExplorer(workbench.datasets.load("liang2022/clip"))
    >>> round(explorer.metrics["centroid_distance"], 4), explorer.metrics["a_to_b_R@1"]
    (0.8514, 0.552)
    >>> explorer.delta = 1.0                      # GapShift closes the gap, and costs R@1
    >>> round(explorer.metrics["centroid_distance"], 4), explorer.metrics["a_to_b_R@1"]
    (0.0078, 0.358)
    >>> explorer.corrector = "MeanCenter"          # fitted once, on all pairs (in-sample)
    >>> round(explorer.metrics["centroid_distance"], 4), explorer.metrics["a_to_b_R@1"]
    (0.0279, 0.542)
    """

    css_class = "wb-gap-explorer"

    def __init__(
        self,
        paired: PairedEmbeddings,
        corrector: Any = GapShift,
        *,
        delta: float | None = None,
        ks: Sequence[int] = (1, 5, 10),
        uniformity_rows: int = 1000,
        max_pairs: int = MAX_PAIRS,
        seed: int = 0,
        delta_range: tuple[float, float] = (-1.0, 1.0),
        logit_scale: float = 100.0,
        batch_size: int = 50,
    ) -> None:
        if not isinstance(paired, PairedEmbeddings):
            raise TypeError(f"GapExplorer needs a PairedEmbeddings, got {type(paired).__name__}")
        lo, hi = (float(v) for v in delta_range)
        if not lo < hi:
            raise ValueError(f"delta_range must be (low, high) with low < high, got {delta_range}")
        self.delta_range = (lo, hi)
        self.notes: dict[str, str] = {}
        if max_pairs < 2:
            raise ValueError(f"max_pairs must be at least 2, got {max_pairs}")
        if paired.n_pairs > max_pairs:
            self.notes["pairs"] = f"a seeded sample of {max_pairs} of {paired.n_pairs} pairs (seed {seed})"
            paired = paired.sample(max_pairs, seed=seed)
        if len(paired.a) * len(paired.b) * 4 > 1 << 30:
            raise ValueError(f"{len(paired.a)} x {len(paired.b)} items need a similarity matrix over 1 GiB; pass "
                             "paired.sample(n) or a smaller max_pairs")
        self.paired, self.seed, self.ks = paired, seed, tuple(int(k) for k in ks)
        self._prototypes: dict[str, Any] = {name: cls() for name, cls in _CORRECTORS.items()}
        name = self._register(corrector)
        if delta is None:
            delta = float(self._prototypes["GapShift"].delta) if isinstance(corrector, GapShift) else 0.0
        self._delta = self._checked_delta(delta)

        from workbench.projection import PCA2D

        self.pca = PCA2D(seed=seed).fit(np.concatenate([paired.a.vectors, paired.b.vectors]))
        self._shifted = ShiftedGap(paired, ks=self.ks, uniformity_rows=uniformity_rows, seed=seed,
                                   logit_scale=logit_scale, batch_size=batch_size, pca=self.pca)
        self.uniformity_rows, self.logit_scale, self.batch_size = uniformity_rows, logit_scale, batch_size
        self.notes.update(self._shifted.notes)
        self.fitted_: dict[str, Any] = {}
        self._results: dict[str, ShiftResult] = {}
        self._probe: float | None = None
        self._corrector = name
        self.last_update_seconds = 0.0
        self._ui: dict[str, Any] = {}
        self._syncing = False
        self.consequences: ConsequencesReadout | None = None  # see show_consequences
        self._update()

    def show_consequences(self, labels: Any = None, **kwargs: Any) -> ConsequencesReadout:
        """What the gap changes beside R@K, following the slider: a :class:`ConsequencesReadout` (display it)."""
        self.consequences = ConsequencesReadout(self, labels=labels, **kwargs)
        return self.consequences

    # -- corrector handling ---------------------------------------------------------------------------------------
    def _register(self, corrector: Any) -> str:
        """The dropdown name of ``corrector`` (a name, class or instance); an instance becomes its class's prototype."""
        if isinstance(corrector, str):
            if corrector not in _CORRECTORS:
                raise ValueError(f"unknown corrector {corrector!r}; choose one of {list(_CORRECTORS)}")
            return corrector
        if isinstance(corrector, type):
            if corrector.__name__ not in _CORRECTORS or _CORRECTORS[corrector.__name__] is not corrector:
                raise ValueError(f"unknown corrector class {corrector.__name__}; choose one of {list(_CORRECTORS)}")
            return corrector.__name__
        name = type(corrector).__name__
        if name not in _CORRECTORS:
            raise ValueError(f"unknown corrector {corrector!r}; choose one of {list(_CORRECTORS)} (or an instance)")
        self._prototypes[name] = corrector
        return name

    @property
    def in_sample(self) -> bool:
        """True when the view shows a corrector fitted on the very pairs it is evaluated on (every corrector but
        the GapShift slider): its numbers flatter it (Procrustes: R@1 0.91 here, 0.17 on held-out CLIP pairs)."""
        return self._corrector != "GapShift"

    def in_sample_badge(self) -> str:
        """The badge's text while :attr:`in_sample` (else "")."""
        if not self.in_sample:
            return ""
        return (f"{self._corrector}: fitted on these pairs (in-sample) — for held-out numbers use "
                "CorrectorComparison")

    @property
    def corrector_names(self) -> list[str]:
        """The correctors of the dropdown."""
        return list(_CORRECTORS)

    def _checked_delta(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
            raise TypeError(f"delta must be a number, got {type(value).__name__}")
        value = float(value)
        lo, hi = self.delta_range
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ValueError(f"delta must lie in [{lo}, {hi}] (the slider's range), got {value}")
        return value

    @property
    def delta(self) -> float:
        """The GapShift strength on the slider."""
        return self._delta

    @delta.setter
    def delta(self, value: float) -> None:
        self._delta = self._checked_delta(value)
        self._corrector = "GapShift"
        self._update()

    @property
    def corrector(self) -> str:
        """The name of the corrector on show ("GapShift" follows the slider; others are shown as fitted)."""
        return self._corrector

    @corrector.setter
    def corrector(self, value: Any) -> None:
        name = self._register(value)
        if not isinstance(value, str | type):
            self._results.pop(name, None)  # a new instance: refit
            self.fitted_.pop(name, None)
        self._corrector = name
        self._update()

    # -- state ----------------------------------------------------------------------------------------------------
    @property
    def metrics(self) -> dict[str, float | None]:
        """The values on show (``gap_report`` keys, R@K keys, ``clip_loss``)."""
        out = dict(self._result.metrics)
        out["modality_probe_accuracy"] = self._probe
        return out

    @property
    def coords(self) -> np.ndarray | None:
        """The points on show, a rows then b rows, in the once-fitted PCA frame."""
        return None if self._result.coords is None else self._result.coords.copy()

    @property
    def ranks(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-query ranks on show: (paired a items querying b, paired b items querying a)."""
        return self._result.ranks_a.copy(), self._result.ranks_b.copy()

    def moved(self) -> tuple[np.ndarray, np.ndarray]:
        """Every row of a and of b as on show (float64 for GapShift, float32 for the others)."""
        if self._corrector == "GapShift":
            return self._shifted.moved(self._delta)
        return self.fitted_[self._corrector].transform(self.paired.a.vectors, self.paired.b.vectors)

    def compute_probe(self) -> float | None:
        """The cross-validated modality probe of what is on show (slow: seconds); shown until the next change."""
        from workbench.probes import modality_probe_accuracy

        a2, b2 = self.moved()
        rows_a, rows_b = self.paired.paired_rows()
        result = modality_probe_accuracy(a2[rows_a], b2[rows_b], seed=self.seed)
        self._probe = result.accuracy
        if result.accuracy is None:
            self.notes["modality_probe_accuracy"] = str(result.reason)
        else:
            self.notes.pop("modality_probe_accuracy", None)
        self._refresh_widget()
        return self._probe

    def _update(self) -> None:
        start = time.perf_counter()
        if self._corrector == "GapShift":
            self._result = self._shifted.evaluate(self._delta)
        else:
            if self._corrector not in self._results:
                from sklearn.base import clone

                fitted = clone(self._prototypes[self._corrector]).fit(*self.paired.matched())
                a2, b2 = fitted.transform(self.paired.a.vectors, self.paired.b.vectors)
                self.fitted_[self._corrector] = fitted
                self._results[self._corrector] = core_metrics(
                    self.paired, a2, b2, ks=self.ks, uniformity_rows=self.uniformity_rows, seed=self.seed,
                    pca=self.pca)
            self._result = self._results[self._corrector]
        if self.consequences is not None:
            self.consequences.update()
        self._probe = None
        self.notes["modality_probe_accuracy"] = "not computed: call compute_probe() (or press 'modality probe')"
        self._refresh_widget()
        self.last_update_seconds = time.perf_counter() - start
        if self._ui:
            self._ui["timing"].value = f"<small>last update {1000 * self.last_update_seconds:.0f} ms</small>"

    # -- display --------------------------------------------------------------------------------------------------
    def _labels(self) -> dict[str, str]:
        """Readout labels: the package's one label table (:func:`workbench.export.metric_label`)."""
        keys = [*REPORT_KEYS, "clip_loss", *(f"{d}_R@{k}" for d in ("a_to_b", "b_to_a") for k in self.ks)]
        return {key: metric_label(key, self.paired.modalities) for key in keys}

    def _title(self) -> str:
        what = f"GapShift(delta={self._delta:+.2f})" if self._corrector == "GapShift" else self._corrector
        m = self._result.metrics
        return (f"{html.escape(self.paired.model)}: {what} · centroid distance {_format(m['centroid_distance'])} · "
                f"R@1 {_format(m.get(f'a_to_b_R@{self.ks[0]}'))} / {_format(m.get(f'b_to_a_R@{self.ks[0]}'))}")

    def _traces(self, go: Any) -> list[Any]:
        coords = self._result.coords
        n_a = len(self.paired.a)
        traces = []
        for k, (e, part) in enumerate(((self.paired.a, slice(0, n_a)), (self.paired.b, slice(n_a, None)))):
            xy = coords[part] if coords is not None else np.empty((0, 2))
            traces.append(go.Scattergl(
                x=xy[:, 0], y=xy[:, 1], mode="markers", name=f"{e.modality} ({len(e)})",
                marker={"color": OKABE_ITO[k], "size": 5, "opacity": 0.7}, hoverinfo="skip"))
        centroids = self._centroids()
        traces.append(go.Scatter(x=centroids[:, 0], y=centroids[:, 1], mode="markers", name="centroids",
                                 marker={"color": [OKABE_ITO[0], OKABE_ITO[1]], "size": 16, "symbol": "x",
                                         "line": {"width": 1, "color": "#000"}},
                                 hovertext=[f"{m} centroid" for m in self.paired.modalities], hoverinfo="text"))
        return traces

    def _centroids(self) -> np.ndarray:
        coords = self._result.coords
        if coords is None:
            return np.full((2, 2), np.nan)
        rows_a, rows_b = self.paired.paired_rows()
        n_a = len(self.paired.a)
        return np.stack([coords[rows_a].mean(axis=0), coords[n_a + rows_b].mean(axis=0)])

    def _layout(self) -> dict[str, Any]:
        ratio = self.pca.explained_variance_ratio_
        return {"title": {"text": self._title(), "font": {"size": 13}}, "template": "simple_white",
                "xaxis": {"title": {"text": f"PC 1 of the original ({ratio[0]:.1%})"}},
                "yaxis": {"title": {"text": f"PC 2 of the original ({ratio[1]:.1%})"}, "scaleanchor": "x"},
                "legend": {"itemsizing": "constant"}, "width": 640, "height": 520,
                "margin": {"l": 50, "r": 10, "t": 50, "b": 50}}

    def figure(self) -> Any:
        """A static plotly figure of the current view, its title giving the corrector, gap and R@1."""
        import plotly.graph_objects as go

        fig = go.Figure(data=self._traces(go), layout=self._layout())
        self._fix_ranges(fig)
        return fig

    def _fix_ranges(self, fig: Any) -> None:
        """Fixed axes (growing only) so that the points visibly move instead of the axes rescaling."""
        coords = self._result.coords
        if coords is None:
            return
        if not hasattr(self, "_bounds"):
            ends = [self._shifted.coords(d) for d in (*self.delta_range, 0.0)]
            self._bounds = np.array([np.min([e.min(axis=0) for e in ends], axis=0),
                                     np.max([e.max(axis=0) for e in ends], axis=0)])
        self._bounds = np.array([np.minimum(self._bounds[0], coords.min(axis=0)),
                                 np.maximum(self._bounds[1], coords.max(axis=0))])
        pad = 0.05 * (self._bounds[1] - self._bounds[0])
        fig.layout.xaxis.range = [self._bounds[0, 0] - pad[0], self._bounds[1, 0] + pad[0]]
        fig.layout.yaxis.range = [self._bounds[0, 1] - pad[1], self._bounds[1, 1] + pad[1]]

    def _build_widget(self) -> Any:
        import ipywidgets as widgets
        import plotly.graph_objects as go

        lo, hi = self.delta_range
        slider = widgets.FloatSlider(value=self._delta, min=lo, max=hi, step=0.05, description="delta",
                                     continuous_update=True, readout_format="+.2f",
                                     style={"description_width": "initial"},
                                     tooltip="GapShift strength: 0 as embedded, 1 closes the gap, < 0 widens it")
        slider.add_class("wb-gap-delta")
        dropdown = widgets.Dropdown(options=self.corrector_names, value=self._corrector, description="corrector")
        dropdown.add_class("wb-gap-corrector")
        probe = widgets.Button(description="modality probe", tooltip="cross-validated (takes a few seconds)")
        probe.add_class("wb-gap-probe")
        labels = self._labels()
        readouts = {}
        for key in self.metrics:
            readout = widgets.HTML(value="", description=labels.get(key, key),
                                   style={"description_width": "210px"})  # "gap share of top 20 dimensions" in full
            readout.add_class("wb-metric")
            readout.add_class(metric_css_class(key))
            readouts[key] = readout
        metrics_box = widgets.VBox(list(readouts.values()))
        metrics_box.add_class("wb-gap-metrics")
        notes = widgets.HTML(value="")
        notes.add_class("wb-gap-notes")
        timing = widgets.HTML(value="")
        timing.add_class("wb-gap-timing")
        badge = widgets.HTML(value="")
        badge.add_class("wb-gap-insample")
        view = go.FigureWidget(data=self._traces(go), layout=self._layout())
        view.add_class("wb-gap-view")
        self._fix_ranges(view)
        self._ui = {"slider": slider, "dropdown": dropdown, "readouts": readouts, "notes": notes, "view": view,
                    "timing": timing, "badge": badge}
        slider.observe(self._guarded(self._on_slider), names="value")
        dropdown.observe(self._guarded(self._on_dropdown), names="value")
        probe.on_click(self._guarded(lambda _button: self.compute_probe()))
        box = widgets.VBox([
            widgets.HBox([slider, dropdown]),
            badge,
            self._message_widget(),
            widgets.HBox([view, widgets.VBox([metrics_box, probe, timing, notes])]),
        ])
        self._refresh_widget()
        return box

    def _on_slider(self, change: dict[str, Any]) -> None:
        if self._syncing or (change["new"] == self._delta and self._corrector == "GapShift"):
            return
        self.delta = change["new"]

    def _on_dropdown(self, change: dict[str, Any]) -> None:
        if self._syncing or change["new"] == self._corrector:
            return
        self.corrector = change["new"]

    def _refresh_widget(self) -> None:
        if not self._ui:
            return
        ui = self._ui
        self._syncing = True
        try:
            ui["slider"].value = self._delta
            ui["dropdown"].value = self._corrector
            if self._corrector == "GapShift":
                ui["slider"].remove_class("wb-inactive")
            else:
                ui["slider"].add_class("wb-inactive")
            ui["slider"].disabled = self._corrector != "GapShift"  # δ is GapShift's alone
        finally:
            self._syncing = False
        if "badge" in ui:
            text = self.in_sample_badge()
            ui["badge"].value = "" if not text else (
                "<span style='display:inline-block;background:#fff4e0;border:1px solid #E69F00;border-radius:4px;"
                f"padding:2px 8px;font-size:0.9em'>&#9888; {html.escape(text)}</span>")
            ui["badge"].layout.display = None if text else "none"
        for key, value in self.metrics.items():
            if key in ui["readouts"]:
                ui["readouts"][key].value = _format(value)
        ui["notes"].value = "<br>".join(f"<small>{html.escape(k)}: {html.escape(v)}</small>"
                                        for k, v in self.notes.items())
        view = ui["view"]
        coords = self._result.coords
        centroids = self._centroids()
        n_a = len(self.paired.a)
        with view.batch_update():
            if coords is not None:
                view.data[0].x, view.data[0].y = coords[:n_a, 0], coords[:n_a, 1]
                view.data[1].x, view.data[1].y = coords[n_a:, 0], coords[n_a:, 1]
            view.data[2].x, view.data[2].y = centroids[:, 0], centroids[:, 1]
            view.layout.title.text = self._title()
            self._fix_ranges(view)
        if coords is None:
            self._show_message(f"{self._corrector} changes the dimension: no view in the original PCA frame",
                               kind="info")
        elif self.message and getattr(self, "_message_kind", "") == "info":
            self._show_message("")
