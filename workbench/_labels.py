"""THE table of human labels for metric keys, shared by figures, reports, panels and result objects.

A private leaf (it imports nothing of the package) so that every layer can use it, from ``gap`` (the HTML view of a
``GapReport``) up to ``report`` and ``panels``; users reach it as :func:`workbench.export.metric_label`.

Keys name the two modalities ``a`` and ``b`` (``a_to_b_recall@1``, ``intra_cosine_a``, ``r1_b_to_a``) or by name
(``image_to_text_R@1``); :func:`metric_label` puts the modality names in (``"R@1 image→text"``) and folds the
interval columns ``_lo`` / ``_hi`` into "(95% low)" / "(95% high)".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["METRIC_LABELS", "chance_recall", "metric_label"]

#: Key -> label; ``{a}`` and ``{b}`` are replaced by the modality names.
METRIC_LABELS: dict[str, str] = {
    "centroid_distance": "centroid distance",
    "centroid_gap": "centroid gap (bias-corrected)",
    "centroid_gap_noise_floor": "centroid gap noise floor",
    "centroid_gap_squared": "squared centroid gap",
    "paired_distance": "mean matched-pair distance",
    "relative_modality_gap": "relative modality gap",
    "alignment": "alignment",
    "uniformity_a": "uniformity ({a})",
    "uniformity_b": "uniformity ({b})",
    "mean_matched_cosine": "mean matched cosine",
    "mean_unmatched_cosine": "mean unmatched cosine",
    "intra_cosine_a": "mean cosine within {a}",
    "intra_cosine_b": "mean cosine within {b}",
    "modality_probe_accuracy": "modality probe accuracy",
    "gap_top1_share": "gap share of top 1 dimension",
    "gap_top5_share": "gap share of top 5 dimensions",
    "gap_top20_share": "gap share of top 20 dimensions",
    "clip_loss": "CLIP loss",
    "loss": "contrastive loss",
    "n_pairs": "pairs",
    "n_test": "held-out pairs",
    "n_train": "training pairs",
    "share": "share of squared gap",
    "density": "share of pairs",
    "delta": "shift δ",
    "temperature": "temperature",
    "value": "value",
}

_DIRECTION = re.compile(r"^(?P<src>a|b)_to_(?P<dst>a|b)_(?P<what>recall@\d+|mean_rank|median_rank|mAP|R@\d+)$")
_R1 = re.compile(r"^r(?P<k>\d+)_(?P<src>a|b)_to_(?P<dst>a|b)$")
_NAMED = re.compile(r"^(?P<src>[^_]+)_to_(?P<dst>[^_]+)_R@(?P<k>\d+)$")
_WHAT = {"mean_rank": "mean rank", "median_rank": "median rank", "mAP": "mAP"}


def metric_label(key: str, modalities: Sequence[str] = ("image", "text")) -> str:
    """The human label of a metric key, with the modality names for ``a`` and ``b``.

    Unknown keys come back with underscores as spaces.

    Examples
    --------
    >>> metric_label("a_to_b_recall@1"), metric_label("r1_b_to_a"), metric_label("text_to_audio_R@5")
    ('R@1 image→text', 'R@1 text→image', 'R@5 text→audio')
    >>> metric_label("intra_cosine_b", ("audio", "text")), metric_label("centroid_distance_lo")
    ('mean cosine within text', 'centroid distance (95% low)')
    """
    names = {"a": str(modalities[0]), "b": str(modalities[1])}
    for suffix, word in (("_lo", "95% low"), ("_hi", "95% high")):
        if key.endswith(suffix) and len(key) > len(suffix):
            return f"{metric_label(key[: -len(suffix)], modalities)} ({word})"
    if key in METRIC_LABELS:
        return METRIC_LABELS[key].format(**names)
    if m := _DIRECTION.match(key):
        what = m["what"]
        head = "R@" + what.split("@")[1] if "@" in what else _WHAT[what]
        return f"{head} {names[m['src']]}→{names[m['dst']]}"
    if m := _R1.match(key):
        return f"R@{m['k']} {names[m['src']]}→{names[m['dst']]}"
    if m := _NAMED.match(key):
        return f"R@{m['k']} {m['src']}→{m['dst']}"
    return key.replace("_", " ")


def chance_recall(k: int, n_gallery: int, n_relevant: Any = 1) -> float:
    """Expected R@K of a uniformly random ranking: the chance that one of ``n_relevant`` items among ``n_gallery`` is
    in the top ``k``, ``1 - C(n - r, k) / C(n, k)`` (hypergeometric; ``k / n`` for one relevant item). Given one
    count per query (an array), the mean over the queries.

    Examples
    --------
    >>> chance_recall(1, 500), chance_recall(10, 500)
    (0.002, 0.02)
    >>> round(chance_recall(1, 100, n_relevant=5), 4)
    0.05
    >>> round(chance_recall(3, 10, n_relevant=[2]), 4)   # 1 - (8*7*6) / (10*9*8)
    0.5333
    """
    n, k = int(n_gallery), int(k)
    r = np.asarray(n_relevant, dtype=np.int64).ravel()
    if n < 1 or k < 1 or r.size == 0 or r.min() < 1 or r.max() > n:
        raise ValueError(f"need n_gallery >= 1, 1 <= n_relevant <= n_gallery and k >= 1; got {n}, {n_relevant}, {k}")
    if np.all(r == 1):
        return min(k, n) / n
    miss = np.ones(r.shape, dtype=np.float64)
    for i in range(min(k, n)):
        miss *= np.clip(n - r - i, 0, None) / (n - i)
    return float(np.mean(1.0 - miss))
