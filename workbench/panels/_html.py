"""HTML tables for the panels' ipywidgets ``HTML`` areas (every value escaped, long texts shortened)."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

__all__ = ["format_value", "html_table"]

#: Longest text shown in a table cell (the full value stays in the DataFrame).
MAX_CELL_CHARS = 120
_STYLE = ("<style>.wb-table{border-collapse:collapse;font-size:12px}"
          ".wb-table td,.wb-table th{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}"
          ".wb-table td.num{text-align:right;font-variant-numeric:tabular-nums}</style>")


def format_value(value: Any, digits: int = 4) -> str:
    """A short, escaped text for one cell: floats with ``digits`` decimals, booleans as ✓ or blank, None as —.

    Examples
    --------
    >>> format_value(0.123456), format_value(True), format_value(None), format_value("<b>")
    ('0.1235', '✓', '—', '&lt;b&gt;')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "✓" if value else ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    text = str(value)
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - 1] + "…"
    return html.escape(text)


def html_table(
    frame: pl.DataFrame,
    *,
    css_class: str = "",
    max_rows: int | None = None,
    formatters: Mapping[str, Callable[[Any], str]] | None = None,
    caption: str = "",
    labels: Mapping[str, str] | None = None,
) -> str:
    """An HTML table of a polars frame (class ``wb-table`` plus ``css_class``); at most ``max_rows`` rows.

    ``formatters`` maps a column name to a function giving that column's (already escaped) cell text. ``labels``
    maps a column name to the header shown instead (a human label); the column's own name stays in the header
    cell's ``title`` (shown on hover).

    Examples
    --------
    >>> import polars as pl
    >>> text = html_table(pl.DataFrame({"id": [1], "score": [0.5]}), css_class="wb-results")
    >>> "<th>score</th>" in text and "0.5000" in text
    True
    >>> html_table(pl.DataFrame({"n_test": [3]}), labels={"n_test": "held-out pairs"}).count("<th title='n_test'>held")
    1
    """
    formatters = formatters or {}
    shown = frame if max_rows is None else frame.head(max_rows)
    labels = labels or {}
    head = "".join(f"<th title='{html.escape(c)}'>{html.escape(labels[c])}</th>" if c in labels and labels[c] != c
                   else f"<th>{html.escape(c)}</th>" for c in shown.columns)
    numeric = {c for c, t in shown.schema.items() if t.is_numeric()}
    body = []
    for row in shown.iter_rows():
        cells = []
        for column, value in zip(shown.columns, row, strict=True):
            text = formatters[column](value) if column in formatters else format_value(value)
            cls = " class='num'" if column in numeric else ""
            cells.append(f"<td{cls}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = ""
    if max_rows is not None and frame.height > max_rows:
        note = f"<div class='wb-table-note'>showing {max_rows} of {frame.height} rows</div>"
    title = f"<div class='wb-table-caption'><b>{html.escape(caption)}</b></div>" if caption else ""
    return (f"{_STYLE}{title}<table class='wb-table {html.escape(css_class)}'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{note}")
