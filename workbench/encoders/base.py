"""The encoder protocol, a weights fingerprint, and a wrapper for any torch module."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch


@runtime_checkable
class Encoder(Protocol):
    """What :func:`workbench.embed` needs from an encoder.

    Attributes
    ----------
    name : str
        A readable model name, e.g. ``"openclip:ViT-B-32/laion2b_s34b_b79k"``.
    modalities : tuple of str
        The modalities it can encode, e.g. ``("image", "text")``.
    fingerprint : str
        Identifies the weights (and anything else that changes the output); computed once per loaded model.
    preprocessing : str, optional
        Describes preprocessing that is not part of the weights (image size, sample rate); part of the cache key.
    """

    name: str
    modalities: tuple[str, ...]

    @property
    def fingerprint(self) -> str: ...

    def encode(self, modality: str, items: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        """Embed ``items`` of ``modality`` as an (N x D) float32 array of unit rows."""
        ...


def check_encode_call(encoder: Any, modality: str, items: Any, batch_size: int) -> None:
    """The argument checks every encoder's ``encode`` starts with (one wording for every encoder)."""
    if modality not in encoder.modalities:
        raise ValueError(f"{encoder.name} encodes {encoder.modalities}, not {modality!r}")
    if isinstance(items, str | bytes) or not isinstance(items, Sequence | np.ndarray):
        raise TypeError(f"items must be a sequence (list) of {modality} items, got {type(items).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")


def weights_fingerprint(module: torch.nn.Module) -> str:
    """SHA-256 over a module's state dict (names, dtypes, shapes and bytes of every tensor, in name order).

    Two modules with the same architecture and weights have the same fingerprint, whatever their device.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    >>> _ = b.load_state_dict(a.state_dict())
    >>> weights_fingerprint(a) == weights_fingerprint(b)
    True
    """
    digest = hashlib.sha256()
    state = module.state_dict()
    for name in sorted(state):
        tensor = state[name].detach()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        flat = tensor.contiguous().cpu().reshape(-1)
        digest.update(flat.view(dtype=_byte_dtype()).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


class ModelFingerprint:
    """Mixin for encoders holding a torch ``model``: its weights fingerprint, computed once per loaded model.

    After changing the weights in place (fine-tuning), call :meth:`refresh_fingerprint` so that the embedding
    cache sees the new weights.
    """

    model: Any

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the weights, computed on first use and kept for the life of this encoder."""
        return weights_fingerprint(self.model)

    def refresh_fingerprint(self) -> str:
        """Recompute :attr:`fingerprint` (after the weights of :attr:`model` were changed in place)."""
        self.__dict__.pop("fingerprint", None)
        return self.fingerprint


def _byte_dtype() -> Any:
    import torch

    return torch.uint8


class TorchEncoder:
    """Wrap a ``torch.nn.Module`` (one modality) as an :class:`Encoder`.

    Parameters
    ----------
    module : torch.nn.Module
        Maps a batch tensor to embeddings (B x D). Put in eval mode and run under ``torch.inference_mode``.
    modality : str
        The modality it encodes.
    name : str
        A readable model name (part of the cache key, with the weights fingerprint).
    preprocess : callable, optional
        Turns a list of items into the batch tensor (default: ``torch.as_tensor(numpy.stack(items))``).
    preprocessing : str, default ""
        Describes ``preprocess`` for the cache key (change it when the preprocessing changes).
    device : str, optional
        Default: cuda when available, else cpu.

    Examples
    --------
    >>> import numpy as np, torch
    >>> _ = torch.manual_seed(0)
    >>> encoder = TorchEncoder(torch.nn.Linear(4, 3), "sensor", "toy-linear")
    >>> encoder.encode("sensor", [np.ones(4, np.float32), np.arange(4, dtype=np.float32)]).shape
    (2, 3)
    """

    def __init__(
        self,
        module: torch.nn.Module,
        modality: str,
        name: str,
        preprocess: Callable[[list[Any]], torch.Tensor] | None = None,
        preprocessing: str = "",
        device: str | None = None,
    ) -> None:
        import torch

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.module = module.to(self.device).eval()
        self.modalities = (modality,)
        self.name = name
        self.preprocess = preprocess or _stack_as_tensor
        self.preprocessing = preprocessing

    @cached_property
    def fingerprint(self) -> str:
        """The weights fingerprint, computed on first use and kept for the life of this encoder."""
        return weights_fingerprint(self.module)

    def encode(self, modality: str, items: Sequence[Any], batch_size: int = 32) -> np.ndarray:
        import torch

        if modality not in self.modalities:
            raise ValueError(f"{self.name} encodes {self.modalities}, not {modality!r}")
        out = []
        with torch.inference_mode():
            for start in range(0, len(items), batch_size):
                batch = self.preprocess(list(items[start : start + batch_size])).to(self.device)
                emb = self.module(batch).float()
                out.append(torch.nn.functional.normalize(emb, dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32, copy=False)


def _stack_as_tensor(items: list[Any]) -> torch.Tensor:
    import torch

    return torch.as_tensor(np.stack([np.asarray(item, dtype=np.float32) for item in items]))
