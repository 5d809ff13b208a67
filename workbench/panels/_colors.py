"""Colours for points: modality colours, a palette for any number of classes, a continuous colour scale.

Categorical columns map their sorted distinct values to :func:`category_color` ``(0)``, ``(1)``, ...: the first 8
are Okabe & Ito's colour-blind-safe palette (:data:`workbench.export.PALETTE`, here ``OKABE_ITO``), later ones step
the hue by the golden angle through three lightness/saturation levels (more once those run out of distinct colours),
so each of the first :data:`MAX_DISTINCT` classes gets its own colour and later ones reuse them in turn (with hundreds,
neighbours in hue are hard to tell apart anyway; the tooltip names the class). A column whose values are all CSS colour
names ("green", "Red", "steelblue") is drawn in those colours (:func:`category_colors`). Continuous columns map
``[min, max]`` linearly through Viridis. Missing values (null, NaN, or an item whose side has no such column) are
:data:`NEUTRAL` grey.
"""

from __future__ import annotations

import colorsys
from typing import Any

import numpy as np

from workbench.export import PALETTE as OKABE_ITO  # the one palette (importing it loads no plotting library)

__all__ = [
    "CONTINUOUS_SCALE", "CSS_COLORS", "MAX_DISTINCT", "NEUTRAL", "OKABE_ITO", "category_color", "category_colors",
    "continuous_colors", "plotly_colorscale",
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


#: The 148 CSS named colours (CSS Color Module Level 4), name -> hex.
CSS_COLORS: dict[str, str] = {name: f"#{code}" for name, code in (item.split(":") for item in (
    "aliceblue:F0F8FF antiquewhite:FAEBD7 aqua:00FFFF aquamarine:7FFFD4 azure:F0FFFF beige:F5F5DC bisque:FFE4C4 "
    "black:000000 blanchedalmond:FFEBCD blue:0000FF blueviolet:8A2BE2 brown:A52A2A burlywood:DEB887 "
    "cadetblue:5F9EA0 chartreuse:7FFF00 chocolate:D2691E coral:FF7F50 cornflowerblue:6495ED cornsilk:FFF8DC "
    "crimson:DC143C cyan:00FFFF darkblue:00008B darkcyan:008B8B darkgoldenrod:B8860B darkgray:A9A9A9 "
    "darkgreen:006400 darkgrey:A9A9A9 darkkhaki:BDB76B darkmagenta:8B008B darkolivegreen:556B2F darkorange:FF8C00 "
    "darkorchid:9932CC darkred:8B0000 darksalmon:E9967A darkseagreen:8FBC8F darkslateblue:483D8B "
    "darkslategray:2F4F4F darkslategrey:2F4F4F darkturquoise:00CED1 darkviolet:9400D3 deeppink:FF1493 "
    "deepskyblue:00BFFF dimgray:696969 dimgrey:696969 dodgerblue:1E90FF firebrick:B22222 floralwhite:FFFAF0 "
    "forestgreen:228B22 fuchsia:FF00FF gainsboro:DCDCDC ghostwhite:F8F8FF gold:FFD700 goldenrod:DAA520 "
    "gray:808080 green:008000 greenyellow:ADFF2F grey:808080 honeydew:F0FFF0 hotpink:FF69B4 indianred:CD5C5C "
    "indigo:4B0082 ivory:FFFFF0 khaki:F0E68C lavender:E6E6FA lavenderblush:FFF0F5 lawngreen:7CFC00 "
    "lemonchiffon:FFFACD lightblue:ADD8E6 lightcoral:F08080 lightcyan:E0FFFF lightgoldenrodyellow:FAFAD2 "
    "lightgray:D3D3D3 lightgreen:90EE90 lightgrey:D3D3D3 lightpink:FFB6C1 lightsalmon:FFA07A lightseagreen:20B2AA "
    "lightskyblue:87CEFA lightslategray:778899 lightslategrey:778899 lightsteelblue:B0C4DE lightyellow:FFFFE0 "
    "lime:00FF00 limegreen:32CD32 linen:FAF0E6 magenta:FF00FF maroon:800000 mediumaquamarine:66CDAA "
    "mediumblue:0000CD mediumorchid:BA55D3 mediumpurple:9370DB mediumseagreen:3CB371 mediumslateblue:7B68EE "
    "mediumspringgreen:00FA9A mediumturquoise:48D1CC mediumvioletred:C71585 midnightblue:191970 mintcream:F5FFFA "
    "mistyrose:FFE4E1 moccasin:FFE4B5 navajowhite:FFDEAD navy:000080 oldlace:FDF5E6 olive:808000 olivedrab:6B8E23 "
    "orange:FFA500 orangered:FF4500 orchid:DA70D6 palegoldenrod:EEE8AA palegreen:98FB98 paleturquoise:AFEEEE "
    "palevioletred:DB7093 papayawhip:FFEFD5 peachpuff:FFDAB9 peru:CD853F pink:FFC0CB plum:DDA0DD "
    "powderblue:B0E0E6 purple:800080 rebeccapurple:663399 red:FF0000 rosybrown:BC8F8F royalblue:4169E1 "
    "saddlebrown:8B4513 salmon:FA8072 sandybrown:F4A460 seagreen:2E8B57 seashell:FFF5EE sienna:A0522D "
    "silver:C0C0C0 skyblue:87CEEB slateblue:6A5ACD slategray:708090 slategrey:708090 snow:FFFAFA "
    "springgreen:00FF7F steelblue:4682B4 tan:D2B48C teal:008080 thistle:D8BFD8 tomato:FF6347 turquoise:40E0D0 "
    "violet:EE82EE wheat:F5DEB3 white:FFFFFF whitesmoke:F5F5F5 yellow:FFFF00 yellowgreen:9ACD32 "
).split())}


def category_colors(classes: Any) -> dict[Any, str]:
    """Colours of the sorted distinct values of a categorical column: each value its own named colour when every
    value is a CSS colour name (case and spaces ignored: "Green", "light blue"), else class i gets
    :func:`category_color` ``(i)``.

    Examples
    --------
    >>> category_colors(["green", "red"])
    {'green': '#008000', 'red': '#FF0000'}
    >>> category_colors(["cat", "green"])
    {'cat': '#0072B2', 'green': '#D55E00'}
    """
    classes = list(classes)
    keys = [str(c).lower().replace(" ", "") for c in classes]
    if classes and all(isinstance(c, str) for c in classes) and all(k in CSS_COLORS for k in keys):
        return {c: CSS_COLORS[k] for c, k in zip(classes, keys, strict=True)}
    return {c: category_color(i) for i, c in enumerate(classes)}


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
