"""Helpers of the embedding explorer: previews of media files, and exact top-k neighbours."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

__all__ = ["AUDIO_SUFFIXES", "IMAGE_SUFFIXES", "thumbnail", "top_k"]

#: File suffixes shown as images, and the ipywidgets ``Image`` format of each.
IMAGE_SUFFIXES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".webp": "webp", ".bmp": "bmp"}
#: File suffixes played as sounds, and the ipywidgets ``Audio`` format of each.
AUDIO_SUFFIXES = {".wav": "wav", ".mp3": "mpeg", ".ogg": "ogg", ".flac": "flac", ".m4a": "mp4"}


def top_k(queries: np.ndarray, gallery: np.ndarray, k: int, chunk: int = 1024,
          max_block: int = 1 << 25) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the k highest scores per query, ordered by score then lower row (as a stable argsort), and scores.

    Queries go in chunks of at most ``chunk`` rows and ``max_block`` scores (128 MB of float32), so a large
    selection against a million-row gallery stays within a bounded amount of memory.

    Examples
    --------
    >>> rows, scores = top_k(np.array([[1.0, 0.0]]), np.array([[0.5, 0.0], [1.0, 0.0], [0.5, 0.0]]), 2)
    >>> rows.tolist(), scores.tolist()
    ([[1, 0]], [[1.0, 0.5]])
    """
    order = np.empty((len(queries), k), dtype=np.int64)
    scores = np.empty((len(queries), k), dtype=np.float32)
    chunk = max(1, min(chunk, max_block // max(1, len(gallery))))
    for s in range(0, len(queries), chunk):
        block = queries[s : s + chunk] @ gallery.T
        if k < block.shape[1]:
            kth = -np.partition(-block, k - 1, axis=1)[:, k - 1 : k]  # the k-th best score of each row
        else:
            kth = block.min(axis=1, keepdims=True)
        for r in range(len(block)):
            candidates = np.flatnonzero(block[r] >= kth[r])  # ascending rows: every tie at the k-th score
            best = candidates[np.argsort(-block[r, candidates], kind="stable")[:k]]
            order[s + r], scores[s + r] = best, block[r, best]
    return order, scores


def thumbnail(path: str, size: int = 220) -> tuple[bytes, str]:
    """PNG bytes of a thumbnail (Pillow), or the file's own bytes when Pillow cannot read it."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            im.thumbnail((size, size))
            buffer = io.BytesIO()
            im.convert("RGB").save(buffer, format="PNG")
            return buffer.getvalue(), "png"
    except Exception:
        return Path(path).read_bytes(), IMAGE_SUFFIXES.get(Path(path).suffix.lower(), "png")
