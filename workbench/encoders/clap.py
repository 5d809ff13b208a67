"""CLAP audio-text encoders on ``transformers``' ``ClapModel``: hub checkpoints, local folders, random weights.

Needs the ``audio`` extra (``transformers``). Random weights work fully offline: the audio side uses
``ClapFeatureExtractor`` (48 kHz log-mel), and the text side gets a small byte-level tokenizer built on the spot
(no vocabulary download), saved with the model by :meth:`CLAPEncoder.save_pretrained`.

Audio is read by :func:`workbench.encoders.media.load_audio` (WAV files with a small RIFF reader: PCM
8/16/24/32-bit and float WAV, no extra dependency; other formats through ``soundfile`` when it is installed), mixed
down to mono and resampled to the feature extractor's rate with :func:`workbench.encoders.media.resample`
(``scipy.signal.resample_poly``: polyphase filtering with a Kaiser-windowed anti-aliasing filter).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.encoders._pipeline import check_num_workers, run_encoder
from workbench.encoders.base import (
    ModelFingerprint,
    check_encode_call,
    check_torch_seed,
    default_device,
    tokenizer_digest,
)
from workbench.encoders.errors import (
    WeightsUnavailableError,
    forced_offline,
    load_from_hub,
    missing_path_error,
    short_error,
)
from workbench.encoders.media import check_sample_rate, check_texts, load_audio, resample

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["CLAPEncoder", "byte_level_tokenizer"]

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

        if sample_rate is not None:
            sample_rate = check_sample_rate(sample_rate, "sample_rate")
        if checkpoint is not None and config is not None:
            raise ValueError("pass either checkpoint= (pretrained weights) or config= (random weights), not both")
        self.seed = check_torch_seed(seed)
        self.sample_rate = sample_rate
        self.device = torch.device(device) if device is not None else default_device()
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
    def encode(self, modality: str, items: Sequence[Any], batch_size: int = 32,
               num_workers: int | None = None) -> np.ndarray:
        """Embed audio clips or texts as an (N x D) float32 array of unit rows.

        Parameters
        ----------
        modality : {"audio", "text"}
        items : sequence
            Audio (paths, ``(waveform, sample_rate)`` tuples, arrays with ``sample_rate=`` set) or texts (str).
        batch_size : int, default 32
        num_workers : int, optional
            Worker processes that read, resample and turn clips into features while the model runs (default: one
            per available core, at most 8; 0: in this thread); the same bits either way. Texts are tokenized here.
        """

        check_encode_call(self, modality, items, batch_size)
        workers = check_num_workers(num_workers)
        if len(items) == 0:
            return np.zeros((0, int(self.model.config.projection_dim)), dtype=np.float32)
        if modality == "audio":
            prepare: Any = _AudioBatch(self.feature_extractor, self.sample_rate)

            def forward(prepared: Any, start: int) -> torch.Tensor:
                features, is_longer = prepared
                return _pooled(self.model.get_audio_features(
                    input_features=features.to(self.device, non_blocking=True),
                    is_longer=is_longer.to(self.device, non_blocking=True)))
        else:
            prepare, workers = _TextBatch(self.tokenizer, self.max_text_tokens), 0

            def forward(prepared: Any, start: int) -> torch.Tensor:
                return _pooled(self.model.get_text_features(
                    input_ids=prepared["input_ids"].to(self.device),
                    attention_mask=prepared["attention_mask"].to(self.device)))

        return run_encoder(items, batch_size, prepare, forward, device=self.device, num_workers=workers)

    def _audio_features(self, batch: Sequence[Any], start: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _AudioBatch(self.feature_extractor, self.sample_rate)(batch, start)


class _TextBatch:
    """The preparing step of CLAP texts: checked, tokenized, padded and truncated to the model's length."""

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length

    def __call__(self, batch: Sequence[Any], start: int) -> Any:
        return self.tokenizer(check_texts(batch, start), padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt")


class _AudioBatch:
    """The preparing step of CLAP audio (picklable, run in the pipeline's workers): each clip read, mixed to mono,
    resampled, centre-cropped to the window and through the feature extractor under a fixed numpy seed."""

    def __init__(self, feature_extractor: Any, sample_rate: int | None) -> None:
        self.feature_extractor, self.sample_rate = feature_extractor, sample_rate

    def __call__(self, batch: Sequence[Any], start: int) -> tuple[torch.Tensor, torch.Tensor]:
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

    def load(cache: str, offline: bool) -> tuple[Any, Any]:
        return (ClapModel.from_pretrained(repo, cache_dir=cache, local_files_only=offline),
                ClapProcessor.from_pretrained(repo, cache_dir=cache, local_files_only=offline))

    return load_from_hub(name, repo, load, files=["config.json"], cache_dir=cache_dir,
                         local_example='CLAPEncoder("/path/to/folder") with a folder written by save_pretrained')


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


def _pooled(result: Any) -> torch.Tensor:
    """The embedding from ``get_*_features``: a tensor (older transformers) or an output with ``pooler_output``."""
    if hasattr(result, "pooler_output") and result.pooler_output is not None:
        return result.pooler_output
    if isinstance(result, tuple | list):
        return result[1] if len(result) > 1 else result[0]
    return result


def _looks_like_local(value: str) -> bool:
    return value.startswith(("/", ".", "~")) or value.count("/") > 1 or os.sep in value.replace("/", "")
