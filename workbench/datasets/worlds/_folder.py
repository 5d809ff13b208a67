"""Write a synthetic world as the folder the folder loaders read: media files plus a ``captions.csv``.

Images become PNG files, sounds 16-bit PCM WAV files (what :func:`workbench.datasets.folders.audio_captions` reads
with the standard-library ``wave`` module), each named by the item's id; ``captions.csv`` has one ``file, caption``
row per item. The folder is built under a temporary name beside the target and renamed into place, so an
interrupted write leaves no half-written folder.

This module sits below :class:`~workbench.datasets.worlds.World`, whose ``to_folder`` calls it: it takes the
world's parts (ids, captions, media), not the world.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["write_world_folder"]


def write_world_folder(
    path: str | os.PathLike[str],
    ids: Sequence[int],
    captions: Sequence[str],
    *,
    images: np.ndarray | None = None,
    sounds: np.ndarray | None = None,
    sample_rate: int | None = None,
    modality: str | None = None,
) -> Path:
    """Write a world's images or sounds and captions to a new folder ``path``; return it.

    Parameters
    ----------
    path : path
        Must not exist yet (or be an empty folder).
    ids, captions : sequences
        The id (file name) and caption of every item, in row order.
    images, sounds : numpy.ndarray, optional
        The world's media: (n, side, side, 3) uint8 images, (n, samples) float sounds in [-1, 1].
    sample_rate : int, optional
        Samples per second of ``sounds``.
    modality : {"image", "sound"}, optional
        Which media to write; default the world's only one.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from workbench.datasets import worlds, folders
    >>> world = worlds.tones(4, seed=0)
    >>> folder = write_world_folder(pathlib.Path(tempfile.mkdtemp()) / "tones", world.items["id"].to_list(),
    ...                             world.captions, sounds=world.sounds, sample_rate=world.sample_rate)
    >>> sorted(p.name for p in folder.iterdir())[:2]
    ['000000.wav', '000001.wav']
    >>> folders.audio_captions(folder).captions["caption"].to_list() == world.captions
    True
    """
    media = [m for m, arr in (("image", images), ("sound", sounds)) if arr is not None]
    if modality is None:
        if len(media) != 1:
            raise ValueError(f"this world has {media or 'no'} media; choose one with modality=")
        modality = media[0]
    if modality not in ("image", "sound") or modality not in media:
        raise ValueError(f"modality must be one of the world's media {media}, got {modality!r}")
    if modality == "sound" and sample_rate is None:
        raise TypeError("sample_rate is required to write sounds")
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"{os.fspath(target)!r} already exists and is not an empty folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        suffix = ".png" if modality == "image" else ".wav"
        files = [f"{int(i):06d}{suffix}" for i in ids]
        if modality == "image":
            assert images is not None  # modality is one of the media given
            _write_images(images, files, building)
        else:
            assert sounds is not None and sample_rate is not None  # checked above
            _write_sounds(sounds, int(sample_rate), files, building)
        pl.DataFrame({"file": files, "caption": list(captions)}).write_csv(building / "captions.csv")
        if target.exists():
            target.rmdir()
        os.replace(building, target)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(building)
        raise
    return target


def _write_images(images: np.ndarray, files: list[str], folder: Path) -> None:
    from PIL import Image

    for image, name in zip(images, files, strict=True):
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(folder / name, format="PNG")


def _write_sounds(sounds: np.ndarray, sample_rate: int, files: list[str], folder: Path) -> None:
    pcm = np.round(np.clip(np.asarray(sounds, dtype=np.float64), -1.0, 1.0) * 32767).astype("<i2")
    for clip, name in zip(pcm, files, strict=True):
        with wave.open(os.fspath(folder / name), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(sample_rate)
            handle.writeframes(clip.tobytes())
