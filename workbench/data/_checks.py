"""Input checks shared by the data model's classes: rows, metadata, row indices, pairs and table columns.

Each check raises a ``ValueError`` (or ``TypeError``) that names the problem and how many rows have it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from workbench._validation import as_matrix, describe_rows, row_norms, unit_rows32

__all__ = ["NORM_TOLERANCE", "as_index", "column_matrix", "unit_rows", "validated_metadata", "validated_pairs"]

#: Largest deviation of a row norm from 1 accepted without re-normalising (``normalize=False``).
NORM_TOLERANCE = 1e-4


def unit_rows(values: Any, what: str, normalize: bool) -> np.ndarray:
    """Validated unit rows as a read-only C-contiguous float32 copy.

    With ``normalize`` they come from :func:`workbench._validation.unit_rows32` (norms in float64; rows already unit
    to float32 precision keep their bits); without it, rows must already be unit length within ``NORM_TOLERANCE``
    and are kept bit for bit.
    """
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


def validated_metadata(metadata: Any, n_rows: int, what: str) -> pl.DataFrame:
    """A metadata frame of ``n_rows`` rows with a unique, non-null ``id`` column (``0..N-1`` added when absent)."""
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


def as_index(index: Any, n: int, what: str) -> np.ndarray:
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


def validated_pairs(pairs: Any, n_a: int, n_b: int, names: tuple[str, str]) -> np.ndarray:
    """Read-only int64 ``(a row, b row)`` pairs, each inside its side and listed once."""
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


def column_matrix(column: pl.Series) -> np.ndarray:
    """A table column of equal-length number lists (or a fixed-size array column) as one matrix."""
    if column.dtype == pl.Object or not isinstance(column.dtype, pl.List | pl.Array):
        raise TypeError(f"column {column.name!r} must hold lists or arrays of numbers, got {column.dtype}")
    if column.len() == 0:
        raise ValueError(f"column {column.name!r} is empty: 0 rows")
    lengths = column.list.len() if isinstance(column.dtype, pl.List) else None
    if lengths is not None and lengths.n_unique() > 1:
        raise ValueError(f"column {column.name!r}: rows have different lengths ({sorted(lengths.unique())[:5]})")
    if column.null_count():
        raise ValueError(f"column {column.name!r}: {column.null_count()} rows are null")
    return np.asarray(column.to_numpy() if isinstance(column.dtype, pl.Array) else np.stack(column.to_list()))
