"""Datasets: built-in real embeddings, synthetic paired worlds, and loaders for folders and published protocols.

Examples
--------
>>> from workbench import datasets
>>> datasets.list().height  # 8 Liang et al. feature sets + 4 real-media sets
12
>>> paired = datasets.load("liang2022/clip")
>>> paired.modalities, paired.n_pairs, paired.dim
(('image', 'text'), 500, 512)

The real-media sets carry their media (``path``), ``caption`` and ``label`` on both sides:

>>> emoji = datasets.load("emoji/names")
>>> emoji.n_pairs, emoji.dim, emoji.a.metadata.row(0, named=True)["caption"]
(1892, 128, 'grinning face')
"""

from __future__ import annotations

import builtins

import polars as pl

from workbench.data import MultimodalEmbeddings, PairedEmbeddings
from workbench.datasets import builtin, media
from workbench.datasets.cca import CCA
from workbench.datasets.folders import PairedItems, SkippedItemsWarning, audio_captions, image_captions
from workbench.datasets.karpathy import KarpathySplit, load_karpathy
from workbench.datasets.sound_features import LogMelStatistics
from workbench.datasets.worlds import World, shapes, tones

__all__ = [
    "CCA",
    "CITATION",
    "KarpathySplit",
    "LogMelStatistics",
    "PairedItems",
    "SkippedItemsWarning",
    "World",
    "audio_captions",
    "image_captions",
    "list",
    "load",
    "load_features",
    "load_items",
    "load_karpathy",
    "names",
    "resolve",
    "shapes",
    "tones",
]

CITATION = builtin.CITATION


def load(
    name: str, *, modalities: tuple[str, str] | None = None, warn_duplicates: bool = True
) -> PairedEmbeddings:
    """Load a built-in set by name, offline.

    Parameters
    ----------
    name : str
        Liang et al.'s features: ``"liang2022/clip"``, ``"liang2022/clip-random"``, ``convirt``, ``convirt-random``,
        ``videoclip``, ``videoclip-random``, ``clasp``, ``clasp-random`` (with or without the ``liang2022/`` prefix).
        Real media (images/sounds with captions shipped in the package): ``"emoji/names"``, ``"emoji/captions"``,
        ``"emoji/spoken"`` (image, audio, text), ``"sounds/named"``.
    modalities : (str, str), optional
        For a media set, which two of its modalities (default: its first two, e.g. image and audio for
        ``"emoji/spoken"``).
    warn_duplicates : bool, default True
        Warn once (:class:`~workbench.data.DuplicateRowsWarning`) when a side has exact duplicate rows
        (ConVIRT text: 443 unique of 500).

    Returns
    -------
    PairedEmbeddings
        Liang et al.: row-paired embeddings (pair i is row i of both sides), ids ``0..N-1``. Media sets: the two
        frozen pretrained encoders' features mapped into one 128-d space by a :class:`CCA` fitted on the train
        split (``split`` column), pairs by ``item_id``; metadata ``id``, ``caption``, ``path``, ``label`` on both
        sides. :func:`load_features` gives the encoders' own features, :func:`load_items` the media files.

    Notes
    -----
    Real features from Liang et al., "Mind the Gap: Understanding the Modality Gap in Multi-modal Contrastive
    Representation Learning", NeurIPS 2022 (MIT license, shipped with this package). Media sources and licences:
    ``docs/datasets.md``.
    """
    if name in media.MEDIA_SETS:
        paired = media.load_paired(name, modalities)
        if warn_duplicates:
            paired.warn_duplicates(name, stacklevel=3)
        return paired
    if modalities is not None:
        raise ValueError(f"modalities= applies to the media sets ({', '.join(media.MEDIA_SETS)}), not {name!r}")
    return builtin.load_builtin(name, warn_duplicates=warn_duplicates)


def load_features(name: str) -> MultimodalEmbeddings:
    """The frozen pretrained encoders' own features of a media set, one space per modality, keyed by ``item_id``.

    Images: torchvision MobileNetV2 (ImageNet) pooled features, 1280-d; texts: all-MiniLM-L6-v2, 384-d; audio:
    :class:`LogMelStatistics` (fixed, not learned), 192-d; float16 on disk, unit rows. The input for projection
    heads (:mod:`workbench.train`); the ``split`` column holds the fixed held-out items.

    Examples
    --------
    >>> from workbench import datasets
    >>> mm = datasets.load_features("emoji/names")
    >>> mm["image"].dim, mm["text"].dim, len(mm["image"])
    (1280, 384, 1892)
    >>> mm["image"].metadata.get_column("split").value_counts(sort=True).rows()
    [('train', 1514), ('test', 378)]
    """
    return media.load_features(media.MEDIA_SETS[resolve(name)].name)


def load_items(name: str, modality: str | None = None) -> PairedItems:
    """The media files (absolute paths) and captions of a media set, to re-encode them with any encoder.

    Examples
    --------
    >>> from workbench import datasets
    >>> items = datasets.load_items("sounds/named")
    >>> items.modality, len(items), items.paths[0].endswith(".wav")
    ('audio', 141, True)
    """
    return media.load_items(media.MEDIA_SETS[resolve(name)].name, modality)


def resolve(name: str) -> str:
    """The full registry name of a built-in set (``"clip"`` -> ``"liang2022/clip"``), or ValueError listing them."""
    if isinstance(name, str) and name in media.MEDIA_SETS:
        return name
    try:
        return builtin.resolve(name).name
    except ValueError as exc:
        import difflib

        close = difflib.get_close_matches(name, builtins.list(media.MEDIA_SETS), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"{exc}.{hint} Media sets: {', '.join(media.MEDIA_SETS)}") from None


def names() -> builtins.list[str]:
    """The names of the built-in sets."""
    return [*builtin.REGISTRY, *media.MEDIA_SETS]


def list() -> pl.DataFrame:
    """A table of the built-in sets: name, modalities, model, pairs, dim, description."""
    return pl.concat([builtin.table(), pl.DataFrame(media.table_rows())], how="vertical_relaxed")
