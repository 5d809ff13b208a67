"""The corrector base class and the input checks every corrector shares (see :mod:`workbench.correct`)."""

from __future__ import annotations

import numbers
from typing import Any, TypeVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from workbench._params import InvalidParameterError
from workbench._validation import as_matrix, describe_rows, unit_rows64
from workbench.data import PairedEmbeddings

#: A transformed row shorter than this (inputs are unit rows) has lost its direction and cannot be renormalised.
_COLLAPSE_NORM = 1e-10

_C = TypeVar("_C", bound="_Corrector")


# -- input checks ------------------------------------------------------------------------------------------------
def _split(a: Any, b: Any, method: str) -> tuple[Any, Any]:
    if isinstance(a, PairedEmbeddings):
        if b is not None:
            raise TypeError(f"{method}: pass either a PairedEmbeddings or two arrays (a, b), not both")
        return a.matched()
    if b is None:
        raise TypeError(f"{method}: two arrays (a, b) or one PairedEmbeddings are needed")
    return a, b


def _fit_inputs(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _split(a, b, "fit")
    ma, mb = as_matrix(a, "a"), as_matrix(b, "b")
    if ma.shape[0] != mb.shape[0]:
        raise ValueError(
            f"row counts differ: a has {ma.shape[0]} rows but b has {mb.shape[0]}; fit needs row-paired "
            "training data (row i of a belongs with row i of b)"
        )
    if ma.shape[1] != mb.shape[1]:
        raise ValueError(f"dimensions differ: a has {ma.shape[1]}, b has {mb.shape[1]}; both must share one space")
    ua, ub = unit_rows64(ma, "a"), unit_rows64(mb, "b")
    if len(ua) < 2:
        raise ValueError(f"a and b: fit needs at least 2 pairs, got {len(ua)}")
    return ua, ub


def _transform_inputs(a: Any, b: Any, dim: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = _split(a, b, "transform")
    ma, mb = as_matrix(a, "a"), as_matrix(b, "b")
    for what, m in (("a", ma), ("b", mb)):
        if m.shape[1] != dim:
            raise ValueError(f"{what} has {m.shape[1]} dimensions but this {name} was fitted on {dim}")
    return unit_rows64(ma, "a"), unit_rows64(mb, "b")


def _renormalised(x: np.ndarray, what: str, name: str) -> np.ndarray:
    """Rows L2-normalised in float64, then cast to float32; rows the map sent to ~zero (or to inf/NaN) raise a
    ValueError. Rows so large (a huge ``delta``) that their squared norm overflows are scaled first: dividing by an
    infinite norm would return zero rows as "unit" rows."""
    broken = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if len(broken):
        raise ValueError(
            f"{name} maps {len(broken)} of {len(x)} rows of {what} to inf or NaN ({describe_rows(broken)}); "
            "its parameters are too large for float64"
        )
    with np.errstate(over="ignore"):  # overflowed norms are inf: those rows are normalised after scaling below
        norms = np.linalg.norm(x, axis=1)
    gone = np.flatnonzero(~(norms > _COLLAPSE_NORM))
    if len(gone):
        raise ValueError(
            f"{name} maps {len(gone)} of {len(x)} rows of {what} to (nearly) zero ({describe_rows(gone)}); "
            "they have no direction left to renormalise"
        )
    out = x / norms[:, None]
    overflowed = np.flatnonzero(np.isinf(norms))
    if len(overflowed):
        out[overflowed] = unit_rows64(x[overflowed], what)
    return out.astype(np.float32)


def _integer(value: Any, name: str, *, low: int | None = None) -> int:
    """An integer ``>= low`` with the wording ``"epochs must be >= 0"`` (tests match it; ``_params.check_int`` says
    ``"an integer >= 0"``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise InvalidParameterError(f"{name} must be >= {low}, got {value}")
    return value


# -- the base class ----------------------------------------------------------------------------------------------
class _Corrector(BaseEstimator):
    """Shared fit/transform plumbing: validation, L2-normalisation, float32 unit-norm output.

    Subclasses implement ``_fit(a, b)`` and ``_transform(a, b)`` on validated float64 unit rows.
    """

    def fit(self: _C, a: Any, b: Any = None) -> _C:
        """Learn the correction from training pairs (row i of ``a`` with row i of ``b``, or one PairedEmbeddings).

        A PairedEmbeddings is fitted on its matched rows, so with five captions per image each image weighs five
        times in a's training mean (:func:`workbench.gap.gap_vector` counts each item once). Returns ``self``.
        """
        ua, ub = _fit_inputs(a, b)
        self._fit(ua, ub)
        self.n_features_in_ = ua.shape[1]
        return self

    def transform(self, a: Any, b: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Apply the fitted correction to embeddings of the two modalities (row counts may differ).

        A PairedEmbeddings is transformed through its matched rows; pass ``(p.a.vectors, p.b.vectors)`` to
        transform each modality's items once. Returns unit-norm float32 arrays ``(a2, b2)``.
        """
        check_is_fitted(self)
        name = type(self).__name__
        ua, ub = _transform_inputs(a, b, self.n_features_in_, name)
        a2, b2 = self._transform(ua, ub)
        return _renormalised(a2, "a", name), _renormalised(b2, "b", name)

    def fit_transform(self, a: Any, b: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``fit(a, b)`` then ``transform(a, b)``."""
        return self.fit(a, b).transform(a, b)

    def _fit(self, a: np.ndarray, b: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError
