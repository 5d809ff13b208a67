"""Datasets: built-in real embeddings, synthetic paired worlds, and loaders for folders and published protocols.

Examples
--------
>>> from workbench import datasets
>>> datasets.list().height
8
>>> paired = datasets.load("liang2022/clip")
>>> paired.modalities, paired.n_pairs, paired.dim
(('image', 'text'), 500, 512)
"""

from __future__ import annotations

import builtins

import polars as pl

from workbench.data import PairedEmbeddings
from workbench.datasets import builtin
from workbench.datasets.folders import PairedItems, SkippedItemsWarning, audio_captions, image_captions
from workbench.datasets.karpathy import KarpathySplit, load_karpathy
from workbench.datasets.worlds import World, shapes, tones

__all__ = [
    "CITATION",
    "KarpathySplit",
    "PairedItems",
    "SkippedItemsWarning",
    "World",
    "audio_captions",
    "image_captions",
    "list",
    "load",
    "load_karpathy",
    "names",
    "shapes",
    "tones",
]

CITATION = builtin.CITATION


def load(name: str, *, warn_duplicates: bool = True) -> PairedEmbeddings:
    """Load a built-in set by name, offline.

    Parameters
    ----------
    name : str
        ``"liang2022/clip"``, ``"liang2022/clip-random"``, ``convirt``, ``convirt-random``, ``videoclip``,
        ``videoclip-random``, ``clasp``, ``clasp-random`` (with or without the ``liang2022/`` prefix).
    warn_duplicates : bool, default True
        Warn once (:class:`~workbench.data.DuplicateRowsWarning`) when a side has exact duplicate rows
        (ConVIRT text: 443 unique of 500).

    Returns
    -------
    PairedEmbeddings
        Row-paired embeddings (pair i is row i of both sides), ids ``0..N-1``.

    Notes
    -----
    Real features from Liang et al., "Mind the Gap: Understanding the Modality Gap in Multi-modal Contrastive
    Representation Learning", NeurIPS 2022 (MIT license, shipped with this package).
    """
    return builtin.load_builtin(name, warn_duplicates=warn_duplicates)


def names() -> builtins.list[str]:
    """The names of the built-in sets."""
    return builtins.list(builtin.REGISTRY)


def list() -> pl.DataFrame:
    """A table of the built-in sets: name, modalities, model, pairs, dim, description."""
    return builtin.table()
