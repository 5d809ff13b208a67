"""CLAP audio-text encoders on ``transformers``' ``ClapModel``: hub checkpoints, local folders, random weights.

Needs the ``audio`` extra (``transformers``). Random weights work fully offline: the audio side uses
``ClapFeatureExtractor`` (48 kHz log-mel), and the text side gets a small byte-level tokenizer built on the spot
(no vocabulary download), saved with the model by :meth:`CLAPEncoder.save_pretrained`.

Audio is read from WAV files with a small RIFF reader (PCM 8/16/24/32-bit and float WAV, no extra dependency; other
formats through ``soundfile`` when it is installed), mixed down to mono and resampled to the feature extractor's
rate with ``scipy.signal.resample_poly`` (polyphase filtering with a Kaiser-windowed anti-aliasing filter).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.encoders.base import ModelFingerprint, check_encode_call
from workbench.encoders.errors import (
    WeightsUnavailableError,
    cached_hub_file,
    forced_offline,
    hub_cache_dir,
    hub_offline_reason,
    hub_ways_out,
    missing_path_error,
    short_error,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["CLAPEncoder", "byte_level_tokenizer", "load_audio", "read_wav", "resample", "tokenizer_digest"]

_BYTE_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # RoBERTa's ids 0-3, as ClapTextConfig expects
_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json")


class CLAPEncoder(ModelFingerprint):
    """A CLAP model (``transformers.ClapModel``) as an :class:`~workbench.encoders.Encoder` of audio and texts.

    Parameters
    ----------
    checkpoint : str or os.PathLike, optional
        A hub checkpoint name (``"laion/clap-htsat-unfused"``: read from the hub cache, downloaded once when
        online), or a local folder written by ``save_pretrained`` (model and processor files). None (default):
        random weights from ``config``.
    config : transformers.ClapConfig or dict, optional
        The architecture of random weights (default ``ClapConfig()``: HTSAT audio tower, RoBERTa-base-sized text
        tower, 512-d projections). Only with ``checkpoint=None``.
    device : str or torch.device, optional
        Default: ``"cuda"`` when available, else ``"cpu"``.
    seed : int, default 0
        Seed of random weights; the global torch random state is saved and restored.
    sample_rate : int, optional
        The sample rate of bare waveform arrays passed as audio items (items that carry their own rate, files and
        ``(waveform, sample_rate)`` tuples, do not need it).
    cache_dir : str or os.PathLike, optional
        The hub cache for checkpoint names (default ``$HF_HUB_CACHE`` / ``$HF_HOME/hub``).

    Attributes
    ----------
    name : str
        ``"clap:laion/clap-htsat-unfused"``, ``"clap:random-seed0"`` or ``"clap:dir:<folder name>"``.
    modalities : tuple of str
        ``("audio", "text")``.
    fingerprint : str
        SHA-256 of the weights, computed once (see :meth:`refresh_fingerprint`).
    preprocessing : str
        Sample rate, clip length, truncation and padding modes, resampler and the tokenizer's identity.
    model, processor, feature_extractor, tokenizer
        The ``ClapModel`` (eval mode) and its ``ClapProcessor`` parts.

    Notes
    -----
    Audio items: a path to a WAV file (or any ``soundfile`` format when that package is installed), a
    ``(waveform, sample_rate)`` tuple, or a bare waveform array with ``sample_rate=`` given here. Waveforms may be
    1-D, or 2-D with channels on the short axis (at most 8 channels; mixed down to mono by averaging); integer
    samples are scaled to [-1, 1]. Clips are resampled to the feature extractor's rate (48 kHz). The feature
    extractor's random choices are made deterministic: a clip longer than the model's window (10 s) is cut to its
    centre (non-fusion models), and the extractor runs once per clip under a fixed numpy seed, so a clip always
    gets the same embedding whatever its batch. Non-fusion configs use ``truncation="rand_trunc"`` (the
    ``"fusion"`` mode feeds 4 channels, which only fusion models accept).

    Examples
    --------
    A tiny random model, built in milliseconds (real ones take the default config or a checkpoint):

    >>> from transformers import ClapConfig
    >>> tiny = ClapConfig(
    ...     text_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
    ...                      max_position_embeddings=66),
    ...     audio_config=dict(depths=[1, 1], num_attention_heads=[1, 2], patch_embeds_hidden_size=16, hidden_size=32),
    ...     projection_dim=16)
    >>> enc = CLAPEncoder(config=tiny, seed=0, device="cpu")
    >>> tone = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    >>> enc.encode("audio", [(tone, 16000)]).shape, enc.encode("text", ["a dog barks"]).shape
    ((1, 16), (1, 16))
    >>> enc.name
    'clap:random-seed0'
    """

    modalities: tuple[str, ...] = ("audio", "text")

    def __init__(
        self,
        checkpoint: str | os.PathLike[str] | None = None,
        *,
        config: Any = None,
        device: str | torch.device | None = None,
        seed: int = 0,
        sample_rate: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        import torch

        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        if sample_rate is not None:
            sample_rate = _check_rate(sample_rate, "sample_rate")
        if checkpoint is not None and config is not None:
            raise ValueError("pass either checkpoint= (pretrained weights) or config= (random weights), not both")
        self.seed = int(seed)
        self.sample_rate = sample_rate
        self.device = torch.device(device) if device is not None else _default_device()
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else None

        if checkpoint is None:
            self.name = f"clap:random-seed{self.seed}"
            self.model, self.processor = _random_clap(config, self.seed)
        elif not isinstance(checkpoint, str | os.PathLike):
            raise TypeError(f"checkpoint must be a hub name, a folder or None, got {type(checkpoint).__name__}")
        else:
            value = os.fspath(checkpoint)
            expanded = os.path.expanduser(value)
            if os.path.isdir(expanded):
                self.name = f"clap:dir:{Path(expanded).resolve().name}"
                self.model, self.processor = _load_clap_dir(expanded, self.name)
            elif isinstance(checkpoint, os.PathLike) or _looks_like_local(value):
                raise missing_path_error(
                    f"clap:{value}", value, "checkpoint folder", 'CLAPEncoder("/path/to/saved_folder")'
                )
            else:
                self.name = f"clap:{value}"
                self.model, self.processor = _load_clap_hub(value, self.name, self.cache_dir)
        self.model = self.model.to(self.device).eval()
        self.feature_extractor = self.processor.feature_extractor
        self.tokenizer = self.processor.tokenizer
        audio_cfg = self.model.config.audio_config
        if not getattr(audio_cfg, "enable_fusion", False) and self.feature_extractor.truncation == "fusion":
            self.feature_extractor.truncation = "rand_trunc"  # "fusion" feeds 4 channels: only fusion models take it
        text_cfg = self.model.config.text_config
        self.max_text_tokens = int(min(self.tokenizer.model_max_length, text_cfg.max_position_embeddings - 2))
        fe = self.feature_extractor
        self.preprocessing = (
            f"clap-v1 audio: mono, resample_poly to {fe.sampling_rate} Hz, window {fe.nb_max_samples} samples, "
            f"truncation={fe.truncation} (long clips: centre crop), padding={fe.padding}, mel={fe.feature_size}, "
            f"seeded extractor; text: {type(self.tokenizer).__name__} {tokenizer_digest(self.tokenizer)} "
            f"max_length={self.max_text_tokens}"
        )

    # -- identity --------------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"CLAPEncoder({self.name!r}, device={str(self.device)!r})"

    def save_pretrained(self, path: str | os.PathLike[str]) -> Path:
        """Write the model and its processor (feature extractor and tokenizer) to a folder ``CLAPEncoder`` loads.

        Returns the folder. ``CLAPEncoder(path)`` then gives identical embeddings (and the same fingerprint).
        """
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        return folder

    # -- encoding --------------------------------------------------------------------------------------------------
    def encode(self, modality: str, items: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """Embed audio clips or texts as an (N x D) float32 array of unit rows.

        Parameters
        ----------
        modality : {"audio", "text"}
        items : sequence
            Audio (paths, ``(waveform, sample_rate)`` tuples, arrays with ``sample_rate=`` set) or texts (str).
        batch_size : int, default 32
        """
        import torch

        check_encode_call(self, modality, items, batch_size)
        if len(items) == 0:
            return np.zeros((0, int(self.model.config.projection_dim)), dtype=np.float32)
        out = []
        with torch.inference_mode():
            for start in range(0, len(items), batch_size):
                batch = items[start : start + batch_size]
                if modality == "audio":
                    features, is_longer = self._audio_features(batch, start)
                    result = self.model.get_audio_features(
                        input_features=features.to(self.device), is_longer=is_longer.to(self.device)
                    )
                else:
                    texts = list(batch)
                    for i, text in enumerate(texts):
                        if not isinstance(text, str):
                            raise TypeError(f"text item {start + i} is a {type(text).__name__}, not a str")
                    tokens = self.tokenizer(
                        texts, padding=True, truncation=True, max_length=self.max_text_tokens, return_tensors="pt"
                    )
                    result = self.model.get_text_features(
                        input_ids=tokens["input_ids"].to(self.device),
                        attention_mask=tokens["attention_mask"].to(self.device),
                    )
                emb = _pooled(result)
                out.append(torch.nn.functional.normalize(emb.float(), dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)

    def _audio_features(self, batch: Sequence[Any], start: int) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        fe = self.feature_extractor
        rate = int(fe.sampling_rate)
        window = int(fe.nb_max_samples)
        features, longer = [], []
        for i, item in enumerate(batch):
            wave, item_rate = load_audio(item, start + i, self.sample_rate)
            wave = resample(wave, item_rate, rate)
            if fe.truncation != "fusion" and len(wave) > window:
                offset = (len(wave) - window) // 2  # the centre window, instead of the extractor's random crop
                wave = wave[offset : offset + window]
            # the extractor draws from numpy's legacy global generator: pin it for this clip, then restore it
            state = np.random.get_state()  # noqa: NPY002
            np.random.seed(0)  # noqa: NPY002
            try:
                inputs = fe(wave, sampling_rate=rate, return_tensors="np")
            finally:
                np.random.set_state(state)  # noqa: NPY002
            features.append(np.asarray(inputs["input_features"]))
            longer.append(np.asarray(inputs["is_longer"]).reshape(1, -1))
        return torch.from_numpy(np.concatenate(features)), torch.from_numpy(np.concatenate(longer))


# -- construction ----------------------------------------------------------------------------------------------------
def _random_clap(config: Any, seed: int) -> tuple[Any, Any]:
    import torch
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor

    if config is None:
        config = ClapConfig()
    elif isinstance(config, dict):
        config = ClapConfig(**config)
    elif not isinstance(config, ClapConfig):
        raise TypeError(f"config must be a transformers.ClapConfig or a dict, got {type(config).__name__}")
    text_cfg = config.text_config
    tokenizer = byte_level_tokenizer(max_length=int(text_cfg.max_position_embeddings) - 2)
    if text_cfg.vocab_size < len(tokenizer):
        raise ValueError(
            f"config.text_config.vocab_size={text_cfg.vocab_size} is smaller than the {len(tokenizer)} tokens of "
            "the built-in byte-level tokenizer; use vocab_size >= 261"
        )
    truncation = "fusion" if getattr(config.audio_config, "enable_fusion", False) else "rand_trunc"
    processor = ClapProcessor(feature_extractor=ClapFeatureExtractor(truncation=truncation), tokenizer=tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ClapModel(config)
    return model, processor


def _load_clap_dir(folder: str, name: str) -> tuple[Any, Any]:
    from transformers import ClapModel, ClapProcessor

    files = set(os.listdir(folder))
    if "config.json" not in files:
        raise WeightsUnavailableError(
            name,
            f"the folder {folder!r} holds no config.json, so it is not a saved CLAP model",
            looked_in=[os.path.abspath(folder)],
            ways_out=["pass the folder written by CLAPEncoder.save_pretrained or ClapModel.save_pretrained"],
        )
    if not files.intersection(_PROCESSOR_FILES) or not files.intersection(_TOKENIZER_FILES):
        raise ValueError(
            f"the folder {folder!r} holds a model but no processor (feature extractor and tokenizer files); save "
            "with CLAPEncoder.save_pretrained, or also call processor.save_pretrained(folder)"
        )
    try:
        with forced_offline():
            model = ClapModel.from_pretrained(folder, local_files_only=True)
            processor = ClapProcessor.from_pretrained(folder, local_files_only=True)
    except OSError as exc:
        raise WeightsUnavailableError(
            name,
            f"the folder {folder!r} cannot be loaded ({short_error(exc)})",
            looked_in=[os.path.abspath(folder)],
            ways_out=["save the model again with CLAPEncoder.save_pretrained (weights, config and processor)"],
        ) from None
    return model, processor


def _load_clap_hub(repo: str, name: str, cache_dir: str | None) -> tuple[Any, Any]:
    from transformers import ClapModel, ClapProcessor

    looked = [f"the Hugging Face hub cache {hub_cache_dir(cache_dir)} for repo {repo}"]
    ways = hub_ways_out(repo, 'CLAPEncoder("/path/to/folder") with a folder written by save_pretrained')
    kwargs: dict[str, Any] = {"cache_dir": hub_cache_dir(cache_dir)}  # resolved now: a changed HF_HOME counts
    if cached_hub_file(repo, ["config.json"], cache_dir):
        try:
            with forced_offline():
                return (
                    ClapModel.from_pretrained(repo, local_files_only=True, **kwargs),
                    ClapProcessor.from_pretrained(repo, local_files_only=True, **kwargs),
                )
        except OSError as exc:
            first_problem = short_error(exc)  # e.g. the config is cached but not the weights
        looked[0] += f" (incomplete: {first_problem})"
    reason = hub_offline_reason()
    if reason is not None:
        raise WeightsUnavailableError(
            name, f"the checkpoint is not cached and cannot be downloaded: {reason}", looked_in=looked, ways_out=ways
        )
    try:
        return ClapModel.from_pretrained(repo, **kwargs), ClapProcessor.from_pretrained(repo, **kwargs)
    except OSError as exc:
        raise WeightsUnavailableError(
            name, f"the download failed ({short_error(exc)})", looked_in=looked, ways_out=ways
        ) from None


def byte_level_tokenizer(max_length: int = 512) -> Any:
    """A RoBERTa-style byte-level tokenizer with no merges: 256 byte symbols plus RoBERTa's special tokens.

    Built offline in milliseconds, for random-init CLAP models (a trained checkpoint brings its own tokenizer).
    Every UTF-8 byte is one token, wrapped in ``<s> ... </s>`` (ids 0 and 2; padding id 1, as ``ClapTextConfig``
    expects).

    Examples
    --------
    >>> tok = byte_level_tokenizer()
    >>> len(tok), tok(["hi!"])["input_ids"]
    (261, [[0, 75, 76, 4, 2]])
    """
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import RobertaTokenizer

    vocab = {token: i for i, token in enumerate(_BYTE_SPECIALS)}
    for symbol in sorted(ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    vocab["<mask>"] = len(vocab)
    return RobertaTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def tokenizer_digest(tokenizer: Any) -> str:
    """A short SHA-256 of what decides a tokenizer's output (vocabulary, merges, normalisation, special tokens).

    The backend's truncation and padding state is left out: it changes with every call's arguments.

    Examples
    --------
    >>> tokenizer_digest(byte_level_tokenizer()).startswith("sha256:")
    True
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)
        spec.pop("padding", None)
    else:
        spec = {"vocab": tokenizer.get_vocab()}
    spec["special_tokens"] = {k: str(v) for k, v in sorted(getattr(tokenizer, "special_tokens_map", {}).items())}
    text = json.dumps(spec, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _pooled(result: Any) -> torch.Tensor:
    """The embedding from ``get_*_features``: a tensor (older transformers) or an output with ``pooler_output``."""
    if hasattr(result, "pooler_output") and result.pooler_output is not None:
        return result.pooler_output
    if isinstance(result, tuple | list):
        return result[1] if len(result) > 1 else result[0]
    return result


def _looks_like_local(value: str) -> bool:
    return value.startswith(("/", ".", "~")) or value.count("/") > 1 or os.sep in value.replace("/", "")


def _default_device() -> torch.device:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# -- audio input -----------------------------------------------------------------------------------------------------
def _check_rate(rate: Any, what: str) -> int:
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer | float) or rate <= 0 or rate != int(rate):
        raise ValueError(f"{what} must be a positive whole number of samples per second, got {rate!r}")
    return int(rate)


def load_audio(item: Any, index: int = 0, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """A mono float32 waveform and its sample rate from a file path, a ``(waveform, rate)`` tuple or an array.

    Parameters
    ----------
    item : str, os.PathLike, tuple or array
        A WAV file (other formats need ``soundfile``), ``(waveform, sample_rate)``, or a bare waveform.
    index : int, default 0
        The item's position, for error messages.
    sample_rate : int, optional
        The rate of a bare waveform (required for those).

    Examples
    --------
    >>> wave, rate = load_audio((np.ones((2, 5), np.int16), 8000))
    >>> wave.shape, wave.dtype, rate
    ((5,), dtype('float32'), 8000)
    >>> load_audio(np.zeros(5), index=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: audio item 3 is a bare waveform: give its rate as a (waveform, sample_rate) tuple or \
sample_rate= to the encoder
    """
    if isinstance(item, str | os.PathLike):
        path = os.fspath(item)
        try:
            return read_wav(path)
        except (OSError, ValueError, EOFError, struct.error) as exc:
            raise ValueError(f"audio item {index} ({path!r}) cannot be read: {short_error(exc)}") from None
    if isinstance(item, tuple | list):
        if len(item) != 2:
            raise ValueError(f"audio item {index} is a {len(item)}-tuple; expected (waveform, sample_rate)")
        waveform, rate = item
        rate = _check_rate(rate, f"the sample rate of audio item {index}")
    elif isinstance(item, np.ndarray) or hasattr(item, "detach"):
        if sample_rate is None:
            raise ValueError(
                f"audio item {index} is a bare waveform: give its rate as a (waveform, sample_rate) tuple or "
                "sample_rate= to the encoder"
            )
        waveform, rate = item, sample_rate
    else:
        raise TypeError(
            f"audio item {index} is a {type(item).__name__}; use a file path, a (waveform, sample_rate) tuple or "
            "an array"
        )
    return _mono_float(waveform, index), rate


def _mono_float(waveform: Any, index: int) -> np.ndarray:
    if hasattr(waveform, "detach") and hasattr(waveform, "cpu"):
        waveform = waveform.detach().cpu().numpy()
    arr = np.asarray(waveform)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"audio item {index} has dtype {arr.dtype}; expected integer or float samples")
    if arr.ndim == 2:
        if arr.shape[0] <= 8 and arr.shape[0] <= arr.shape[1]:
            arr = arr.mean(axis=0, dtype=np.float64) if arr.dtype.kind == "f" else _scale(arr).mean(axis=0)
        elif arr.shape[1] <= 8:
            arr = arr.mean(axis=1, dtype=np.float64) if arr.dtype.kind == "f" else _scale(arr).mean(axis=1)
        else:
            raise ValueError(f"audio item {index} has shape {arr.shape}; expected samples or (channels<=8, samples)")
    elif arr.ndim != 1:
        raise ValueError(f"audio item {index} has shape {arr.shape}; expected a 1-D or 2-D waveform")
    if arr.dtype.kind in "iu":
        arr = _scale(arr)
    arr = np.asarray(arr, dtype=np.float32)
    if arr.size == 0:
        raise ValueError(f"audio item {index} is empty (0 samples)")
    if not np.isfinite(arr).all():
        raise ValueError(f"audio item {index} contains NaN or inf samples")
    return arr


def _scale(arr: np.ndarray) -> np.ndarray:
    """Integer PCM to floats in [-1, 1]."""
    info = np.iinfo(arr.dtype)
    if info.min == 0:  # unsigned: centred on the middle of the range (8-bit WAV)
        mid = (info.max + 1) / 2
        return (arr.astype(np.float64) - mid) / mid
    return arr.astype(np.float64) / -float(info.min)


def resample(waveform: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resample a 1-D waveform from ``rate`` to ``target`` Hz with ``scipy.signal.resample_poly``.

    Polyphase filtering by the reduced ratio ``target/rate`` with scipy's default Kaiser-windowed low-pass filter
    (anti-aliasing when downsampling); the output has ``ceil(len * target / rate)`` samples.

    Examples
    --------
    >>> t = np.arange(16000) / 16000
    >>> up = resample(np.sin(2 * np.pi * 440 * t), 16000, 48000)
    >>> len(up), bool(np.abs(up[3000:-3000] - np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)[3000:-3000]).max()
    ...                 < 1e-3)
    (48000, True)
    """
    rate, target = int(rate), int(target)
    if rate == target:
        return np.asarray(waveform, dtype=np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(rate, target)
    return resample_poly(np.asarray(waveform, dtype=np.float64), target // g, rate // g).astype(np.float32)


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """A mono float32 waveform in [-1, 1] and its sample rate from a WAV file (or any format ``soundfile`` reads).

    Reads RIFF/WAVE PCM (8, 16, 24, 32 bit), IEEE float (32, 64 bit) and their WAVE_FORMAT_EXTENSIBLE forms with
    the standard library; channels are averaged. Anything else is read with ``soundfile`` when it is installed.

    Examples
    --------
    >>> import io, tempfile, wave
    >>> path = os.path.join(tempfile.mkdtemp(), "click.wav")
    >>> with wave.open(path, "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
    ...     w.writeframes(np.array([0, 16384, -16384], np.int16).tobytes())
    >>> read_wav(path)
    (array([ 0. ,  0.5, -0.5], dtype=float32), 8000)
    """
    path = os.fspath(path)
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        try:
            import soundfile
        except ImportError:
            raise ValueError(
                "not a WAV file (RIFF/WAVE header missing); other formats need `pip install soundfile`"
            ) from None
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
        return _mono_float(samples, 0), int(rate)
    fmt: tuple[int, ...] | None = None
    pcm = b""
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]
        if chunk == b"fmt ":
            if len(body) < 16:
                raise ValueError("truncated WAV fmt chunk")
            fmt = struct.unpack("<HHIIHH", body[:16])
            if fmt[0] == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real code opens the sub-format
                fmt = (struct.unpack("<H", body[24:26])[0], *fmt[1:])
        elif chunk == b"data":
            pcm = body
            break
        pos += 8 + size + (size & 1)
    if fmt is None:
        raise ValueError("WAV file without a fmt chunk")
    code, channels, rate, _, _, bits = fmt
    if channels < 1 or rate < 1:
        raise ValueError(f"WAV header declares {channels} channels at {rate} Hz")
    width = bits // 8
    frame = width * channels
    usable = len(pcm) - len(pcm) % frame if frame else 0
    if usable == 0:
        raise ValueError("WAV file holds no audio samples")
    pcm = pcm[:usable]
    if code == 1 and bits == 8:
        samples = (np.frombuffer(pcm, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif code == 1 and bits in (16, 32):
        kind = np.int16 if bits == 16 else np.int32
        samples = np.frombuffer(pcm, f"<i{width}").astype(np.float64) / -float(np.iinfo(kind).min)
    elif code == 1 and bits == 24:
        raw = np.frombuffer(pcm, np.uint8).reshape(-1, 3)
        ints = raw[:, 0].astype(np.int32) | (raw[:, 1].astype(np.int32) << 8) | (raw[:, 2].astype(np.int32) << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        samples = ints.astype(np.float64) / float(1 << 23)
    elif code == 3 and bits in (32, 64):
        samples = np.frombuffer(pcm, f"<f{width}").astype(np.float64)
    else:
        raise ValueError(f"unsupported WAV encoding (format code {code}, {bits} bits); install soundfile")
    samples = samples.reshape(-1, channels).mean(axis=1)
    return _mono_float(samples, 0), int(rate)
