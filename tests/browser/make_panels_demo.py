"""Write ``panels_demo.ipynb``: every panel on the built-in CLIP embeddings, for the real-browser tests.

Run ``python tests/browser/make_panels_demo.py`` after changing the cells below; the notebook is committed without
outputs (``test_panels_browser.py`` checks that it is stripped and matches this script). The browser tests run a
COPY of it in a temporary folder, so the committed file never gains outputs.

The tests name cells by their id here (``cell_index(id)`` gives its position in the notebook).
"""

from __future__ import annotations

import json
from pathlib import Path

NOTEBOOK = Path(__file__).with_name("panels_demo.ipynb")
#: Pairs of the built-in data shown (a seeded sample keeps the browser fast).
N_PAIRS = 200

CELLS: list[tuple[str, str, str]] = [
    ("title", "markdown", """\
# The workbench panels in JupyterLab

Every panel on the built-in CLIP embeddings (`liang2022/clip`, a seeded sample of 200 pairs). The real-browser
tests (`tests/browser/`) run this notebook cell by cell; regenerate it with
`python tests/browser/make_panels_demo.py`."""),
    ("setup", "code", f"""\
import json

import workbench
from workbench.correct import GapShift, MeanCenter
from workbench.panels import CorrectorComparison, EmbeddingExplorer, GapExplorer, RetrievalBrowser, TrainingMonitor

paired = workbench.datasets.load("liang2022/clip").sample({N_PAIRS})
paired"""),
    ("gap", "code", """\
gap = GapExplorer(paired)
gap"""),
    ("embedding", "code", """\
explorer = EmbeddingExplorer(paired)
explorer"""),
    ("retrieval", "code", """\
browser = RetrievalBrowser(paired)
browser"""),
    ("comparison", "code", """\
comparison = CorrectorComparison(paired, [MeanCenter(), GapShift(1.0)], n_resamples=200, probe=False)
comparison"""),
    ("training", "code", """\
from IPython.display import display

from workbench.towers import FeatureHead
from workbench.train import ContrastiveTrainer, ValidationSet

a, b = paired.matched()
monitor = TrainingMonitor()
display(monitor)  # shown first: the curves grow while the cell runs
trainer = ContrastiveTrainer(FeatureHead(a.shape[1], dim=64, seed=0), FeatureHead(b.shape[1], dim=64, seed=1),
                             epochs=6, batch_size=50, seed=0)
monitor.fit(trainer, a[:150], b[:150], validation=ValidationSet(a[150:], b[150:]))
monitor.history.height"""),
    ("readback-gap", "markdown", "What the kernel holds after the slider moved (run by the browser tests):"),
    ("gap-state", "code", """\
print(json.dumps({"delta": gap.delta, "centroid_distance": gap.metrics["centroid_distance"]}))"""),
    ("readback-selection", "markdown", "What the kernel holds after the box selection (run by the browser tests):"),
    ("selection-state", "code", """\
print(json.dumps({"selected": explorer.selected.tolist(), "rows": explorer.selection.height, "k": explorer.k,
                  "n_a": explorer.n_a}))"""),
    ("end", "markdown", "The end."),
]


def cell_index(cell_id: str) -> int:
    """The position of a cell in the notebook (the n-th ``.jp-Cell`` in JupyterLab)."""
    return [c[0] for c in CELLS].index(cell_id)


def notebook() -> dict:
    """The notebook as a JSON-ready dict (nbformat 4.5, no outputs, fixed cell ids: the output is reproducible)."""
    cells = []
    for cell_id, kind, source in CELLS:
        cell: dict = {"cell_type": kind, "id": cell_id, "metadata": {}, "source": source.splitlines(keepends=True)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render() -> str:
    """The notebook file's text."""
    return json.dumps(notebook(), indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    NOTEBOOK.write_text(render(), encoding="utf-8")
    print(f"wrote {NOTEBOOK}")


if __name__ == "__main__":
    main()
