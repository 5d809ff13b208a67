"""Checksummed one-file arrays (the projection cache's format) and where every workbench cache lives.

:func:`write_checked_array` stores an array atomically in one ``.npz`` with a SHA-256 of its bytes;
:func:`read_checked_array` reads it back, or reports a damaged file with a :class:`CacheCorruptionWarning`, removes it
and returns None. :func:`default_cache_dir` is the one place that reads the cache location from the environment.
"""

from __future__ import annotations

import contextlib
import io as _io
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, cast

import numpy as np

from workbench.store._format import StoreCorruptionWarning, atomic_write_bytes, sha256_hex

__all__ = ["CacheCorruptionWarning", "default_cache_dir", "read_checked_array", "write_checked_array"]


class CacheCorruptionWarning(StoreCorruptionWarning):
    """A cache file failed its checksum or could not be read; it was removed and will be recomputed."""


def default_cache_dir(kind: str = "embeddings") -> Path:
    """Where workbench caches ``kind`` (``"embeddings"``, ``"projections"``, ...): the one environment lookup.

    Embeddings live in ``$WORKBENCH_CACHE_DIR`` itself, other kinds in ``$WORKBENCH_CACHE_DIR/<kind>``; without that
    variable, in ``$XDG_CACHE_HOME/workbench/<kind>``, else ``~/.cache/workbench/<kind>``.

    Examples
    --------
    >>> default_cache_dir("projections").name
    'projections'
    """
    if not kind or os.sep in kind or kind in (".", ".."):
        raise ValueError(f"cache kind must be a plain folder name, got {kind!r}")
    if os.environ.get("WORKBENCH_CACHE_DIR"):
        root = Path(os.environ["WORKBENCH_CACHE_DIR"])
        return root if kind == "embeddings" else root / kind
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "workbench" / kind


def write_checked_array(
    path: str | os.PathLike[str], key: str, array: np.ndarray, info: dict[str, Any], *, name: str = "vectors",
    dtype: Any = np.float32,
) -> Path:
    """Store ``array`` (as ``dtype``) under ``key`` in one ``.npz`` atomically, with a SHA-256 of its bytes.

    The file holds ``name`` (the array) and ``header`` (JSON bytes: ``info`` plus ``key``, ``sha256``, ``shape`` and
    ``created``); :func:`read_checked_array` reads it back or reports it damaged.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
    >>> _ = write_checked_array(path, "k", np.eye(2), {}, name="coords", dtype=np.float64)
    >>> read_checked_array(path, "k", rows=2, cols=2, name="coords", dtype=np.float64)
    array([[1., 0.],
           [0., 1.]])
    """
    array = np.ascontiguousarray(array, dtype=dtype)
    header = {
        **info,
        "key": key,
        "sha256": sha256_hex(array.tobytes()),
        "shape": list(array.shape),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    buffer = _io.BytesIO()
    arrays = {name: array, "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
    np.savez(buffer, **cast(dict[str, Any], arrays))  # numpy's stub would read a key "allow_pickle" as the flag
    return atomic_write_bytes(path, buffer.getbuffer())


def read_checked_array(
    path: str | os.PathLike[str], key: str, *, rows: int, cols: int | None = None, name: str = "vectors",
    dtype: Any = np.float32, what: str = "embedding cache", stacklevel: int = 2,
) -> np.ndarray | None:
    """The array :func:`write_checked_array` stored under ``key``, or None when the file is absent or damaged.

    A file that belongs to another key, holds another dtype or shape (``rows`` x ``cols``, any number of columns
    when ``cols`` is None) or fails its checksum is reported with a :class:`CacheCorruptionWarning` (naming
    ``what``) and removed, never returned.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> read_checked_array(pathlib.Path(tempfile.mkdtemp()) / "absent.npz", "k", rows=2) is None
    True
    """
    path = Path(path)
    if not path.exists():
        return None
    dtype = np.dtype(dtype)
    expected = f"({rows}, {cols if cols is not None else 'any'}) {dtype}"
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as z:
            header = json.loads(z["header"].tobytes())
            array = z[name]
        problem = None
        if header.get("key") != key:
            problem = "it belongs to another key"
        elif array.dtype != dtype or array.ndim != 2 or len(array) != rows or cols not in (None, array.shape[1]):
            problem = f"it holds shape {array.shape} {array.dtype}, expected {expected}"
        elif sha256_hex(array.tobytes()) != header.get("sha256"):
            problem = "its checksum does not match"
    except Exception as exc:  # a damaged zip can raise many types
        problem = f"it cannot be read ({type(exc).__name__}: {exc})"
    if problem is None:
        return array
    warnings.warn(f"{what} file {path} is damaged ({problem}); removed, recomputing", CacheCorruptionWarning,
                  stacklevel=stacklevel + 1)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return None
