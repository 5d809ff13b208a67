"""Colours for points: modality colours, a palette for any number of classes, a continuous colour scale.

Categorical columns map their sorted distinct values to :func:`category_color` ``(0)``, ``(1)``, ...: the first 8
are Okabe & Ito's colour-blind-safe palette (:data:`workbench.export.PALETTE`, here ``OKABE_ITO``), later ones step
the hue by the golden angle through three lightness/saturation levels (more once those run out of distinct colours),
so each of the first :data:`MAX_DISTINCT` classes gets its own colour and later ones reuse them in turn (with hundreds,
neighbours in hue are hard to tell apart anyway; the tooltip names the class). Continuous columns map
``[min, max]`` linearly through Viridis. Missing values (null, NaN, or an item whose side has no such column) are
:data:`NEUTRAL` grey.
"""

from __future__ import annotations

import colorsys
from typing import Any

import numpy as np

from workbench.export import PALETTE as OKABE_ITO  # the one palette (importing it loads no plotting library)

__all__ = [
    "CONTINUOUS_SCALE", "MAX_DISTINCT", "NEUTRAL", "OKABE_ITO", "category_color", "continuous_colors",
    "plotly_colorscale",
]

#: The colour of points with no value.
NEUTRAL = "#C8C8C8"
#: Viridis (the 10 stops of plotly's ``px.colors.sequential.Viridis``), for continuous columns.
CONTINUOUS_SCALE = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
                    "#b5de2b", "#fde725")
_GOLDEN = 0.6180339887498949
_LEVELS = ((0.70, 0.45), (0.55, 0.62), (0.85, 0.32))  # (saturation, lightness)
#: Classes beyond this many reuse colours cyclically (class k gets the colour of k % MAX_DISTINCT).
MAX_DISTINCT = 4096


def _level(m: int) -> tuple[float, float]:
    """(saturation, lightness) of level ``m``: the three above, then a low-discrepancy walk over mid tones."""
    if m < len(_LEVELS):
        return _LEVELS[m]
    return 0.35 + 0.6 * ((m * 0.7548776662466927) % 1.0), 0.28 + 0.44 * ((m * 0.5698402909980532) % 1.0)


def category_color(k: int) -> str:
    """The colour of class number ``k`` (0-based): Okabe & Ito for k < 8, then golden-angle hues, all distinct.

    Examples
    --------
    >>> category_color(0), category_color(1)
    ('#0072B2', '#D55E00')
    >>> len({category_color(k) for k in range(1000)})
    1000
    >>> category_color(MAX_DISTINCT + 1) == category_color(1)
    True
    """
    if k < 0:
        raise ValueError(f"class number must be >= 0, got {k}")
    k %= MAX_DISTINCT
    while len(_PALETTE) <= k:
        j = len(_PALETTE) - len(OKABE_ITO)
        level = j % len(_LEVELS)
        saturation, lightness = _level(level)
        hue = (j * _GOLDEN) % 1.0
        colour = _hls_hex(hue, lightness, saturation)
        steps = 0
        while colour in _SEEN:  # two hues rounded to one colour: nudge until the colour is new
            steps += 1
            if steps % 1000 == 0:  # a full turn of hue at this level gave nothing new: go to the next free level
                _FREE_LEVEL[0] += 1
                saturation, lightness = _level(_FREE_LEVEL[0])
            elif steps == 1 and _FREE_LEVEL[0] > len(_LEVELS):
                saturation, lightness = _level(_FREE_LEVEL[0])
            hue = (hue + 1e-3) % 1.0
            colour = _hls_hex(hue, lightness, saturation)
        _PALETTE.append(colour)
        _SEEN.add(colour)
    return _PALETTE[k]


def _hls_hex(hue: float, lightness: float, saturation: float) -> str:
    r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
    return f"#{round(r * 255):02X}{round(g * 255):02X}{round(b * 255):02X}"


_PALETTE: list[str] = list(OKABE_ITO)
_SEEN: set[str] = set(OKABE_ITO)
_FREE_LEVEL = [len(_LEVELS)]  # the first further level that may still have unused colours


def _hex_to_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)


def continuous_colors(values: Any, vmin: float, vmax: float) -> list[str]:
    """Hex colours of ``values`` on :data:`CONTINUOUS_SCALE` over ``[vmin, vmax]``; NaN becomes :data:`NEUTRAL`.

    Examples
    --------
    >>> continuous_colors([0.0, 1.0, float("nan")], 0.0, 1.0)
    ['#440154', '#FDE725', '#C8C8C8']
    """
    v = np.asarray(values, dtype=np.float64)
    stops = np.stack([_hex_to_rgb(c) for c in CONTINUOUS_SCALE])
    span = vmax - vmin
    t = np.zeros_like(v) if not span > 0 else (v - vmin) / span
    t = np.clip(t, 0.0, 1.0) * (len(stops) - 1)
    lo = np.clip(np.floor(np.nan_to_num(t)).astype(np.int64), 0, len(stops) - 2)
    frac = (np.nan_to_num(t) - lo)[:, None]
    rgb = np.rint(stops[lo] * (1 - frac) + stops[lo + 1] * frac).astype(np.int64)
    out = [f"#{r:02X}{g:02X}{b:02X}" for r, g, b in rgb.tolist()]
    for i in np.flatnonzero(np.isnan(v)):
        out[i] = NEUTRAL
    return out


def plotly_colorscale() -> list[list[Any]]:
    """:data:`CONTINUOUS_SCALE` as a plotly colorscale (for the colour bar)."""
    n = len(CONTINUOUS_SCALE)
    return [[i / (n - 1), c] for i, c in enumerate(CONTINUOUS_SCALE)]
