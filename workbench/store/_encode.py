"""Encoding items batch by batch, and the checks every encoder output passes (shared by both store backends)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["check_batch", "encode_rows", "join_batches"]


def check_batch(encoder: Any, modality: str, out: np.ndarray, n_items: int) -> None:
    """Raise ValueError unless one ``encoder.encode`` output ``out`` has shape (``n_items``, dim)."""
    if out.ndim != 2 or len(out) != n_items:
        raise ValueError(
            f"{encoder.name}.encode returned shape {out.shape} for {n_items} {modality} items; expected (items, dim)"
        )


def join_batches(encoder: Any, chunks: Sequence[np.ndarray]) -> np.ndarray:
    """The checked batches of one run as one matrix (ValueError when their dimensions differ)."""
    dims = {c.shape[1] for c in chunks}
    if len(dims) > 1:
        raise ValueError(f"{encoder.name}.encode returned different dimensions across batches: {sorted(dims)}")
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def encode_rows(encoder: Any, modality: str, items: Sequence[Any], batch_size: int, bar: Any = None) -> np.ndarray:
    """Encode ``items`` in batches; check every batch is (items, dim) and dims agree. ``bar`` counts items.

    Examples
    --------
    >>> import numpy as np
    >>> class Enc:
    ...     name = "toy"
    ...     def encode(self, modality, items, batch_size=32):
    ...         return np.asarray(items, dtype=np.float32)
    >>> encode_rows(Enc(), "sensor", [[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]], batch_size=2).shape
    (3, 2)
    """
    chunks = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        out = np.asarray(encoder.encode(modality, batch, batch_size=batch_size))
        check_batch(encoder, modality, out, len(batch))
        chunks.append(out)
        if bar is not None:
            bar.update(len(batch))
    return join_batches(encoder, chunks)
