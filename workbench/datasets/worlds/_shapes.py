"""The shapes world: coloured shapes on a grey background, their captions and (optionally) their sounds."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from workbench.datasets.worlds._world import (
    World,
    _attribute_columns,
    _balanced_combinations,
    _check_at_least,
    _generators,
    _render_sounds,
)

__all__ = ["COLORS", "PALETTE", "POSITIONS", "SHAPES", "SHAPE_WAVEFORMS", "SIZES", "shapes"]

# -- vocabularies -----------------------------------------------------------------------------------------------------

#: Shapes drawn by :func:`shapes` (the ``shape_code`` of each is its index here).
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "diamond")
#: Colours of :func:`shapes`, in rainbow order (``color_code`` is the index).
COLORS: tuple[str, ...] = ("red", "orange", "yellow", "green", "blue", "purple")
#: The fill colour of each colour name before jitter (each channel is jittered by at most +-15).
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (235, 205, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "purple": (140, 60, 180),
}
SIZES: tuple[str, ...] = ("small", "large")
#: Positions of :func:`shapes`; each maps to the shape's centre as a fraction of the image side, (x, y).
POSITIONS: tuple[str, ...] = ("top left", "top right", "bottom left", "bottom right", "centre")
_POSITION_XY = {"top left": (0.25, 0.25), "top right": (0.75, 0.25), "bottom left": (0.25, 0.75),
                "bottom right": (0.75, 0.75), "centre": (0.5, 0.5)}
_POSITION_PHRASE = {p: ("in the centre" if p == "centre" else f"at the {p}") for p in POSITIONS}

#: The sound of a shape (``with_sound=True``): waveform by shape, pitch by colour, envelope by position.
SHAPE_WAVEFORMS: dict[str, str] = {"circle": "sine", "square": "square", "triangle": "triangle",
                                   "star": "sawtooth", "cross": "pulse", "diamond": "organ"}
_COLOR_FREQUENCY = {"red": 262.0, "orange": 330.0, "yellow": 392.0, "green": 523.0, "blue": 659.0, "purple": 784.0}
_POSITION_ENVELOPE = {"centre": "steady", "top left": "fades in", "top right": "fades out",
                      "bottom left": "pulses", "bottom right": "swells"}
_SIZE_LOUDNESS = {"small": (0.25, 0.35), "large": (0.7, 0.9)}

# Shape geometry (see _polygon), as multiples of the size radius r, chosen so the shapes cover similar areas
# (1.9 r^2 to 3.1 r^2); small r = 0.11 x side, large r = 0.21 x side (each +-10%), so every large shape has more
# pixels than every small one.
_RADIUS = {"small": 0.11, "large": 0.21}
_BACKGROUND = (228, 248)  # plain grey background, level drawn per image
_SUPERSAMPLE = 5  # sub-pixels per pixel side when drawing (odd, so no pixel is exactly half covered by an edge)


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a shape of size radius r centred on (cx, cy), rotated by angle (radians); pure-Python math."""
    if shape == "circle":
        local = [(math.cos(2 * math.pi * k / 48), math.sin(2 * math.pi * k / 48)) for k in range(48)]
    elif shape == "square":
        local = [(x * 0.886, y * 0.886) for x, y in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    elif shape == "diamond":
        local = [(0.0, -1.25), (1.25, 0.0), (0.0, 1.25), (-1.25, 0.0)]
    elif shape == "triangle":
        local = [(1.2 * math.sin(2 * math.pi * k / 3), -1.2 * math.cos(2 * math.pi * k / 3)) for k in range(3)]
    elif shape == "star":
        local = [((1.25 if k % 2 == 0 else 0.625) * math.sin(math.pi * k / 5),
                  -(1.25 if k % 2 == 0 else 0.625) * math.cos(math.pi * k / 5)) for k in range(10)]
    elif shape == "cross":
        a, w = 1.2, 0.3
        local = [(-w, -a), (w, -a), (w, -w), (a, -w), (a, w), (w, w), (w, a), (-w, a), (-w, w), (-a, w), (-a, -w),
                 (-w, -w)]
    else:  # pragma: no cover - guarded by the vocabulary
        raise ValueError(f"unknown shape {shape!r}")
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in local]


def shapes(n: int = 2000, *, seed: int = 0, size: int = 64, with_sound: bool = False,
           sample_rate: int = 16000) -> World:
    """A world of coloured shapes: images, captions and (optionally) sounds with known attributes.

    Each image shows one shape (:data:`SHAPES`) in one colour (:data:`COLORS`, fill jittered by at most +-15 per
    channel around :data:`PALETTE`), small or large (:data:`SIZES`), at one of five positions (:data:`POSITIONS`;
    centre jittered by +-4% of the side, size by +-10%, rotation by +-12 degrees) on a plain grey background whose
    level varies between images. Shapes are drawn without anti-aliasing (a pixel takes the fill colour when at least
    half of it is covered, judged on 5 x 5 sub-pixels), so every non-background pixel has the one fill colour. The
    outlines, in units of the size radius ``r``: circle of radius r; square of half-side 0.886 r; diamond of
    half-diagonal 1.25 r; equilateral triangle of circumradius 1.2 r (apex up); five-pointed star with outer radius
    1.25 r and inner 0.625 r (point up); plus-shaped cross with arms reaching 1.2 r, 0.3 r wide on each side of
    the axis. The 360 attribute combinations are dealt in shuffled balanced blocks: every combination occurs once
    ``n >= 360``, and each occurs ``n // 360`` or ``n // 360 + 1`` times.

    Parameters
    ----------
    n : int, default 2000
        Number of items.
    seed : int, default 0
        Seed; the same seed gives identical bytes, and ``shapes(n)`` is the first ``n`` items of ``shapes(m > n)``.
    size : int, default 64
        Side of the square images in pixels (>= 16).
    with_sound : bool, default False
        Also give each item a one-second mono sound: pitch from colour (red 262 Hz, orange 330, yellow 392,
        green 523, blue 659, purple 784, each +-2%), waveform from shape (:data:`SHAPE_WAVEFORMS`), loudness from
        size (peak 0.25-0.35 small, 0.7-0.9 large), envelope from position (centre steady, top left fades in,
        top right fades out, bottom left pulses, bottom right swells). Images are identical either way.
    sample_rate : int, default 16000
        Samples per second of the sounds.

    Returns
    -------
    World
        ``images`` (n, size, size, 3) uint8; ``sounds`` (n, sample_rate) float32 or None; ``items`` with columns
        ``id``, ``caption``, ``shape``, ``color``, ``size``, ``position``, their ``*_code`` columns (int64 index
        into the vocabulary), ``x``, ``y`` (shape centre in pixels; pixel ``[row j, column i]`` covers
        ``[i, i + 1) x [j, j + 1)``), ``radius`` (size radius r in pixels), ``angle`` (clockwise rotation on
        screen, degrees), ``rgb`` (fill colour), and with sound ``waveform``, ``envelope``, ``frequency``
        (Hz), ``loudness`` (peak amplitude).

    Examples
    --------
    >>> world = shapes(3, seed=0, with_sound=True)
    >>> for caption in world.captions:
    ...     print(caption)
    a large orange cross at the bottom left
    a large green diamond at the bottom left
    a small purple star at the bottom right
    >>> world.items.select("color", "waveform", "envelope", "frequency").row(2)
    ('purple', 'sawtooth', 'swells', 770.0)
    >>> world.sounds.shape, world.sounds.dtype, world.sample_rate
    ((3, 16000), dtype('float32'), 16000)
    """
    from PIL import Image, ImageDraw

    n = _check_at_least(n, "n", 1)
    seed = _check_at_least(seed, "seed", 0)
    size = _check_at_least(size, "size", 16)
    if with_sound:
        sample_rate = _check_at_least(sample_rate, "sample_rate", 4000)
    rng_attributes, rng_image, rng_sound = _generators("shapes", seed, 3)
    vocab = {"shape": SHAPES, "color": COLORS, "size": SIZES, "position": POSITIONS}
    combos = _balanced_combinations(rng_attributes, math.prod(len(v) for v in vocab.values()), n)
    codes = dict(zip(vocab, (c.astype(np.int64) for c in np.unravel_index(combos, [len(v) for v in vocab.values()])),
                     strict=True))
    # per item: dx, dy, radius factor, angle, background, r/g/b jitter (one row each, so prefixes do not depend on n)
    jitter = rng_image.random((n, 8))
    offset = (jitter[:, :2] - 0.5) * 0.08 * size
    base_xy = np.array([_POSITION_XY[p] for p in POSITIONS])[codes["position"]] * size
    centre = base_xy + offset
    radius = np.array([_RADIUS[s] for s in SIZES])[codes["size"]] * size * (0.9 + 0.2 * jitter[:, 2])
    angle = (jitter[:, 3] - 0.5) * 24.0
    background = np.floor(_BACKGROUND[0] + (_BACKGROUND[1] - _BACKGROUND[0] + 1) * jitter[:, 4]).astype(np.int64)
    palette = np.array([PALETTE[c] for c in COLORS], dtype=np.int64)
    rgb = np.clip(palette[codes["color"]] + np.floor(jitter[:, 5:8] * 31).astype(np.int64) - 15, 0, 255)

    # Shapes are drawn in white on a black 4x-resolution canvas; a pixel takes the fill colour when at least half of
    # its 16 sub-pixels are covered. Crisp single-colour pixels, with areas true to the geometry even when small.
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    images[:] = background.astype(np.uint8)[:, None, None, None]
    k = _SUPERSAMPLE
    for i in range(n):
        cx, cy, r = float(centre[i, 0]), float(centre[i, 1]), float(radius[i])
        reach = 1.3 * r + 1  # every outline lies within 1.26 r of its centre
        x0, y0 = max(math.floor(cx - reach), 0), max(math.floor(cy - reach), 0)
        x1, y1 = min(math.ceil(cx + reach), size), min(math.ceil(cy + reach), size)
        canvas = Image.new("L", (k * (x1 - x0), k * (y1 - y0)), 0)
        vertices = _polygon(SHAPES[codes["shape"][i]], cx - x0, cy - y0, r, math.radians(float(angle[i])))
        ImageDraw.Draw(canvas).polygon([(k * x - 0.5, k * y - 0.5) for x, y in vertices], fill=1)
        covered = np.asarray(canvas).reshape(y1 - y0, k, x1 - x0, k).sum(axis=(1, 3), dtype=np.int64)
        images[i, y0:y1, x0:x1][covered * 2 >= k * k] = rgb[i]

    columns = _attribute_columns(vocab, codes)
    captions = [f"a {s} {c} {sh} {_POSITION_PHRASE[p]}"
                for s, c, sh, p in zip(columns["size"], columns["color"], columns["shape"], columns["position"],
                                       strict=True)]
    items = pl.DataFrame({
        "id": np.arange(n, dtype=np.int64),
        "caption": captions,
        **columns,
        "x": centre[:, 0], "y": centre[:, 1], "radius": radius, "angle": angle,
        "rgb": pl.Series("rgb", rgb.astype(np.uint8), dtype=pl.Array(pl.UInt8, 3)),
    })

    sounds = None
    if with_sound:
        sound_jitter = rng_sound.random((n, 5))
        waveforms = [SHAPE_WAVEFORMS[s] for s in columns["shape"]]
        envelopes = [_POSITION_ENVELOPE[p] for p in columns["position"]]
        base = np.array([_COLOR_FREQUENCY[c] for c in COLORS])[codes["color"]]
        frequency = base * np.exp((sound_jitter[:, 3] - 0.5) * 0.04)
        low_high = np.array([_SIZE_LOUDNESS[s] for s in SIZES])[codes["size"]]
        loudness = low_high[:, 0] + (low_high[:, 1] - low_high[:, 0]) * sound_jitter[:, 4]
        sounds, frequency = _render_sounds(waveforms, frequency, envelopes, loudness, sound_jitter, sample_rate,
                                           sample_rate)
        items = items.with_columns(pl.Series("waveform", waveforms), pl.Series("envelope", envelopes),
                                   pl.Series("frequency", frequency), pl.Series("loudness", loudness))
    return World(items=items, images=images, sounds=sounds, sample_rate=sample_rate if with_sound else None,
                 name="shapes", seed=seed, attributes=tuple(vocab))
