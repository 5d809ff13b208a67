"""The data model's first class: one modality's embeddings (and how a file's parts become them).

An :class:`Embeddings` is one modality's L2-normalised float32 matrix (N x D) with its modality name, model name and
a polars metadata frame (one row per item, an ``id`` column that is unique). Its arrays are read-only, so no
analysis can silently change them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from workbench.data._bundle import Bundle, Part, check_kind, read_bundle, unreadable, write_bundle
from workbench.data._checks import as_index, unit_rows, validated_metadata

__all__ = ["DuplicateRowsWarning", "Embeddings", "load_bundle", "save_bundle"]


class DuplicateRowsWarning(UserWarning):
    """Some rows of an embedding matrix are exact copies of others (retrieval cannot rank them apart)."""


class Embeddings:
    """One modality's embeddings: an L2-normalised float32 matrix (N x D) with names and per-row metadata.

    Parameters
    ----------
    vectors : array-like of shape (N, D)
        The embeddings. Rows are L2-normalised (norms in float64) and stored as read-only float32.
    modality : str
        What the rows embed, e.g. ``"image"``, ``"text"``, ``"audio"``.
    model : str, default "unknown"
        The encoder that produced them, e.g. ``"openclip:ViT-B-32/laion2b_s34b_b79k"``.
    metadata : polars.DataFrame or dict of columns, optional
        One row per embedding row. An ``id`` column (unique, not null) is added as ``0..N-1`` when absent; other
        conventional columns are ``caption``, ``path`` and ``label``.
    normalize : bool, default True
        If False, rows must already have unit norm (within ``NORM_TOLERANCE``) and are stored bit for bit.

    Raises
    ------
    ValueError
        For NaN or inf values, zero-norm rows, an empty matrix, a metadata frame of the wrong length, or repeated
        ids; the message says how many rows are affected.

    Examples
    --------
    >>> import numpy as np
    >>> from workbench import Embeddings
    >>> e = Embeddings(np.eye(3, 4) * 2, modality="image", model="toy")
    >>> e.shape, float(np.linalg.norm(e.vectors[0]))
    ((3, 4), 1.0)
    """

    __slots__ = ("_duplicates", "metadata", "modality", "model", "vectors")

    vectors: np.ndarray
    modality: str
    model: str
    metadata: pl.DataFrame

    def __init__(
        self,
        vectors: Any,
        modality: str,
        model: str = "unknown",
        metadata: Any = None,
        *,
        normalize: bool = True,
    ) -> None:
        if not isinstance(modality, str) or not modality:
            raise TypeError(f"modality must be a non-empty string, got {modality!r}")
        if not isinstance(model, str):
            raise TypeError(f"model must be a string, got {type(model).__name__}")
        what = f"{modality} embeddings"
        vectors = unit_rows(vectors, what, normalize)
        metadata = validated_metadata(metadata, len(vectors), what)
        self._set(vectors, modality, model, metadata)

    def _set(self, vectors: np.ndarray, modality: str, model: str, metadata: pl.DataFrame) -> None:
        self.vectors = vectors
        self.modality = modality
        self.model = model
        self.metadata = metadata
        self._duplicates: pl.DataFrame | None = None

    @classmethod
    def _trusted(cls, vectors: np.ndarray, modality: str, model: str, metadata: pl.DataFrame) -> Embeddings:
        """Build from parts that are already validated (internal: subsets of a valid object)."""
        obj = cls.__new__(cls)
        if vectors.flags.writeable:
            vectors = np.ascontiguousarray(vectors)
            vectors.flags.writeable = False
        obj._set(vectors, modality, model, metadata)
        return obj

    # -- basic facts -------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def shape(self) -> tuple[int, int]:
        """``(N, D)``."""
        return self.vectors.shape  # type: ignore[return-value]

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        return int(self.vectors.shape[1])

    @property
    def ids(self) -> pl.Series:
        """The ``id`` column of the metadata."""
        return self.metadata.get_column("id")

    def __repr__(self) -> str:
        n, d = self.shape
        return f"Embeddings(modality={self.modality!r}, model={self.model!r}, n={n}, dim={d})"

    # -- duplicates ----------------------------------------------------------------------------------------------
    def duplicates(self) -> pl.DataFrame:
        """Rows that exactly repeat an earlier row.

        Returns
        -------
        polars.DataFrame
            One row per repeated embedding row, with columns ``row`` and ``duplicate_of`` (the first row with the
            same bytes). Empty when every row is unique; its height is ``N - n_unique``.
        """
        if self._duplicates is None:
            rows = np.ascontiguousarray(self.vectors).view(np.dtype((np.void, self.vectors.dtype.itemsize * self.dim)))
            _, first, inverse = np.unique(rows.ravel(), return_index=True, return_inverse=True)
            first_of_row = first[inverse.ravel()]
            repeated = np.flatnonzero(first_of_row != np.arange(len(self)))
            self._duplicates = pl.DataFrame(
                {"row": repeated.astype(np.int64), "duplicate_of": first_of_row[repeated].astype(np.int64)}
            )
        return self._duplicates

    @property
    def n_unique(self) -> int:
        """Number of distinct rows."""
        return len(self) - self.duplicates().height

    # -- selection -------------------------------------------------------------------------------------------------
    def subset(self, rows: Any) -> Embeddings:
        """The embeddings of some rows (integer indices, a boolean mask or a slice), metadata included."""
        index = as_index(rows, len(self), f"{self.modality} rows")
        return Embeddings._trusted(self.vectors[index], self.modality, self.model, self.metadata[index])

    # -- IO --------------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to one ``.npz`` or ``.parquet`` file (atomically); :meth:`load` reads it back bit for bit."""
        save_bundle(path, "embeddings", [self])

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Embeddings:
        """Read a file written by :meth:`save`."""
        embeddings, _ = load_bundle(path, "embeddings")
        return embeddings[0]


def save_bundle(
    path: str | os.PathLike[str],
    kind: str,
    embeddings: Sequence[Embeddings],
    pairs: np.ndarray | None = None,
    key: str | None = None,
) -> None:
    """Write ``embeddings`` (and a pairing or linking key) as one ``.npz`` or ``.parquet`` bundle, atomically."""
    parts = [Part(e.vectors, e.modality, e.model, e.metadata) for e in embeddings]
    write_bundle(path, kind, parts, pairs=pairs, key=key)


def load_bundle(
    path: str | os.PathLike[str],
    expect: str,
    plain_modalities: tuple[str, str] = ("a", "b"),
    plain_model: str = "unknown",
) -> tuple[list[Embeddings], Bundle]:
    """Read a one-file bundle holding ``expect`` data and validate its parts as :class:`Embeddings`.

    Parts of a workbench file keep their bits (``normalize=False``); those of a plain npz are normalised. A part
    that fails validation makes the file unreadable (``ValueError("cannot read <path>: ...")``, in both formats).
    """
    bundle = read_bundle(path, plain_modalities=plain_modalities, plain_model=plain_model)
    try:
        embeddings = [Embeddings(p.vectors, p.modality, p.model, p.metadata, normalize=bundle.plain)
                      for p in bundle.parts]
    except (ValueError, TypeError) as exc:
        raise unreadable(path, exc) from None
    check_kind(bundle, expect, path)
    return embeddings, bundle
