"""Built-in real-media sets: emoji images with their names and keywords, named sounds, spoken emoji names.

The media (64-px WebP thumbnails, 8 kHz mono WAV clips), their tables and precomputed embeddings ship inside the
package (``data/emoji``, ``data/sounds``; built by ``tools/build_media_sets.py`` from npm and Debian packages, licences
and attribution beside them; see ``docs/datasets.md``). Nothing is downloaded.

Every side's metadata has ``id``, ``caption`` (str), ``path`` (absolute path of the row's media file: the image or
clip itself, or for a caption row the media it describes), ``label`` (category), ``item_id`` (the item a row belongs
to; shared across modalities) and ``split`` (``"train"``/``"test"``, fixed: seed 0, 20% of items held out), plus
extras (``keywords``, ``source``, ``licence``, ...).

Two views of the embeddings:

- :func:`load_features`: the frozen encoders' own unit features, one space per modality (images: torchvision
  MobileNetV2 ImageNet, 1280-d; texts: all-MiniLM-L6-v2, 384-d; audio: :class:`LogMelStatistics`, 192-d) -- what
  projection heads train on. Stored as float16 (``features.npz``).
- :func:`load_paired`: two modalities in one shared space (regularised :class:`~workbench.datasets.cca.CCA`,
  fitted on the train split only: 128-d for the emoji image-text sets, 32-d for the small spoken/sounds sets), so the
  modality gap and held-out retrieval are defined. The fitted means and projections ship (``shared.npz``); the rows
  are projected on load (milliseconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import polars as pl

from workbench.data import Embeddings, MultimodalEmbeddings, PairedEmbeddings
from workbench.datasets.folders import PairedItems

__all__ = ["MEDIA_SETS", "MediaSet", "load_features", "load_items", "load_paired", "media_path", "table_rows"]

ENCODERS = {
    "image": "torchvision:mobilenet_v2",
    "text": "sentence-transformers:all-MiniLM-L6-v2",
    "audio": "logmel-stats:sr=8000,n_fft=256,hop=80,mels=64",
}


SHORT = {"image": "MobileNetV2", "text": "MiniLM-L6", "audio": "log-mel stats"}


@dataclass(frozen=True)
class MediaSet:
    """One built-in media set.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"emoji/names"``.
    folder : str
        The data folder (``emoji`` or ``sounds``).
    modalities : tuple of str
        Its modalities; the first two are the default pair of :func:`load_paired`.
    description : str
    captions : str
        Which caption rows the text side holds: ``"name"`` (one per item) or ``"all"`` (several per item).
    """

    name: str
    folder: str
    modalities: tuple[str, ...]
    description: str
    captions: str = "name"
    shared_dim: int = 128
    fit: str = ""

    @property
    def key(self) -> str:
        """The CCA fit this set's shared space uses (``shared.npz`` key prefix)."""
        return self.fit or self.name.replace("/", "-")


MEDIA_SETS: dict[str, MediaSet] = {
    s.name: s
    for s in [
        MediaSet("emoji/names", "emoji", ("image", "text"),
                 "1,892 Noto Emoji thumbnails, each with its Unicode CLDR name (one caption per image)"),
        MediaSet("emoji/captions", "emoji", ("image", "text"),
                 "1,892 Noto Emoji thumbnails with several captions each (CLDR name, CLDR keyword list)", "all",
                 fit="emoji-names"),
        MediaSet("emoji/spoken", "emoji", ("image", "audio", "text"),
                 "290 animal and food emoji: image, name, and the name spoken by espeak-ng (shared ids)",
                 shared_dim=32),
        MediaSet("sounds/named", "sounds", ("audio", "text"),
                 "141 named sounds (Sonic Pi CC0 samples, freedesktop CC-BY sounds), caption from the name",
                 shared_dim=32),
    ]
}


def media_path(folder: str) -> Any:
    """The installed data folder of a media set (an ``importlib.resources`` traversable)."""
    return resources.files("workbench.datasets") / "data" / folder


@lru_cache(maxsize=4)
def _tables(folder: str) -> dict[str, pl.DataFrame]:
    root = media_path(folder)
    names = ("items", "captions", "spoken") if folder == "emoji" else ("items",)
    out = {}
    for name in names:
        with (root / f"{name}.parquet").open("rb") as handle:
            frame = pl.read_parquet(handle)
        if "file" in frame.columns:
            frame = frame.with_columns(pl.concat_str(pl.lit(str(root) + "/"), pl.col("file")).alias("path"))
        out[name] = frame
    return out


@lru_cache(maxsize=4)
def _arrays(folder: str, file: str) -> dict[str, np.ndarray]:
    with (media_path(folder) / file).open("rb") as handle, np.load(handle, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


FIRST = ("id", "caption", "path", "label", "item_id", "split")


def _side_rows(ds: MediaSet, modality: str) -> tuple[pl.DataFrame, np.ndarray]:
    """(metadata, row indices into features.npz[modality]) of one side of a set; contract columns first."""
    meta, rows = _side_rows_any_order(ds, modality)
    return meta.select(*FIRST, *(c for c in meta.columns if c not in FIRST)), rows


def _side_rows_any_order(ds: MediaSet, modality: str) -> tuple[pl.DataFrame, np.ndarray]:
    t = _tables(ds.folder)
    items = t["items"].with_columns(pl.col("id").alias("item_id"))
    if ds.folder == "sounds":
        if modality == "audio":
            return items, np.arange(items.height)
        text = items.select(pl.concat_str(pl.col("id"), pl.lit("#0")).alias("id"), "caption", "path", "label",
                            "item_id", "split", pl.lit("name").alias("kind"))
        return text, np.arange(items.height)
    captions = t["captions"].with_row_index("_row").join(
        items.select(pl.col("id").alias("item_id"), "path", "split"), on="item_id", how="left", maintain_order="left")
    if ds.name == "emoji/spoken":
        spoken = t["spoken"].select("id").with_row_index("_spoken")
        keep = spoken.join(items.with_row_index("_row"), on="id", how="left", maintain_order="left")
        if modality == "image":
            return keep.drop("_spoken", "_row"), keep.get_column("_row").to_numpy()
        if modality == "audio":
            audio = t["spoken"].join(items.select("id", "split"), on="id", how="left", maintain_order="left")
            return audio.with_columns(pl.col("id").alias("item_id")), np.arange(audio.height)
        names = captions.filter(pl.col("kind") == "name")
        names = spoken.join(names, left_on="id", right_on="item_id", how="left", maintain_order="left", suffix="_c")
        names = names.select(pl.col("id_c").alias("id"), "caption", "path", "label", pl.col("id").alias("item_id"),
                             "split", "kind", "_row")
        return names.drop("_row"), names.get_column("_row").to_numpy()
    if modality == "image":
        return items, np.arange(items.height)
    if ds.captions == "name":
        captions = captions.filter(pl.col("kind") == "name")
    return captions.drop("_row"), captions.get_column("_row").to_numpy()


def _resolve(name: str) -> MediaSet:
    if name in MEDIA_SETS:
        return MEDIA_SETS[name]
    raise ValueError(f"unknown media set {name!r}; media sets: {', '.join(MEDIA_SETS)}")


def _pair_modalities(ds: MediaSet, modalities: tuple[str, str] | None) -> tuple[str, str]:
    if modalities is None:
        return ds.modalities[0], ds.modalities[1]
    if (not isinstance(modalities, tuple | list) or len(modalities) != 2 or modalities[0] == modalities[1]
            or any(m not in ds.modalities for m in modalities)):
        raise ValueError(f"modalities must be two different ones of {ds.modalities} for {ds.name!r}, "
                         f"got {modalities!r}")
    return modalities[0], modalities[1]


def _pairs(meta_a: pl.DataFrame, meta_b: pl.DataFrame) -> np.ndarray:
    left = meta_a.select("item_id").with_row_index("_a")
    right = meta_b.select("item_id").with_row_index("_b")
    joined = left.join(right, on="item_id", how="inner").sort("_a", "_b")
    return joined.select(pl.col("_a").cast(pl.Int64), pl.col("_b").cast(pl.Int64)).to_numpy()


def load_features(name: str) -> MultimodalEmbeddings:
    """The frozen encoders' features of every modality of a media set, keyed by ``item_id``.

    Each modality keeps its encoder's own space (image 1280-d, text 384-d, audio 192-d), so use
    :meth:`MultimodalEmbeddings.pair` only through a shared space (:func:`load_paired`, or trained heads).
    """
    ds = _resolve(name)
    features = _arrays(ds.folder, "features.npz")
    sides = []
    for modality in ds.modalities:
        meta, rows = _side_rows(ds, modality)
        sides.append(Embeddings(features[modality][rows].astype(np.float32), modality, ENCODERS[modality], meta))
    return MultimodalEmbeddings(sides, key="item_id")


def load_paired(name: str, modalities: tuple[str, str] | None = None) -> PairedEmbeddings:
    """Two modalities of a media set in their shared CCA space (fit on the train split), pairs by ``item_id``.

    The rows are ``(features - mean) @ projection`` with the stored CCA fit (``shared.npz``), normalised.
    """
    ds = _resolve(name)
    a, b = _pair_modalities(ds, modalities)
    shared = _arrays(ds.folder, "shared.npz")
    features = _arrays(ds.folder, "features.npz")
    fit = f"{ds.key}/{'-'.join(sorted((a, b)))}"
    sides = []
    for modality, other in ((a, b), (b, a)):
        meta, rows = _side_rows(ds, modality)
        x = features[modality][rows].astype(np.float64) - shared[f"{fit}/{modality}/mean"]
        vectors = x @ shared[f"{fit}/{modality}/proj"].astype(np.float64)
        model = f"{ENCODERS[modality]} -> CCA-{vectors.shape[1]} with {other} (train split)"
        sides.append(Embeddings(vectors.astype(np.float32), modality, model, meta))
    return PairedEmbeddings(sides[0], sides[1], _pairs(sides[0].metadata, sides[1].metadata))


def load_items(name: str, modality: str | None = None) -> PairedItems:
    """The media files and captions of a media set, to re-encode them (e.g. with other encoders).

    ``modality`` picks the media side of ``"emoji/spoken"`` (``"image"`` or ``"audio"``; default ``"image"``).
    """
    ds = _resolve(name)
    media = modality or next(m for m in ds.modalities if m != "text")
    if media not in ds.modalities or media == "text":
        raise ValueError(f"modality must be one of {[m for m in ds.modalities if m != 'text']}, got {modality!r}")
    items, _ = _side_rows(ds, media)
    captions, _ = _side_rows(ds, "text")
    captions = captions.with_row_index("row").select("id", "item_id", "caption", "row", "kind", "label", "split")
    return PairedItems(items.with_columns(pl.col("item_id").alias("id")), captions, modality=media,
                       root=str(media_path(ds.folder)))


def table_rows() -> list[dict[str, Any]]:
    """One row per media set for ``datasets.list()``."""
    rows = []
    for ds in MEDIA_SETS.values():
        a, b = ds.modalities[0], ds.modalities[1]
        meta_a, _ = _side_rows(ds, a)
        meta_b, _ = _side_rows(ds, b)
        rows.append({
            "name": ds.name, "modalities": " / ".join(ds.modalities),
            "model": " + ".join(SHORT[m] for m in ds.modalities) + f" (CCA-{ds.shared_dim})",
            "pairs": len(_pairs(meta_a, meta_b)), "dim": ds.shared_dim, "description": ds.description,
        })
    return rows
