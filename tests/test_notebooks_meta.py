"""The tutorial notebooks' form: committed without outputs, parameterised for `make test`, titled and closed.

Executing them is nbmake's job (``make test`` runs ``pytest --nbmake notebooks`` with ``WORKBENCH_SMALL=1``); these
checks are static and fast.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = (
    "01_quickstart",
    "02_modality_gap_across_models",
    "03_retrieval_evaluation",
    "04_gap_correction",
    "05_train_alignment",
    "06_audio_text",
    "07_bring_your_own_data",
    "08_at_scale",
    "09_what_the_gap_changes",
)
SMALL_LINE = 'SMALL = os.environ.get("WORKBENCH_SMALL", "0") == "1"'
#: Venues and years that mark a citation of the paper behind a method.
CITATION = re.compile(r"(NeurIPS|ICML|ICLR|CVPR|ICCV|ICASSP|EMNLP|MLHC|Psychometrika)[ ,]*(19|20)\d\d|\b(19|20)\d\d\)")
#: Decimal numbers with two or more decimals in prose look like results typed in by hand; results are printed by
#: code cells instead. Documented constants are allowed.
PROSE_NUMBER = re.compile(r"(?<![\w.])\d+\.\d{2,}(?![\w.])")
ALLOWED_PROSE_NUMBERS = {"0.07"}  # CLIP's initial temperature


def _paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def test_the_tutorial_set_is_complete():
    assert [p.stem for p in _paths()] == list(EXPECTED)


@pytest.mark.parametrize("path", _paths(), ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = _read(path)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is None, f"{path.name}: a code cell has an execution count"
            assert cell.outputs == [], f"{path.name}: a code cell has outputs"
        assert "execution" not in cell.metadata, f"{path.name}: a cell keeps execution timing metadata"
    assert "widgets" not in nb.metadata, f"{path.name}: widget state is saved in the notebook metadata"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    ids = [cell.id for cell in nb.cells]
    assert len(set(ids)) == len(ids), f"{path.name}: repeated cell ids"


@pytest.mark.parametrize("path", _paths(), ids=lambda p: p.stem)
def test_first_code_cell_holds_the_parameters(path):
    code = [c for c in _read(path).cells if c.cell_type == "code"]
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), f"{path.name}: first code cell is not tagged 'parameters'"
    assert SMALL_LINE in first.source, f"{path.name}: the parameters cell does not read WORKBENCH_SMALL"
    assert not any("parameters" in c.metadata.get("tags", []) for c in code[1:]), "only one parameters cell"


@pytest.mark.parametrize("path", _paths(), ids=lambda p: p.stem)
def test_code_parses(path):
    for cell in _read(path).cells:
        if cell.cell_type == "code":
            ast.parse(cell.source)


@pytest.mark.parametrize("path", _paths(), ids=lambda p: p.stem)
def test_title_citations_and_closing_findings(path):
    cells = _read(path).cells
    number = path.stem.split("_")[0]
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith(f"# {number} · "), \
        f"{path.name}: the first cell must be the title '# {number} · ...'"
    prose = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    assert CITATION.search(prose), f"{path.name}: no citation (venue and year) of the papers behind the methods"
    headings = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## What we saw" in c.source]
    assert headings, f"{path.name}: no closing '## What we saw' section"
    closing = cells[headings[-1]:]
    assert any(c.cell_type == "code" and "print(" in c.source for c in closing), \
        f"{path.name}: the closing section must print the numbers it discusses"
    assert cells[-1].cell_type == "markdown", f"{path.name}: the notebook should end with the findings in prose"


@pytest.mark.parametrize("path", _paths(), ids=lambda p: p.stem)
def test_prose_holds_no_typed_in_results(path):
    for cell in _read(path).cells:
        if cell.cell_type != "markdown":
            continue
        text = re.sub(r"`[^`]*`", "", cell.source)  # inline code (parameter values, calls) is not a result
        found = set(PROSE_NUMBER.findall(text)) - ALLOWED_PROSE_NUMBERS
        assert not found, f"{path.name}: numbers typed into prose {sorted(found)}; print computed values instead"
