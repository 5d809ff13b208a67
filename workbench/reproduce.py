"""Reproduce published numbers with the exact protocol, and print ours beside them.

``openclip_retrieval`` embeds a Karpathy split (COCO 5k test or Flickr30k 1k test) with an ``open_clip`` model and
evaluates retrieval as CLIP_benchmark does: every caption of the split kept (COCO's test has 25,010), a caption
querying the 5,000 images (``image_retrieval``) and an image querying all captions (``text_retrieval``), cosine
scores, R@1/5/10. The published values are open_clip's own (its ``docs/openclip_retrieval_results.csv``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["PUBLISHED", "ReproductionResult", "openclip_retrieval"]

#: Published R@1 of open_clip (image retrieval = caption queries images; text retrieval = image queries captions).
PUBLISHED: dict[tuple[str, str, str], dict[str, float]] = {
    ("ViT-B-32", "laion2b_s34b_b79k", "coco"): {"image_retrieval_recall@1": 0.3934, "text_retrieval_recall@1": 0.5632},
    ("ViT-B-32", "laion2b_s34b_b79k", "flickr30k"): {"image_retrieval_recall@1": 0.6678,
                                                     "text_retrieval_recall@1": 0.8410},
    ("ViT-B-32", "openai", "coco"): {"image_retrieval_recall@1": 0.3044, "text_retrieval_recall@1": 0.5012},
}


@dataclass(frozen=True)
class ReproductionResult:
    """Our metrics, the published ones (where known) and the size of the split."""

    model: str
    pretrained: str | None
    dataset: str | None  # the split file's "dataset" entry, None where it has none
    n_images: int
    n_captions: int
    metrics: dict[str, float]
    published: dict[str, float]

    def table(self) -> pl.DataFrame:
        """One row per metric: ``metric``, ``ours``, ``published`` (null when not published), ``difference``."""
        rows = []
        for key, ours in self.metrics.items():
            published = self.published.get(key)
            rows.append({"metric": key, "ours": ours, "published": published,
                         "difference": None if published is None else ours - published})
        return pl.DataFrame(rows, schema={"metric": pl.String, "ours": pl.Float64, "published": pl.Float64,
                                          "difference": pl.Float64})


def openclip_retrieval(
    model: str,
    pretrained: str | os.PathLike[str] | None,
    karpathy_json: str | os.PathLike[str],
    *,
    image_root: str | os.PathLike[str] | None = None,
    split: str = "test",
    batch_size: int = 64,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    encoder: Any = None,
) -> ReproductionResult:
    """Embed a Karpathy split with an ``open_clip`` model and evaluate retrieval the published way.

    Parameters
    ----------
    model, pretrained
        As :class:`workbench.encoders.OpenCLIPEncoder` (``pretrained=None``: random init, for testing).
    karpathy_json : path
        ``dataset_coco.json`` or ``dataset_flickr30k.json`` (Karpathy & Fei-Fei, CVPR 2015), which you supply.
    image_root : path, optional
        Folder the JSON's image paths are relative to (COCO: the folder holding ``val2014/``).
    encoder : Encoder, optional
        Use this encoder instead of building one from ``model`` and ``pretrained``.
    """
    from workbench.data import Embeddings
    from workbench.datasets import load_karpathy
    from workbench.retrieval import evaluate_retrieval
    from workbench.store import embed

    data = load_karpathy(karpathy_json, split=split, image_root=image_root)
    missing = [p for p in data.images["path"].to_list() if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {data.n_images} images of the split are missing (e.g. {missing[0]!r}); "
            "pass image_root= the folder the JSON's paths are relative to"
        )
    if encoder is None:
        from workbench.encoders import OpenCLIPEncoder

        encoder = OpenCLIPEncoder(model, pretrained)
    images = embed(encoder, [Path(p) for p in data.images["path"].to_list()], "image", batch_size=batch_size,
                   cache_dir=cache_dir, progress=progress)
    texts = embed(encoder, data.captions["caption"].to_list(), "text", batch_size=batch_size, cache_dir=cache_dir,
                  progress=progress)
    # embed() returns a lazy EmbeddingStore only with store=PATH, which is not passed here
    assert isinstance(images, Embeddings) and isinstance(texts, Embeddings)
    metrics = evaluate_retrieval(images.vectors, texts.vectors, data.text_to_image, ks=(1, 5, 10))
    published = {} if data.dataset is None else PUBLISHED.get((model, str(pretrained), data.dataset), {})
    return ReproductionResult(model, None if pretrained is None else str(pretrained), data.dataset, data.n_images,
                              data.n_captions, metrics, published)
