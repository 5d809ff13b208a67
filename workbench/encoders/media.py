"""Media items as model inputs: images, audio clips and texts, read and checked the same way by every encoder.

The open_clip, CLAP and torch encoders (and :mod:`workbench.towers`) take their items through this module:

- images: :func:`load_image` (a path, encoded bytes, a PIL image or an array -> an RGB PIL image), and
  :func:`split_image_transform` / :func:`images_to_tensor`, which batch the tensor steps of a torchvision transform;
- audio: :func:`load_audio` (a path, a ``(waveform, sample_rate)`` tuple or a bare array -> mono float32 and its
  rate), :func:`read_wav` (a small RIFF reader: PCM 8/16/24/32-bit and float WAV with no extra dependency, other
  formats through ``soundfile`` when it is installed) and :func:`resample` (``scipy.signal.resample_poly``);
- texts: :func:`check_texts`; arrays: :func:`stack_arrays`.

Every error names the item's index in the ``items`` passed to ``encode`` (and its path). Only numpy is imported
here at import time; Pillow, scipy and torch load on first use.
"""

from __future__ import annotations

import io
import math
import os
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.encoders.errors import short_error

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from PIL import Image

__all__ = [
    "ImageBatch",
    "TextBatch",
    "check_sample_rate",
    "check_texts",
    "finish_pixels",
    "images_to_tensor",
    "load_audio",
    "load_image",
    "read_wav",
    "resample",
    "split_image_transform",
    "stack_arrays",
    "uint8_to_pixels",
]


# -- images ----------------------------------------------------------------------------------------------------------
def load_image(item: Any, index: int = 0) -> Image.Image:
    """An RGB PIL image from a path, encoded bytes, a PIL image or an array; ValueError/TypeError naming the item.

    Parameters
    ----------
    item : str, os.PathLike, bytes, PIL.Image.Image or numpy.ndarray
        Arrays are H x W (grey) or H x W x C with C in (1, 3, 4); ``uint8``, bool, or floats in [0, 1].
    index : int, default 0
        The item's position, for error messages.

    Examples
    --------
    >>> import numpy as np
    >>> load_image(np.zeros((4, 6, 3), np.uint8)).size
    (6, 4)
    >>> load_image(b"not an image", 7)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: image item 7 (bytes) cannot be decoded: cannot identify image file ...
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(item, str | os.PathLike):
        path = os.fspath(item)
        try:
            with Image.open(path) as img:
                img.load()
                return img.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            raise ValueError(f"image item {index} ({path!r}) cannot be read: {short_error(exc)}") from None
    if isinstance(item, bytes | bytearray | memoryview):
        try:
            with Image.open(io.BytesIO(bytes(item))) as img:
                img.load()
                return img.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            raise ValueError(f"image item {index} (bytes) cannot be decoded: {exc}") from None
    if isinstance(item, Image.Image):
        return item if item.mode == "RGB" else item.convert("RGB")
    if hasattr(item, "detach") and hasattr(item, "cpu"):  # a torch tensor
        item = item.detach().cpu().numpy()
    if isinstance(item, np.ndarray):
        return Image.fromarray(_as_uint8_image(item, index)).convert("RGB")
    raise TypeError(
        f"image item {index} is a {type(item).__name__}; use a file path, encoded bytes, a PIL image or an "
        "H x W x C array"
    )


def _as_uint8_image(arr: np.ndarray, index: int) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"image item {index} has shape {arr.shape}, which looks channel-first; pass H x W x C "
            "(e.g. arr.transpose(1, 2, 0))"
        )
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) or 0 in arr.shape:
        raise ValueError(f"image item {index} has shape {arr.shape}; expected H x W or H x W x C with C in 1, 3, 4")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"image item {index} contains NaN or inf")
        if arr.min() < 0 or arr.max() > 1:
            raise ValueError(
                f"image item {index} is a float array with values in [{arr.min():.3g}, {arr.max():.3g}]; "
                "float images must lie in [0, 1] (or pass uint8)"
            )
        return np.round(arr * 255).astype(np.uint8)
    raise TypeError(f"image item {index} has dtype {arr.dtype}; use uint8, bool or floats in [0, 1]")


def split_image_transform(preprocess: Any) -> tuple[Any, Any]:
    """(the PIL steps of an image transform, (mean, std) of its final Normalize) when the transform is PIL steps,
    then ToTensor, then at most a Normalize and batching the tensor steps reproduces it bit for bit on a probe
    image; else (None, None) and images go through the transform one by one."""
    import torch
    from PIL import Image
    from torchvision import transforms as T

    steps = list(getattr(preprocess, "transforms", []))
    cut = next((i for i, step in enumerate(steps) if isinstance(step, T.ToTensor)), None)
    if cut is None:
        return None, None
    head, tail = steps[:cut], steps[cut + 1 :]
    if len(tail) > 1 or (tail and not isinstance(tail[0], T.Normalize)) or (tail and tail[0].inplace):
        return None, None
    normalize = None
    if tail:
        mean = torch.as_tensor(tail[0].mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.as_tensor(tail[0].std, dtype=torch.float32).view(1, -1, 1, 1)
        normalize = (mean, std)
    pil_steps = T.Compose(head)
    probe = Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8))
    try:
        batch = images_to_tensor([np.asarray(pil_steps(probe))], normalize)
        same = bool(torch.equal(batch[0], preprocess(probe)))
    except Exception:  # an unusual transform: keep the plain path
        same = False
    return (pil_steps, normalize) if same else (None, None)


def images_to_tensor(arrays: list[np.ndarray], normalize: Any) -> torch.Tensor:
    """ToTensor then Normalize on a batch of H x W x C uint8 arrays (torchvision's float32 operations, in order)."""
    import torch

    return uint8_to_pixels(torch.from_numpy(np.stack(arrays)), normalize)


def uint8_to_pixels(batch: torch.Tensor, normalize: Any) -> torch.Tensor:
    """ToTensor then Normalize on a B x H x W x C uint8 tensor, on the tensor's device: the same float32 operations
    in the same order as torchvision's, so on the CPU the same bits as the transform image by image."""
    import torch

    batch = batch.permute(0, 3, 1, 2).contiguous().to(torch.float32).div(255)
    if normalize is not None:
        mean, std = (t.to(batch.device, non_blocking=True) for t in normalize)
        batch = batch.sub_(mean).div_(std)
    return batch


class ImageBatch:
    """The preparing step of image encoders (picklable, run in the input pipeline's workers): each item read with
    :func:`load_image` (errors name the item's index), the PIL steps of the transform applied, and the batch
    returned as ``("uint8", B x H x W x C tensor)`` for :func:`finish_pixels`; a transform that does not split
    (:func:`split_image_transform`) runs whole per image and gives ``("float", B x C x H x W tensor)``."""

    def __init__(self, preprocess: Any, pil_steps: Any) -> None:
        self.preprocess, self.pil_steps = preprocess, pil_steps

    def __call__(self, items: Sequence[Any], start: int) -> tuple[str, torch.Tensor]:
        return self.images([load_image(item, start + i) for i, item in enumerate(items)])

    def images(self, images: Sequence[Image.Image]) -> tuple[str, torch.Tensor]:
        """The prepared batch of RGB PIL images."""
        import torch

        if self.pil_steps is not None:
            arrays = [np.asarray(self.pil_steps(image)) for image in images]
            if len({a.shape for a in arrays}) == 1 and arrays[0].dtype == np.uint8 and arrays[0].ndim == 3:
                return "uint8", torch.from_numpy(np.stack(arrays))
        return "float", torch.stack([self.preprocess(image) for image in images])


def finish_pixels(prepared: tuple[str, torch.Tensor], normalize: Any, device: Any = None) -> torch.Tensor:
    """The model input of a batch :class:`ImageBatch` prepared, on ``device`` (uint8 batches are copied as uint8,
    a quarter of the float bytes, and turned to floats there)."""
    kind, batch = prepared
    if device is not None:
        batch = batch.to(device, non_blocking=True)
    return uint8_to_pixels(batch, normalize) if kind == "uint8" else batch


# -- texts and arrays ------------------------------------------------------------------------------------------------
def check_texts(items: Sequence[Any], start: int = 0) -> list[str]:
    """``items`` as a list of str, or TypeError naming the first item (at ``start + i``) that is not one.

    Examples
    --------
    >>> check_texts(["a dog", 3], start=10)
    Traceback (most recent call last):
    ...
    TypeError: text item 11 is a int, not a str
    """
    texts = list(items)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text item {start + i} is a {type(text).__name__}, not a str")
    return texts


class TextBatch:
    """The preparing step of texts: a batch's texts checked (:func:`check_texts`), then through ``tokenizer``."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, texts: Sequence[Any], start: int) -> Any:
        return self.tokenizer(check_texts(texts, start))


def stack_arrays(items: Sequence[Any]) -> torch.Tensor:
    """One float32 tensor from items of one shape: ``torch.as_tensor(numpy.stack(items))`` (the torch encoder's
    default preprocessing)."""
    import torch

    return torch.as_tensor(np.stack([np.asarray(item, dtype=np.float32) for item in items]))


# -- audio -----------------------------------------------------------------------------------------------------------
def check_sample_rate(rate: Any, what: str = "sample_rate") -> int:
    """``rate`` as an int: a positive whole number of samples per second (whole floats such as ``44100.0``, which
    audio libraries return, are accepted), else ValueError naming ``what``."""
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer | float) or rate <= 0 or rate != int(rate):
        raise ValueError(f"{what} must be a positive whole number of samples per second, got {rate!r}")
    return int(rate)


def load_audio(item: Any, index: int = 0, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """A mono float32 waveform and its sample rate from a file path, a ``(waveform, rate)`` tuple or an array.

    Parameters
    ----------
    item : str, os.PathLike, tuple or array
        A WAV file (other formats need ``soundfile``), ``(waveform, sample_rate)``, or a bare waveform.
    index : int, default 0
        The item's position, for error messages.
    sample_rate : int, optional
        The rate of a bare waveform (required for those).

    Examples
    --------
    >>> wave, rate = load_audio((np.ones((2, 5), np.int16), 8000))
    >>> wave.shape, wave.dtype, rate
    ((5,), dtype('float32'), 8000)
    >>> load_audio(np.zeros(5), index=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: audio item 3 is a bare waveform: give its rate as a (waveform, sample_rate) tuple or \
sample_rate= to the encoder
    """
    if isinstance(item, str | os.PathLike):
        path = os.fspath(item)
        try:
            return read_wav(path)
        except (OSError, ValueError, EOFError, struct.error) as exc:
            raise ValueError(f"audio item {index} ({path!r}) cannot be read: {short_error(exc)}") from None
    if isinstance(item, tuple | list):
        if len(item) != 2:
            raise ValueError(f"audio item {index} is a {len(item)}-tuple; expected (waveform, sample_rate)")
        waveform, rate = item
        rate = check_sample_rate(rate, f"the sample rate of audio item {index}")
    elif isinstance(item, np.ndarray) or hasattr(item, "detach"):
        if sample_rate is None:
            raise ValueError(
                f"audio item {index} is a bare waveform: give its rate as a (waveform, sample_rate) tuple or "
                "sample_rate= to the encoder"
            )
        waveform, rate = item, sample_rate
    else:
        raise TypeError(
            f"audio item {index} is a {type(item).__name__}; use a file path, a (waveform, sample_rate) tuple or "
            "an array"
        )
    return _mono_float(waveform, index), rate


def _mono_float(waveform: Any, index: int) -> np.ndarray:
    if hasattr(waveform, "detach") and hasattr(waveform, "cpu"):
        waveform = waveform.detach().cpu().numpy()
    arr = np.asarray(waveform)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"audio item {index} has dtype {arr.dtype}; expected integer or float samples")
    if arr.ndim == 2:
        if arr.shape[0] <= 8 and arr.shape[0] <= arr.shape[1]:
            arr = arr.mean(axis=0, dtype=np.float64) if arr.dtype.kind == "f" else _scale(arr).mean(axis=0)
        elif arr.shape[1] <= 8:
            arr = arr.mean(axis=1, dtype=np.float64) if arr.dtype.kind == "f" else _scale(arr).mean(axis=1)
        else:
            raise ValueError(f"audio item {index} has shape {arr.shape}; expected samples or (channels<=8, samples)")
    elif arr.ndim != 1:
        raise ValueError(f"audio item {index} has shape {arr.shape}; expected a 1-D or 2-D waveform")
    if arr.dtype.kind in "iu":
        arr = _scale(arr)
    arr = np.asarray(arr, dtype=np.float32)
    if arr.size == 0:
        raise ValueError(f"audio item {index} is empty (0 samples)")
    if not np.isfinite(arr).all():
        raise ValueError(f"audio item {index} contains NaN or inf samples")
    return arr


def _scale(arr: np.ndarray) -> np.ndarray:
    """Integer PCM to floats in [-1, 1]."""
    info = np.iinfo(arr.dtype)
    if info.min == 0:  # unsigned: centred on the middle of the range (8-bit WAV)
        mid = (info.max + 1) / 2
        return (arr.astype(np.float64) - mid) / mid
    return arr.astype(np.float64) / -float(info.min)


def resample(waveform: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resample a 1-D waveform from ``rate`` to ``target`` Hz with ``scipy.signal.resample_poly``.

    Polyphase filtering by the reduced ratio ``target/rate`` with scipy's default Kaiser-windowed low-pass filter
    (anti-aliasing when downsampling); the output has ``ceil(len * target / rate)`` samples.

    Examples
    --------
    >>> t = np.arange(16000) / 16000
    >>> up = resample(np.sin(2 * np.pi * 440 * t), 16000, 48000)
    >>> len(up), bool(np.abs(up[3000:-3000] - np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)[3000:-3000]).max()
    ...                 < 1e-3)
    (48000, True)
    """
    rate, target = int(rate), int(target)
    if rate == target:
        return np.asarray(waveform, dtype=np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(rate, target)
    return resample_poly(np.asarray(waveform, dtype=np.float64), target // g, rate // g).astype(np.float32)


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """A mono float32 waveform in [-1, 1] and its sample rate from a WAV file (or any format ``soundfile`` reads).

    Reads RIFF/WAVE PCM (8, 16, 24, 32 bit), IEEE float (32, 64 bit) and their WAVE_FORMAT_EXTENSIBLE forms with
    the standard library; channels are averaged. Anything else is read with ``soundfile`` when it is installed.

    Examples
    --------
    >>> import io, tempfile, wave
    >>> path = os.path.join(tempfile.mkdtemp(), "click.wav")
    >>> with wave.open(path, "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
    ...     w.writeframes(np.array([0, 16384, -16384], np.int16).tobytes())
    >>> read_wav(path)
    (array([ 0. ,  0.5, -0.5], dtype=float32), 8000)
    """
    path = os.fspath(path)
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        try:
            import soundfile
        except ImportError:
            raise ValueError(
                "not a WAV file (RIFF/WAVE header missing); other formats need `pip install soundfile`"
            ) from None
        samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
        return _mono_float(samples, 0), int(rate)
    fmt: tuple[int, ...] | None = None
    pcm = b""
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]
        if chunk == b"fmt ":
            if len(body) < 16:
                raise ValueError("truncated WAV fmt chunk")
            fmt = struct.unpack("<HHIIHH", body[:16])
            if fmt[0] == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real code opens the sub-format
                fmt = (struct.unpack("<H", body[24:26])[0], *fmt[1:])
        elif chunk == b"data":
            pcm = body
            break
        pos += 8 + size + (size & 1)
    if fmt is None:
        raise ValueError("WAV file without a fmt chunk")
    code, channels, rate, _, _, bits = fmt
    if channels < 1 or rate < 1:
        raise ValueError(f"WAV header declares {channels} channels at {rate} Hz")
    width = bits // 8
    frame = width * channels
    usable = len(pcm) - len(pcm) % frame if frame else 0
    if usable == 0:
        raise ValueError("WAV file holds no audio samples")
    pcm = pcm[:usable]
    if code == 1 and bits == 8:
        samples = (np.frombuffer(pcm, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif code == 1 and bits in (16, 32):
        kind = np.int16 if bits == 16 else np.int32
        samples = np.frombuffer(pcm, f"<i{width}").astype(np.float64) / -float(np.iinfo(kind).min)
    elif code == 1 and bits == 24:
        raw = np.frombuffer(pcm, np.uint8).reshape(-1, 3)
        ints = raw[:, 0].astype(np.int32) | (raw[:, 1].astype(np.int32) << 8) | (raw[:, 2].astype(np.int32) << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        samples = ints.astype(np.float64) / float(1 << 23)
    elif code == 3 and bits in (32, 64):
        samples = np.frombuffer(pcm, f"<f{width}").astype(np.float64)
    else:
        raise ValueError(f"unsupported WAV encoding (format code {code}, {bits} bits); install soundfile")
    samples = samples.reshape(-1, channels).mean(axis=1)
    return _mono_float(samples, 0), int(rate)
