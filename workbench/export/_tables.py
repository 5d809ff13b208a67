"""Metric tables for papers: :func:`to_latex` (booktabs) and :func:`to_markdown`.

Both format tables such as the output of :func:`workbench.compare.compare_correctors`, folding ``m_lo`` / ``m_hi``
columns into ``m`` as ``value ± half-width``, and a string column ``m_sig`` (significance letters, as ranx marks the
runs each run beats) into ``m`` as a superscript.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from typing import Any

import polars as pl

from workbench._params import check_int

__all__ = ["fold_intervals", "latex_escape", "markdown_escape", "to_latex", "to_markdown"]

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x85\u2028\u2029]+")
# Markdown: characters that open inline markup (emphasis, code, links, HTML, entities, math, strikethrough) or end a
# table cell; "_" only where it could emphasise (not inside a word, as in image_to_text_R@1)
_MARKDOWN_RE = re.compile(r"[\\`*\[\]<>&$~|#]|(?<![^\W_])_|_(?![^\W_])")
_DASH = {"latex": "--", "markdown": "–", "text": "–"}


def latex_escape(text: str) -> str:
    r"""``text`` with LaTeX's special characters escaped for text mode.

    Examples
    --------
    >>> print(latex_escape("R@1 & 95% CI_lo #2"))
    R@1 \& 95\% CI\_lo \#2
    """
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group()], _LINE_BREAKS.sub(" ", str(text)))


def markdown_escape(text: str) -> str:
    r"""``text`` as literal Markdown inline text: characters that would start markup or end a table cell are
    backslash-escaped, line breaks become spaces.

    Underscores inside a word are left as they are (they never emphasise).

    Examples
    --------
    >>> print(markdown_escape("*run* <1> | image_to_text_R@1 _x_"))
    \*run\* \<1\> \| image_to_text_R@1 \_x\_
    """
    return _MARKDOWN_RE.sub(lambda m: "\\" + m.group(), _LINE_BREAKS.sub(" ", str(text)))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: float, digits: int) -> str:
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.000"


def _cell(value: Any, digits: int, style: str) -> str:
    if _missing(value):
        return _DASH[style]
    if isinstance(value, float) or (isinstance(value, numbers.Real) and not isinstance(value, (int, bool))):
        text = _number(float(value), digits)
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        text = str(value)
        return latex_escape(text) if style == "latex" else markdown_escape(text) if style == "markdown" else text
    if style == "latex":
        text = text.replace("inf", r"\infty")
        return f"${text}$" if text.startswith("-") or "infty" in text else text
    return text.replace("inf", "∞")


def _interval(value: Any, lo: Any, hi: Any, digits: int, style: str) -> str:
    if _missing(value) or _missing(lo) or _missing(hi):
        return _cell(value, digits, style)
    value, lo, hi = float(value), float(lo), float(hi)
    if not all(map(math.isfinite, (value, lo, hi))):
        return _cell(value, digits, style)
    below, above, half = value - lo, hi - value, (hi - lo) / 2
    v = _number(value, digits)
    if abs(above - below) > max(half / 2, 10.0**-digits):  # asymmetric (visibly): show the interval itself
        bounds = f"[{_number(lo, digits)}, {_number(hi, digits)}]"
        return f"${v}\\;{bounds}$" if style == "latex" else f"{v} {bounds}"
    return f"${v} \\pm {_number(half, digits)}$" if style == "latex" else f"{v} ± {_number(half, digits)}"


def _superscript(cell: str, letters: Any, style: str) -> str:
    """``cell`` with the significance letters as a superscript (none for a missing or empty value)."""
    if _missing(letters) or not str(letters):
        return cell
    if style == "markdown":
        return f"{cell}<sup>{markdown_escape(str(letters))}</sup>"
    sup = "^{\\mathrm{" + latex_escape(str(letters)) + "}}"
    return f"{cell[:-1]}{sup}$" if cell.endswith("$") else f"{cell}${sup}$"


def _table_cells(table: Any, digits: int, intervals: bool, style: str) -> tuple[list[str], list[bool], list[list[str]]]:
    if not isinstance(table, pl.DataFrame):
        raise TypeError(
            f"table must be a polars DataFrame, got {type(table).__name__} (convert with polars.DataFrame(...) or, "
            "for pandas, polars.from_pandas(...))"
        )
    digits = check_int(digits, "digits", low=0)
    if not table.columns:
        raise ValueError("the table has no columns")
    names = table.columns
    # an interval folds into its metric when all three columns hold numbers (else they are shown as they are)
    folded = [c for c in names if f"{c}_lo" in names and f"{c}_hi" in names
              and all(table.schema[x].is_numeric() for x in (c, f"{c}_lo", f"{c}_hi"))]
    for c in folded:
        lo, hi = (table.get_column(f"{c}_{side}").cast(pl.Float64) for side in ("lo", "hi"))
        reversed_rows = ((lo > hi) & ~lo.is_nan() & ~hi.is_nan()).fill_null(False).arg_true()  # polars: NaN > all
        if len(reversed_rows):
            raise ValueError(
                f"table: {c}_lo is above {c}_hi in {len(reversed_rows)} rows (e.g. row {int(reversed_rows[0])}); an "
                "interval needs lo <= hi (swapped columns?)"
            )
    hidden = {f"{c}_{side}" for c in folded for side in ("lo", "hi")}
    # significance letters fold into their metric as a superscript
    lettered = [c for c in names if f"{c}_sig" in names and table.schema[f"{c}_sig"] == pl.String
                and table.schema[c].is_numeric()]
    hidden |= {f"{c}_sig" for c in lettered}
    columns = [c for c in names if c not in hidden or c in folded]
    numeric = [table.schema[c].is_numeric() for c in columns]
    rows = []
    for row in table.iter_rows(named=True):
        cells = []
        for c in columns:
            if c in folded and intervals:
                cell = _interval(row[c], row[f"{c}_lo"], row[f"{c}_hi"], digits, style)
            else:
                cell = _cell(row[c], digits, style)
            cells.append(_superscript(cell, row[f"{c}_sig"], style) if c in lettered else cell)
        rows.append(cells)
    return columns, numeric, rows


def fold_intervals(table: pl.DataFrame, *, digits: int = 3) -> pl.DataFrame:
    """``table`` as plain text cells (for HTML or a terminal), each ``m`` with ``m_lo`` / ``m_hi`` folded into one
    ``m`` column as in :func:`to_markdown`: ``"0.552 ± 0.021"`` (an interval visibly off-centre is written out,
    ``"0.552 [0.520, 0.600]"``); missing values are "–". Nothing is escaped.

    Examples
    --------
    >>> import polars as pl
    >>> fold_intervals(pl.DataFrame({"m": [0.552], "m_lo": [0.531], "m_hi": [0.573], "n": [500]})).rows()
    [('0.552 ± 0.021', '500')]
    """
    columns, _, rows = _table_cells(table, digits, True, "text")
    return pl.DataFrame([dict(zip(columns, row, strict=True)) for row in rows],
                        schema=dict.fromkeys(columns, pl.String))


def to_markdown(table: pl.DataFrame, *, digits: int = 3, intervals: bool = True) -> str:
    """A metric table as a Markdown (GitHub) table, intervals folded into their metric column.

    Parameters
    ----------
    table : polars.DataFrame
        For example :func:`workbench.compare.compare_correctors` output. A column ``m`` with columns ``m_lo`` and
        ``m_hi`` is written as one column ``m``: ``value ± h`` with ``h = (hi - lo) / 2``, the interval's
        half-width (rounded to ``digits``). Where the interval is visibly asymmetric -- its two sides
        ``value - lo`` and ``hi - value`` differ by more than half of ``h`` and by more than the last printed
        digit -- it is written out instead: ``value [lo, hi]``.
    digits : int, default 3
        Decimals of floats (integers are written as they are).
    intervals : bool, default True
        False drops the ``_lo`` / ``_hi`` columns and writes the values alone.

    A string column ``m_sig`` beside a numeric ``m`` (the significance letters of
    :func:`workbench.compare.compare_correctors`: the rows, by their ``system`` letter, that this row beats) is
    written into ``m`` as a superscript, ``0.552 ± 0.021<sup>bc</sup>``, and not as a column of its own.

    Returns
    -------
    str
        Lines without a trailing newline; numeric columns right-aligned; a missing value (null or NaN) is ``–``;
        strings and column names are escaped (:func:`markdown_escape`), so they show as written.

    Examples
    --------
    >>> import polars as pl
    >>> table = pl.DataFrame({"corrector": ["none", "GapShift()"], "image_to_text_R@1": [0.552, None],
    ...                       "image_to_text_R@1_lo": [0.531, None], "image_to_text_R@1_hi": [0.573, None]})
    >>> print(to_markdown(table))
    | corrector  | image_to_text_R@1 |
    | ---------- | ----------------: |
    | none       |     0.552 ± 0.021 |
    | GapShift() |                 – |
    """
    columns, numeric, rows = _table_cells(table, digits, intervals, "markdown")
    header = [markdown_escape(c) for c in columns]
    widths = [max(3, len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rules = ("-" * (w - 1) + ":" if num else "-" * w for w, num in zip(widths, numeric, strict=True))
    rule = "| " + " | ".join(rules) + " |"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _latex_row(cells: Sequence[str]) -> str:
    # a row starting with [ or * would be read as the optional argument or star of the \\ or rule before it
    line = " & ".join(cells)
    return ("{}" if line.startswith(("[", "*")) else "") + line + r" \\"


def to_latex(table: pl.DataFrame, *, caption: str | None = None, label: str | None = None, digits: int = 3,
             intervals: bool = True) -> str:
    r"""A metric table as a booktabs LaTeX ``tabular`` (in a ``table`` float when given a caption or label).

    Needs ``\usepackage{booktabs}``. Intervals are folded as in :func:`to_markdown`, in math mode:
    ``$0.552 \pm 0.021$`` (asymmetric ones ``$0.552\;[0.531, 0.601]$``); strings and column names have LaTeX's
    special characters escaped (:func:`latex_escape`), and a row that starts with ``[`` or ``*`` gets ``{}`` before
    it (else LaTeX reads it as an argument of the ``\\`` or rule above); missing values are ``--`` (an en dash);
    negative numbers are in math mode so the minus is a minus sign; numeric columns are right-aligned (``r``),
    others ``l``. Significance letters (a string column ``m_sig`` beside ``m``) become a superscript of ``m``, as
    ranx writes them: ``$0.552 \pm 0.021^{\mathrm{bc}}$``.

    Parameters
    ----------
    table : polars.DataFrame
    caption, label : str, optional
        Inserted verbatim: they are LaTeX (so a caption may cite, and must escape ``%`` itself; pass user text such
        as a file name through :func:`latex_escape`).
    digits, intervals
        As in :func:`to_markdown`.

    Returns
    -------
    str
        Without a trailing newline.

    Examples
    --------
    >>> import polars as pl
    >>> table = pl.DataFrame({"corrector": ["none"], "image_to_text_R@1": [0.552],
    ...                       "image_to_text_R@1_lo": [0.531], "image_to_text_R@1_hi": [0.573]})
    >>> print(to_latex(table))
    \begin{tabular}{lr}
    \toprule
    corrector & image\_to\_text\_R@1 \\
    \midrule
    none & $0.552 \pm 0.021$ \\
    \bottomrule
    \end{tabular}
    """
    columns, numeric, rows = _table_cells(table, digits, intervals, "latex")
    lines = [
        "\\begin{tabular}{" + "".join("r" if num else "l" for num in numeric) + "}",
        "\\toprule",
        _latex_row([latex_escape(c) for c in columns]),
        "\\midrule",
        *(_latex_row(r) for r in rows),
        "\\bottomrule",
        "\\end{tabular}",
    ]
    if caption is None and label is None:
        return "\n".join(lines)
    head = ["\\begin{table}", "\\centering"]
    if caption is not None:
        head.append(f"\\caption{{{caption}}}")
    if label is not None:
        head.append(f"\\label{{{label}}}")
    return "\n".join([*head, *lines, "\\end{table}"])
