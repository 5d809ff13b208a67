"""Input checks shared by the data model and the analysis core: one wording for every error."""

from __future__ import annotations

from typing import Any

import numpy as np


def describe_rows(rows: np.ndarray, limit: int = 5) -> str:
    """``"rows 3, 17, ..."``: the first few offending row indices, for error messages."""
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    return f"rows {shown}{', ...' if len(rows) > limit else ''}"


def as_matrix(values: Any, what: str) -> np.ndarray:
    """A non-empty 2-D numeric numpy array from numpy, torch or lists, or a TypeError/ValueError naming the problem."""
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


def row_norms(arr: np.ndarray, what: str) -> np.ndarray:
    """float64 row norms after checking for NaN/inf and zero-norm rows (each named with how many rows have it)."""
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if len(bad):
            kinds = " and ".join(k for k, f in (("NaN", np.isnan), ("inf", np.isinf)) if f(arr[bad]).any())
            raise ValueError(f"{what}: {len(bad)} of {len(arr)} rows contain {kinds} ({describe_rows(bad)})")
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr, dtype=np.float64))
    zero = np.flatnonzero(norms == 0)
    if len(zero):
        raise ValueError(
            f"{what}: {len(zero)} of {len(arr)} rows have zero norm ({describe_rows(zero)}); "
            "they have no direction and cannot be L2-normalised"
        )
    return norms


def unit_rows64(values: Any, what: str) -> np.ndarray:
    """Validated float64 rows of unit length (NaN/inf and zero-norm rows raise ValueError).

    Examples
    --------
    >>> unit_rows64([[3.0, 4.0]], "x")
    array([[0.6, 0.8]])
    """
    arr = as_matrix(values, what).astype(np.float64)
    return arr / row_norms(arr, what)[:, None]
