"""Synthetic paired worlds with known ground truth: coloured shapes (image, caption, sound) and tones (sound, caption).

Every item is generated from a few discrete attributes (plus small continuous jitter), and its caption names them,
so the right answer of every retrieval query and every probe is known exactly. Generation is seeded and
deterministic: the same seed gives identical bytes, and ``shapes(n)`` is the first ``n`` items of ``shapes(m)`` for
any ``m > n`` (the same holds for :func:`tones`). Only numpy and Pillow are used; nothing is downloaded.

- :func:`shapes`: 64 x 64 RGB images of one coloured shape on a plain light-grey background,
  ``"a small red circle at the top left"``. 6 shapes x 6 colours x 2 sizes x 5 positions = 360 distinct captions,
  assigned in shuffled balanced blocks, so ``shapes(n)`` holds all 360 once ``n >= 360``. With
  ``with_sound=True`` each item also carries a one-second mono sound derived from its attributes (colour -> pitch,
  shape -> waveform, size -> loudness, position -> envelope): three modalities for anchor (ImageBind-style) studies.
- :func:`tones`: one-second mono clips, ``"a low square-wave tone that fades out"``: 3 pitches x 4 waveforms x
  4 envelopes = 48 distinct captions.
- :class:`World`: the items (a polars frame with ``id``, ``caption``, attribute columns and integer ``*_code``
  columns usable as probe labels), the arrays, and relevance helpers: :meth:`World.caption_groups`,
  :meth:`World.relevance`, and :meth:`World.split` (random, or *compositional*: the test set holds attribute
  combinations never seen in training).

Determinism is bit for bit on one platform and numpy/Pillow version; sounds are built by inverse FFT, whose last
bits may differ across CPU instruction sets.

Examples
--------
>>> from workbench.datasets import worlds
>>> world = worlds.shapes(12, seed=0)
>>> world
World('shapes', n=12, seed=0, modalities=image+text, distinct captions=12)
>>> world.images.shape, world.images.dtype
((12, 64, 64, 3), dtype('uint8'))
>>> world.items.columns[:6]
['id', 'caption', 'shape', 'color', 'size', 'position']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

__all__ = [
    "COLORS",
    "ENVELOPES",
    "PALETTE",
    "PITCHES",
    "POSITIONS",
    "SHAPES",
    "SHAPE_WAVEFORMS",
    "SIZES",
    "WAVEFORMS",
    "World",
    "shapes",
    "tones",
]

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

#: Pitch classes of :func:`tones` and their frequency ranges in Hz (log-uniform within the range).
PITCHES: dict[str, tuple[float, float]] = {"low": (180.0, 280.0), "mid": (450.0, 700.0), "high": (1100.0, 1700.0)}
#: Waveforms of :func:`tones` and the words the captions use for them.
WAVEFORMS: dict[str, str] = {"sine": "sine", "square": "square-wave", "sawtooth": "sawtooth",
                             "triangle": "triangle-wave"}
#: Loudness envelopes of :func:`tones` and the caption phrase of each.
ENVELOPES: dict[str, str] = {"steady": "stays steady", "fades in": "fades in", "fades out": "fades out",
                             "pulses": "pulses"}

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
_WORLD_TAGS = {"shapes": 1, "tones": 2}


# -- the World ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class World:
    """A synthetic world: one row per item, its arrays, and the relevance that follows from its captions.

    Parameters
    ----------
    items : polars.DataFrame
        One row per item: ``id`` (int64, stable: the item's index in the full generated world), ``caption``, the
        attribute columns (strings) and their integer ``<attribute>_code`` columns, plus continuous ground truth.
    images : numpy.ndarray or None
        (n, side, side, 3) uint8, read-only.
    sounds : numpy.ndarray or None
        (n, samples) float32 in [-1, 1], read-only.
    sample_rate : int or None
        Samples per second of ``sounds``.
    name, seed : str, int
        How the world was made (``"shapes"``, ``"tones"``; subsets get ``"/train"`` or ``"/test"`` appended).
    attributes : tuple of str
        The discrete attribute columns, e.g. ``("shape", "color", "size", "position")``; inferred from the
        ``*_code`` columns when empty.

    Examples
    --------
    >>> world = tones(8, seed=1)
    >>> len(world), world.modalities, world.sounds.shape
    (8, ('sound', 'text'), (8, 16000))
    >>> world.attributes
    ('pitch', 'waveform', 'envelope')
    """

    items: pl.DataFrame
    images: np.ndarray | None = None
    sounds: np.ndarray | None = None
    sample_rate: int | None = None
    name: str = "world"
    seed: int = 0
    attributes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.items, pl.DataFrame):
            raise TypeError(f"items must be a polars DataFrame, got {type(self.items).__name__}")
        missing = [c for c in ("id", "caption") if c not in self.items.columns]
        if missing:
            raise ValueError(f"items lacks column(s) {missing} (columns: {self.items.columns})")
        n = self.items.height
        for what, arr in (("images", self.images), ("sounds", self.sounds)):
            if arr is None:
                continue
            if not isinstance(arr, np.ndarray):
                raise TypeError(f"{what} must be a numpy array or None, got {type(arr).__name__}")
            if len(arr) != n:
                raise ValueError(f"{what} has {len(arr)} rows but items has {n}")
            view = arr.view()  # read-only view: no copy, and the caller's array keeps its flags
            view.flags.writeable = False
            object.__setattr__(self, what, view)
        if self.sounds is not None and not self.sample_rate:
            raise ValueError("sounds need a sample_rate")
        if not self.attributes:
            inferred = tuple(c.removesuffix("_code") for c in self.items.columns
                             if c.endswith("_code") and c.removesuffix("_code") in self.items.columns)
            object.__setattr__(self, "attributes", inferred)

    def __len__(self) -> int:
        return self.items.height

    def __repr__(self) -> str:
        return (f"World({self.name!r}, n={len(self)}, seed={self.seed}, modalities={'+'.join(self.modalities)}, "
                f"distinct captions={self.items.get_column('caption').n_unique()})")

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities each item carries: ``"image"`` and/or ``"sound"``, and always ``"text"``."""
        present = (m for m, arr in (("image", self.images), ("sound", self.sounds)) if arr is not None)
        return (*present, "text")

    @property
    def captions(self) -> list[str]:
        """The caption of every item, in row order."""
        return self.items.get_column("caption").to_list()

    def caption_groups(self) -> np.ndarray:
        """Index of each item's distinct caption (numbered in order of first appearance), as int64.

        Items with equal group indices have identical captions, so each counts as a correct match for the others.

        Examples
        --------
        >>> world = shapes(400, seed=0)
        >>> groups = world.caption_groups()
        >>> groups.shape, int(groups.max()) + 1
        ((400,), 360)
        """
        captions = self.items.get_column("caption").to_numpy()
        _, first, inverse = np.unique(captions, return_index=True, return_inverse=True)
        rank = np.empty(len(first), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(first), dtype=np.int64)
        return rank[inverse.ravel()]

    def relevance(self) -> np.ndarray:
        """Every (item row, item row) pair with identical captions, including (i, i): (P x 2) int64, sorted.

        Use it as the many-to-many ground truth of caption-to-item retrieval: any item whose caption equals the
        query's caption is a correct match.

        Examples
        --------
        >>> world = shapes(361, seed=0)  # 360 distinct captions, so one caption is shared by two items
        >>> pairs = world.relevance()
        >>> len(pairs), pairs[:2].tolist()
        (363, [[0, 0], [1, 1]])
        """
        groups = self.caption_groups()
        order = np.argsort(groups, kind="stable")
        counts = np.bincount(groups)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        per_item = counts[groups]
        left = np.repeat(np.arange(len(groups), dtype=np.int64), per_item)
        offsets = np.arange(len(left), dtype=np.int64) - np.repeat(np.cumsum(per_item) - per_item, per_item)
        right = order[np.repeat(starts[groups], per_item) + offsets].astype(np.int64)
        pairs = np.stack([left, right], axis=1)
        return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]

    def to_folder(self, path: Any, modality: str | None = None) -> Any:
        """Write the images (PNG) or sounds (16-bit WAV) and ``captions.csv`` to a new folder, as the folder
        loaders read it (see :func:`workbench.datasets.world_folder.write_world_folder`); return its path."""
        from workbench.datasets.worlds._folder import write_world_folder

        return write_world_folder(self, path, modality)

    def subset(self, rows: Any, name: str | None = None) -> World:
        """The world restricted to ``rows`` (integer row indices, in the given order); ids are kept.

        Examples
        --------
        >>> shapes(10).subset([3, 1]).items["id"].to_list()
        [3, 1]
        """
        rows = np.asarray(rows)
        if rows.dtype.kind not in "iu" or rows.ndim != 1:
            raise TypeError(f"rows must be a 1-D array of integer row indices, got dtype {rows.dtype}, "
                            f"shape {rows.shape}")
        bad = np.flatnonzero((rows < 0) | (rows >= len(self)))
        if len(bad):
            raise ValueError(f"{len(bad)} of {len(rows)} row indices are outside 0..{len(self) - 1} "
                             f"(e.g. {int(rows[bad[0]])})")
        rows = rows.astype(np.int64)
        return World(
            items=self.items[rows],
            images=None if self.images is None else self.images[rows],
            sounds=None if self.sounds is None else self.sounds[rows],
            sample_rate=self.sample_rate,
            name=self.name if name is None else name,
            seed=self.seed,
            attributes=self.attributes,
        )

    def split(
        self,
        test_fraction: float = 0.2,
        seed: int = 0,
        compositional: bool = False,
        *,
        by: tuple[str, str] | None = None,
    ) -> tuple[World, World]:
        """Split into (train, test) worlds, rows kept in their original order.

        Parameters
        ----------
        test_fraction : float, default 0.2
            Share of items in the test world (0 < f < 1). Exact for a random split; approximate for a
            compositional one, which moves whole attribute combinations.
        seed : int, default 0
            Seed of the random choice.
        compositional : bool, default False
            If True, the test world holds combinations of the two attributes ``by`` that never occur in training,
            while every single attribute value found in test (of every attribute) still occurs in training.
        by : (str, str), optional
            The attribute pair whose combinations are held out; default the first two attributes
            (``("shape", "color")`` for shapes, ``("pitch", "waveform")`` for tones).

        Examples
        --------
        >>> train, test = shapes(720).split(0.2, compositional=True)
        >>> seen = set(zip(train.items["shape"], train.items["color"]))
        >>> any(pair in seen for pair in zip(test.items["shape"], test.items["color"]))
        False
        >>> set(test.items["color"]) <= set(train.items["color"])
        True
        """
        if isinstance(test_fraction, bool) or not isinstance(test_fraction, int | float):
            raise TypeError(f"test_fraction must be a number, got {type(test_fraction).__name__}")
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
        n = len(self)
        if n < 2:
            raise ValueError(f"cannot split a world of {n} item(s)")
        rng = np.random.default_rng(_check_seed(seed))
        if not compositional:
            n_test = min(max(round(test_fraction * n), 1), n - 1)
            test_mask = np.zeros(n, dtype=bool)
            test_mask[rng.permutation(n)[:n_test]] = True
        else:
            test_mask = self._compositional_test_mask(test_fraction, rng, by)
        rows = np.arange(n, dtype=np.int64)
        return (self.subset(rows[~test_mask], f"{self.name}/train"), self.subset(rows[test_mask], f"{self.name}/test"))

    def _compositional_test_mask(self, test_fraction: float, rng: np.random.Generator,
                                 by: tuple[str, str] | None) -> np.ndarray:
        if by is None:
            if len(self.attributes) < 2:
                raise ValueError(f"a compositional split needs two attributes; this world has {self.attributes}")
            by = (self.attributes[0], self.attributes[1])
        if len(by) != 2 or by[0] == by[1]:
            raise ValueError(f"by must name two different attributes, got {by!r}")
        unknown = [a for a in by if a not in self.items.columns]
        if unknown:
            raise ValueError(f"unknown attribute(s) {unknown}; attributes are {self.attributes}")
        attributes = list(dict.fromkeys([*by, *self.attributes]))
        codes = {a: np.unique(self.items.get_column(a).to_numpy(), return_inverse=True)[1].ravel()
                 for a in attributes}
        n_values = {a: int(c.max()) + 1 for a, c in codes.items()}
        combo = codes[by[0]] * n_values[by[1]] + codes[by[1]]
        present = np.unique(combo)
        counts = np.bincount(combo)
        n = len(self)
        target = test_fraction * n
        test_mask = np.zeros(n, dtype=bool)
        for candidate in rng.permutation(present):
            if test_mask.sum() >= target:
                break
            moved = combo == candidate
            if abs(test_mask.sum() + counts[candidate] - target) >= abs(test_mask.sum() - target):
                continue  # this combination would move the test share further from the target
            trial = test_mask | moved
            if all(np.all(np.isin(np.unique(codes[a][trial]), codes[a][~trial])) for a in attributes):
                test_mask = trial
        if not test_mask.any():
            raise ValueError(
                f"no ({by[0]}, {by[1]}) combination can be held out for test_fraction={test_fraction} while every "
                f"attribute value stays in training ({len(present)} combinations among {n} items)"
            )
        return test_mask


# -- generation helpers ---------------------------------------------------------------------------------------------


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(seed)


def _check_count(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value}")
    return int(value)


def _generators(world: str, seed: int, k: int) -> list[np.random.Generator]:
    """Independent generators (attributes, jitter, sound...) so each stream's prefix does not depend on n."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence([_WORLD_TAGS[world], seed]).spawn(k)]


def _balanced_combinations(rng: np.random.Generator, n_combinations: int, n: int) -> np.ndarray:
    """Combination index per item: shuffled blocks of all combinations, so every one occurs once n >= the count."""
    blocks = [rng.permutation(n_combinations) for _ in range(-(-n // n_combinations))]
    return np.concatenate(blocks)[:n].astype(np.int64)


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


def _harmonics(waveform: str, n_harmonics: int) -> np.ndarray:
    """Complex Fourier coefficients c_k (k = 1..n_harmonics) of one period; x(t) = sum Re(c_k exp(2 pi i k f t))."""
    k = np.arange(1, n_harmonics + 1, dtype=np.float64)
    odd = (k % 2) == 1
    if waveform == "sine":
        c = np.where(k == 1, -1j, 0)
    elif waveform == "square":
        c = np.where(odd, -1j / k, 0)
    elif waveform == "sawtooth":
        c = -1j * (-1.0) ** (k + 1) / k
    elif waveform == "triangle":
        sign = np.where((k % 4) == 1, 1.0, -1.0)  # +1 for k = 1, 5, 9, ...; -1 for k = 3, 7, 11, ...
        c = np.where(odd, -1j * sign / k**2, 0)
    elif waveform == "pulse":  # 25% duty cycle (cosine series)
        c = np.sin(np.pi * k * 0.25) / k + 0j
    elif waveform == "organ":  # drawbar-like: fundamental, octave, twelfth, two octaves, ...
        weights = {1: 1.0, 2: 0.6, 3: 0.4, 4: 0.25, 6: 0.15, 8: 0.1}
        c = np.array([weights.get(int(i), 0.0) for i in k]) + 0j
    else:  # pragma: no cover - guarded by the vocabulary
        raise ValueError(f"unknown waveform {waveform!r}")
    return np.asarray(c, dtype=np.complex128)


_HARMONIC_CACHE: dict[tuple[str, int], np.ndarray] = {}


def _tone(waveform: str, bin_: int, n_samples: int, phase: float) -> np.ndarray:
    """A band-limited periodic waveform (fundamental at FFT bin ``bin_``), peak-normalised to 1, float64."""
    n_harmonics = (n_samples // 2 - 1) // bin_
    key = (waveform, n_harmonics)
    if key not in _HARMONIC_CACHE:
        _HARMONIC_CACHE[key] = _harmonics(waveform, n_harmonics)
    coefficients = _HARMONIC_CACHE[key]
    spectrum = np.zeros(n_samples // 2 + 1, dtype=np.complex128)
    k = np.arange(1, n_harmonics + 1)
    spectrum[k * bin_] = coefficients * np.exp(1j * k * phase) * (n_samples / 2)
    wave = np.fft.irfft(spectrum, n=n_samples)
    return wave / np.abs(wave).max()


def _envelope(kind: str, n_samples: int, sample_rate: int, rate: float, phase: float) -> np.ndarray:
    """Loudness envelope in [0, 1]; every kind has 10 ms linear ramps at both ends so clips start and end silent."""
    u = np.arange(n_samples, dtype=np.float64) / n_samples
    if kind == "steady":
        env = np.ones(n_samples)
    elif kind == "fades in":
        env = u.copy()
    elif kind == "fades out":
        env = 1.0 - u
    elif kind == "pulses":
        t = np.arange(n_samples, dtype=np.float64) / sample_rate
        env = 0.5 - 0.5 * np.cos(2 * np.pi * rate * t + phase)
    elif kind == "swells":
        env = np.sin(np.pi * u)
    else:  # pragma: no cover - guarded by the vocabulary
        raise ValueError(f"unknown envelope {kind!r}")
    ramp = min(max(int(0.01 * sample_rate), 1), n_samples // 2)
    edge = np.linspace(0.0, 1.0, ramp, endpoint=False)
    env[:ramp] *= edge
    env[n_samples - ramp:] *= edge[::-1]
    return env


def _render_sounds(waveforms: list[str], frequencies: np.ndarray, envelopes: list[str], loudness: np.ndarray,
                   jitter: np.ndarray, sample_rate: int, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Sounds (n x samples float32) and the exact frequencies used (rounded to whole FFT bins of the clip)."""
    n = len(waveforms)
    sounds = np.empty((n, n_samples), dtype=np.float32)
    bins = np.maximum(np.rint(frequencies * n_samples / sample_rate).astype(np.int64), 1)
    if np.any(bins >= n_samples // 2):
        raise ValueError(f"sample_rate {sample_rate} is too low for frequencies up to {frequencies.max():.0f} Hz")
    for i in range(n):
        wave = _tone(waveforms[i], int(bins[i]), n_samples, phase=2 * np.pi * jitter[i, 0])
        env = _envelope(envelopes[i], n_samples, sample_rate, rate=3.0 + 2.0 * jitter[i, 1],
                        phase=2 * np.pi * jitter[i, 2])
        sounds[i] = wave * env * loudness[i]
    return sounds, bins * sample_rate / n_samples


def _attribute_columns(values: dict[str, tuple[str, ...]], codes: dict[str, np.ndarray]) -> dict[str, Any]:
    columns: dict[str, Any] = {a: [vocab[c] for c in codes[a]] for a, vocab in values.items()}
    columns.update({f"{a}_code": codes[a] for a in values})
    return columns


# -- the worlds -----------------------------------------------------------------------------------------------------


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

    n = _check_count(n, "n", 1)
    seed = _check_seed(seed)
    size = _check_count(size, "size", 16)
    if with_sound:
        sample_rate = _check_count(sample_rate, "sample_rate", 4000)
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


def tones(n: int = 1000, *, seed: int = 0, sample_rate: int = 16000, duration: float = 1.0) -> World:
    """A world of synthetic tones: mono clips and captions with known pitch, waveform and loudness envelope.

    Each clip is a band-limited periodic waveform (:data:`WAVEFORMS`: sine, square, sawtooth, triangle; harmonics
    above the Nyquist frequency are left out, so nothing aliases) at a pitch drawn log-uniformly from its class's
    range (:data:`PITCHES`: low 180-280 Hz, mid 450-700 Hz, high 1100-1700 Hz, rounded to a whole number of
    cycles per clip), shaped by an envelope (:data:`ENVELOPES`: steady; fades in linearly; fades out linearly;
    pulses at 3-5 Hz), with peak loudness 0.5-0.9 and a random start phase. Every clip has 10 ms linear ramps at
    both ends. The 48 combinations are dealt in shuffled balanced blocks, like :func:`shapes`.

    Parameters
    ----------
    n : int, default 1000
        Number of clips.
    seed : int, default 0
        Seed; the same seed gives identical bytes, and ``tones(n)`` is the first ``n`` clips of ``tones(m > n)``.
    sample_rate : int, default 16000
        Samples per second (>= 4000).
    duration : float, default 1.0
        Seconds per clip (0.1 to 30).

    Returns
    -------
    World
        ``sounds`` (n, round(sample_rate * duration)) float32 in [-0.9, 0.9]; ``items`` with columns ``id``,
        ``caption`` (e.g. ``"a low square-wave tone that fades out"``), ``pitch``, ``waveform``, ``envelope``,
        their ``*_code`` columns, ``frequency`` (Hz, exact) and ``loudness`` (peak amplitude).

    Examples
    --------
    >>> world = tones(4, seed=0)
    >>> for caption in world.captions:
    ...     print(caption)
    a low sine tone that fades in
    a high triangle-wave tone that fades out
    a mid triangle-wave tone that fades in
    a high sawtooth tone that pulses
    >>> float(abs(world.sounds).max()) <= 0.9
    True
    """
    n = _check_count(n, "n", 1)
    seed = _check_seed(seed)
    sample_rate = _check_count(sample_rate, "sample_rate", 4000)
    if isinstance(duration, bool) or not isinstance(duration, int | float):
        raise TypeError(f"duration must be a number of seconds, got {type(duration).__name__}")
    if not 0.1 <= duration <= 30:
        raise ValueError(f"duration must be between 0.1 and 30 seconds, got {duration}")
    n_samples = round(sample_rate * duration)
    rng_attributes, rng_sound = _generators("tones", seed, 2)
    vocab = {"pitch": tuple(PITCHES), "waveform": tuple(WAVEFORMS), "envelope": tuple(ENVELOPES)}
    combos = _balanced_combinations(rng_attributes, math.prod(len(v) for v in vocab.values()), n)
    codes = dict(zip(vocab, (c.astype(np.int64) for c in np.unravel_index(combos, [len(v) for v in vocab.values()])),
                     strict=True))
    jitter = rng_sound.random((n, 5))
    ranges = np.log(np.array([PITCHES[p] for p in vocab["pitch"]]))[codes["pitch"]]
    frequency = np.exp(ranges[:, 0] + (ranges[:, 1] - ranges[:, 0]) * jitter[:, 3])
    loudness = 0.5 + 0.4 * jitter[:, 4]
    columns = _attribute_columns(vocab, codes)
    sounds, frequency = _render_sounds(columns["waveform"], frequency, columns["envelope"], loudness, jitter,
                                       sample_rate, n_samples)
    captions = [f"a {p} {WAVEFORMS[w]} tone that {ENVELOPES[e]}"
                for p, w, e in zip(columns["pitch"], columns["waveform"], columns["envelope"], strict=True)]
    items = pl.DataFrame({"id": np.arange(n, dtype=np.int64), "caption": captions, **columns,
                          "frequency": frequency, "loudness": loudness})
    return World(items=items, sounds=sounds, sample_rate=sample_rate, name="tones", seed=seed,
                 attributes=tuple(vocab))
