"""A fixed (not learned) audio featurizer: statistics of a log-mel spectrogram, the audio side of the media sets.

No pretrained audio network is installable offline here in a usable form (``aisfx`` on PyPI ships an MIT/CC-BY
sound-effects CNN but pins librosa 0.9.2 and numpy 1.23), so the built-in audio embeddings are honest hand-made
features: per mel band, the mean, the standard deviation and the mean absolute frame-to-frame change of
``log10(1 + 10^4 * mel power)`` (the compression aisfx uses), 3 x 64 = 192 numbers per clip, divided by their norm.
It separates drums from speech from tones; it knows nothing about what words mean.
"""

from __future__ import annotations

import os
import wave
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

__all__ = ["LogMelStatistics", "read_wav"]


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV file as (mono float64 waveform in [-1, 1], sample rate), with the standard library only.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
    >>> with wave.open(path, "wb") as w:
    ...     w.setnchannels(2); w.setsampwidth(2); w.setframerate(8000)
    ...     w.writeframes(np.array([[16384, 0], [0, -16384]], np.int16).tobytes())
    >>> read_wav(path)
    (array([ 0.25, -0.25]), 8000)
    """
    with wave.open(os.fspath(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{os.fspath(path)!r}: only 16-bit PCM WAV is read here, got {8 * w.getsampwidth()}-bit")
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    return pcm.reshape(-1, channels).mean(axis=1), rate


class LogMelStatistics:
    """Log-mel spectrogram statistics as an :class:`~workbench.encoders.Encoder` of audio (fixed, not learned).

    Parameters
    ----------
    sample_rate : int, default 8000
        Clips at another rate are resampled (``scipy.signal.resample_poly``) to this one first.
    n_fft : int, default 256
        FFT size (Hann window); 32 ms at 8 kHz.
    hop : int, default 80
        Frame step; 10 ms at 8 kHz.
    n_mels : int, default 64
        Mel bands (HTK mel scale, triangular, 0 Hz to Nyquist).

    Attributes
    ----------
    name : str
        ``"logmel-stats:sr=8000,n_fft=256,hop=80,mels=64"``.
    modalities : tuple of str
        ``("audio",)``.
    embedding_dim : int
        ``3 * n_mels`` (mean, std, mean absolute delta per band).

    Examples
    --------
    >>> enc = LogMelStatistics()
    >>> t = np.arange(8000) / 8000
    >>> low, high = np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 2000 * t)
    >>> e = enc.encode("audio", [(low, 8000), (high, 8000), (0.5 * low, 8000)])
    >>> e.shape
    (3, 192)
    >>> bool(e[0] @ e[2] > e[0] @ e[1])  # a quieter 220 Hz tone is nearer the 220 Hz tone than 2 kHz is
    True
    """

    modalities: tuple[str, ...] = ("audio",)

    def __init__(self, sample_rate: int = 8000, n_fft: int = 256, hop: int = 80, n_mels: int = 64) -> None:
        for value, what in ((sample_rate, "sample_rate"), (n_fft, "n_fft"), (hop, "hop"), (n_mels, "n_mels")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be a positive int, got {value!r}")
        self.sample_rate, self.n_fft, self.hop, self.n_mels = sample_rate, n_fft, hop, n_mels
        self.name = f"logmel-stats:sr={sample_rate},n_fft={n_fft},hop={hop},mels={n_mels}"
        self.fingerprint = self.name
        self.preprocessing = "mono, resample_poly, hann, power, htk-mel, log10(1+1e4*x), mean/std/mean|delta|"

    def __repr__(self) -> str:
        return f"LogMelStatistics({self.name!r})"

    @property
    def embedding_dim(self) -> int:
        return 3 * self.n_mels

    @cached_property
    def filterbank(self) -> np.ndarray:
        """The (n_mels x n_fft//2+1) triangular HTK mel filterbank."""
        def mel(f: np.ndarray) -> np.ndarray:
            return 2595.0 * np.log10(1.0 + f / 700.0)

        edges_mel = np.linspace(0.0, mel(np.array(self.sample_rate / 2.0)), self.n_mels + 2)
        edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
        freqs = np.linspace(0.0, self.sample_rate / 2.0, self.n_fft // 2 + 1)
        lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
        rise = (freqs[None] - lower) / (centre - lower)
        fall = (upper - freqs[None]) / (upper - centre)
        return np.maximum(0.0, np.minimum(rise, fall))

    def features(self, waveform: np.ndarray) -> np.ndarray:
        """The 3 * n_mels statistics of one mono waveform at ``sample_rate`` (not normalised)."""
        x = np.asarray(waveform, dtype=np.float64)
        if x.size < self.n_fft:
            x = np.pad(x, (0, self.n_fft - x.size))
        n_frames = 1 + (x.size - self.n_fft) // self.hop
        index = np.arange(self.n_fft)[None, :] + self.hop * np.arange(n_frames)[:, None]
        frames = x[index] * np.hanning(self.n_fft + 1)[:-1]
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        logmel = np.log10(1.0 + 1e4 * power @ self.filterbank.T)
        delta = np.abs(np.diff(logmel, axis=0)).mean(axis=0) if n_frames > 1 else np.zeros(self.n_mels)
        return np.concatenate([logmel.mean(axis=0), logmel.std(axis=0), delta])

    def load(self, item: Any, index: int = 0) -> np.ndarray:
        """A mono waveform at ``sample_rate`` from a WAV path or a ``(waveform, rate)`` tuple."""
        if isinstance(item, str | os.PathLike):
            waveform, rate = read_wav(item)
        elif isinstance(item, tuple) and len(item) == 2:
            waveform, rate = np.asarray(item[0], dtype=np.float64), int(item[1])
            if waveform.ndim == 2:
                waveform = waveform.mean(axis=0 if waveform.shape[0] <= 2 < waveform.shape[1] else 1)
        else:
            raise TypeError(f"audio item {index} is a {type(item).__name__}; use a WAV path or (waveform, rate)")
        if rate != self.sample_rate:
            from math import gcd

            from scipy.signal import resample_poly

            g = gcd(rate, self.sample_rate)
            waveform = resample_poly(waveform, self.sample_rate // g, rate // g)
        return waveform

    def encode(self, modality: str, items: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """Unit rows (N x 3 * n_mels, float32) for WAV paths or ``(waveform, rate)`` tuples."""
        if modality != "audio":
            raise ValueError(f"LogMelStatistics encodes modality 'audio' only, got {modality!r}")
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise TypeError(f"items must be a sequence of audio items, got {type(items).__name__}")
        rows = np.array([self.features(self.load(item, i)) for i, item in enumerate(items)]).reshape(
            len(items), self.embedding_dim)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return (rows / np.maximum(norms, 1e-12)).astype(np.float32)
