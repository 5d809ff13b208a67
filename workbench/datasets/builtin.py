"""Built-in real embeddings from Liang et al., "Mind the Gap" (NeurIPS 2022), shipped inside the package.

The files are the exact ``.npy`` features of the public repository Weixin-Liang/Modality-Gap
(folder ``Figure_1_Modality_Gap/``, MIT license; ``data/liang2022/LICENSE`` and ``README.md`` sit beside them).
Each holds a float32 array of shape (2, N, D): the first modality's rows, then the paired second modality's.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import polars as pl

from workbench.data import Embeddings, PairedEmbeddings

CITATION = (
    "Weixin Liang, Yuhui Zhang, Yongchan Kwon, Serena Yeung, James Zou. Mind the Gap: Understanding the Modality "
    "Gap in Multi-modal Contrastive Representation Learning. NeurIPS 2022."
)
SOURCE = "https://github.com/Weixin-Liang/Modality-Gap (Figure_1_Modality_Gap/, MIT license)"


@dataclass(frozen=True)
class BuiltinDataset:
    """One built-in set: where its file lies and what its rows are."""

    name: str
    file: str
    modalities: tuple[str, str]
    model: str
    description: str
    n_pairs: int
    dim: int

    def path(self) -> resources.abc.Traversable:
        return resources.files("workbench.datasets") / "data" / "liang2022" / self.file


def _pair(key: str, modalities: tuple[str, str], model: str, weights: str, description: str, n: int, d: int
          ) -> list[BuiltinDataset]:
    trained = BuiltinDataset(
        f"liang2022/{key}", f"features_{key}.npy", modalities, f"{model}{weights}", description, n, d
    )
    random = BuiltinDataset(
        f"liang2022/{key}-random", f"features_{key}_random.npy", modalities, f"{model} (random init)",
        f"{description}; same architecture with random weights", n, d,
    )
    return [trained, random]


REGISTRY: dict[str, BuiltinDataset] = {
    ds.name: ds
    for ds in [
        *_pair("clip", ("image", "text"), "CLIP ViT-B/16", " (OpenAI)",
               "500 MSCOCO val2017 image-caption pairs", 500, 512),
        *_pair("convirt", ("image", "text"), "ConVIRT", "",
               "500 medical image / report pairs", 500, 512),
        *_pair("videoclip", ("video", "text"), "VideoCLIP", "",
               "100 video / text pairs", 100, 768),
        *_pair("clasp", ("protein", "text"), "CLASP", "",
               "99 amino-acid sequence / protein description pairs", 99, 768),
    ]
}


def resolve(name: str) -> BuiltinDataset:
    """Find a built-in set by its full name (``"liang2022/clip"``) or its short name (``"clip"``)."""
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}")
    if name in REGISTRY:
        return REGISTRY[name]
    full = f"liang2022/{name}"
    if full in REGISTRY:
        return REGISTRY[full]
    import difflib

    close = difflib.get_close_matches(name, [*REGISTRY, *(n.split("/")[1] for n in REGISTRY)], n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown dataset {name!r}.{hint} Built-in sets: {', '.join(REGISTRY)}")


def load_builtin(name: str, *, warn_duplicates: bool = True) -> PairedEmbeddings:
    """Load one built-in set as a row-paired :class:`PairedEmbeddings` (rows re-normalised in float64)."""
    ds = resolve(name)
    with ds.path().open("rb") as handle:
        both = np.load(handle, allow_pickle=False)
    if both.shape != (2, ds.n_pairs, ds.dim):
        raise ValueError(f"built-in file {ds.file} has shape {both.shape}, expected {(2, ds.n_pairs, ds.dim)}")
    ids = pl.DataFrame({"id": np.arange(ds.n_pairs, dtype=np.int64)})
    paired = PairedEmbeddings(
        Embeddings(both[0], ds.modalities[0], ds.model, ids),
        Embeddings(both[1], ds.modalities[1], ds.model, ids),
    )
    if warn_duplicates:
        paired.warn_duplicates(ds.name, stacklevel=4)
    return paired


def table() -> pl.DataFrame:
    """One row per built-in set."""
    return pl.DataFrame(
        [
            {
                "name": ds.name,
                "modalities": " / ".join(ds.modalities),
                "model": ds.model,
                "pairs": ds.n_pairs,
                "dim": ds.dim,
                "description": ds.description,
            }
            for ds in REGISTRY.values()
        ]
    )
