"""Expected warnings print one summary line: loading every built-in set inside ``summarize_warnings`` shows one
line naming ConVIRT's duplicates (443 unique reports of 500, counted here from the rows) and lets other warnings
through."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from workbench import datasets
from workbench.data import DuplicateRowsWarning, UnverifiedFileWarning, summarize_warnings


def test_loading_every_builtin_set_prints_one_line_and_raises_no_warning(capsys):
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        with summarize_warnings() as caught:
            sets = {name: datasets.load(name) for name in datasets.names()}
    lines = capsys.readouterr().out.splitlines()
    assert escaped == [] and len(lines) == 1
    with_duplicates = [name for name, p in sets.items()
                       if any(len(np.unique(side.vectors, axis=0)) < len(side) for side in (p.a, p.b))]
    texts = sets["liang2022/convirt"].b.vectors
    unique = len(np.unique(texts, axis=0))
    assert unique == 443 and "liang2022/convirt" in with_duplicates
    assert lines[0].startswith(f"note: {len(with_duplicates)} expected warnings (DuplicateRowsWarning): ")
    assert f"text {unique} unique of {len(texts)}" in lines[0]
    assert all(f"{name}: exact duplicate rows" in lines[0] for name in with_duplicates)
    assert [w.category for w in caught] == [DuplicateRowsWarning] * len(with_duplicates)


def test_other_warnings_pass_through_and_nothing_is_printed_without_a_match(capsys):
    with pytest.warns(UnverifiedFileWarning, match="old file"), summarize_warnings() as caught:
        warnings.warn("old file", UnverifiedFileWarning, stacklevel=1)
    assert caught == [] and capsys.readouterr().out == ""
    with pytest.raises(TypeError, match="Warning subclasses"), summarize_warnings(int):  # type: ignore[arg-type]
        pass
