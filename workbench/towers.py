"""Small encoder towers for contrastive training from scratch (torch; imported only when used).

Every tower is a ``torch.nn.Module`` with two methods:

- ``prepare(items) -> torch.Tensor``: turn raw items (uint8 images, waveforms, caption strings, feature rows) into
  one tensor for the whole set, so that training batches are plain row indexing;
- ``forward(batch) -> (B x dim)`` embeddings (not normalised; the trainer normalises).

Towers are built from a seed without touching torch's global random state, so two towers built with the same
arguments have the same weights.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["AudioCNN", "BagOfWordsText", "FeatureHead", "ImageCNN", "OpenCLIPTower", "seeded"]


class seeded:
    """Run a block with torch's global RNG seeded, restoring the previous state afterwards."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __enter__(self) -> None:
        self._state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        torch.random.set_rng_state(self._state)


class ImageCNN(nn.Module):
    """A small CNN for 64x64 RGB images: four stride-2 conv blocks, global average pooling, a linear head.

    Examples
    --------
    >>> import numpy as np
    >>> tower = ImageCNN(dim=16, seed=0)
    >>> batch = tower.prepare(np.zeros((2, 64, 64, 3), dtype=np.uint8))
    >>> tuple(tower(batch).shape)
    (2, 16)
    """

    def __init__(self, dim: int = 64, width: int = 32, seed: int = 0) -> None:
        super().__init__()
        with seeded(seed):
            layers: list[nn.Module] = []
            channels = [3, width // 2, width, width * 2, width * 2]
            for c_in, c_out in itertools.pairwise(channels):
                layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            self.features = nn.Sequential(*layers)
            self.head = nn.Linear(channels[-1], dim)

    def prepare(self, images: Any) -> torch.Tensor:
        arr = np.asarray(images)
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"images must be (N, H, W, 3) uint8 arrays, got shape {arr.shape}")
        x = torch.from_numpy(np.array(arr, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0
        return (x - 0.5) / 0.25

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


def _mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular mel filters (HTK mel scale), shape (n_mels, n_fft // 2 + 1)."""
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(sample_rate / 2)), n_mels + 2))
    bank = np.zeros((n_mels, len(freqs)))
    for m in range(n_mels):
        lo, centre, hi = edges[m], edges[m + 1], edges[m + 2]
        rising = (freqs - lo) / max(centre - lo, 1e-9)
        falling = (hi - freqs) / max(hi - centre, 1e-9)
        bank[m] = np.clip(np.minimum(rising, falling), 0, None)
    return bank.astype(np.float32)


class AudioCNN(nn.Module):
    """A log-mel CNN for short mono clips: STFT, mel filterbank, log, three conv blocks, pooling, linear head.

    Examples
    --------
    >>> import numpy as np
    >>> tower = AudioCNN(dim=8, sample_rate=16000, seed=0)
    >>> tuple(tower(tower.prepare(np.zeros((2, 16000), dtype=np.float32))).shape)
    (2, 8)
    """

    mel: torch.Tensor  # buffers registered in __init__ (nn.Module.__getattr__ is typed Tensor | Module)
    window: torch.Tensor

    def __init__(self, dim: int = 64, sample_rate: int = 16000, n_mels: int = 40, n_fft: int = 512,
                 hop: int = 256, width: int = 32, seed: int = 0) -> None:
        super().__init__()
        self.sample_rate, self.n_fft, self.hop = sample_rate, n_fft, hop
        self.register_buffer("mel", torch.from_numpy(_mel_filterbank(sample_rate, n_fft, n_mels)))
        self.register_buffer("window", torch.hann_window(n_fft))
        with seeded(seed):
            channels = [1, width // 2, width, width * 2]
            layers: list[nn.Module] = []
            for c_in, c_out in itertools.pairwise(channels):
                layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            self.features = nn.Sequential(*layers)
            self.head = nn.Linear(channels[-1], dim)

    def prepare(self, waveforms: Any) -> torch.Tensor:
        """(N, samples) float waveforms at ``sample_rate`` -> (N, 1, n_mels, frames) log-mel spectrograms."""
        arr = np.array(waveforms, dtype=np.float32)  # a writable copy (torch refuses read-only arrays)
        if arr.ndim != 2:
            raise ValueError(f"waveforms must be (N, samples) mono arrays, got shape {arr.shape}")
        x = torch.from_numpy(arr)
        spec = torch.stft(x, self.n_fft, self.hop, window=self.window, return_complex=True).abs() ** 2
        return torch.log(self.mel @ spec + 1e-6).unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class BagOfWordsText(nn.Module):
    """Mean of learned word embeddings over a vocabulary fixed at construction, then a linear head.

    Words outside the vocabulary map to one shared unknown token.

    Examples
    --------
    >>> tower = BagOfWordsText(["a red circle", "a blue square"], dim=4, seed=0)
    >>> tower.vocabulary[:4]
    ['<pad>', '<unk>', 'a', 'blue']
    >>> tuple(tower(tower.prepare(["a red square", "an unknown word"])).shape)
    (2, 4)
    """

    def __init__(self, corpus: Sequence[str], dim: int = 64, width: int = 64, seed: int = 0) -> None:
        super().__init__()
        words = sorted({w for text in corpus for w in _WORD.findall(text.lower())})
        if not words:
            raise ValueError("the corpus has no words to build a vocabulary from")
        self.vocabulary = ["<pad>", "<unk>", *words]
        self._index = {w: i for i, w in enumerate(self.vocabulary)}
        with seeded(seed):
            self.embedding = nn.Embedding(len(self.vocabulary), width, padding_idx=0)
            self.head = nn.Sequential(nn.ReLU(), nn.Linear(width, dim))

    def prepare(self, texts: Sequence[str]) -> torch.Tensor:
        ids = [[self._index.get(w, 1) for w in _WORD.findall(str(t).lower())] or [1] for t in texts]
        out = torch.zeros((len(ids), max(len(i) for i in ids)), dtype=torch.long)
        for row, seq in enumerate(ids):
            out[row, : len(seq)] = torch.tensor(seq)
        return out

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).float().unsqueeze(-1)
        pooled = (self.embedding(ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(pooled)


class FeatureHead(nn.Module):
    """A head over frozen features (e.g. pretrained CLIP embeddings): linear, or a two-layer MLP.

    Examples
    --------
    >>> import numpy as np
    >>> head = FeatureHead(in_dim=6, dim=3, seed=0)
    >>> tuple(head(head.prepare(np.ones((4, 6)))).shape)
    (4, 3)
    """

    def __init__(self, in_dim: int, dim: int = 64, hidden: int | None = None, seed: int = 0) -> None:
        super().__init__()
        with seeded(seed):
            if hidden:
                self.net: nn.Module = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))
            else:
                self.net = nn.Linear(in_dim, dim)

    def prepare(self, features: Any) -> torch.Tensor:
        arr = np.array(features, dtype=np.float32)  # a writable copy (torch refuses read-only arrays)
        if arr.ndim != 2:
            raise ValueError(f"features must be (N, D), got shape {arr.shape}")
        return torch.from_numpy(arr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class OpenCLIPTower(nn.Module):
    """One tower of an :class:`~workbench.encoders.openclip.OpenCLIPEncoder` model, for fine-tuning.

    ``modality="image"`` wraps ``model.visual`` (``encode_image``); ``"text"`` wraps the text transformer
    (``encode_text``). With ``unlock_last=k`` only the last k blocks (and the final norm and projection) train, via
    open_clip's own ``lock_image_tower(unlocked_groups=k)`` / ``lock_text_tower(unlocked_layers=k)``;
    ``unlock_last=None`` trains the whole tower. Pair an image tower with a locked text tower (``train_b=False``) or
    the reverse for LiT (Zhai et al., CVPR 2022). After training, the encoder's cached fingerprint is stale: call
    ``encoder.refresh_fingerprint()`` before embedding through the cache.
    """

    encoder: Any  # a plain attribute set with object.__setattr__, not a submodule

    def __init__(self, encoder: Any, modality: str, unlock_last: int | None = None) -> None:
        super().__init__()
        if modality not in ("image", "text"):
            raise ValueError(f"modality must be 'image' or 'text', got {modality!r}")
        object.__setattr__(self, "encoder", encoder)  # not a submodule: parameters() picks this tower's share
        self.modality = modality
        model = encoder.model
        if unlock_last is not None:
            if modality == "image":
                model.lock_image_tower(unlocked_groups=unlock_last)
            else:
                model.lock_text_tower(unlocked_layers=unlock_last)
        visual = {id(p) for p in model.visual.parameters()}
        self._params = [p for name, p in model.named_parameters()
                        if (id(p) in visual) == (modality == "image") and name != "logit_scale"
                        and not name.startswith("logit_bias")]

    def parameters(self, recurse: bool = True) -> Any:  # this tower's share of the shared model
        return iter(self._params)

    def train(self, mode: bool = True) -> OpenCLIPTower:
        model = self.encoder.model
        if self.modality == "image":
            model.visual.train(mode)
        else:
            for child in model.children():
                if child is not model.visual:
                    child.train(mode)
        return self

    def to(self, *args: Any, **kwargs: Any) -> OpenCLIPTower:
        self.encoder.model.to(*args, **kwargs)
        return self

    def prepare(self, items: Any) -> torch.Tensor:
        if self.modality == "text":
            return self.encoder.tokenizer([str(t) for t in items])
        from workbench.encoders.media import load_image

        return self.encoder.pixels([load_image(item, i) for i, item in enumerate(items)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.encoder.model
        return model.encode_image(x) if self.modality == "image" else model.encode_text(x)
