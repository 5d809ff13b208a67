"""The data model: one modality's embeddings, a pair of modalities, several modalities sharing item ids.

Three classes carry every analysis in the workbench:

- :class:`Embeddings` -- one modality's L2-normalised float32 matrix (N x D) with its modality name, model name
  and a polars metadata frame (one row per item, an ``id`` column that is unique).
- :class:`PairedEmbeddings` -- two :class:`Embeddings` and their pairing as integer index pairs. Many-to-many is
  allowed (COCO has five captions per image); :meth:`PairedEmbeddings.matched` gives row-aligned arrays.
- :class:`MultimodalEmbeddings` -- any number of modalities whose rows share a key column (ImageBind-style sets:
  an item with an image, a caption and a sound); :meth:`MultimodalEmbeddings.pair` gives the
  :class:`PairedEmbeddings` of any two of them.

Every constructor validates its input (NaN/inf, zero-norm rows, mismatched dimensions, pair indices out of range,
empty sets) and raises a ``ValueError`` naming the problem and how many rows have it. Arrays held by these
objects are read-only, so no analysis can silently change them.

Each class saves to and loads from one ``.npz`` or ``.parquet`` file (``save(path)`` / ``load(path)``, written
atomically, read back bit for bit, checksummed: a damaged file is a ``ValueError`` naming it; a ``.parquet`` file
written before checksums loads with an :class:`UnverifiedFileWarning`); the file format lives below the classes, in
the private ``_bundle`` module.

Warnings that are expected and understood (duplicate rows in a built-in set) can be collected into one printed
line with :func:`summarize_warnings`.

Functions taking either one :class:`PairedEmbeddings` or two arrays ``(a, b)`` of one space (each modality's rows
once) unpack and check them with :func:`modality_matrices`.
"""

from __future__ import annotations

from workbench.data._bundle import UnverifiedFileWarning
from workbench.data._embeddings import DuplicateRowsWarning, Embeddings
from workbench.data._multimodal import MultimodalEmbeddings
from workbench.data._paired import PairedEmbeddings
from workbench.data._sides import modality_matrices
from workbench.data._warnings import WarningSummary, summarize_warnings

__all__ = [
    "DuplicateRowsWarning",
    "Embeddings",
    "MultimodalEmbeddings",
    "PairedEmbeddings",
    "UnverifiedFileWarning",
    "WarningSummary",
    "modality_matrices",
    "summarize_warnings",
]
