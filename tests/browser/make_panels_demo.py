"""Write the notebooks of the real-browser tests: ``panels_demo.ipynb`` and ``jscatter_demo.ipynb``.

``panels_demo.ipynb``: every panel on the built-in CLIP embeddings. ``jscatter_demo.ipynb``: the jupyter-scatter
view of the EmbeddingExplorer on three well-separated clusters (a lasso around one of them must select exactly its
points). Run ``python tests/browser/make_panels_demo.py`` after changing the cells below; the notebooks are
committed without outputs (the browser tests check that they are stripped and match this script). The browser tests
run COPIES of them in a temporary folder, so the committed files never gain outputs.

The tests name cells by their id here (``_lab.Lab.cell(id)`` finds the cell of that id in the page).
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


JSCATTER_NOTEBOOK = NOTEBOOK.with_name("jscatter_demo.ipynb")
#: The jupyter-scatter notebook's clusters: CLUSTERS groups of CLUSTER_SIZE pairs, each around its own direction.
CLUSTERS, CLUSTER_SIZE, DIM = 3, 40, 16

JSCATTER_CELLS: list[tuple[str, str, str]] = [
    ("title", "markdown", """\
# The EmbeddingExplorer on jupyter-scatter

Three clusters of image/text pairs (each around its own direction), coloured by cluster, drawn by the
jupyter-scatter (WebGL) view. Lasso: the toolbar's lasso button, then a drag (or, in pan mode, a long press, then a
drag); the lassoed points become `explorer.selection`. The real-browser tests (`tests/browser/test_jscatter_browser.py`)
run this notebook; regenerate it with `python tests/browser/make_panels_demo.py`."""),
    ("setup", "code", f"""\
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import workbench
from workbench.panels import EmbeddingExplorer

rng = np.random.default_rng(0)
cluster = np.repeat(np.arange({CLUSTERS}), {CLUSTER_SIZE})
centres = 4.0 * np.eye({CLUSTERS}, {DIM})
folder = Path(tempfile.mkdtemp())
paths = []
for i, c in enumerate(cluster):  # a small picture per image: its cluster's shade
    paths.append(str(folder / f"img{{i}}.png"))
    Image.new("RGB", (32, 32), (60 + 80 * int(c), 120, 200 - 60 * int(c))).save(paths[-1])
paired = workbench.PairedEmbeddings.from_arrays(
    centres[cluster] + rng.normal(scale=0.3, size=(len(cluster), {DIM})),
    centres[cluster] + rng.normal(scale=0.3, size=(len(cluster), {DIM})), modalities=("image", "text"),
    metadata_a={{"cluster": cluster, "path": paths}},
    metadata_b={{"cluster": cluster, "caption": [f"caption {{i}} of cluster {{c}}" for i, c in enumerate(cluster)]}})
paired"""),
    ("explorer", "code", """\
explorer = EmbeddingExplorer(paired, color_by="cluster", backend="jscatter")
explorer"""),
    ("readback", "markdown", "What the kernel holds after the lasso (run by the browser tests):"),
    ("state", "code", """\
print(json.dumps({"backend": explorer.backend, "selected": explorer.selected.tolist(),
                  "rows": explorer.selection.height, "k": explorer.k, "n_a": explorer.n_a}))"""),
    ("select-title", "markdown", "A selection made in Python shows in the widget (run by the browser tests):"),
    ("select", "code", """\
explorer.select(np.flatnonzero(np.concatenate([cluster, cluster]) == 2)[::2])
len(explorer.selected)"""),
    ("end", "markdown", "The end."),
]


def notebook(cells: list[tuple[str, str, str]] | None = None) -> dict:
    """A notebook as a JSON-ready dict (nbformat 4.5, no outputs, fixed cell ids: the output is reproducible)."""
    out = []
    for cell_id, kind, source in CELLS if cells is None else cells:
        cell: dict = {"cell_type": kind, "id": cell_id, "metadata": {}, "source": source.splitlines(keepends=True)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        out.append(cell)
    return {
        "cells": out,
        "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render(cells: list[tuple[str, str, str]] | None = None) -> str:
    """A notebook file's text (``cells`` default CELLS: ``panels_demo.ipynb``)."""
    return json.dumps(notebook(cells), indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    for path, cells in ((NOTEBOOK, CELLS), (JSCATTER_NOTEBOOK, JSCATTER_CELLS)):
        path.write_text(render(cells), encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
