"""The Karpathy splits of MSCOCO and Flickr30k: the standard image-text retrieval test sets, from their JSON files.

Karpathy & Fei-Fei, "Deep Visual-Semantic Alignments for Generating Image Descriptions", CVPR 2015, fixed the
train/val/test splits that image-text retrieval papers (CLIP, ALIGN, CLIP_benchmark, ...) report on. The splits
ship as ``dataset_coco.json`` and ``dataset_flickr30k.json`` (in ``caption_datasets.zip``,
https://cs.stanford.edu/people/karpathy/deepimagesent/); the images come from the datasets' own sites. Nothing here
downloads anything.

Published protocol facts:

- COCO test: 5,000 images from COCO val2014 with 25,010 captions (most images have 5, some 6 or 7; CLIP_benchmark
  keeps them all). COCO val: 5,000 images; train 82,783 + restval 30,504 = the 113,287 training images.
- Flickr30k test: 1,000 images with 5,000 captions (5 each).

The JSON layout: ``{"images": [{"filepath": "val2014", "filename": "COCO_val2014_000000391895.jpg", "imgid": 0,
"split": "test", "sentids": [...], "cocoid": 391895, "sentences": [{"tokens": [...], "raw": "...", "imgid": 0,
"sentid": 0}, ...]}, ...], "dataset": "coco"}``. Flickr30k entries have no ``filepath`` and no ``cocoid``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

__all__ = ["KarpathySplit", "load_karpathy"]


@dataclass(frozen=True, repr=False, eq=False)
class KarpathySplit:
    """Images and captions of one or more Karpathy splits, and their pairing.

    Attributes
    ----------
    images : polars.DataFrame
        One row per image, in file order: ``id`` (the JSON ``imgid``), ``path`` (``image_root/filepath/filename``
        with ``image_root``, else ``filepath/filename``), ``filename``, ``split`` and, when the file has them,
        ``cocoid``.
    captions : polars.DataFrame
        One row per sentence, image by image in file order: ``id`` (``sentid``), ``image_id`` (``imgid``),
        ``caption`` (the ``raw`` text, stripped). Captions are not deduplicated (real sets repeat some texts).
    text_to_image : numpy.ndarray
        int64, for caption row ``j`` the *row index* into ``images`` of its image (the pairing
        ``evaluate_retrieval(images, texts, text_to_image)`` takes).
    dataset : str or None
        The file's ``"dataset"`` entry (``"coco"``, ``"flickr30k"``).
    splits : tuple of str
        The splits loaded.
    """

    images: pl.DataFrame
    captions: pl.DataFrame
    text_to_image: np.ndarray
    dataset: str | None
    splits: tuple[str, ...]

    @property
    def n_images(self) -> int:
        return self.images.height

    @property
    def n_captions(self) -> int:
        return self.captions.height

    def pairs(self) -> np.ndarray:
        """(P x 2) int64 ``(image row, caption row)`` pairs, one per caption, for ``PairedEmbeddings(img, txt, pairs)``.

        Examples
        --------
        >>> import numpy as np, polars as pl
        >>> s = KarpathySplit(pl.DataFrame({"id": [7, 9]}), pl.DataFrame({"id": [0, 1, 2]}),
        ...                   np.array([0, 0, 1]), "coco", ("test",))
        >>> s.pairs().tolist()
        [[0, 0], [0, 1], [1, 2]]
        """
        return np.column_stack([self.text_to_image, np.arange(len(self.text_to_image))]).astype(np.int64)

    def __repr__(self) -> str:
        return (
            f"KarpathySplit(dataset={self.dataset!r}, splits={list(self.splits)}, images={self.n_images}, "
            f"captions={self.n_captions})"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry_name(i: int, entry: Any) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("filename"), str):
        return f"images[{i}] ({entry['filename']!r})"
    return f"images[{i}]"


def _parse(data: Any, path: Path) -> dict[str, list[Any]]:
    """Validate the whole file and return flat columns of images and sentences (file order)."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        found = f"an object with keys {sorted(data)[:8]}" if isinstance(data, dict) else type(data).__name__
        raise ValueError(
            f"{path} is not in the Karpathy split layout: expected an object with an 'images' list, found {found}"
        )
    if not data["images"]:
        raise ValueError(f"{path}: the 'images' list is empty")
    cols: dict[str, list[Any]] = {k: [] for k in ("imgid", "filepath", "filename", "split", "cocoid")}
    sent: dict[str, list[Any]] = {k: [] for k in ("sentid", "image_index", "raw")}
    for i, entry in enumerate(data["images"]):
        where = f"{path}: {_entry_name(i, entry)}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} is a {type(entry).__name__}, not an object")
        filename, imgid, split = entry.get("filename"), entry.get("imgid"), entry.get("split")
        if not isinstance(filename, str) or not filename:
            raise ValueError(f"{where} has no 'filename' (keys: {sorted(entry)})")
        if not _is_int(imgid):
            raise ValueError(f"{where} has no integer 'imgid' (got {imgid!r})")
        if not isinstance(split, str) or not split:
            raise ValueError(f"{where} has no 'split' (got {split!r})")
        filepath, cocoid = entry.get("filepath"), entry.get("cocoid")
        if filepath is not None and not isinstance(filepath, str):
            raise ValueError(f"{where}: 'filepath' must be a string, got {filepath!r}")
        if cocoid is not None and not _is_int(cocoid):
            raise ValueError(f"{where}: 'cocoid' must be an integer, got {cocoid!r}")
        sentences = entry.get("sentences")
        if not isinstance(sentences, list) or not sentences:
            state = "an empty 'sentences' list" if isinstance(sentences, list) else "no 'sentences' list"
            raise ValueError(f"{where} (imgid {imgid}) has {state}; every image needs its captions")
        for j, s in enumerate(sentences):
            if not isinstance(s, dict) or not isinstance(s.get("raw"), str) or not _is_int(s.get("sentid")):
                raise ValueError(f"{where}: sentences[{j}] needs a string 'raw' and an integer 'sentid' (got {s!r})")
            if "imgid" in s and s["imgid"] != imgid:
                raise ValueError(f"{where}: sentences[{j}] has imgid {s['imgid']!r}, but the image's imgid is {imgid}")
            sent["sentid"].append(s["sentid"])
            sent["image_index"].append(i)
            sent["raw"].append(s["raw"].strip())
        cols["imgid"].append(imgid)
        cols["filepath"].append(filepath)
        cols["filename"].append(filename)
        cols["split"].append(split)
        cols["cocoid"].append(cocoid)
    for what, ids, key in (("images", cols["imgid"], "imgid"), ("sentences", sent["sentid"], "sentid")):
        n_repeats = len(ids) - len(set(ids))
        if n_repeats:
            repeated = sorted(x for x, n in Counter(ids).items() if n > 1)
            raise ValueError(
                f"{path}: {n_repeats} of {len(ids)} {what} repeat an earlier {key} (e.g. {repeated[:5]}); "
                f"{key} must be unique"
            )
    return {**cols, **{f"sentence_{k}": v for k, v in sent.items()}}


def _wanted(split: Any, present: dict[str, int], path: Path) -> tuple[str, ...]:
    listing = ", ".join(f"{name} ({n} image{'s' if n != 1 else ''})" for name, n in present.items())
    if split is None:
        return tuple(present)
    names = [split] if isinstance(split, str) else list(split) if isinstance(split, Sequence | set) else None
    if names is None or not all(isinstance(s, str) for s in names):
        raise TypeError(f"split must be a split name, a list of split names or None (all), got {split!r}")
    if not names:
        raise ValueError(f"split is an empty list; splits present in {path.name}: {listing}")
    unknown = [s for s in names if s not in present]
    if unknown:
        raise ValueError(f"unknown split {unknown[0]!r} in {path}; splits present: {listing}")
    return tuple(dict.fromkeys(names))


def load_karpathy(
    json_path: str | os.PathLike[str],
    split: str | Sequence[str] | None = "test",
    image_root: str | os.PathLike[str] | None = None,
) -> KarpathySplit:
    """Read a Karpathy split file (``dataset_coco.json``, ``dataset_flickr30k.json``) into images and captions.

    The whole file is validated, whatever the split. Image files are not opened or checked.

    Parameters
    ----------
    json_path : str or path
        The JSON file of Karpathy & Fei-Fei (CVPR 2015).
    split : str, list of str or None, default "test"
        ``"train"``, ``"val"``, ``"test"`` or (COCO) ``"restval"``; a list loads several (COCO's 113,287 training
        images are ``["train", "restval"]``); ``None`` loads every image. Rows keep file order either way.
    image_root : str or path, optional
        Folder the image paths are joined to (COCO: the folder holding ``val2014/`` and ``train2014/``; Flickr30k:
        the folder of the ``.jpg`` files).

    Returns
    -------
    KarpathySplit
        ``images``, ``captions``, ``text_to_image`` (caption row -> image row) and ``pairs()``.

    Raises
    ------
    FileNotFoundError
        The file does not exist (the message gives the path).
    ValueError
        Not JSON or not the Karpathy layout (no ``images`` list, an image without ``filename``, ``imgid``, ``split``
        or sentences; the first bad entry is named), repeated ``imgid`` or ``sentid``, or an unknown split (the
        message lists the splits present).

    Notes
    -----
    Protocol sizes (Karpathy & Fei-Fei, CVPR 2015): COCO test 5,000 images and 25,010 captions (some images have
    more than five captions; CLIP_benchmark keeps all of them), Flickr30k test 1,000 images and 5,000 captions.

    Examples
    --------
    >>> import json, os, tempfile
    >>> entry = lambda i, split, texts: {"filepath": "val2014", "filename": f"im{i}.jpg", "imgid": i, "split": split,
    ...     "sentences": [{"raw": t, "imgid": i, "sentid": 10 * i + j} for j, t in enumerate(texts)]}
    >>> path = os.path.join(tempfile.mkdtemp(), "dataset_coco.json")
    >>> with open(path, "w") as f:
    ...     json.dump({"dataset": "coco", "images": [entry(0, "train", ["A dog."]),
    ...                entry(1, "test", ["A cat. ", "Two cats."]), entry(2, "test", ["A bird."])]}, f)
    >>> test = load_karpathy(path, "test", image_root="/data/coco")
    >>> test
    KarpathySplit(dataset='coco', splits=['test'], images=2, captions=3)
    >>> test.images["path"].to_list() == [os.path.join("/data/coco", "val2014", f"im{i}.jpg") for i in (1, 2)]
    True
    >>> test.captions["caption"].to_list(), test.text_to_image.tolist()
    (['A cat.', 'Two cats.', 'A bird.'], [0, 0, 1])
    """
    path = Path(json_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Karpathy split file not found: {path} (dataset_coco.json / dataset_flickr30k.json come in "
            "caption_datasets.zip, https://cs.stanford.edu/people/karpathy/deepimagesent/)"
        )
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    cols = _parse(data, path)
    present: dict[str, int] = {}
    for s in cols["split"]:
        present[s] = present.get(s, 0) + 1
    wanted = _wanted(split, present, path)

    keep = np.array([i for i, s in enumerate(cols["split"]) if s in wanted], dtype=np.int64)
    row_of = np.full(len(cols["imgid"]), -1, dtype=np.int64)
    row_of[keep] = np.arange(len(keep))
    root = None if image_root is None else os.fspath(image_root)
    paths = []
    for i in keep:
        parts = [p for p in (root, cols["filepath"][i], cols["filename"][i]) if p]
        paths.append(os.path.join(*parts))
    image_frame: dict[str, Any] = {
        "id": pl.Series("id", [cols["imgid"][i] for i in keep], dtype=pl.Int64),
        "path": pl.Series("path", paths, dtype=pl.String),
        "filename": pl.Series("filename", [cols["filename"][i] for i in keep], dtype=pl.String),
        "split": pl.Series("split", [cols["split"][i] for i in keep], dtype=pl.String),
    }
    if any(c is not None for c in cols["cocoid"]):
        image_frame["cocoid"] = pl.Series("cocoid", [cols["cocoid"][i] for i in keep], dtype=pl.Int64)

    sentence_image = np.asarray(cols["sentence_image_index"], dtype=np.int64)
    take = np.flatnonzero(row_of[sentence_image] >= 0)
    text_to_image = row_of[sentence_image[take]]
    captions = pl.DataFrame({
        "id": pl.Series("id", np.asarray(cols["sentence_sentid"], dtype=np.int64)[take], dtype=pl.Int64),
        "image_id": pl.Series("image_id", np.asarray(cols["imgid"], dtype=np.int64)[sentence_image[take]],
                              dtype=pl.Int64),
        "caption": pl.Series("caption", [cols["sentence_raw"][j] for j in take], dtype=pl.String),
    })
    text_to_image.flags.writeable = False
    dataset = data.get("dataset")
    return KarpathySplit(
        images=pl.DataFrame(image_frame),
        captions=captions,
        text_to_image=text_to_image,
        dataset=dataset if isinstance(dataset, str) else None,
        splits=wanted,
    )
