"""Reading a store: :class:`EmbeddingStore`, a lazy view of the shards that match their manifest lines."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from workbench.data import Embeddings
from workbench.store._format import MANIFEST, StoreCorruptionWarning, _read_header, _vectors_of
from workbench.store._manifest import _check_entry, _read_manifest

__all__ = ["EmbeddingStore", "as_store", "open"]


@dataclass
class EmbeddingStore:
    """A lazy view of a store folder: only shards that match their manifest line are read.

    Parameters
    ----------
    path : path
        The store folder.
    verify : bool, default True
        Check every shard's SHA-256 on opening (damaged or missing shards are left out, with a
        :class:`StoreCorruptionWarning`).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from workbench.store import open, write
    >>> class Enc:
    ...     name, modalities, fingerprint = "toy", ("sensor",), "f0"
    ...     def encode(self, modality, items, batch_size=32):
    ...         return np.asarray(items, dtype=np.float32)
    >>> folder = tempfile.mkdtemp()
    >>> _ = write(Enc(), [[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]], "sensor", folder, shard_size=2, ids=["a", "b", "c"],
    ...           progress=False)
    >>> store = open(folder)
    >>> store.ids().to_list()
    ['a', 'b', 'c']
    >>> [(list(i), v.shape) for i, v in store.iter_batches(2)]
    [(['a', 'b'], (2, 2)), (['c'], (1, 2))]
    >>> store.to_embeddings().vectors[0]
    array([0.6, 0.8], dtype=float32)
    """

    path: Path
    verify: bool = True
    header: dict[str, Any] = field(init=False)
    shards: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.header = _read_header(self.path)
        manifest = _read_manifest(self.path, int(self.header["shard_size"]))
        entries = manifest.entries
        for number, _, wrong in manifest.bad:  # an edited or garbled line is never believed
            warnings.warn(f"embedding store manifest {self.path / MANIFEST} line {number} {wrong}; its shard is "
                          "left out", StoreCorruptionWarning, stacklevel=3)
        self.shards = []
        for index in sorted(entries):
            entry = entries[index]
            problem = _check_entry(self.path, entry) if self.verify else None
            if problem is None:
                self.shards.append(entry)
            else:
                warnings.warn(f"embedding store shard {self.path / entry['file']} is {problem}; left out",
                              StoreCorruptionWarning, stacklevel=3)

    @property
    def files(self) -> list[str]:
        return [os.fspath(self.path / e["file"]) for e in self.shards]

    @property
    def n_shards(self) -> int:
        return len(self.shards)

    @property
    def dim(self) -> int:
        if not self.shards:
            raise ValueError(f"the store at {os.fspath(self.path)!r} holds no shards yet")
        return int(self.shards[0]["dim"])

    @property
    def modality(self) -> str:
        return str(self.header["modality"])

    @property
    def model(self) -> str:
        return str(self.header["encoder"])

    @property
    def complete(self) -> bool:
        """Whether every shard of the last run is present and verified (contiguous rows 0..total)."""
        if not self.shards:
            return False
        total = max(int(e["total"]) for e in self.shards)
        return [(e["start"], e["stop"]) for e in self.shards] == [
            (s, min(s + int(self.header["shard_size"]), total)) for s in range(0, total, int(self.header["shard_size"]))
        ]

    def __len__(self) -> int:
        return sum(int(e["rows"]) for e in self.shards)

    def scan(self) -> pl.LazyFrame:
        """A lazy frame (``id``, ``embedding`` as ``Array(Float32, dim)``) over the verified shards, in item order."""
        if not self.shards:
            raise ValueError(f"the store at {os.fspath(self.path)!r} holds no shards yet")
        # literal absolute paths: polars would read glob characters ([, ], *, ?) in the folder's name as a pattern
        # (matching a sibling store's shards) and a leading ~ as the home folder
        frame = pl.scan_parquet([os.path.abspath(f) for f in self.files], glob=False)
        if int(self.header.get("version", 1)) >= 2:
            frame = frame.with_columns(
                pl.col("embedding").bin.reinterpret(dtype=pl.Array(pl.Float32, self.dim), endianness="little")
            )
        return frame

    def ids(self) -> pl.Series:
        """Every id, in order (reads only the ``id`` column)."""
        return self.scan().select("id").collect().get_column("id")

    def iter_batches(self, batch_rows: int = 65_536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(ids, vectors)`` chunks of at most ``batch_rows`` rows, shard by shard, never all at once."""
        import pyarrow.parquet as pq

        for file in self.files:
            with pq.ParquetFile(file) as handle:
                for batch in handle.iter_batches(batch_size=batch_rows, columns=["id", "embedding"]):
                    yield batch.column(0).to_numpy(zero_copy_only=False), _vectors_of(batch.column(1))

    def to_embeddings(self, modality: str | None = None) -> Embeddings:
        """Materialise every row as :class:`workbench.Embeddings` (``metadata`` holds the ``id`` column)."""
        if not self.shards:
            raise ValueError(f"the store at {os.fspath(self.path)!r} holds no shards yet")
        vectors = np.empty((len(self), self.dim), dtype=np.float32)  # filled in place: no second copy to concatenate
        id_parts, start = [], 0
        for ids, batch in self.iter_batches():
            vectors[start : start + len(batch)] = batch
            id_parts.append(ids)
            start += len(batch)
        metadata = pl.DataFrame({"id": np.concatenate(id_parts)})
        return Embeddings(vectors, modality or self.modality, self.model, metadata, normalize=False)


def open(path: str | os.PathLike[str], verify: bool = True) -> EmbeddingStore:
    """Open the store at ``path`` for lazy reading (see :class:`EmbeddingStore`)."""
    return EmbeddingStore(Path(path), verify=verify)


def as_store(values: Any, what: str) -> EmbeddingStore | None:
    """``values`` as a complete store when it is an :class:`EmbeddingStore` or a path (then opened and verified);
    None for anything else. An incomplete or damaged store raises ValueError naming ``what``."""
    if isinstance(values, (str, os.PathLike)):
        values = open(values)
    if not isinstance(values, EmbeddingStore):
        return None
    if not values.complete:
        raise ValueError(f"{what}: the store at {os.fspath(values.path)!r} is incomplete or damaged ({len(values)} "
                         "rows in verified shards); finish or repair it (workbench.embed resumes) first")
    return values
