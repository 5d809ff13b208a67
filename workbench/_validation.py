"""Input checks shared by the data model and the analysis core: one wording for every error."""

from __future__ import annotations

from typing import Any

import numpy as np


def describe_rows(rows: np.ndarray, limit: int = 5) -> str:
    """``"rows 3, 17, ..."``: the first few offending row indices, for error messages."""
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    return f"rows {shown}{', ...' if len(rows) > limit else ''}"


def as_matrix(values: Any, what: str) -> np.ndarray:
    """A non-empty 2-D numeric numpy array from numpy, torch, polars/pandas frames, lists or an
    :class:`~workbench.data.Embeddings` (its vectors), or a TypeError/ValueError naming the problem."""
    if hasattr(values, "vectors") and hasattr(values, "metadata") and hasattr(values, "modality"):  # an Embeddings
        values = values.vectors
    elif hasattr(values, "pairs") and hasattr(values, "matched"):  # a PairedEmbeddings where one matrix belongs
        raise TypeError(
            f"{what} must be a numeric matrix (N x D), got a {type(values).__name__}; pass one side's vectors "
            "(p.a.vectors) or its row-paired arrays (p.matched())"
        )
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # a torch tensor, without importing torch
        values = values.detach().cpu()
        values = (values.double() if values.is_floating_point() else values).numpy()
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be a numeric matrix (N x D); got {type(values).__name__}: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold numbers; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D matrix (N x D); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is empty: 0 rows")
    if arr.shape[1] == 0:
        raise ValueError(f"{what} has 0 dimensions (shape {arr.shape})")
    return arr


#: The smallest normal float64: a sum of squares below it has lost bits to underflow (or is 0).
_TINY64 = np.finfo(np.float64).tiny


def _extreme_rows(arr: np.ndarray, squares: np.ndarray) -> np.ndarray:
    """Rows whose float64 sum of squares overflowed to inf or underflowed (to 0 or a subnormal) although the row is
    finite and not all zero: float64 values above ~1e154 or below ~1e-154. Ordinary rows never qualify."""
    rows = np.flatnonzero(~(squares >= _TINY64) | (squares == np.inf))
    if len(rows):
        rows = rows[np.abs(arr[rows]).max(axis=1) > 0]
    return rows


def _scaled(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows / peak, peak)`` in float64, ``peak`` each row's largest absolute value (> 0): entries in [-1, 1]
    whose sum of squares (in [1, D]) neither overflows nor underflows."""
    peak = np.abs(rows).max(axis=1).astype(np.float64)
    return rows.astype(np.float64) / peak[:, None], peak


def _unit_extremes(arr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Unit float64 rows ``arr[rows]`` (see :func:`_extreme_rows`), normalised after scaling by their peak value."""
    scaled, _ = _scaled(arr[rows])
    return scaled / np.sqrt(np.einsum("ij,ij->i", scaled, scaled))[:, None]


def _checked_norms(arr: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """float64 row norms and the rows whose plain sum of squares over- or underflowed (see :func:`row_norms`)."""
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if len(bad):
            kinds = " and ".join(k for k, f in (("NaN", np.isnan), ("inf", np.isinf)) if f(arr[bad]).any())
            raise ValueError(f"{what}: {len(bad)} of {len(arr)} rows contain {kinds} ({describe_rows(bad)})")
    with np.errstate(over="ignore", under="ignore"):  # such rows are measured again below
        squares = np.einsum("ij,ij->i", arr, arr, dtype=np.float64)
    norms = np.sqrt(squares)
    extreme = _extreme_rows(arr, squares)
    if len(extreme):
        scaled, peak = _scaled(arr[extreme])
        with np.errstate(over="ignore"):  # inf above ~1e308 / sqrt(D): the unit helpers divide the scaled rows
            norms[extreme] = peak * np.sqrt(np.einsum("ij,ij->i", scaled, scaled))
    zero = np.flatnonzero(norms == 0)
    if len(zero):
        raise ValueError(
            f"{what}: {len(zero)} of {len(arr)} rows have zero norm ({describe_rows(zero)}); "
            "they have no direction and cannot be L2-normalised"
        )
    return norms, extreme


def row_norms(arr: np.ndarray, what: str) -> np.ndarray:
    """float64 row norms after checking for NaN/inf and zero-norm rows (each named with how many rows have it).

    A row of float64 values so large (above ~1e154) or small (below ~1e-154) that its sum of squares overflows or
    underflows is measured after scaling by its largest absolute value (ordinary rows: the plain float64 sum, bit
    for bit); its norm may still be inf above ~1e308 / sqrt(D), so divide rows with :func:`unit_rows64` or
    :func:`unit_rows32` rather than by these norms.

    Examples
    --------
    >>> row_norms(np.array([[3e200, 4e200], [3e-200, 4e-200]]), "x") / [1e200, 1e-200]
    array([5., 5.])
    """
    return _checked_norms(arr, what)[0]


def _unit64(arr: np.ndarray, what: str) -> np.ndarray:
    """Unit float64 rows: ``arr / norms`` except rows whose sum of squares over- or underflowed, scaled first."""
    norms, extreme = _checked_norms(arr, what)
    out = np.asarray(arr, dtype=np.float64) / norms[:, None]
    if len(extreme):
        out[extreme] = _unit_extremes(arr, extreme)
    return out


#: A float32 row whose float64 sum of squares is within this of 1 is already unit length to float32 precision and
#: is kept bit for bit: rounding the components of an exact unit vector to float32 (relative error <= 2**-24 each)
#: moves its sum of squares by at most 2 * 2**-24 = 2**-23 (plus float64 rounding, negligible).
UNIT_SQUARED_TOLERANCE = 1.25e-7


def unit_rows32(values: Any, what: str, *, copy: bool = False, chunk: int = 1024) -> np.ndarray:
    """Validated float32 rows of unit length; rows that already are unit length to float32 precision keep their bits.

    Other rows are divided by their float64 norm in float64 and rounded once to float32, in cache-sized chunks.
    Normalising twice therefore changes nothing (plain re-division would move about a third of the rows by an ulp),
    and the common case -- an encoder that already returns unit float32 rows -- costs one pass over the matrix.
    NaN/inf and zero-norm rows raise ValueError. The result may share memory with ``values`` unless ``copy`` is true.

    Examples
    --------
    >>> unit_rows32([[3.0, 4.0]], "x")
    array([[0.6, 0.8]], dtype=float32)
    >>> once = unit_rows32(np.random.default_rng(0).normal(size=(100, 512)), "x")
    >>> bool((unit_rows32(once, "x") == once).all())
    True
    """
    arr = as_matrix(values, what)
    if arr.dtype != np.float32:
        return _divide_by_norms(arr, *_checked_norms(arr, what), chunk)
    squares = np.concatenate([np.einsum("ij,ij->i", arr[a : a + chunk], arr[a : a + chunk], dtype=np.float64)
                              for a in range(0, len(arr), chunk)])  # NaN and inf propagate: never unit
    redo = np.flatnonzero(~(np.abs(squares - 1.0) <= UNIT_SQUARED_TOLERANCE))
    if len(redo) == 0:
        return np.array(arr, order="C", copy=True) if copy else np.ascontiguousarray(arr)
    if len(redo) == len(arr):
        return _divide_by_norms(arr, row_norms(arr, what), np.empty(0, np.int64), chunk)
    rows = arr[redo]
    try:
        norms = row_norms(rows, what)
    except ValueError:
        row_norms(arr, what)  # raises again, naming the rows by their place in ``values``
        raise
    out = np.array(arr, order="C", copy=True)
    out[redo] = _divide_by_norms(rows, norms, np.empty(0, np.int64), chunk)
    return out


def _divide_by_norms(arr: np.ndarray, norms: np.ndarray, extreme: np.ndarray, chunk: int) -> np.ndarray:
    """``arr / norms[:, None]`` in float64, rounded once to float32, in cache-sized chunks (twice as fast); the
    ``extreme`` rows (sum of squares over- or underflowed) are scaled by their peak value first."""
    out = np.empty(arr.shape, dtype=np.float32)
    for a in range(0, len(arr), chunk):
        np.divide(arr[a : a + chunk], norms[a : a + chunk, None], out=out[a : a + chunk], dtype=np.float64,
                  casting="unsafe")
    if len(extreme):
        out[extreme] = _unit_extremes(arr, extreme)
    return out


def unit_rows64(values: Any, what: str) -> np.ndarray:
    """Validated float64 rows of unit length (NaN/inf and zero-norm rows raise ValueError).

    Examples
    --------
    >>> unit_rows64([[3.0, 4.0]], "x")
    array([[0.6, 0.8]])
    """
    return _unit64(as_matrix(values, what).astype(np.float64), what)


def relevance_pairs(
    pairs: Any, n_queries: int, n_gallery: int, what: str = "relevance", *, every_query: bool = True
) -> np.ndarray:
    """Validated ``(query row, gallery row)`` relevance pairs, shared by :mod:`workbench.retrieval` and
    :mod:`workbench.search`: int64, unique, sorted by query then gallery row.

    Parameters
    ----------
    pairs : (P x 2) integer array-like
        ``(query row, gallery row)`` pairs.
    n_queries, n_gallery : int
        Row counts every pair must fall inside.
    what : str
        Names the argument in error messages.
    every_query : bool, default True
        Require at least one relevant gallery row per query (a query without one has no rank).

    Raises
    ------
    TypeError
        For non-integer pairs.
    ValueError
        For no pairs, a shape other than (P, 2), rows outside the queries or gallery, or (``every_query``) a query
        without a relevant item.

    Examples
    --------
    >>> relevance_pairs([(1, 0), (0, 2), (1, 0)], 2, 3).tolist()
    [[0, 2], [1, 0]]
    """
    p = np.asarray(pairs)
    if p.size == 0:
        raise ValueError(f"{what}: no relevance pairs")
    if p.dtype.kind not in "iu":
        raise TypeError(f"{what}: relevance pairs must be integers, got dtype {p.dtype}")
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"{what}: relevance must have shape (P, 2) of (query, gallery item); got {p.shape}")
    p = p.astype(np.int64)
    for col, n, name in ((0, n_queries, "queries"), (1, n_gallery, "gallery items")):
        bad = np.flatnonzero((p[:, col] < 0) | (p[:, col] >= n))
        if len(bad):
            raise ValueError(
                f"{what}: {len(bad)} relevance pairs point outside the {n} {name} (e.g. {p[bad[0]].tolist()})"
            )
    if every_query:
        missing = np.flatnonzero(np.bincount(p[:, 0], minlength=n_queries) == 0)
        if len(missing):
            raise ValueError(
                f"{what}: {len(missing)} of {n_queries} queries have no relevant item (e.g. query {missing[0]})"
            )
    return np.unique(p, axis=0)  # sorted by query, then gallery item; repeated pairs dropped


def unit_matrix32(arr: np.ndarray, what: str) -> np.ndarray:
    """Contiguous float32 unit rows for scoring, all or nothing: a float32 matrix whose every row norm is within 1e-6
    of 1 is used as it is (no row moves), otherwise every row is divided by its float64 norm and rounded to float32.

    The rule of the retrieval engine and the FAISS index, so that one set of rows gets the same scores in both (rows
    checked for NaN/inf and zero norm by :func:`row_norms`).
    """
    norms, extreme = _checked_norms(arr, what)
    if arr.dtype == np.float32 and np.all(np.abs(norms - 1.0) < 1e-6):
        return np.ascontiguousarray(arr)
    out = arr / norms[:, None]
    if len(extreme):
        out[extreme] = _unit_extremes(arr, extreme)
    return np.ascontiguousarray(out.astype(np.float32))


#: Below this mean squared distance to their mean, unit rows count as all equal: what is left is rounding (equal
#: rows leave ~1e-32), so neighbourhoods would be ties broken by row order and centred statistics rounding errors.
NO_SPREAD = 1e-24


def check_spread(unit: np.ndarray, what: str) -> None:
    """Refuse unit rows that are all equal (at least 2 of them): nothing about their geometry is defined.

    Examples
    --------
    >>> check_spread(np.array([[0.6, 0.8], [0.6, 0.8], [0.6, 0.8]]), "b")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: b has no spread around its mean (all its rows are equal after L2 normalisation): ...
    """
    if len(unit) < 2:
        return
    centred = unit - unit.mean(axis=0)
    if float(np.einsum("ij,ij->", centred, centred)) / len(unit) <= NO_SPREAD:
        raise ValueError(f"{what} has no spread around its mean (all its rows are equal after L2 normalisation): "
                         "its neighbourhoods and centred statistics are undefined; compare sets whose items differ")
