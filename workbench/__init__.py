"""workbench: study multimodal alignment -- the modality gap, retrieval and gap correction.

``import workbench`` is light: submodules (and torch, plotly, ipywidgets behind them) load on first use.

Examples
--------
>>> import workbench
>>> paired = workbench.datasets.load("liang2022/clip")
>>> paired.modalities
('image', 'text')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from workbench._version import __version__

# public name -> module that defines it (imported on first attribute access)
_LAZY_ATTRIBUTES = {
    "Embeddings": "workbench.data",
    "PairedEmbeddings": "workbench.data",
    "MultimodalEmbeddings": "workbench.data",
    "DuplicateRowsWarning": "workbench.data",
    "embed": "workbench.store",
    "EmbeddingCache": "workbench.store",
}
_LAZY_MODULES = (
    "alignment", "cli", "compare", "correct", "data", "datasets", "encoders", "export", "figures", "gap",
    "gap_figures", "panels", "probes", "projection", "report", "reproduce", "retrieval", "search", "similarity",
    "store", "towers", "train", "zeroshot",
)

__all__ = [
    "DuplicateRowsWarning",
    "EmbeddingCache",
    "Embeddings",
    "MultimodalEmbeddings",
    "PairedEmbeddings",
    "__version__",
    "alignment",
    "cli",
    "compare",
    "correct",
    "data",
    "datasets",
    "embed",
    "encoders",
    "export",
    "figures",
    "gap",
    "gap_figures",
    "panels",
    "probes",
    "projection",
    "report",
    "reproduce",
    "retrieval",
    "search",
    "similarity",
    "store",
    "towers",
    "train",
    "zeroshot",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from workbench import (
        alignment,
        cli,
        compare,
        correct,
        data,
        datasets,
        encoders,
        export,
        figures,
        gap,
        gap_figures,
        panels,
        probes,
        projection,
        report,
        reproduce,
        retrieval,
        search,
        similarity,
        store,
        towers,
        train,
        zeroshot,
    )
    from workbench.data import DuplicateRowsWarning, Embeddings, MultimodalEmbeddings, PairedEmbeddings
    from workbench.store import EmbeddingCache, embed


def __getattr__(name: str) -> Any:
    if name in _LAZY_ATTRIBUTES:
        value = getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    elif name in _LAZY_MODULES:
        value = importlib.import_module(f"workbench.{name}")
    else:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
