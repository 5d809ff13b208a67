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
long press, tooltips that preview images, sounds or captions). ``backend="auto"`` picks jupyter-scatter above
:data:`JSCATTER_MIN_POINTS` points when it is installed (plotly's WebGL scatter breaks down near a million points:
plotly.js #5178).

Modules, bottom to top: ``_shared`` (constants and metadata columns over all points), ``_controller`` (the state
and what is computed from it: projection, colours, selection, neighbours, previews; no widget library), the views
``_plotly`` (traces, the static figure and the ``FigureWidget``) and ``_jscatter`` (the jupyter-scatter widget),
and ``_explorer`` (:class:`EmbeddingExplorer`: the controller as a panel with its widget).
"""

from __future__ import annotations

from workbench.panels.embedding_explorer._explorer import JSCATTER_MIN_POINTS, EmbeddingExplorer
from workbench.panels.embedding_explorer._shared import BACKENDS, MAX_LEGEND_CLASSES, MIN_POINTS

__all__ = ["BACKENDS", "JSCATTER_MIN_POINTS", "MAX_LEGEND_CLASSES", "MIN_POINTS", "EmbeddingExplorer"]
