"""Encoders: anything that turns items of a modality into unit-norm embedding rows.

The :class:`Encoder` protocol is all the cache and the analysis need; real model wrappers build on it:

- :class:`OpenCLIPEncoder` (images and texts; any ``open_clip`` architecture, random, tag or local checkpoint),
- :class:`CLAPEncoder` (audio and texts; ``transformers``' CLAP, the ``audio`` extra),
- :class:`SentenceTransformerEncoder` (texts; the ``text`` extra),
- :class:`TorchvisionEncoder` (images; ImageNet-pretrained torchvision CNNs, pooled penultimate features),
- :class:`TorchEncoder` wraps any ``torch.nn.Module`` of your own.

They read their items through :mod:`workbench.encoders.media` (:func:`load_image`, :func:`load_audio`,
:func:`read_wav`, :func:`resample`), which you can use to check or prepare items yourself.

:func:`load` builds one from a spec string (``"openclip:ViT-B-32/laion2b_s34b_b79k"``, ``"openclip:ViT-B-32"``,
``"openclip:ViT-B-32@/path/ckpt.pt"``, ``"clap:random"``, ``"sentence-transformers:all-MiniLM-L6-v2"``,
``"torchvision:mobilenet_v2"``, ``"torchvision:resnet50@/path/resnet50.pth"``; see :mod:`workbench.encoders.registry`).
Weights that are neither local nor downloadable raise :class:`WeightsUnavailableError` at once, with the ways out.
Importing this package loads no torch, open_clip or transformers: the model classes are imported on first use.

Examples
--------
>>> import workbench.encoders as enc
>>> enc.parse_spec("openclip:ViT-B-32@/models/ckpt.pt")
('openclip', 'ViT-B-32@/models/ckpt.pt')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench._lazy import lazy_attributes
from workbench.encoders.base import Encoder, TorchEncoder, weights_fingerprint
from workbench.encoders.errors import WeightsUnavailableError
from workbench.encoders.media import load_audio, load_image, read_wav, resample
from workbench.encoders.registry import load, parse_spec, register, schemes

_LAZY_ATTRIBUTES = {
    "OpenCLIPEncoder": "workbench.encoders.openclip",
    "CLAPEncoder": "workbench.encoders.clap",
    "SentenceTransformerEncoder": "workbench.encoders.text",
    "TorchvisionEncoder": "workbench.encoders.cnn",
}

__all__ = [
    "CLAPEncoder",
    "Encoder",
    "OpenCLIPEncoder",
    "SentenceTransformerEncoder",
    "TorchEncoder",
    "TorchvisionEncoder",
    "WeightsUnavailableError",
    "load",
    "load_audio",
    "load_image",
    "parse_spec",
    "read_wav",
    "register",
    "resample",
    "schemes",
    "weights_fingerprint",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from workbench.encoders.clap import CLAPEncoder
    from workbench.encoders.cnn import TorchvisionEncoder
    from workbench.encoders.openclip import OpenCLIPEncoder
    from workbench.encoders.text import SentenceTransformerEncoder

__getattr__, __dir__ = lazy_attributes(globals(), _LAZY_ATTRIBUTES)
