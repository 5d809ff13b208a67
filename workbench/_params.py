"""One way to check scalar parameters of the public API (integers, numbers, seeds, choices).

Every failure raises :class:`InvalidParameterError`, which is both a ``ValueError`` and a ``TypeError`` (as
scikit-learn's ``utils._param_validation.InvalidParameterError``): a wrong type and a value out of range read the
same to a caller, and the message always names the parameter, what it must be and what it got.

Examples
--------
>>> check_int(5, "k")
5
>>> check_int(0, "k")
Traceback (most recent call last):
...
workbench._params.InvalidParameterError: k must be a positive integer, got 0
>>> check_number(0.5, "temperature", low=0, inclusive=False)
0.5
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["InvalidParameterError", "check_choice", "check_int", "check_ints", "check_number", "check_seed"]


class InvalidParameterError(ValueError, TypeError):
    """A parameter of the wrong type or out of its range (both a ValueError and a TypeError)."""


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(value: Any, name: str, *, low: int = 1, high: int | None = None, allow_none: bool = False) -> Any:
    """``value`` as a Python int in ``[low, high]`` (``None`` passes through when ``allow_none``).

    Booleans and floats (even ``2.0``) are refused: a count is an integer.
    """
    if value is None and allow_none:
        return None
    or_none = " or None" if allow_none else ""
    if low == 1 and high is None:
        wanted = f"a positive integer{or_none}"
    elif high is None:
        wanted = f"an integer >= {low}{or_none}"
    else:
        wanted = f"an integer in [{low}, {high}]{or_none}"
    if not _is_integer(value) or value < low or (high is not None and value > high):
        raise InvalidParameterError(f"{name} must be {wanted}, got {value!r}")
    return int(value)


def check_ints(values: Iterable[Any], name: str, *, low: int = 1) -> tuple[int, ...]:
    """A non-empty sequence of integers ``>= low`` (e.g. the ``ks`` of R@K), as a tuple of ints."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidParameterError(f"{name} must be a sequence of integers, got {values!r}")
    values = tuple(values)
    if not values or any(not _is_integer(v) or v < low for v in values):
        wanted = "positive integers" if low == 1 else f"integers >= {low}"
        raise InvalidParameterError(f"{name} must be a non-empty sequence of {wanted}, got {values!r}")
    return tuple(int(v) for v in values)


def check_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    inclusive: bool = True,
    allow_none: bool = False,
) -> Any:
    """``value`` as a finite float within ``low``/``high`` (bounds included unless ``inclusive=False``)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidParameterError(f"{name} must be finite, got {value}")
    below = low is not None and (value < low or (value == low and not inclusive))
    above = high is not None and (value > high or (value == high and not inclusive))
    if below or above:
        op_low, op_high = (">=", "<=") if inclusive else (">", "<")
        bounds = " and ".join(
            f"{op} {bound}" for op, bound in ((op_low, low), (op_high, high)) if bound is not None
        )
        raise InvalidParameterError(f"{name} must be {bounds}, got {value}")
    return value


def check_seed(value: Any, name: str = "seed") -> int:
    """A non-negative integer seed (numpy's ``default_rng`` and torch's generators take these)."""
    return check_int(value, name, low=0)


def check_choice(value: Any, name: str, options: Sequence[Any]) -> Any:
    """``value`` if it is one of ``options``, else an error listing them."""
    try:
        ok = value in options
    except TypeError:  # unhashable values in a set of options
        ok = False
    if not ok:
        raise InvalidParameterError(f"{name} must be one of {list(options)}, got {value!r}")
    return value
