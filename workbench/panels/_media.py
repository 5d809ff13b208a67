"""Media of the panels: thumbnails and sounds of metadata rows as HTML, and exact top-k neighbours.

The media contract of the panels: an item's metadata row may carry ``caption`` (text), ``path`` (the absolute path
of an image or sound file; its suffix says which: :data:`IMAGE_SUFFIXES`, :data:`AUDIO_SUFFIXES`) and ``image``
(raw bytes of an encoded image). :func:`media_html` turns such a row into HTML (an ``<img>`` thumbnail as a data
URI, or an ``<audio>`` player, and the caption); :func:`missing_media_hint` says which column would enable
previews on a set that has none.
"""

from __future__ import annotations

import base64
import functools
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workbench._media_html import AUDIO_MIME, IMAGE_MIME, png_thumbnail

__all__ = [
    "AUDIO_SUFFIXES", "IMAGE_SUFFIXES", "MEDIA_COLUMNS", "media_html", "media_kind", "missing_media_hint", "thumbnail",
    "thumbnail_uri", "top_k",
]

#: File suffixes shown as images, and the ipywidgets ``Image`` format of each (the MIME subtype).
IMAGE_SUFFIXES = {suffix: mime.split("/")[1] for suffix, mime in IMAGE_MIME.items()}
#: File suffixes played as sounds, and the ipywidgets ``Audio`` format of each (the MIME subtype).
AUDIO_SUFFIXES = {suffix: mime.split("/")[1] for suffix, mime in AUDIO_MIME.items()}
#: The metadata columns that give the panels something to show, and what each holds.
MEDIA_COLUMNS = {"path": "an image or sound file", "image": "raw image bytes", "caption": "text"}
#: Larger sound files are not embedded into an HTML table (the row names the file instead).
MAX_INLINE_AUDIO_BYTES = 4 * 2**20


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


def thumbnail(source: str | bytes, size: int = 220) -> tuple[bytes, str]:
    """PNG bytes of a thumbnail (Pillow) of an image file or of encoded image bytes, and its format.

    When Pillow cannot read it, the source's own bytes come back (with the format its suffix names).

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> buffer = io.BytesIO(); Image.new("RGB", (400, 200), "red").save(buffer, format="PNG")
    >>> data, fmt = thumbnail(buffer.getvalue(), size=100)
    >>> fmt, Image.open(io.BytesIO(data)).size
    ('png', (100, 50))
    """
    try:
        return png_thumbnail(source, size), "png"
    except Exception:
        if isinstance(source, bytes | bytearray):
            return bytes(source), "png"
        return Path(source).read_bytes(), IMAGE_SUFFIXES.get(Path(source).suffix.lower(), "png")


def media_kind(path: Any) -> str | None:
    """``"image"`` or ``"audio"`` by a file's suffix, else None.

    Examples
    --------
    >>> media_kind("/data/cat.PNG"), media_kind("bell.wav"), media_kind("notes.txt"), media_kind(None)
    ('image', 'audio', None, None)
    """
    if path is None:
        return None
    suffix = Path(str(path)).suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "audio" if suffix in AUDIO_SUFFIXES else None


@functools.lru_cache(maxsize=1024)
def _file_thumbnail_uri(path: str, size: int, mtime: float) -> str:
    data, fmt = thumbnail(path, size)
    return f"data:image/{fmt};base64," + base64.b64encode(data).decode()


def thumbnail_uri(source: str | bytes, size: int = 96) -> str:
    """A ``data:image/...;base64,`` URI of a thumbnail of an image file or of encoded image bytes.

    Thumbnails of files are cached (by path, size and modification time).

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> buffer = io.BytesIO(); Image.new("RGB", (8, 8), "blue").save(buffer, format="PNG")
    >>> thumbnail_uri(buffer.getvalue()).startswith("data:image/png;base64,")
    True
    """
    if isinstance(source, bytes | bytearray):
        data, fmt = thumbnail(bytes(source), size)
        return f"data:image/{fmt};base64," + base64.b64encode(data).decode()
    return _file_thumbnail_uri(str(source), size, Path(source).stat().st_mtime)


def _audio_uri(path: Path) -> str | None:
    if path.stat().st_size > MAX_INLINE_AUDIO_BYTES:
        return None
    mime = AUDIO_MIME[path.suffix.lower()]
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def media_html(meta: Mapping[str, Any], size: int = 96, *, caption: bool = True, max_caption: int = 120) -> str:
    """HTML of one item: its thumbnail (``<img class="wb-thumb">``) or sound (``<audio class="wb-sound">``), and
    its caption (``<div class="wb-caption">``); '' when the row has none of ``path``, ``image``, ``caption``.

    ``meta`` is a metadata row (a mapping of column to value). The image comes from ``image`` bytes, else from an
    image file at ``path``; a sound file at ``path`` becomes a player. A path that does not exist is named.

    Examples
    --------
    >>> media_html({"id": 3, "caption": "a <red> star"})
    "<div class='wb-item'><div class='wb-caption'>a &lt;red&gt; star</div></div>"
    >>> media_html({"id": 3})
    ''
    """
    parts = []
    image, path = meta.get("image"), meta.get("path")
    kind = media_kind(path)
    if isinstance(image, bytes | bytearray) and image:
        parts.append(f"<img class='wb-thumb' style='max-width:{size}px;max-height:{size}px' "
                     f"src='{thumbnail_uri(bytes(image), size)}'/>")
    elif path is not None and kind is not None and Path(str(path)).is_file():
        if kind == "image":
            parts.append(f"<img class='wb-thumb' style='max-width:{size}px;max-height:{size}px' "
                         f"src='{thumbnail_uri(str(path), size)}'/>")
        else:
            uri = _audio_uri(Path(str(path)))
            parts.append(f"<audio class='wb-sound' controls preload='none' style='width:{max(size, 160)}px' "
                         f"src='{uri}'></audio>" if uri else
                         f"<div class='wb-missing'>sound {html.escape(Path(str(path)).name)} (too large to embed)"
                         "</div>")
    elif path is not None:
        reason = "file not found" if kind is not None else "no preview for this file type"
        parts.append(f"<div class='wb-missing'><i>{reason}: {html.escape(str(path))[:max_caption]}</i></div>")
    text = meta.get("caption")
    if caption and text is not None:
        text = str(text)
        short = text if len(text) <= max_caption else text[: max_caption - 1] + "…"
        parts.append(f"<div class='wb-caption'>{html.escape(short)}</div>")
    return f"<div class='wb-item'>{''.join(parts)}</div>" if parts else ""


def missing_media_hint(columns: Sequence[str], modality: str) -> str:
    """'' when ``columns`` hold a media column, else a sentence naming the columns that would enable previews.

    Examples
    --------
    >>> missing_media_hint(["id", "caption"], "text")
    ''
    >>> hint = missing_media_hint(["id"], "image")
    >>> hint.startswith("no preview for image items") and all(f"{c!r}" in hint for c in ("path", "image", "caption"))
    True
    """
    if any(c in columns for c in MEDIA_COLUMNS):
        return ""
    named = [f"{c!r} ({what})" for c, what in MEDIA_COLUMNS.items()]
    return (f"no preview for {modality} items: their metadata has no {', '.join(named[:-1])} or {named[-1]} column; "
            "add one to see the items")
