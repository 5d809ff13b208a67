"""The store's manifest (one checksummed JSON line per finished shard) and the check of the store against it.

A line is appended and fsynced only after its shard is durably in place, so a torn last line (a crash while
appending: no newline at its end) is crash residue, ignored and its shard recomputed. Every line carries
``line_sha256``, the SHA-256 of the rest of the line, so an edited or garbled line is never believed. :func:`verify`
cross-checks the manifest against the files on disk: a missing manifest, a garbled or edited line, a line whose
file is gone or whose checksum, size or row count disagree with its file, a shard never finished, and a shard file
the manifest does not record (an orphan) are each a named problem.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from workbench.store._format import (
    HEADER,
    MANIFEST,
    SHARD_PATTERN,
    _canonical_sha256,
    _DamagedHeader,
    _read_header,
    _shard_index,
    _shard_name,
    atomic_write_bytes,
    file_sha256,
)

__all__ = ["verify"]

_INT_FIELDS = ("shard", "start", "stop", "rows", "total", "dim")
_STR_FIELDS = ("file", "sha256", "ids_sha256")
_KNOWN_FIELDS = {*_INT_FIELDS, *_STR_FIELDS, "first_id", "last_id", "bytes", "items_sha256", "line_sha256"}


@dataclass
class _Manifest:
    """The manifest as read: the latest trustworthy line per shard, and what was wrong with the others."""

    exists: bool = False
    entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    bad: list[tuple[int, int | None, str]] = field(default_factory=list)  # (line number, shard if known, problem)
    torn: bool = False  # the last line was torn by a crash while appending (no newline): not damage

    @property
    def total(self) -> int:
        """The number of items of the store's item list, as far as the trustworthy lines tell (0 when none)."""
        return max((int(e["total"]) for e in self.entries.values()), default=0)


def _line_bytes(entry: dict[str, Any]) -> bytes:
    """A manifest line: ``entry`` plus ``line_sha256``, its checksum."""
    sealed = {**entry, "line_sha256": _canonical_sha256(entry, "line_sha256")}
    return json.dumps(sealed, sort_keys=True).encode() + b"\n"


def _entry_problem(entry: Any, shard_size: int | None) -> str | None:
    """Why a parsed manifest line cannot be believed, or None. Lines written before ``line_sha256`` existed are
    checked field by field."""
    if not isinstance(entry, dict):
        return "is not a JSON object"
    if "line_sha256" in entry and entry["line_sha256"] != _canonical_sha256(entry, "line_sha256"):
        return "was edited (its checksum does not match)"
    wrong = [k for k in _INT_FIELDS if not isinstance(entry.get(k), int) or isinstance(entry.get(k), bool)]
    wrong += [k for k in _STR_FIELDS if not isinstance(entry.get(k), str)]
    wrong += sorted(k for k in entry if k not in _KNOWN_FIELDS)  # e.g. a flipped byte in a field's name
    if wrong:
        return f"has bad or missing fields ({', '.join(wrong)})"
    shard, start, stop, total = entry["shard"], entry["start"], entry["stop"], entry["total"]
    if shard < 0 or entry["file"] != _shard_name(shard):
        return f"names file {entry['file']!r} for shard {shard}"
    if not 0 <= start < stop <= total or entry["rows"] != stop - start:
        return f"is inconsistent (start {start}, stop {stop}, rows {entry['rows']}, total {total})"
    if shard_size is not None and (start != shard * shard_size or stop != min(start + shard_size, total)):
        return f"is inconsistent with shard_size {shard_size} (start {start}, stop {stop})"
    return None


def _read_manifest(folder: Path, shard_size: int | None = None) -> _Manifest:
    """The manifest of the store at ``folder``: the latest trustworthy line per shard, and the bad lines."""
    path = folder / MANIFEST
    manifest = _Manifest(exists=path.is_file())
    if not manifest.exists:
        return manifest
    data = path.read_bytes()
    lines = data.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            if number == len(lines):  # the last line has no newline: torn by a crash while appending
                manifest.torn = True
            else:
                manifest.bad.append((number, None, "is garbled (not JSON)"))
            continue
        problem = _entry_problem(entry, shard_size)
        if problem is not None:
            known = entry.get("shard") if isinstance(entry, dict) else None
            manifest.bad.append((number, known if isinstance(known, int) and not isinstance(known, bool) else None,
                                 problem))
            continue
        entry.pop("line_sha256", None)
        manifest.entries[entry["shard"]] = entry
    return manifest


def _append_manifest(folder: Path, entry: dict[str, Any]) -> None:
    with open(folder / MANIFEST, "ab") as handle:
        handle.write(_line_bytes(entry))
        handle.flush()
        os.fsync(handle.fileno())


def _write_manifest(folder: Path, entries: dict[int, dict[str, Any]]) -> None:
    """Replace the manifest (atomically) by one line per entry, in shard order."""
    atomic_write_bytes(folder / MANIFEST, b"".join(_line_bytes(entries[i]) for i in sorted(entries)))


def _check_entry(folder: Path, entry: dict[str, Any]) -> str | None:
    """None when the shard file matches its manifest line, else what is wrong ("missing" or "damaged: ...")."""
    import pyarrow.parquet as pq

    path = folder / entry["file"]
    if not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != entry.get("bytes", size):
        return f"damaged: {size} bytes, expected {entry['bytes']}"
    if file_sha256(path) != entry["sha256"]:
        return "damaged: checksum does not match"
    try:
        rows = pq.read_metadata(path).num_rows
    except (OSError, ValueError) as exc:
        return f"damaged: not a readable parquet file ({exc})"
    if rows != entry["rows"]:
        return f"damaged: the file holds {rows} rows, its manifest line says {entry['rows']}"
    return None


def _shard_files(folder: Path) -> dict[int, str]:
    """The shard files on disk, by index."""
    found = {}
    for path in folder.glob(SHARD_PATTERN):
        index = _shard_index(path.name)
        if index is not None:
            found[index] = path.name
    return found


def verify(path: str | os.PathLike[str]) -> pl.DataFrame:
    """Cross-check a store's manifest against its files on disk; name everything that is damaged or missing.

    Returns
    -------
    polars.DataFrame
        Columns ``shard``, ``file``, ``start``, ``stop`` and ``problem``, one row per problem, empty when the store
        is whole. ``problem`` starts with ``"missing"`` (a recorded shard whose file is gone, a shard of the item
        list never finished or whose file is not recorded, or the manifest itself gone), ``"damaged: ..."`` (a
        shard whose checksum, size or row count disagree with its manifest line; a garbled or edited manifest line;
        a damaged ``store.json``) or ``"orphan: ..."`` (a shard file no manifest line records, beyond the item
        list or when the manifest is gone). ``shard`` is null for problems of ``store.json`` or ``manifest.jsonl``
        as a whole. The next ``workbench.embed(..., store=PATH)`` with the same items recomputes exactly the shards
        named (a damaged ``store.json`` is an error that says what to do instead).

    Raises
    ------
    FileNotFoundError
        When ``path`` holds no store (neither ``store.json`` nor recorded or shard files).

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
    rows: list[dict[str, Any]] = []

    def problem(shard: int | None, file: str, text: str, start: int | None = None, stop: int | None = None) -> None:
        rows.append({"shard": shard, "file": file, "start": start, "stop": stop, "problem": text})

    shard_size: int | None = None
    files = _shard_files(folder) if folder.is_dir() else {}
    try:
        shard_size = int(_read_header(folder)["shard_size"])
    except FileNotFoundError:
        if not files and not ((folder / MANIFEST).is_file() and (folder / MANIFEST).stat().st_size):
            raise  # no store here (at most the empty manifest of a writer killed before it wrote the header)
        problem(None, HEADER, "missing: the store header is gone (which encoder wrote the shards is unknown)")
    except _DamagedHeader as exc:
        problem(None, HEADER, f"damaged: {exc}")
    manifest = _read_manifest(folder, shard_size)
    if not manifest.exists and files:  # (a store whose first shard never finished has no manifest yet)
        problem(None, MANIFEST, "missing: the manifest is gone (no shard is recorded)")
    for number, shard, text in manifest.bad:
        problem(shard, MANIFEST, f"damaged: line {number}{f' (shard {shard})' if shard is not None else ''} {text}")
    for index in sorted(manifest.entries):
        entry = manifest.entries[index]
        found = _check_entry(folder, entry)
        if found is not None:
            problem(index, entry["file"], found, entry["start"], entry["stop"])
    total, expected = manifest.total, 0
    if shard_size is not None and total:
        expected = (total + shard_size - 1) // shard_size
        for index in range(expected):
            if index not in manifest.entries:
                start = index * shard_size
                problem(index, _shard_name(index), "missing", start, min(start + shard_size, total))
    for index, name in sorted(files.items()):
        if index not in manifest.entries and index >= expected:
            problem(index, name, "orphan: a shard file no manifest line records")
    schema = {"shard": pl.Int64, "file": pl.String, "start": pl.Int64, "stop": pl.Int64, "problem": pl.String}
    return pl.DataFrame(rows, schema=schema).sort("shard", nulls_last=False, maintain_order=True)
