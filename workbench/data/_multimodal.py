"""The data model's set: several modalities whose rows share a key column (ImageBind-style sets).

An item may have an image, a caption and a sound; :meth:`MultimodalEmbeddings.pair` gives the
:class:`~workbench.data.PairedEmbeddings` of any two modalities.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import polars as pl

from workbench.data._embeddings import Embeddings, load_bundle, save_bundle
from workbench.data._paired import PairedEmbeddings

__all__ = ["MultimodalEmbeddings"]


class MultimodalEmbeddings:
    """Several modalities whose rows share a key column (ImageBind-style sets).

    Rows of different modalities with equal values in ``key`` describe the same item. The key may repeat within a
    modality (five captions of one image all carry the image's key), which makes the pairing many-to-many.

    Parameters
    ----------
    embeddings : mapping of modality name to Embeddings, or an iterable of Embeddings
        One entry per modality (names must be distinct).
    key : str, default "id"
        The metadata column that links rows across modalities.

    Examples
    --------
    >>> import numpy as np
    >>> from workbench import Embeddings, MultimodalEmbeddings
    >>> rng = np.random.default_rng(0)
    >>> ids = {"id": ["dog", "cat", "owl"]}
    >>> mm = MultimodalEmbeddings([Embeddings(rng.normal(size=(3, 4)), m, metadata=ids)
    ...                            for m in ("image", "text", "audio")])
    >>> mm.pair("audio", "image")
    PairedEmbeddings(audio <-> image, model='unknown', n_a=3, n_b=3, pairs=3, dim=4)
    """

    __slots__ = ("embeddings", "key")

    def __init__(self, embeddings: Mapping[str, Embeddings] | Iterable[Embeddings], key: str = "id") -> None:
        items = list(embeddings.values()) if isinstance(embeddings, Mapping) else list(embeddings)
        if isinstance(embeddings, Mapping):
            for name, e in embeddings.items():
                if isinstance(e, Embeddings) and e.modality != name:
                    raise ValueError(f"mapping key {name!r} differs from the embeddings' modality {e.modality!r}")
        if not items:
            raise ValueError("MultimodalEmbeddings needs at least one modality")
        for e in items:
            if not isinstance(e, Embeddings):
                raise TypeError(f"expected Embeddings, got {type(e).__name__}")
            if key not in e.metadata.columns:
                raise ValueError(f"{e.modality} metadata has no key column {key!r} (columns: {e.metadata.columns})")
        names = [e.modality for e in items]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"modality names must be distinct; repeated: {repeated}")
        self.embeddings: dict[str, Embeddings] = {e.modality: e for e in items}
        self.key = key

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.embeddings)

    def __getitem__(self, modality: str) -> Embeddings:
        try:
            return self.embeddings[modality]
        except KeyError:
            raise KeyError(f"no modality {modality!r}; have {list(self.embeddings)}") from None

    def __repr__(self) -> str:
        parts = ", ".join(f"{m}: {len(e)}x{e.dim}" for m, e in self.embeddings.items())
        return f"MultimodalEmbeddings({parts}; key={self.key!r})"

    def pair(self, a: str, b: str) -> PairedEmbeddings:
        """The :class:`PairedEmbeddings` of modalities ``a`` and ``b``: every row pair sharing a key value.

        Rows without a partner stay in the result as unpaired items.
        """
        if a == b:
            raise ValueError(f"pair needs two different modalities, got {a!r} twice")
        ea, eb = self[a], self[b]
        left = ea.metadata.select(pl.col(self.key).alias("_key"), pl.int_range(pl.len(), dtype=pl.Int64).alias("_a"))
        right = eb.metadata.select(pl.col(self.key).alias("_key"), pl.int_range(pl.len(), dtype=pl.Int64).alias("_b"))
        if left.schema["_key"] != right.schema["_key"]:
            raise TypeError(
                f"key column {self.key!r} has type {left.schema['_key']} in {a} but {right.schema['_key']} in {b}"
            )
        joined = left.join(right, on="_key", how="inner").sort("_a", "_b")
        if joined.height == 0:
            raise ValueError(f"{a} and {b} share no value of {self.key!r}: nothing to pair")
        return PairedEmbeddings(ea, eb, joined.select("_a", "_b").to_numpy())

    def pairs_with(self, anchor: str) -> dict[str, PairedEmbeddings]:
        """Every other modality paired with ``anchor`` (ImageBind binds all modalities to images)."""
        self[anchor]
        return {m: self.pair(m, anchor) for m in self.embeddings if m != anchor}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write to one ``.npz`` or ``.parquet`` file (atomically)."""
        save_bundle(path, "multimodal", list(self.embeddings.values()), key=self.key)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MultimodalEmbeddings:
        """Read a file written by :meth:`save`."""
        embeddings, bundle = load_bundle(path, "multimodal")
        return cls(embeddings, key=bundle.key or "id")
