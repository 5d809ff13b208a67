"""The encoder protocol, the fingerprints of weights and tokenizers, and a wrapper for any torch module.

Also the small things every torch encoder shares: :func:`check_encode_call` (one wording for bad ``encode``
arguments), :func:`check_torch_seed` and :func:`default_device`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from workbench._params import check_int
from workbench.encoders._pipeline import check_num_workers, run_encoder
from workbench.encoders.media import stack_arrays

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
        """Embed ``items`` of ``modality`` as an (N x D) float32 array of unit rows.

        The package's encoders also take ``num_workers=`` (worker processes preparing batches); ``workbench.embed``
        passes it to encoders whose ``encode`` has that parameter.
        """
        ...


def check_encode_call(encoder: Any, modality: str, items: Any, batch_size: int) -> None:
    """The argument checks every encoder's ``encode`` starts with (one wording for every encoder)."""
    if modality not in encoder.modalities:
        raise ValueError(f"{encoder.name} encodes {encoder.modalities}, not {modality!r}")
    if isinstance(items, str | bytes) or not isinstance(items, Sequence | np.ndarray):
        raise TypeError(f"items must be a sequence (list) of {modality} items, got {type(items).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")


def check_torch_seed(seed: Any) -> int:
    """``seed`` as an int that ``torch.manual_seed`` takes (``-2**63`` to ``2**64 - 1``; negative seeds are mapped
    into the unsigned range by torch, and ``random-seed-3`` specs give them).

    Examples
    --------
    >>> check_torch_seed(3)
    3
    >>> check_torch_seed(1.5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    workbench._params.InvalidParameterError: seed must be an integer in [-9223372036854775808, ...], got 1.5
    """
    return check_int(seed, "seed", low=-(2**63), high=2**64 - 1)


def default_device() -> torch.device:
    """``cuda`` when torch sees a GPU, else ``cpu``: the device an encoder uses when none is given."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


def tokenizer_digest(tokenizer: Any) -> str:
    """A short SHA-256 of what decides a tokenizer's output (vocabulary, merges, normalisation, special tokens).

    The backend's truncation and padding state is left out: it changes with every call's arguments.

    Examples
    --------
    >>> from workbench.encoders.clap import byte_level_tokenizer
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
        Turns a list of items into the batch tensor (default :func:`~workbench.encoders.media.stack_arrays`:
        ``torch.as_tensor(numpy.stack(items))`` in float32). With ``num_workers > 0`` it runs in worker processes
        (forked on Linux; where workers are spawned it must be picklable: a module-level function, not a lambda;
        it must not touch CUDA there: the model's device gets the batch after it).
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
        self.device = device or str(default_device())
        self.module = module.to(self.device).eval()
        self.modalities = (modality,)
        self.name = name
        self.preprocess = preprocess or stack_arrays
        self.preprocessing = preprocessing

    @cached_property
    def fingerprint(self) -> str:
        """The weights fingerprint, computed on first use and kept for the life of this encoder."""
        return weights_fingerprint(self.module)

    def encode(self, modality: str, items: Sequence[Any], batch_size: int = 32,
               num_workers: int | None = 0) -> np.ndarray:
        """Embed ``items`` as an (N x D) float32 array of unit rows; ``preprocess`` runs in ``num_workers`` worker
        processes (default 0: in this thread; None: one per available core), bit for bit the same result."""
        import torch

        check_encode_call(self, modality, items, batch_size)
        workers = check_num_workers(num_workers)
        device = torch.device(self.device)

        def forward(batch: torch.Tensor, start: int) -> torch.Tensor:
            return self.module(batch.to(device, non_blocking=True))

        return run_encoder(items, batch_size, _Preprocess(self.preprocess), forward, device=device,
                           num_workers=workers)


class _Preprocess:
    """A TorchEncoder's ``preprocess(items)`` as the pipeline's ``prepare(items, start)``."""

    def __init__(self, preprocess: Callable[[list[Any]], Any]) -> None:
        self.preprocess = preprocess

    def __call__(self, items: list[Any], start: int) -> Any:
        return self.preprocess(items)
