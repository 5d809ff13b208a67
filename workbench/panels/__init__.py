"""Interactive JupyterLab panels over the analysis core: explore embeddings, the gap, retrieval and training.

Every panel is a plain-Python controller (state and methods, usable and testable with no front end) with a lazily
built ``.widget`` (an ipywidgets container holding a plotly ``FigureWidget``); it displays itself when it is the
last expression of a cell, and ``.figure()`` returns a static ``plotly.graph_objects.Figure`` of its current state
for export.

- :class:`EmbeddingExplorer` -- both modalities in one 2-D projection (PCA, UMAP, t-SNE; cached), coloured by
  modality or any metadata column, with previews and cross-modal neighbours of a selection.
- :class:`GapExplorer` -- slide the gap shift (or pick a corrector) and watch the metrics, R@K, the CLIP loss and
  the points move.
- :class:`RetrievalBrowser` -- top-k results of any query, and the worst failures.
- :class:`CorrectorComparison` -- :func:`workbench.compare.compare_correctors` as a table and a bar chart.
- :class:`TrainingMonitor` -- live curves of a :class:`workbench.train.ContrastiveTrainer`.

Bad input: constructors and setters of the Python API raise a ``ValueError`` that says what is wrong (an unknown
colour column names the available ones). The widget path never shows a traceback: a control whose change fails
shows the message in the panel (an ipywidgets ``HTML`` with CSS class ``wb-message``), and ``Panel.show(...)``
(e.g. ``EmbeddingExplorer.show(paired, color_by="nope")``) returns the panel or, for bad input, a
:class:`MessagePanel` that displays the message.

Importing this package loads none of plotly, ipywidgets or umap: they are imported when a widget or figure is first
built (umap only for a UMAP projection).

Examples
--------
>>> import workbench
>>> from workbench.panels import GapExplorer
>>> explorer = GapExplorer(workbench.datasets.load("liang2022/clip"))
>>> explorer.delta = 1.0
>>> round(explorer.metrics["centroid_distance"], 3), explorer.metrics["a_to_b_R@1"]
(0.008, 0.358)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench._lazy import lazy_attributes

_LAZY_ATTRIBUTES = {
    "Panel": "workbench.panels._base",
    "MessagePanel": "workbench.panels._base",
    "EmbeddingExplorer": "workbench.panels.embedding_explorer",
    "GapExplorer": "workbench.panels.gap_explorer",
    "RetrievalBrowser": "workbench.panels.retrieval_browser",
    "CorrectorComparison": "workbench.panels.corrector_comparison",
    "TrainingMonitor": "workbench.panels.training_monitor",
}

__all__ = [
    "CorrectorComparison",
    "EmbeddingExplorer",
    "GapExplorer",
    "MessagePanel",
    "Panel",
    "RetrievalBrowser",
    "TrainingMonitor",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from workbench.panels._base import MessagePanel, Panel
    from workbench.panels.corrector_comparison import CorrectorComparison
    from workbench.panels.embedding_explorer import EmbeddingExplorer
    from workbench.panels.gap_explorer import GapExplorer
    from workbench.panels.retrieval_browser import RetrievalBrowser
    from workbench.panels.training_monitor import TrainingMonitor

__getattr__, __dir__ = lazy_attributes(globals(), _LAZY_ATTRIBUTES)
