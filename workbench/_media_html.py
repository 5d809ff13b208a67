"""An item's media as HTML for a static page: a small thumbnail or a sound player as a data URI, and its caption.

The media contract of the package (as in the panels): a metadata row may carry ``caption`` (text), ``path`` (an
image or sound file; its suffix says which) and ``image`` (encoded image bytes). Everything is embedded, so a page
opens offline; a shared byte budget keeps a page small (items past it show their caption only).

Examples
--------
>>> budget = [10_000, 0]
>>> item_html({"id": "1f600", "caption": "grinning <face>"}, "text", budget)
"<td><div class='cap'>grinning &lt;face&gt;</div></td>"
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["AUDIO_MIME", "IMAGE_MIME", "MAX_AUDIO_BYTES", "MAX_RAW_IMAGE_BYTES", "THUMBNAIL_PX", "item_html",
           "media_uri", "png_thumbnail"]

#: The image files the package shows (report pages and panels), by suffix, with their MIME types.
IMAGE_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
              ".webp": "image/webp", ".bmp": "image/bmp"}
#: The sound files the package plays, by suffix, with their MIME types.
AUDIO_MIME = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".flac": "audio/flac",
              ".m4a": "audio/mp4"}
#: Image files up to this size are embedded as they are; larger ones (and raw ``image`` bytes) as a thumbnail.
MAX_RAW_IMAGE_BYTES = 16_000
#: Longest side of a thumbnail made with Pillow, in pixels.
THUMBNAIL_PX = 64
#: Larger sound files are not embedded (the row shows its caption).
MAX_AUDIO_BYTES = 64_000


def media_uri(meta: Mapping[str, Any], budget: list[int]) -> tuple[str, str] | None:
    """``("img" | "audio", data URI)`` of a metadata row's image or sound, or None (nothing to show, or the budget
    ``[bytes left, items left out]`` is spent: then ``budget[1]`` counts it).

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> buffer = io.BytesIO(); Image.new("RGB", (640, 320), "red").save(buffer, format="PNG")
    >>> tag, uri = media_uri({"image": buffer.getvalue()}, [10_000, 0])
    >>> tag, uri[:22], Image.open(io.BytesIO(base64.b64decode(uri.split(",")[1]))).size
    ('img', 'data:image/png;base64,', (64, 32))
    >>> media_uri({"path": "/no/such/file.png"}, [10_000, 0]) is None
    True
    """
    data: bytes | None = None
    path = Path(str(meta["path"])) if meta.get("path") else None
    raw = isinstance(meta.get("image"), bytes | bytearray)
    if raw:
        data, mime, tag = bytes(meta["image"]), "image/png", "img"
    elif path is not None and path.suffix.lower() in {**IMAGE_MIME, **AUDIO_MIME} and path.is_file():
        tag = "img" if path.suffix.lower() in IMAGE_MIME else "audio"
        mime = {**IMAGE_MIME, **AUDIO_MIME}[path.suffix.lower()]
        data = path.read_bytes() if tag == "img" or path.stat().st_size <= MAX_AUDIO_BYTES else None
    if data is None:
        return None
    if tag == "img" and (raw or len(data) > MAX_RAW_IMAGE_BYTES):
        try:
            data, mime = png_thumbnail(data, THUMBNAIL_PX), "image/png"
        except Exception:  # not an image Pillow reads: the caption alone
            return None
    encoded = base64.b64encode(data).decode()
    if len(encoded) > budget[0]:
        budget[1] += 1
        return None
    budget[0] -= len(encoded)
    return tag, f"data:{mime};base64,{encoded}"


def png_thumbnail(source: str | Path | bytes, size: int) -> bytes:
    """PNG bytes of a Pillow thumbnail (longest side at most ``size``) of an image file or encoded image bytes;
    RGBA when the image has transparency (or a palette), RGB otherwise. Raises what Pillow raises on a file it
    cannot read.

    Examples
    --------
    >>> from PIL import Image
    >>> buffer = io.BytesIO(); Image.new("RGB", (400, 200), "red").save(buffer, format="PNG")
    >>> Image.open(io.BytesIO(png_thumbnail(buffer.getvalue(), 100))).size
    (100, 50)
    """
    from PIL import Image

    with Image.open(io.BytesIO(source) if isinstance(source, bytes | bytearray) else source) as im:
        im.thumbnail((size, size))
        buffer = io.BytesIO()
        im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") else "RGB").save(buffer, format="PNG")
        return buffer.getvalue()


def item_html(meta: Mapping[str, Any], modality: str, budget: list[int]) -> str:
    """One table cell: the row's thumbnail (``<img class="wb-thumb">``) or player (``<audio class="wb-sound">``)
    and its caption (or id). A text row shows its caption only: its ``path`` is the media it describes."""
    text = str(meta.get("caption") or meta.get("id", ""))
    media = None if modality == "text" else media_uri(meta, budget)
    shown = "" if media is None else (
        f"<img class='wb-thumb' src='{media[1]}' alt='{html.escape(text[:80])}' width='{THUMBNAIL_PX}'>"
        if media[0] == "img" else f"<audio class='wb-sound' controls preload='none' src='{media[1]}'></audio>")
    return f"<td>{shown}<div class='cap'>{html.escape(text[:160])}</div></td>"
