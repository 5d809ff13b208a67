"""OpenCLIP image-text encoders: any ``open_clip`` architecture, random or pretrained, offline-safe.

:class:`OpenCLIPEncoder` loads an architecture with random weights (seeded, without touching the global torch
random state), with a local checkpoint file, or with an ``open_clip`` pretrained tag. A tag is looked up in the
local caches first; when it is not there and the hub cannot be reached (``HF_HUB_OFFLINE`` set, or no connection
within about a second) it fails at once with :class:`~workbench.encoders.errors.WeightsUnavailableError` instead
of retrying for a minute.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import inspect
import json
import logging
import os
import sys
import types
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.encoders._pipeline import DeviceImageBatch, check_num_workers, run_encoder
from workbench.encoders.base import ModelFingerprint, check_encode_call, check_torch_seed, default_device
from workbench.encoders.errors import (
    WeightsUnavailableError,
    cached_hub_file,
    forced_offline,
    hub_cache_dir,
    hub_endpoint,
    hub_offline_reason,
    hub_ways_out,
    missing_path_error,
    short_error,
)
from workbench.encoders.media import ImageBatch, TextBatch, finish_pixels, split_image_transform

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from PIL import Image

__all__ = ["OpenCLIPEncoder"]

PRECISIONS = ("fp32", "fp16", "bf16", "pure_fp16", "pure_bf16", "amp", "amp_bf16", "amp_bfloat16")
#: open_clip's training precisions: float32 weights, the forward pass under torch.autocast with this dtype
_AUTOCAST = {"amp": "float16", "amp_bf16": "bfloat16", "amp_bfloat16": "bfloat16"}
IMAGE_DECODERS = ("pil", "device")
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz")
_HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"
_HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"


class OpenCLIPEncoder(ModelFingerprint):
    """An ``open_clip`` model as an :class:`~workbench.encoders.Encoder` of images and texts.

    Parameters
    ----------
    model : str
        An architecture from ``open_clip.list_models()``, e.g. ``"ViT-B-32"``. A name that is not one raises
        ValueError with the closest names.
    pretrained : str or os.PathLike, optional
        ``None`` (default): random weights drawn with ``torch.manual_seed(seed)``; the global torch random state is
        saved and restored, so building an encoder changes no other random stream. A path to a local checkpoint
        (a state dict, also ``{"state_dict": ...}`` with ``module.`` prefixes, ``.safetensors``, a full
        ``open_clip`` checkpoint): loaded by ``open_clip`` itself. Otherwise an ``open_clip`` pretrained tag for
        this architecture (``open_clip.list_pretrained_tags_by_model(model)``), e.g. ``"laion2b_s34b_b79k"``:
        read from the hub cache, downloaded once when online.
    device : str or torch.device, optional
        Default: ``"cuda"`` when available, else ``"cpu"``.
    seed : int, default 0
        The seed of random weights (ignored when ``pretrained`` is given).
    precision : {"fp32", "fp16", "bf16", "pure_fp16", "pure_bf16", "amp", "amp_bf16"}, default "fp32"
        ``open_clip``'s precision modes: ``fp16``/``bf16`` keep the weights in half precision (LayerNorm in float32,
        as OpenAI's), ``pure_*`` everything, and the training modes ``amp`` / ``amp_bf16`` (alias
        ``amp_bfloat16``) keep float32 weights and run the forward pass under ``torch.autocast`` in float16 /
        bfloat16. Embeddings are returned as float32 in every mode.
    image_decode : {"pil", "device"}, default "pil"
        ``"pil"``: images are decoded and resized with Pillow in the input pipeline's workers (the model's own
        transform, bit for bit). ``"device"`` (opt-in): JPEG files and bytes are decoded by
        ``torchvision.io.decode_jpeg`` on the encoder's device (nvJPEG on a GPU) and resized, cropped and
        normalised there with torchvision's tensor transforms; other items are read with Pillow. The pixels are
        close to Pillow's but not the same bits, so the mode (and the device) is part of :attr:`preprocessing`.
    cache_dir : str or os.PathLike, optional
        Where tag weights are cached (default: the Hugging Face hub cache, ``$HF_HUB_CACHE`` / ``$HF_HOME``).

    Attributes
    ----------
    name : str
        ``"openclip:ViT-B-32/laion2b_s34b_b79k"``, ``"openclip:ViT-B-32/random-seed0"`` or
        ``"openclip:ViT-B-32/file:<file name>"``.
    modalities : tuple of str
        ``("image", "text")``.
    fingerprint : str
        SHA-256 of the weights, computed on first use and kept (call :meth:`refresh_fingerprint` after changing the
        weights of :attr:`model` in place, e.g. fine-tuning, so the embedding cache keys follow).
    preprocessing : str
        The image transform (size, mean, std, interpolation, resize mode), the tokenizer and the precision; part of
        the embedding cache key.
    model, preprocess, tokenizer
        The ``open_clip`` model (eval mode), its inference image transform (PIL image -> tensor) and its tokenizer
        (list of str -> token tensor), for advanced use such as fine-tuning.

    Raises
    ------
    ValueError
        An unknown architecture or precision, or a checkpoint that does not fit the architecture.
    WeightsUnavailableError
        A tag that is not cached while the hub cannot be reached, an unknown tag, a missing checkpoint file.

    Notes
    -----
    Images may be file paths (``str`` / ``os.PathLike``), encoded image ``bytes``, PIL images, or numpy arrays
    (H x W x C or H x W; ``uint8``, or floats in [0, 1]). Every image is converted to RGB before the model's own
    transform. A file that cannot be read or decoded raises ValueError naming the item's index in the ``items``
    passed to :meth:`encode` and its path. Texts go through the architecture's own tokenizer (``open_clip``'s
    ``get_tokenizer``; the default CLIP BPE ships with ``open_clip`` and works offline). A tag trained with
    QuickGELU (``openai``) builds the model with QuickGELU, as those weights need; ``open_clip`` itself only
    warns about the mismatch.

    Examples
    --------
    >>> OpenCLIPEncoder("ViT-B-33")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown open_clip architecture 'ViT-B-33'; did you mean 'ViT-B-32', ...

    A random-init model (151M parameters, about 1.5 s on a CPU):

    >>> enc = OpenCLIPEncoder("ViT-B-32", seed=0)  # doctest: +SKIP
    >>> enc.encode("text", ["a photo of a cat"]).shape  # doctest: +SKIP
    (1, 512)
    """

    modalities: tuple[str, ...] = ("image", "text")

    def __init__(
        self,
        model: str,
        pretrained: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        seed: int = 0,
        precision: str = "fp32",
        cache_dir: str | os.PathLike[str] | None = None,
        image_decode: str = "pil",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        if image_decode not in IMAGE_DECODERS:
            raise ValueError(f"image_decode must be one of {', '.join(IMAGE_DECODERS)}, got {image_decode!r}")
        self.seed = check_torch_seed(seed)
        # missing tag weights fail here, before open_clip and torch are imported (seconds of a cold start)
        _check_tag_weights_first(model, pretrained, None if cache_dir is None else os.fspath(cache_dir))
        import torch

        arch = check_architecture(model)
        self.arch = arch
        self.precision = precision
        self.device = torch.device(device) if device is not None else default_device()
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else None

        kind, source, tag_cfg = _resolve_pretrained(arch, pretrained, self.cache_dir)
        self.pretrained = source or None  # the tag, the absolute checkpoint path, or None (random weights)
        if kind == "random":
            self.name = f"openclip:{arch}/random-seed{self.seed}"
        elif kind == "file":
            self.name = f"openclip:{arch}/file:{os.path.basename(source)}"
        else:
            self.name = f"openclip:{arch}/{source}"
        self.tokenizer = _get_tokenizer(arch, self.name)  # first: it is quick, and may need the hub
        self.model, self.preprocess = self._build(kind, source, tag_cfg)

        import open_clip

        self._input_dtype = open_clip.get_input_dtype(precision)
        self._autocast = getattr(torch, _AUTOCAST[precision]) if precision in _AUTOCAST else None
        self._pil_steps, self._normalize = split_image_transform(self.preprocess)
        self.image_decode = image_decode
        self._device_images = DeviceImageBatch(self.preprocess) if image_decode == "device" else None
        pp_cfg = dict(getattr(self.model.visual, "preprocess_cfg", {}) or {})
        tokenizer = type(self.tokenizer).__name__
        context = getattr(self.tokenizer, "context_length", None)
        self.preprocessing = (
            f"openclip-v1 image={json.dumps(pp_cfg, sort_keys=True, default=str)} rgb-convert; "
            f"text={tokenizer}(context_length={context}); precision={precision}"
        ) + (f"; image_decode=device:{self.device.type} (torchvision decode_jpeg, tensor resize)"
             if image_decode == "device" else "")

    # -- construction ---------------------------------------------------------------------------------------------
    def _build(self, kind: str, source: str, tag_cfg: dict[str, Any]) -> tuple[torch.nn.Module, Any]:
        import open_clip
        import torch

        kwargs: dict[str, Any] = {
            "precision": "fp32" if self.precision in _AUTOCAST else self.precision,
            "device": "cpu",  # built on the CPU, then moved: the same seed gives the same weights on every device
            "pretrained_text": False,  # never fetch a text tower's base weights behind the user's back
            "cache_dir": self.cache_dir,
        }
        if kind == "tag":
            kwargs.update(
                force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
                image_mean=tag_cfg.get("mean"),
                image_std=tag_cfg.get("std"),
                image_interpolation=tag_cfg.get("interpolation"),
                image_resize_mode=tag_cfg.get("resize_mode"),
            )
        checkpoint = None if kind == "random" else source if kind == "file" else tag_cfg["_path"]
        if "weights_only" in inspect.signature(open_clip.create_model_and_transforms).parameters:
            kwargs["weights_only"] = True  # a checkpoint holds tensors, never pickled code (torch >= 2.6's default too)

        def build() -> tuple[torch.nn.Module, Any]:
            with torch.random.fork_rng(devices=[]), _quiet_open_clip():
                torch.manual_seed(self.seed)
                model, _, preprocess = open_clip.create_model_and_transforms(self.arch, pretrained=checkpoint, **kwargs)
            return model, preprocess

        try:
            model, preprocess = _with_hub_fallback(
                build, self.name, f"the {self.arch} text tower", _hub_repo_of(self.arch, "hf_model_name")
            )
        except WeightsUnavailableError:
            raise
        except Exception as exc:
            if checkpoint is None:
                raise
            raise _checkpoint_error(self.arch, checkpoint, exc) from None
        return model.to(self.device).eval(), preprocess

    # -- identity --------------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"OpenCLIPEncoder({self.name!r}, device={str(self.device)!r}, precision={self.precision!r})"

    # -- encoding --------------------------------------------------------------------------------------------------
    def encode(self, modality: str, items: Sequence[Any], batch_size: int = 32,
               num_workers: int | None = None) -> np.ndarray:
        """Embed images or texts as an (N x D) float32 array of unit rows.

        Parameters
        ----------
        modality : {"image", "text"}
        items : sequence
            Images (paths, bytes, PIL images, arrays) or texts (str).
        batch_size : int, default 32
            Items per forward pass.
        num_workers : int, optional
            Worker processes that read and preprocess images while the model runs (default: one per available
            core, at most 8; 0: in this thread). Bit for bit the same result on the CPU; texts are tokenized here.
        """
        import torch

        check_encode_call(self, modality, items, batch_size)
        workers = check_num_workers(num_workers)
        if len(items) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        autocast = (torch.autocast(self.device.type, dtype=self._autocast) if self._autocast is not None
                    else contextlib.nullcontext())
        if modality == "image":
            prepare: Any = self._device_images or ImageBatch(self.preprocess, self._pil_steps)

            def forward(prepared: Any, start: int) -> torch.Tensor:
                if self._device_images is not None:
                    pixels = self._device_images.finish(prepared, start, self.device)
                else:
                    pixels = finish_pixels(prepared, self._normalize, self.device)
                with autocast:
                    return self.model.encode_image(pixels.to(dtype=self._input_dtype or pixels.dtype))
        else:
            prepare, workers = TextBatch(self.tokenizer), 0

            def forward(prepared: Any, start: int) -> torch.Tensor:
                with autocast:
                    return self.model.encode_text(prepared.to(self.device, non_blocking=True))

        return run_encoder(items, batch_size, prepare, forward, device=self.device, num_workers=workers)

    def pixels(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """The model's input batch for RGB PIL images: exactly ``torch.stack([preprocess(im) for im in images])``.

        The PIL steps of the transform (resize, crop) run per image; the tensor steps (to float, normalise) run once
        on the whole batch -- the same float32 operations in the same order, so the same bits (checked when the
        encoder is built), without a round of tiny multi-threaded torch calls per image.
        """
        return finish_pixels(ImageBatch(self.preprocess, self._pil_steps).images(images), self._normalize)

    @cached_property
    def embedding_dim(self) -> int:
        """The embedding dimension (the width of the projection)."""
        proj = getattr(self.model, "text_projection", None)
        if proj is not None and hasattr(proj, "shape"):
            return int(proj.shape[-1])
        return int(self.encode("text", ["x"]).shape[1])


# -- architecture, tags and checkpoints ------------------------------------------------------------------------------
def check_architecture(model: str) -> str:
    """``model`` if it is an ``open_clip`` architecture, else ValueError naming the closest ones.

    Examples
    --------
    >>> check_architecture("ViT-B-32")
    'ViT-B-32'
    >>> check_architecture("vit-b-32")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown open_clip architecture 'vit-b-32'; did you mean 'ViT-B-32', ...
    """
    if not isinstance(model, str):
        raise TypeError(f"model must be an open_clip architecture name (str), got {type(model).__name__}")
    if model.startswith(("hf-hub:", "local-dir:")):
        raise ValueError(
            f"{model!r}: open_clip 'hf-hub:' / 'local-dir:' model names are not supported here; pass a built-in "
            "architecture (open_clip.list_models()) and the checkpoint file as pretrained="
        )
    import open_clip

    names = open_clip.list_models()
    if model in names:
        return model
    by_lower = {n.lower(): n for n in names}
    close = [by_lower[c] for c in difflib.get_close_matches(model.lower(), list(by_lower), n=5, cutoff=0.5)]
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise ValueError(
        f"unknown open_clip architecture {model!r}; {hint}{len(names)} are known (open_clip.list_models()), "
        f"e.g. {', '.join(names[:8])}, ..."
    )


def _looks_like_path(value: str) -> bool:
    return (
        os.sep in value
        or "/" in value
        or value.startswith(("~", "."))
        or value.lower().endswith(_CHECKPOINT_SUFFIXES)
    )


def _resolve_pretrained(
    arch: str, pretrained: str | os.PathLike[str] | None, cache_dir: str | None
) -> tuple[str, str, dict[str, Any]]:
    """("random" | "file" | "tag", source, tag config with the local "_path") or WeightsUnavailableError."""
    import open_clip

    if pretrained is None:
        return "random", "", {}
    if not isinstance(pretrained, str | os.PathLike):
        raise TypeError(f"pretrained must be a tag, a path or None, got {type(pretrained).__name__}")
    value = os.fspath(pretrained)
    local_example = f'OpenCLIPEncoder("{arch}", pretrained="/path/to/checkpoint.pt")'
    expanded = os.path.expanduser(value)
    if os.path.isfile(expanded):
        return "file", os.path.abspath(expanded), {}
    if os.path.isdir(expanded):
        raise ValueError(
            f"pretrained={value!r} is a folder; pass the checkpoint file inside it (e.g. open_clip_model.safetensors "
            "or a .pt state dict)"
        )
    if value.startswith("file:"):
        raise ValueError(
            f"pretrained={value!r}: 'file:<name>' only names a file in encoder names; pass the path itself "
            f'(OpenCLIPEncoder("{arch}", pretrained="/path/to/{value[5:]}"), spec "openclip:{arch}@/path/...")'
        )
    tags = open_clip.list_pretrained_tags_by_model(arch)
    cfg = open_clip.get_pretrained_cfg(arch, value) if not isinstance(pretrained, os.PathLike) else {}
    if not cfg:
        if isinstance(pretrained, os.PathLike) or _looks_like_path(value):
            raise missing_path_error(f"openclip:{arch}@{value}", value, "checkpoint file", local_example)
        close = difflib.get_close_matches(value.lower(), tags, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listed = ", ".join(tags) if tags else "none: this architecture has no published weights"
        raise WeightsUnavailableError(
            f"openclip:{arch}/{value}",
            f"{value!r} is neither a pretrained tag of {arch} nor an existing file{hint}",
            looked_in=[f"open_clip's pretrained tags for {arch}: {listed}", os.path.abspath(expanded)],
            ways_out=[
                "pass one of the tags above (open_clip.list_pretrained_tags_by_model)",
                f"pass a local checkpoint file: {local_example}",
                f'use random weights: OpenCLIPEncoder("{arch}") or workbench.encoders.load("openclip:{arch}")',
            ],
        )
    tag = next((t for t in tags if open_clip.get_pretrained_cfg(arch, t) == cfg), value)
    cfg = dict(cfg)
    cfg["_path"] = _locate_tag_weights(arch, tag, cfg, cache_dir)
    return "tag", tag, cfg


def _safe_alternatives(filename: str) -> list[str]:
    if filename == _HF_WEIGHTS_NAME:
        return [_HF_SAFE_WEIGHTS_NAME]
    if filename.endswith((".bin", ".pth")):
        return [filename[:-4] + ".safetensors"]
    return []


def _tag_weights_places(arch: str, tag: str, cfg: dict[str, Any], cache_dir: str | None
                        ) -> tuple[str | None, list[str], list[str], str]:
    """(the cached weights file or None, where it looked, the ways out, the download address) for a tag.

    Raises WeightsUnavailableError when the weights are not cached and the hub (or the download URL) cannot be
    reached; touches neither open_clip nor torch.
    """
    name = f"openclip:{arch}/{tag}"
    if cfg.get("file"):
        return str(cfg["file"]), [], [], ""
    looked: list[str] = []
    hf_hub, url = cfg.get("hf_hub", ""), cfg.get("url", "")
    repo = ""
    if hf_hub:
        repo, filename = os.path.split(hf_hub)  # "org/repo/" names the default file, as in open_clip
        filename = filename or _HF_WEIGHTS_NAME
        candidates = [*_safe_alternatives(filename), filename]
        found = cached_hub_file(repo, candidates, cache_dir)
        if found:
            return found, [], [], ""
        looked.append(
            f"the Hugging Face hub cache {hub_cache_dir(cache_dir)} for repo {repo} (files {', '.join(candidates)})"
        )
    elif url:
        target = os.path.join(cache_dir or os.path.expanduser("~/.cache/clip"), os.path.basename(url))
        if os.path.isfile(target):
            return target, [], [], ""
        looked.append(f"{target} (downloaded from {url})")
    address = hub_endpoint() if hf_hub else url
    reason = hub_offline_reason(address)
    ways = hub_ways_out(repo or url, f'OpenCLIPEncoder("{arch}", pretrained="/path/to/checkpoint.pt")')
    if reason is not None:
        raise WeightsUnavailableError(name, f"they are not cached and cannot be downloaded: {reason}",
                                      looked_in=looked, ways_out=ways)
    return None, looked, ways, address


def _locate_tag_weights(arch: str, tag: str, cfg: dict[str, Any], cache_dir: str | None) -> str:
    """The local file of a tag's weights: from the caches, else downloaded when the hub can be reached."""
    found, looked, ways, _ = _tag_weights_places(arch, tag, cfg, cache_dir)
    if found is not None:
        return found
    import open_clip

    try:
        where = hub_cache_dir(cache_dir) if cfg.get("hf_hub") else cache_dir
        return open_clip.download_pretrained(cfg, cache_dir=where)
    except Exception as exc:
        raise WeightsUnavailableError(
            f"openclip:{arch}/{tag}", f"the download failed ({short_error(exc)})", looked_in=looked, ways_out=ways
        ) from None


_REGISTRY_PACKAGE = "_workbench_open_clip_registry"


def _tag_registry() -> Any | None:
    """open_clip's table of pretrained tags (its ``pretrained`` module) without importing open_clip or torch.

    The file is loaded from open_clip's folder as a submodule of a private stand-in package, so open_clip's
    ``__init__`` (which imports torch, over two seconds cold) does not run; its optional ``safetensors.torch``
    import is skipped (the table does not need it). None when that cannot be done (another open_clip layout).
    """
    if _REGISTRY_PACKAGE in sys.modules:
        return sys.modules.get(f"{_REGISTRY_PACKAGE}.pretrained")
    try:
        spec = importlib.util.find_spec("open_clip")
        if spec is None or not spec.submodule_search_locations:
            return None
        stand_in = types.ModuleType(_REGISTRY_PACKAGE)
        stand_in.__path__ = list(spec.submodule_search_locations)
        sys.modules[_REGISTRY_PACKAGE] = stand_in
        block = "safetensors.torch" not in sys.modules and "torch" not in sys.modules
        if block:
            sys.modules["safetensors.torch"] = None  # type: ignore[assignment]  # an ImportError, as open_clip expects
        try:
            return importlib.import_module(f"{_REGISTRY_PACKAGE}.pretrained")
        finally:
            if block:
                sys.modules.pop("safetensors.torch", None)
    except Exception:  # an open_clip whose pretrained table needs more: the ordinary path decides
        return None


def _check_tag_weights_first(model: Any, pretrained: Any, cache_dir: str | None) -> None:
    """Raise WeightsUnavailableError for a known tag of a built-in architecture whose weights are not cached while
    the hub cannot be reached -- before open_clip and torch are imported. Anything else (random weights, a path, an
    unknown name, weights that are cached or can be downloaded, open_clip already imported) is left to the ordinary
    path, which gives the same errors, only later."""
    if "open_clip" in sys.modules or not isinstance(model, str) or not isinstance(pretrained, str):
        return
    expanded = os.path.expanduser(pretrained)
    if os.path.exists(expanded) or pretrained.startswith("file:"):
        return
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return
    configs = [os.path.join(p, "model_configs", f"{model}.json") for p in spec.submodule_search_locations]
    if not any(os.path.isfile(c) for c in configs):
        return
    registry = _tag_registry()
    if registry is None:
        return
    try:
        cfg = registry.get_pretrained_cfg(model, pretrained)
        tags = registry.list_pretrained_tags_by_model(model)
    except Exception:
        return
    if not cfg:
        return
    tag = next((t for t in tags if registry.get_pretrained_cfg(model, t) == cfg), pretrained)
    _tag_weights_places(model, tag, dict(cfg), cache_dir)


def _checkpoint_error(arch: str, checkpoint: str, exc: BaseException) -> ValueError:
    text = str(exc)
    if "Missing key(s)" in text or "Unexpected key(s)" in text or "size mismatch" in text:
        first = " ".join(text.split())[:400]
        return ValueError(
            f"the checkpoint {checkpoint!r} does not fit the open_clip architecture {arch!r} ({first}...); "
            "pass the architecture it was trained with"
        )
    return ValueError(f"cannot load the checkpoint {checkpoint!r} into {arch!r}: {short_error(exc)}")


def _hub_repo_of(arch: str, key: str) -> str:
    """The hub repository an architecture's text tower (``hf_model_name``) or tokenizer comes from, if any."""
    import open_clip

    text_cfg = (open_clip.get_model_config(arch) or {}).get("text_cfg", {})
    return str(text_cfg.get(key) or text_cfg.get("hf_model_name") or "")


def _with_hub_fallback(build: Any, name: str, what: str, repo: str) -> Any:
    """Run ``build`` with the hub offline (cache only); if that fails for want of hub files, retry online when the
    hub can be reached, else raise WeightsUnavailableError."""
    try:
        with forced_offline():
            return build()
    except Exception as exc:
        if not _is_hub_miss(exc):
            raise
        reason = hub_offline_reason()
        if reason is not None:
            repo = repo or "<repository>"
            raise WeightsUnavailableError(
                name,
                f"{what} comes from the Hugging Face hub repo {repo}, which is not cached, and {reason}",
                looked_in=[f"the Hugging Face hub cache {hub_cache_dir()} for repo {repo} ({short_error(exc)})"],
                ways_out=[
                    "connect to the internet (and unset HF_HUB_OFFLINE) and try again: the files are downloaded "
                    "once into the hub cache",
                    f"pre-fill the hub cache on a connected machine (`hf download {repo}`), copy the cache folder "
                    "here (HF_HOME or HF_HUB_CACHE point to it) and set HF_HUB_OFFLINE=1",
                    "use an architecture whose text tower and tokenizer ship with open_clip, e.g. ViT-B-32",
                ],
            ) from None
    return build()


def _is_hub_miss(exc: BaseException) -> bool:
    chain: BaseException | None = exc
    while chain is not None:
        kind = type(chain).__name__
        text = str(chain)
        if kind in {"OfflineModeIsEnabled", "LocalEntryNotFoundError", "EntryNotFoundError"}:
            return True
        if isinstance(chain, OSError) and ("offline" in text.lower() or "huggingface.co" in text.lower()):
            return True
        chain = chain.__cause__ or chain.__context__
    return False


def _get_tokenizer(arch: str, name: str) -> Any:
    import open_clip

    return _with_hub_fallback(
        lambda: open_clip.get_tokenizer(arch), name, f"the {arch} tokenizer", _hub_repo_of(arch, "hf_tokenizer_name")
    )


class _DropRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Model initialized randomly" not in record.getMessage()


@contextlib.contextmanager
def _quiet_open_clip() -> Iterator[None]:
    """open_clip logs "No pretrained weights loaded ... initialized randomly" on the root logger: that is the point
    of a random-init encoder, so that one message is dropped."""
    root = logging.getLogger()
    flt = _DropRandomInitWarning()
    root.addFilter(flt)
    try:
        yield
    finally:
        root.removeFilter(flt)
