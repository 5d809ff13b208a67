"""The :class:`World` of the synthetic worlds, and the generation helpers the worlds share.

Each world (:mod:`._shapes`, :mod:`._tones`) draws its attributes with :func:`_generators` and
:func:`_balanced_combinations`, names them with :func:`_attribute_columns`, and renders sounds with
:func:`_render_sounds` (band-limited waveforms built by inverse FFT, shaped by a loudness envelope).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from workbench._params import InvalidParameterError, check_seed
from workbench.datasets.worlds._folder import write_world_folder

__all__ = ["World"]

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
    >>> from workbench.datasets.worlds import tones
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
        >>> from workbench.datasets.worlds import shapes
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
        >>> from workbench.datasets.worlds import shapes
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
        loaders read it (the worlds package's folder writer, ``write_world_folder``); return its path."""
        return write_world_folder(path, self.items.get_column("id").to_list(), self.captions, images=self.images,
                                  sounds=self.sounds, sample_rate=self.sample_rate, modality=modality)

    def subset(self, rows: Any, name: str | None = None) -> World:
        """The world restricted to ``rows`` (integer row indices, in the given order); ids are kept.

        Examples
        --------
        >>> from workbench.datasets.worlds import shapes
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
        >>> from workbench.datasets.worlds import shapes
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
        rng = np.random.default_rng(check_seed(seed))
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


def _check_at_least(value: Any, name: str, low: int) -> int:
    """``value`` as an int ``>= low``, else an error in the worlds' wording (``"n must be >= 1, got 0"``,
    ``"seed must be an int, got float"``), which their tests pin; :mod:`workbench._params`'s error class."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise InvalidParameterError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _generators(world: str, seed: int, k: int) -> list[np.random.Generator]:
    """Independent generators (attributes, jitter, sound...) so each stream's prefix does not depend on n."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence([_WORLD_TAGS[world], seed]).spawn(k)]


def _balanced_combinations(rng: np.random.Generator, n_combinations: int, n: int) -> np.ndarray:
    """Combination index per item: shuffled blocks of all combinations, so every one occurs once n >= the count."""
    blocks = [rng.permutation(n_combinations) for _ in range(-(-n // n_combinations))]
    return np.concatenate(blocks)[:n].astype(np.int64)


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
