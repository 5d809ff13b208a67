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
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import polars as pl

from workbench._validation import as_matrix, describe_rows, row_norms, unit_rows32

__all__ = [
    "DuplicateRowsWarning",
    "Embeddings",
    "MultimodalEmbeddings",
    "PairedEmbeddings",
]

#: Largest deviation of a row norm from 1 accepted without re-normalising (``normalize=False``).
NORM_TOLERANCE = 1e-4


class DuplicateRowsWarning(UserWarning):
    """Some rows of an embedding matrix are exact copies of others (retrieval cannot rank them apart)."""


def _validated_unit_rows(values: Any, what: str, normalize: bool) -> np.ndarray:
    """Validate and L2-normalise rows (norms in float64; rows already unit to float32 precision keep their bits);
    return a read-only C-contiguous float32 array."""
    if normalize:
        out = unit_rows32(values, what, copy=True)
    else:
        arr = as_matrix(values, what)
        norms = row_norms(arr, what)
        off = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
        if len(off):
            raise ValueError(
                f"{what}: {len(off)} of {len(arr)} rows are not unit length ({describe_rows(off)}; "
                f"norm {norms[off[0]]:.6f}); pass normalize=True"
            )
        out = np.array(arr, dtype=np.float32, order="C", copy=True)
    out.flags.writeable = False
    return out


def _validated_metadata(metadata: Any, n_rows: int, what: str) -> pl.DataFrame:
    if metadata is None:
        return pl.DataFrame({"id": np.arange(n_rows, dtype=np.int64)})
    if not isinstance(metadata, pl.DataFrame):
        try:
            metadata = pl.DataFrame(metadata)
        except Exception as exc:
            raise TypeError(f"{what} metadata must be a polars DataFrame (or a dict of columns): {exc}") from None
    if metadata.height != n_rows:
        raise ValueError(f"{what} metadata has {metadata.height} rows but there are {n_rows} embedding rows")
    if "id" not in metadata.columns:
        metadata = metadata.with_columns(pl.Series("id", np.arange(n_rows, dtype=np.int64))).select(
            "id", pl.exclude("id")
        )
    ids = metadata.get_column("id")
    if ids.null_count():
        raise ValueError(f"{what} metadata: {ids.null_count()} rows have a null id")
    n_unique = ids.n_unique()
    if n_unique != n_rows:
        repeated = ids.filter(ids.is_duplicated()).unique(maintain_order=True).head(3).to_list()
        raise ValueError(
            f"{what} metadata: ids must be unique, but {n_rows - n_unique} rows repeat an id (e.g. {repeated}); "
            "to link several rows to one item use another column as the key"
        )
    return metadata


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
        vectors = _validated_unit_rows(vectors, what, normalize)
        metadata = _validated_metadata(metadata, len(vectors), what)
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
        index = _as_index(rows, len(self), f"{self.modality} rows")
        return Embeddings._trusted(self.vectors[index], self.modality, self.model, self.metadata[index])

    # -- IO --------------------------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to one ``.npz`` or ``.parquet`` file (atomically); :meth:`load` reads it back bit for bit."""
        from workbench import io

        io.write_bundle(path, "embeddings", [self])

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Embeddings:
        """Read a file written by :meth:`save`."""
        from workbench import io

        bundle = io.read_bundle(path, expect="embeddings")
        return bundle.embeddings[0]


def _as_index(index: Any, n: int, what: str) -> np.ndarray:
    """Turn a slice, boolean mask or integer indices into validated int64 row indices."""
    if isinstance(index, slice):
        return np.arange(n, dtype=np.int64)[index]
    if isinstance(index, pl.Series):
        index = index.to_numpy()
    arr = np.asarray(index)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"boolean mask over {what} must have length {n}, got shape {arr.shape}")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integer indices, a boolean mask or a slice; got dtype {arr.dtype}")
    arr = arr.astype(np.int64).ravel()
    bad = np.flatnonzero((arr < -n) | (arr >= n))
    if len(bad):
        raise ValueError(f"{len(bad)} indices into {what} are out of range for {n} rows (e.g. {int(arr[bad[0]])})")
    return np.where(arr < 0, arr + n, arr)


def _validated_pairs(pairs: Any, n_a: int, n_b: int, names: tuple[str, str]) -> np.ndarray:
    if hasattr(pairs, "detach"):
        pairs = pairs.detach().cpu().numpy()
    arr = np.asarray(pairs)
    if arr.size == 0:
        raise ValueError("pairs is empty: at least one (a, b) pair is needed")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"pairs must be integer row indices, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"pairs must have shape (P, 2) of (a row, b row); got shape {arr.shape}")
    arr = arr.astype(np.int64)
    for col, n, name in ((0, n_a, names[0]), (1, n_b, names[1])):
        bad = np.flatnonzero((arr[:, col] < 0) | (arr[:, col] >= n))
        if len(bad):
            raise ValueError(
                f"{len(bad)} of {len(arr)} pairs point outside the {n} {name} rows "
                f"(e.g. pair {int(bad[0])} -> row {int(arr[bad[0], col])})"
            )
    unique = np.unique(arr, axis=0)
    if len(unique) != len(arr):
        raise ValueError(f"pairs: {len(arr) - len(unique)} pairs are listed more than once")
    arr = np.ascontiguousarray(arr)
    arr.flags.writeable = False
    return arr


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
        self.pairs = _validated_pairs(pairs, len(a), len(b), (a.modality, b.modality))
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
        for col in (a, b):
            if col not in frame.columns:
                raise ValueError(f"column {col!r} not in the table (columns: {frame.columns})")
        if modalities is None:
            modalities = (a.removesuffix("_emb").removesuffix("_embedding"),
                          b.removesuffix("_emb").removesuffix("_embedding"))
        rest = frame.drop(a, b)
        vec_a = _column_matrix(frame.get_column(a))
        vec_b = _column_matrix(frame.get_column(b))
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
        keep = self.pairs[_as_index(pairs, len(self.pairs), "pairs")]
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
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
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
        from workbench import io

        io.write_bundle(path, "paired", [self.a, self.b], pairs=self.pairs)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, modalities: tuple[str, str] = ("a", "b"), model: str = "unknown"
    ) -> PairedEmbeddings:
        """Read a file written by :meth:`save`, or a plain ``.npz`` holding arrays ``a``, ``b`` and optionally
        ``pairs`` (then ``modalities`` and ``model`` name them). Warns once about exact duplicate rows."""
        from workbench import io

        bundle = io.read_bundle(path, expect="paired", plain_modalities=modalities, plain_model=model)
        paired = cls(bundle.embeddings[0], bundle.embeddings[1], bundle.pairs)
        paired.warn_duplicates(os.fspath(path), stacklevel=2)
        return paired


def _column_matrix(column: pl.Series) -> np.ndarray:
    if column.dtype == pl.Object or not isinstance(column.dtype, pl.List | pl.Array):
        raise TypeError(f"column {column.name!r} must hold lists or arrays of numbers, got {column.dtype}")
    lengths = column.list.len() if isinstance(column.dtype, pl.List) else None
    if lengths is not None and lengths.n_unique() > 1:
        raise ValueError(f"column {column.name!r}: rows have different lengths ({sorted(lengths.unique())[:5]})")
    if column.null_count():
        raise ValueError(f"column {column.name!r}: {column.null_count()} rows are null")
    return np.asarray(column.to_numpy() if isinstance(column.dtype, pl.Array) else np.stack(column.to_list()))


class MultimodalEmbeddings:
    """Several modalities whose rows share a key column (ImageBind-style sets).

    Rows of different modalities with equal values in ``key`` describe the same item. The key may repeat within a
    modality (five captions of one image all carry the image's key), which makes the pairing many-to-many.

    Parameters
    ----------
    embeddings : mapping of modality name to Embeddings, or an iterable of Embeddings
        One entry per modality (names must be distinct).
    key : str, default "id"
        The metadata column that links rows across modalities.

    Examples
    --------
    >>> import numpy as np
    >>> from workbench import Embeddings, MultimodalEmbeddings
    >>> rng = np.random.default_rng(0)
    >>> ids = {"id": ["dog", "cat", "owl"]}
    >>> mm = MultimodalEmbeddings([Embeddings(rng.normal(size=(3, 4)), m, metadata=ids)
    ...                            for m in ("image", "text", "audio")])
    >>> mm.pair("audio", "image")
    PairedEmbeddings(audio <-> image, model='unknown', n_a=3, n_b=3, pairs=3, dim=4)
    """

    __slots__ = ("embeddings", "key")

    def __init__(self, embeddings: Mapping[str, Embeddings] | Iterable[Embeddings], key: str = "id") -> None:
        items = list(embeddings.values()) if isinstance(embeddings, Mapping) else list(embeddings)
        if isinstance(embeddings, Mapping):
            for name, e in embeddings.items():
                if isinstance(e, Embeddings) and e.modality != name:
                    raise ValueError(f"mapping key {name!r} differs from the embeddings' modality {e.modality!r}")
        if not items:
            raise ValueError("MultimodalEmbeddings needs at least one modality")
        for e in items:
            if not isinstance(e, Embeddings):
                raise TypeError(f"expected Embeddings, got {type(e).__name__}")
            if key not in e.metadata.columns:
                raise ValueError(f"{e.modality} metadata has no key column {key!r} (columns: {e.metadata.columns})")
        names = [e.modality for e in items]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"modality names must be distinct; repeated: {repeated}")
        self.embeddings: dict[str, Embeddings] = {e.modality: e for e in items}
        self.key = key

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.embeddings)

    def __getitem__(self, modality: str) -> Embeddings:
        try:
            return self.embeddings[modality]
        except KeyError:
            raise KeyError(f"no modality {modality!r}; have {list(self.embeddings)}") from None

    def __repr__(self) -> str:
        parts = ", ".join(f"{m}: {len(e)}x{e.dim}" for m, e in self.embeddings.items())
        return f"MultimodalEmbeddings({parts}; key={self.key!r})"

    def pair(self, a: str, b: str) -> PairedEmbeddings:
        """The :class:`PairedEmbeddings` of modalities ``a`` and ``b``: every row pair sharing a key value.

        Rows without a partner stay in the result as unpaired items.
        """
        if a == b:
            raise ValueError(f"pair needs two different modalities, got {a!r} twice")
        ea, eb = self[a], self[b]
        left = ea.metadata.select(pl.col(self.key).alias("_key"), pl.int_range(pl.len(), dtype=pl.Int64).alias("_a"))
        right = eb.metadata.select(pl.col(self.key).alias("_key"), pl.int_range(pl.len(), dtype=pl.Int64).alias("_b"))
        if left.schema["_key"] != right.schema["_key"]:
            raise TypeError(
                f"key column {self.key!r} has type {left.schema['_key']} in {a} but {right.schema['_key']} in {b}"
            )
        joined = left.join(right, on="_key", how="inner").sort("_a", "_b")
        if joined.height == 0:
            raise ValueError(f"{a} and {b} share no value of {self.key!r}: nothing to pair")
        return PairedEmbeddings(ea, eb, joined.select("_a", "_b").to_numpy())

    def pairs_with(self, anchor: str) -> dict[str, PairedEmbeddings]:
        """Every other modality paired with ``anchor`` (ImageBind binds all modalities to images)."""
        self[anchor]
        return {m: self.pair(m, anchor) for m in self.embeddings if m != anchor}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to one ``.npz`` or ``.parquet`` file (atomically)."""
        from workbench import io

        io.write_bundle(path, "multimodal", list(self.embeddings.values()), key=self.key)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MultimodalEmbeddings:
        """Read a file written by :meth:`save`."""
        from workbench import io

        bundle = io.read_bundle(path, expect="multimodal")
        return cls(bundle.embeddings, key=bundle.key or "id")

