"""The tones world: band-limited tones with a pitch, a waveform and a loudness envelope, and their captions."""

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

__all__ = ["ENVELOPES", "PITCHES", "WAVEFORMS", "tones"]

# -- vocabularies -----------------------------------------------------------------------------------------------------

#: Pitch classes of :func:`tones` and their frequency ranges in Hz (log-uniform within the range).
PITCHES: dict[str, tuple[float, float]] = {"low": (180.0, 280.0), "mid": (450.0, 700.0), "high": (1100.0, 1700.0)}
#: Waveforms of :func:`tones` and the words the captions use for them.
WAVEFORMS: dict[str, str] = {"sine": "sine", "square": "square-wave", "sawtooth": "sawtooth",
                             "triangle": "triangle-wave"}
#: Loudness envelopes of :func:`tones` and the caption phrase of each.
ENVELOPES: dict[str, str] = {"steady": "stays steady", "fades in": "fades in", "fades out": "fades out",
                             "pulses": "pulses"}


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
    n = _check_at_least(n, "n", 1)
    seed = _check_at_least(seed, "seed", 0)
    sample_rate = _check_at_least(sample_rate, "sample_rate", 4000)
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
