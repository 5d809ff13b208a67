"""Paper-ready exports: figures as PDF/SVG/PNG at journal column widths, metric tables as LaTeX or Markdown.

- the paper style (``_style``): THE palette (:data:`PALETTE`, Okabe-Ito), column widths, fonts, and
  :func:`paper_figure`, which applies them to a copy of a plotly figure;
- the browser (``_browser``): :func:`find_browser` and :func:`export_session`, one headless Chrome/Chromium driven by
  kaleido for a whole batch;
- saving (``_save``): :func:`save_figure` / :func:`save_figures`, each file written atomically with a
  ``<stem>.provenance.json`` sidecar, and :func:`provenance`, the one provenance record of the package;
- labels: :func:`metric_label`, the human label of a metric key ("R@1 image→text"), from THE label table
  (:data:`METRIC_LABELS`) that figures, reports and panels share, and :func:`chance_recall`, R@K by chance;
- tables (``_tables``): :func:`to_latex` (booktabs), :func:`to_markdown`, :func:`fold_intervals` (plain
  text), :func:`latex_escape`, :func:`markdown_escape`.

Importing this package loads neither plotly nor kaleido; they are imported when a figure is styled or exported.

Examples
--------
>>> from workbench.export import PALETTE, COLUMN_WIDTHS
>>> PALETTE[:2], COLUMN_WIDTHS["single"]
(('#0072B2', '#D55E00'), 3.3)
"""

from __future__ import annotations

from workbench._labels import METRIC_LABELS, chance_recall, metric_label
from workbench.export._browser import ExportError, export_session, find_browser
from workbench.export._save import FORMATS, PROVENANCE_PACKAGES, provenance, save_figure, save_figures
from workbench.export._style import (
    COLUMN_WIDTHS,
    DENSE_MARKER_PT,
    DENSE_POINTS,
    FONT_FAMILY,
    FONT_SIZE,
    PALETTE,
    POINTS_PER_INCH,
    SMALL_FONT_SIZE,
    TITLE_FONT_SIZE,
    VECTOR_POINTS_MAX,
    paper_figure,
)
from workbench.export._tables import fold_intervals, latex_escape, markdown_escape, to_latex, to_markdown

__all__ = [
    "COLUMN_WIDTHS",
    "DENSE_MARKER_PT",
    "DENSE_POINTS",
    "FONT_FAMILY",
    "FONT_SIZE",
    "FORMATS",
    "METRIC_LABELS",
    "PALETTE",
    "POINTS_PER_INCH",
    "PROVENANCE_PACKAGES",
    "SMALL_FONT_SIZE",
    "TITLE_FONT_SIZE",
    "VECTOR_POINTS_MAX",
    "ExportError",
    "chance_recall",
    "export_session",
    "find_browser",
    "fold_intervals",
    "latex_escape",
    "markdown_escape",
    "metric_label",
    "paper_figure",
    "provenance",
    "save_figure",
    "save_figures",
    "to_latex",
    "to_markdown",
]
