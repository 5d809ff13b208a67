"""The store's manifest (one JSON line per finished shard) and the check of every shard against its line.

A line is appended and fsynced only after its shard is durably in place, so a torn last line (a crash while
appending) is ignored and its shard recomputed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import polars as pl

from workbench.store._format import MANIFEST, _read_header, _shard_name, file_sha256

__all__ = ["verify"]


def _read_manifest(folder: Path) -> tuple[dict[int, dict[str, Any]], int]:
    """The latest entry per shard, and how many lines were unreadable (a torn last line after a crash)."""
    entries: dict[int, dict[str, Any]] = {}
    torn = 0
    path = folder / MANIFEST
    if not path.exists():
        return entries, torn
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            entries[int(entry["shard"])] = entry
        except (ValueError, KeyError, TypeError):
            torn += 1
    return entries, torn


def _append_manifest(folder: Path, entry: dict[str, Any]) -> None:
    with open(folder / MANIFEST, "ab") as handle:
        handle.write(json.dumps(entry, sort_keys=True).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def _check_entry(folder: Path, entry: dict[str, Any]) -> str | None:
    """None when the shard file matches its manifest line, else what is wrong ("missing" or "damaged: ...")."""
    path = folder / entry["file"]
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != entry.get("bytes", size):
        return f"damaged: {size} bytes, expected {entry['bytes']}"
    if file_sha256(path) != entry["sha256"]:
        return "damaged: checksum does not match"
    return None


def verify(path: str | os.PathLike[str]) -> pl.DataFrame:
    """Check every shard of a store against its manifest line; list the damaged and missing ones.

    Returns
    -------
    polars.DataFrame
        Columns ``shard``, ``file``, ``start``, ``stop`` and ``problem`` (``"missing"`` for a recorded shard whose
        file is gone or a shard of the last run never finished, ``"damaged: ..."`` for a checksum or size
        mismatch). Empty when the store is whole.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from workbench.store import write
    >>> class Enc:
    ...     name, modalities, fingerprint = "toy", ("sensor",), "f0"
    ...     def encode(self, modality, items, batch_size=32):
    ...         return np.asarray(items, dtype=np.float32)
    >>> folder = tempfile.mkdtemp()
    >>> _ = write(Enc(), [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "sensor", folder, shard_size=2, progress=False)
    >>> verify(folder).height
    0
    """
    folder = Path(path)
    _read_header(folder)
    entries, _ = _read_manifest(folder)
    rows: list[dict[str, Any]] = []
    for index in sorted(entries):
        entry = entries[index]
        problem = _check_entry(folder, entry)
        if problem is not None:
            rows.append({"shard": index, "file": entry["file"], "start": entry["start"], "stop": entry["stop"],
                         "problem": problem})
    if entries:
        last = entries[max(entries)]
        total = int(last.get("total", 0))
        shard_size = int(_read_header(folder)["shard_size"])
        for index in range((total + shard_size - 1) // shard_size):
            if index not in entries:
                start = index * shard_size
                rows.append({"shard": index, "file": _shard_name(index), "start": start,
                             "stop": min(start + shard_size, total), "problem": "missing"})
    schema = {"shard": pl.Int64, "file": pl.String, "start": pl.Int64, "stop": pl.Int64, "problem": pl.String}
    return pl.DataFrame(rows, schema=schema).sort("shard")
