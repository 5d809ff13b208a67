"""TrainingMonitor: live curves of a :class:`workbench.train.ContrastiveTrainer` (loss, temperature, gap, R@1).

Pass ``monitor.callback`` as ``trainer.fit(..., on_epoch=monitor.callback)`` or call
``monitor.fit(trainer, items_a, items_b, validation=...)``. After every epoch the history gains the trainer's row
(``epoch``, ``loss``, ``temperature`` and, with validation pairs, ``centroid_distance``, ``r1_a_to_b``,
``r1_b_to_a``) and, once the widget is shown, its four plots update in place (one ``batch_update``), so the curves
grow while the cell runs.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import polars as pl

from workbench.panels._base import Panel
from workbench.panels._colors import OKABE_ITO

__all__ = ["TrainingMonitor"]

#: (subplot title, [(history column, trace name)]) of the four plots, row by row.
PLOTS = (
    ("training loss", [("loss", "loss")]),
    ("temperature", [("temperature", "temperature")]),
    ("centroid distance (held out)", [("centroid_distance", "centroid distance")]),
    ("R@1 (held out)", [("r1_a_to_b", "R@1 a→b"), ("r1_b_to_a", "R@1 b→a")]),
)


class TrainingMonitor(Panel):
    """Live training curves.

    Parameters
    ----------
    trainer : ContrastiveTrainer, optional
        The trainer :meth:`fit` uses when none is passed to it.

    Examples
    --------
    >>> monitor = TrainingMonitor()
    >>> monitor.callback({"epoch": 1, "loss": 2.0, "temperature": 0.07})
    >>> monitor.callback({"epoch": 2, "loss": 1.5, "temperature": 0.06})
    >>> monitor.history["loss"].to_list()
    [2.0, 1.5]
    """

    css_class = "wb-training-monitor"

    def __init__(self, trainer: Any = None) -> None:
        self.trainer = trainer
        self._rows: list[dict[str, Any]] = []
        self._ui: dict[str, Any] = {}

    # -- the callback ---------------------------------------------------------------------------------------------
    def callback(self, row: dict[str, Any]) -> None:
        """Record one epoch's history row (the trainer's ``on_epoch``) and update the plots."""
        if not isinstance(row, dict) or "epoch" not in row:
            raise ValueError(f"an epoch row must be a dict with an 'epoch' key, got {row!r}")
        self._rows.append(dict(row))
        self._refresh()

    def reset(self) -> None:
        """Forget the recorded epochs."""
        self._rows = []
        self._refresh()

    def fit(self, trainer: Any = None, *args: Any, **kwargs: Any) -> Any:
        """Run ``trainer.fit(*args, on_epoch=self.callback, **kwargs)`` on a fresh history; returns the trainer.

        An ``on_epoch`` given here is called too, after the monitor's.
        """
        trainer = trainer if trainer is not None else self.trainer
        if trainer is None:
            raise ValueError("no trainer: pass one to TrainingMonitor(trainer) or to fit(trainer, ...)")
        self.trainer = trainer
        other: Callable[[dict[str, Any]], None] | None = kwargs.pop("on_epoch", None)

        def on_epoch(row: dict[str, Any]) -> None:
            self.callback(row)
            if other is not None:
                other(row)

        self.reset()
        return trainer.fit(*args, on_epoch=on_epoch, **kwargs)

    @property
    def history(self) -> pl.DataFrame:
        """One row per recorded epoch (the trainer's ``history_`` columns)."""
        return pl.DataFrame(self._rows)

    # -- plots ----------------------------------------------------------------------------------------------------
    def _series(self, column: str) -> tuple[list[Any], list[Any]]:
        epochs = [r["epoch"] for r in self._rows if r.get(column) is not None]
        values = [r[column] for r in self._rows if r.get(column) is not None]
        return epochs, values

    def _status(self) -> str:
        if not self._rows:
            return "<small>waiting for the first epoch</small>"
        last = self._rows[-1]
        total = getattr(self.trainer, "epochs", None)
        parts = [f"epoch {last['epoch']}" + (f" of {total}" if total else "")]
        parts += [f"{k} {v:.4f}" for k, v in last.items() if k != "epoch" and isinstance(v, float)]
        return f"<small>{html.escape(' · '.join(parts))}</small>"

    def figure(self) -> Any:
        """A static 2 x 2 figure of the curves so far."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=2, cols=2, subplot_titles=[title for title, _ in PLOTS],
                            horizontal_spacing=0.12, vertical_spacing=0.16)
        for k, (_, series) in enumerate(PLOTS):
            for j, (column, name) in enumerate(series):
                x, y = self._series(column)
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name, meta={"column": column},
                                         line={"color": OKABE_ITO[(k + j) % len(OKABE_ITO)]}),
                              row=k // 2 + 1, col=k % 2 + 1)
        fig.update_xaxes(title_text="epoch", row=2)  # one axis title per column: the top row's would hit the
        fig.update_xaxes(matches="x")                 # bottom row's subplot titles
        fig.update_layout(template="simple_white", width=760, height=520, showlegend=True,
                          margin={"l": 50, "r": 10, "t": 40, "b": 40})
        if self._rows and all(r.get("centroid_distance") is None for r in self._rows):
            fig.add_annotation(text="no validation pairs: pass validation=ValidationSet(...) to fit",
                               xref="paper", yref="paper", x=0.5, y=0.02, showarrow=False)
        return fig

    def _build_widget(self) -> Any:
        import ipywidgets as widgets
        import plotly.graph_objects as go

        status = widgets.HTML(value=self._status())
        status.add_class("wb-training-status")
        plot = go.FigureWidget(self.figure())
        plot.add_class("wb-training-plot")
        self._ui = {"status": status, "plot": plot}
        return widgets.VBox([self._message_widget(), status, plot])

    def _refresh(self) -> None:
        if not self._ui:
            return
        plot = self._ui["plot"]
        with plot.batch_update():
            for trace in plot.data:
                trace.x, trace.y = self._series(trace.meta["column"])
        self._ui["status"].value = self._status()
