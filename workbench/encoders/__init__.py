"""Encoders: anything that turns items of a modality into unit-norm embedding rows.

The :class:`Encoder` protocol is all the cache and the analysis need; real model wrappers (open_clip, CLAP,
sentence-transformers) build on it. :class:`TorchEncoder` wraps any ``torch.nn.Module`` of your own.
"""

from workbench.encoders.base import Encoder, TorchEncoder, weights_fingerprint

__all__ = ["Encoder", "TorchEncoder", "weights_fingerprint"]
