"""Lazy package attributes (PEP 562): a name is imported from its module on first access, then kept.

A package that must import fast (no torch, plotly or transformers at ``import``) lists its heavy names in a mapping
``name -> module`` and gets its module-level ``__getattr__`` and ``__dir__`` from :func:`lazy_attributes`.

Examples
--------
>>> import types
>>> package = types.ModuleType("demo")
>>> package.__all__ = ["OrderedDict"]
>>> package.__getattr__, package.__dir__ = lazy_attributes(vars(package), {"OrderedDict": "collections"})
>>> package.OrderedDict.__name__, "OrderedDict" in vars(package)   # imported on first access, then kept
('OrderedDict', True)
>>> package.nope
Traceback (most recent call last):
    ...
AttributeError: module 'demo' has no attribute 'nope'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    namespace: MutableMapping[str, Any], lazy: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package whose ``globals()`` is ``namespace``.

    ``__getattr__(name)`` imports ``name`` from the module ``lazy[name]`` names, stores it in ``namespace`` (so it
    is looked up once) and returns it; any other name is an AttributeError. ``__dir__()`` lists the package's
    globals and its ``__all__``, sorted.
    """

    def __getattr__(name: str) -> Any:
        if name in lazy:
            value = getattr(importlib.import_module(lazy[name]), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace["__all__"]))

    return __getattr__, __dir__
