"""Expected warnings as one summary line: :func:`summarize_warnings`."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from workbench.data._embeddings import DuplicateRowsWarning

__all__ = ["WarningSummary", "summarize_warnings"]


class WarningSummary(list):  # type: ignore[type-arg]
    """The warnings caught by :func:`summarize_warnings` (``warnings.WarningMessage`` objects), in order."""

    def line(self) -> str:
        """The one summary line ("" when nothing was caught)."""
        if not self:
            return ""
        names = sorted({w.category.__name__ for w in self})
        texts = list(dict.fromkeys(str(w.message) for w in self))
        tails = {t.rpartition("; ")[2] for t in texts}
        if len(texts) > 1 and len(tails) == 1 and all("; " in t for t in texts):  # a shared advice: said once
            texts = [t.rpartition("; ")[0] for t in texts] + [tails.pop()]
        messages = "; ".join(texts)
        noun = "warning" if len(self) == 1 else "warnings"
        return f"note: {len(self)} expected {noun} ({', '.join(names)}): {messages}"


@contextmanager
def summarize_warnings(
    *categories: type[Warning], file: TextIO | None = None
) -> Iterator[WarningSummary]:
    """Catch warnings of ``categories`` (default: :class:`DuplicateRowsWarning`) raised in the block and print
    ONE line about them at its end, instead of one warning box each (in a notebook, a pink box per warning).

    Other warnings pass through as usual. Use it where a warning is expected and understood (the built-in ConVIRT
    set has duplicate reports); the yielded list holds what was caught.

    Parameters
    ----------
    *categories : Warning subclasses
        What to summarise; subclasses count too.
    file : text stream, optional
        Where the line goes (default: standard output).

    Examples
    --------
    >>> import warnings
    >>> with summarize_warnings() as caught:
    ...     warnings.warn("convirt: exact duplicate rows (text 443 unique of 500)", DuplicateRowsWarning)
    ...     warnings.warn("convirt: exact duplicate rows (text 443 unique of 500)", DuplicateRowsWarning)
    note: 2 expected warnings (DuplicateRowsWarning): convirt: exact duplicate rows (text 443 unique of 500)
    >>> len(caught)
    2
    >>> with summarize_warnings():
    ...     warnings.warn("a: 3 duplicates; see .duplicates()", DuplicateRowsWarning)
    ...     warnings.warn("b: 1 duplicate; see .duplicates()", DuplicateRowsWarning)
    note: 2 expected warnings (DuplicateRowsWarning): a: 3 duplicates; b: 1 duplicate; see .duplicates()
    """
    wanted = categories or (DuplicateRowsWarning,)
    for category in wanted:
        if not (isinstance(category, type) and issubclass(category, Warning)):
            raise TypeError(f"categories must be Warning subclasses, got {category!r}")
    summary = WarningSummary()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            yield summary
        finally:
            others: list[warnings.WarningMessage] = []
            for w in seen:
                (summary if issubclass(w.category, wanted) else others).append(w)
    for w in others:  # not ours: shown as if nothing had caught them
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    if summary:
        print(summary.line(), file=file or sys.stdout)
