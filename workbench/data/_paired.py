"""The data model's pair: two modalities embedded in one space, and which of their rows belong together.

A :class:`PairedEmbeddings` holds two :class:`~workbench.data.Embeddings` and their pairing as integer index pairs.
Many-to-many is allowed (COCO has five captions per image); :meth:`PairedEmbeddings.matched` gives row-aligned
arrays.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import polars as pl

from workbench._params import check_int, check_seed
from workbench.data._checks import as_index, column_matrix, validated_pairs
from workbench.data._embeddings import DuplicateRowsWarning, Embeddings, load_bundle, save_bundle

__all__ = ["PairedEmbeddings"]


class PairedEmbeddings:
    """Two modalities embedded in one space, and which of their rows belong together.

    Parameters
    ----------
    a, b : Embeddings
        The two modalities; they must have the same dimension D.
    pairs : array-like of shape (P, 2), optional
        Integer index pairs ``(row of a, row of b)``; many-to-many is allowed (five captions per image). Omit it for
        row-paired inputs of equal length (pair i is ``(i, i)``). Rows of a or b that appear in no pair are kept
        (a retrieval gallery may hold distractors).

    Examples
    --------
    >>> import numpy as np
    >>> from workbench import PairedEmbeddings
    >>> rng = np.random.default_rng(0)
    >>> images, texts = rng.normal(size=(3, 8)), rng.normal(size=(6, 8))
    >>> p = PairedEmbeddings.from_arrays(images, texts, modalities=("image", "text"),
    ...                                  pairs=[(0, 0), (0, 1), (1, 2), (1, 3), (2, 4), (2, 5)])
    >>> a, b = p.matched()
    >>> a.shape, b.shape, p.is_one_to_one
    ((6, 8), (6, 8), False)
    """

    __slots__ = ("_matched", "a", "b", "pairs")

    def __init__(self, a: Embeddings, b: Embeddings, pairs: Any = None) -> None:
        for name, e in (("a", a), ("b", b)):
            if not isinstance(e, Embeddings):
                raise TypeError(
                    f"{name} must be an Embeddings, got {type(e).__name__}; see PairedEmbeddings.from_arrays"
                )
        if a.dim != b.dim:
            raise ValueError(
                f"dimensions differ: {a.modality} has {a.dim}, {b.modality} has {b.dim}; "
                "paired embeddings must live in one shared space"
            )
        if pairs is None:
            if len(a) != len(b):
                raise ValueError(
                    f"without pairs=, rows are paired by position, but {a.modality} has {len(a)} rows and "
                    f"{b.modality} has {len(b)}; pass pairs=[(a_row, b_row), ...]"
                )
            pairs = np.repeat(np.arange(len(a), dtype=np.int64)[:, None], 2, axis=1)
        self.a = a
        self.b = b
        self.pairs = validated_pairs(pairs, len(a), len(b), (a.modality, b.modality))
        self._matched: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_arrays(
        cls,
        a: Any,
        b: Any,
        *,
        modalities: tuple[str, str] = ("a", "b"),
        model: str | tuple[str, str] = "unknown",
        pairs: Any = None,
        metadata_a: Any = None,
        metadata_b: Any = None,
    ) -> PairedEmbeddings:
        """Build from two matrices (row i of ``a`` paired with row i of ``b`` unless ``pairs`` says otherwise).

        Examples
        --------
        >>> import numpy as np
        >>> p = PairedEmbeddings.from_arrays(np.ones((2, 3)), np.eye(2, 3), modalities=("image", "text"))
        >>> p
        PairedEmbeddings(image <-> text, model='unknown', n_a=2, n_b=2, pairs=2, dim=3)
        """
        if len(modalities) != 2:
            raise ValueError(f"modalities must name two modalities, got {modalities!r}")
        if not isinstance(model, str) and not (isinstance(model, tuple | list) and len(model) == 2):
            raise TypeError(f"model must be a string or a pair of strings (one per modality), got {model!r}")
        model_a, model_b = (model, model) if isinstance(model, str) else model
        return cls(
            Embeddings(a, modalities[0], model_a, metadata_a),
            Embeddings(b, modalities[1], model_b, metadata_b),
            pairs,
        )

    @classmethod
    def from_frame(
        cls,
        frame: pl.DataFrame,
        a: str,
        b: str,
        *,
        modalities: tuple[str, str] | None = None,
        model: str = "unknown",
    ) -> PairedEmbeddings:
        """Build from a row-paired table with two list/array columns of embeddings (e.g. a parquet file).

        Other columns become metadata of both sides (an ``id`` column, if present, identifies each pair).

        Examples
        --------
        >>> import polars as pl
        >>> df = pl.DataFrame({"image_emb": [[1.0, 0.0], [0.0, 1.0]], "text_emb": [[1.0, 0.2], [0.1, 1.0]]})
        >>> PairedEmbeddings.from_frame(df, "image_emb", "text_emb").modalities
        ('image', 'text')
        """
        if not isinstance(frame, pl.DataFrame):
            raise TypeError(
                f"frame must be a polars DataFrame, got {type(frame).__name__} (for pandas: polars.from_pandas(frame))"
            )
        for col in (a, b):
            if col not in frame.columns:
                raise ValueError(f"column {col!r} not in the table (columns: {frame.columns})")
        if modalities is None:
            modalities = (a.removesuffix("_emb").removesuffix("_embedding"),
                          b.removesuffix("_emb").removesuffix("_embedding"))
        rest = frame.drop(a, b)
        vec_a = column_matrix(frame.get_column(a))
        vec_b = column_matrix(frame.get_column(b))
        return cls.from_arrays(vec_a, vec_b, modalities=modalities, model=model,
                               metadata_a=rest if rest.width else None, metadata_b=rest if rest.width else None)

    # -- basic facts -----------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def n_pairs(self) -> int:
        """Number of (a, b) pairs."""
        return len(self.pairs)

    @property
    def modalities(self) -> tuple[str, str]:
        return (self.a.modality, self.b.modality)

    @property
    def dim(self) -> int:
        return self.a.dim

    @property
    def model(self) -> str:
        """The model name (both sides' names joined by ' / ' when they differ)."""
        return self.a.model if self.a.model == self.b.model else f"{self.a.model} / {self.b.model}"

    @property
    def is_one_to_one(self) -> bool:
        """True when every row of a and of b is in exactly one pair."""
        return (
            len(self.pairs) == len(self.a) == len(self.b)
            and len(np.unique(self.pairs[:, 0])) == len(self.a)
            and len(np.unique(self.pairs[:, 1])) == len(self.b)
        )

    def paired_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The sorted unique rows of a and of b that take part in at least one pair (each item once)."""
        return np.unique(self.pairs[:, 0]), np.unique(self.pairs[:, 1])

    def __repr__(self) -> str:
        return (
            f"PairedEmbeddings({self.a.modality} <-> {self.b.modality}, model={self.model!r}, "
            f"n_a={len(self.a)}, n_b={len(self.b)}, pairs={self.n_pairs}, dim={self.dim})"
        )

    # -- views -----------------------------------------------------------------------------------------------------
    def matched(self) -> tuple[np.ndarray, np.ndarray]:
        """Row-aligned ``(a, b)`` float32 arrays, one row per pair (an image repeats once per caption).

        The arrays are read-only; copy them to modify.
        """
        if self._matched is None:
            identity = len(self.a) == len(self.b) == len(self.pairs) and np.array_equal(
                self.pairs[:, 0], np.arange(len(self.a))
            ) and np.array_equal(self.pairs[:, 1], self.pairs[:, 0])
            if identity:
                self._matched = (self.a.vectors, self.b.vectors)
            else:
                a, b = self.a.vectors[self.pairs[:, 0]], self.b.vectors[self.pairs[:, 1]]
                a.flags.writeable = False
                b.flags.writeable = False
                self._matched = (a, b)
        return self._matched

    def subset(self, pairs: Any) -> PairedEmbeddings:
        """Keep some pairs (integer indices, a boolean mask or a slice) and the rows they reference.

        Rows are renumbered in their original order; metadata follows them.
        """
        keep = self.pairs[as_index(pairs, len(self.pairs), "pairs")]
        if len(keep) == 0:
            raise ValueError("subset is empty: it keeps no pair")
        rows_a, new_a = np.unique(keep[:, 0], return_inverse=True)
        rows_b, new_b = np.unique(keep[:, 1], return_inverse=True)
        new_pairs = np.stack([new_a.ravel(), new_b.ravel()], axis=1).astype(np.int64)
        new_pairs.flags.writeable = False
        out = PairedEmbeddings.__new__(PairedEmbeddings)
        out.a, out.b = self.a.subset(rows_a), self.b.subset(rows_b)
        out.pairs, out._matched = new_pairs, None
        return out

    def sample(self, n: int, seed: int = 0) -> PairedEmbeddings:
        """A seeded random subset of ``n`` pairs (all of them when ``n >= n_pairs``), in original order."""
        n, seed = check_int(n, "n"), check_seed(seed)
        if n >= self.n_pairs:
            return self
        chosen = np.sort(np.random.default_rng(seed).choice(self.n_pairs, size=n, replace=False))
        return self.subset(chosen)

    def swap(self) -> PairedEmbeddings:
        """The same pairs with the two modalities' roles exchanged."""
        return PairedEmbeddings(self.b, self.a, self.pairs[:, ::-1].copy())

    def duplicates(self) -> pl.DataFrame:
        """Exactly repeated rows on either side: columns ``side`` ("a"/"b"), ``modality``, ``row``, ``duplicate_of``."""
        frames = [
            e.duplicates().select(pl.lit(side).alias("side"), pl.lit(e.modality).alias("modality"), pl.all())
            for side, e in (("a", self.a), ("b", self.b))
        ]
        return pl.concat(frames)

    def warn_duplicates(self, name: str | None = None, stacklevel: int = 2) -> None:
        """Issue one :class:`DuplicateRowsWarning` line if either side has exact duplicate rows."""
        parts = [
            f"{e.modality} {e.n_unique} unique of {len(e)}" for e in (self.a, self.b) if e.n_unique != len(e)
        ]
        if parts:
            label = f"{name}: " if name else ""
            warnings.warn(
                f"{label}exact duplicate rows ({'; '.join(parts)}); retrieval cannot rank duplicates apart, "
                "see .duplicates()",
                DuplicateRowsWarning,
                stacklevel=stacklevel + 1,
            )

    # -- IO --------------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to one ``.npz`` or ``.parquet`` file (atomically); :meth:`load` reads it back bit for bit.

        Examples
        --------
        >>> import numpy as np, tempfile, os
        >>> p = PairedEmbeddings.from_arrays(np.eye(3), np.ones((3, 3)) + np.eye(3))
        >>> path = os.path.join(tempfile.mkdtemp(), "pairs.npz")
        >>> p.save(path)
        >>> np.array_equal(PairedEmbeddings.load(path).a.vectors, p.a.vectors)
        True
        """
        save_bundle(path, "paired", [self.a, self.b], pairs=self.pairs)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, modalities: tuple[str, str] = ("a", "b"), model: str = "unknown"
    ) -> PairedEmbeddings:
        """Read a file written by :meth:`save`, or a plain ``.npz`` holding arrays ``a``, ``b`` and optionally
        ``pairs`` (then ``modalities`` and ``model`` name them). Warns once about exact duplicate rows."""
        embeddings, bundle = load_bundle(path, "paired", plain_modalities=modalities, plain_model=model)
        paired = cls(embeddings[0], embeddings[1], bundle.pairs)
        paired.warn_duplicates(os.fspath(path), stacklevel=2)
        return paired
