"""The gap between every two modalities of one item pool (image, text, audio, ...), with intervals.

:func:`gap_matrix` takes a :class:`~workbench.data.MultimodalEmbeddings` and, for every ordered pair of modalities
(query ``q``, gallery ``g``), measures on the items the two share a key with:

- ``centroid_distance``: ``||mean(q) - mean(g)||`` of the paired items' unit rows (Liang et al., NeurIPS 2022),
  each item once; symmetric, repeated in both orders;
- ``R@1``: q items querying every paired g item (pessimistic ties, :func:`workbench.retrieval.per_query_ranks`);
- ``own_share``: the query-modality bias of mixed-collection search (GR-CLIP, 2025): q items query a gallery of
  the q and g items together (the query itself left out); the share of their top ``k`` that is of modality q.
  ``own_share_expected`` is the share of q in that gallery (what an unbiased ranking would return on average);
- ``mixed_ndcg@k``: NDCG@k of the same searches, relevant items being those that share the query's key.

Intervals are 95% percentile bootstraps over the items of each modality, resampled independently (centroid
distances from the resampled means, the others from the resampled queries' values).
"""

from __future__ import annotations

from itertools import permutations

import numpy as np
import polars as pl

from workbench._params import check_int, check_seed
from workbench._validation import unit_rows64
from workbench.data import MultimodalEmbeddings
from workbench.gap._metrics import paired_items
from workbench.gap._mixed import Relevance, side_search

__all__ = ["gap_matrix"]


def _interval(boots: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(lo), float(hi)


def gap_matrix(mm: MultimodalEmbeddings, *, k: int = 10, n_boot: int = 200, seed: int = 0) -> pl.DataFrame:
    """Centroid distance, R@1 and the query-modality bias for every ordered pair of modalities, with intervals.

    Parameters
    ----------
    mm : MultimodalEmbeddings
        At least two modalities in one shared space (equal dimensions), linked by ``mm.key``.
    k : int
        Cut-off of the mixed search (own share, NDCG@k).
    n_boot, seed : bootstrap resamples and their seed.

    Returns
    -------
    polars.DataFrame
        Long format, one row per (query, gallery, metric): ``query``, ``gallery``, ``metric`` (``centroid_distance``,
        ``R@1``, ``own_share``, ``own_share_expected``, ``mixed_ndcg@k``), ``value``, ``low``, ``high``,
        ``n_queries``. ``frame.filter(pl.col("metric") == "R@1").pivot("gallery", index="query", values="value")``
        gives the matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from workbench import Embeddings, MultimodalEmbeddings
    >>> rng = np.random.default_rng(0)
    >>> z, ids = rng.normal(size=(60, 16)), {"id": list(range(60))}
    >>> offsets = {m: rng.normal(size=16) for m in ("image", "text", "audio")}   # one gap per modality
    >>> mm = MultimodalEmbeddings([Embeddings(z + offsets[m] + 0.3 * rng.normal(size=(60, 16)), m, metadata=ids)
    ...                            for m in offsets])
    >>> out = gap_matrix(mm, n_boot=50)
    >>> share = out.filter(pl.col("metric") == "own_share")
    >>> share.height, bool((share["value"] > 0.9).all())   # every modality finds itself first (expected: 0.5)
    (6, True)
    """
    if not isinstance(mm, MultimodalEmbeddings):
        raise TypeError(f"mm must be a MultimodalEmbeddings, got {type(mm).__name__}")
    if len(mm.modalities) < 2:
        raise ValueError(f"gap_matrix needs at least two modalities, got {list(mm.modalities)}")
    k, n_boot, seed = check_int(k, "k"), check_int(n_boot, "n_boot"), check_seed(seed)
    dims = {m: mm[m].dim for m in mm.modalities}
    if len(set(dims.values())) > 1:
        raise ValueError(f"every modality must share one embedding space (one dimension), got {dims}")
    from workbench.retrieval import per_query_ranks

    rows: list[tuple[str, str, str, float, float, float, int]] = []
    for n, (q, g) in enumerate(permutations(mm.modalities, 2)):
        paired = mm.pair(q, g)
        items_q, items_g, pairs = paired_items(paired)
        uq, ug = (unit_rows64(x, what).astype(np.float32) for x, what in ((items_q, q), (items_g, g)))
        rng = np.random.default_rng([seed, n])
        boot_q = rng.integers(0, len(uq), size=(n_boot, len(uq)))
        boot_g = rng.integers(0, len(ug), size=(n_boot, len(ug)))
        # centroid distance: resampled means from count-weighted sums
        mean_q, mean_g = items_q.mean(axis=0), items_g.mean(axis=0)
        counts_q = np.stack([np.bincount(b, minlength=len(uq)) for b in boot_q]).astype(np.float64)
        counts_g = np.stack([np.bincount(b, minlength=len(ug)) for b in boot_g]).astype(np.float64)
        boot_cd = np.linalg.norm(counts_q @ items_q / len(uq) - counts_g @ items_g / len(ug), axis=1)
        cd = float(np.linalg.norm(mean_q - mean_g))
        rows.append((q, g, "centroid_distance", cd, *_interval(boot_cd), len(uq)))
        hits = (per_query_ranks(uq, ug, pairs).ranks <= 1).astype(np.float64)
        rows.append((q, g, "R@1", float(hits.mean()), *_interval(hits[boot_q].mean(axis=1)), len(uq)))
        found = side_search(uq, uq @ ug.T, Relevance(pairs, len(uq), len(ug)), "a", "b", k)
        ndcg, share = found["mixed_ndcg"], found["own_share"]
        rows.append((q, g, "own_share", float(share.mean()), *_interval(share[boot_q].mean(axis=1)), len(uq)))
        expected = (len(uq) - 1) / (len(uq) - 1 + len(ug))
        rows.append((q, g, "own_share_expected", expected, expected, expected, len(uq)))
        with np.errstate(invalid="ignore"):
            boot_ndcg = np.nanmean(ndcg[boot_q], axis=1)
        rows.append((q, g, f"mixed_ndcg@{k}", float(np.nanmean(ndcg)), *_interval(boot_ndcg), len(uq)))
    return pl.DataFrame(rows, schema={"query": pl.String, "gallery": pl.String, "metric": pl.String,
                                      "value": pl.Float64, "low": pl.Float64, "high": pl.Float64,
                                      "n_queries": pl.Int64}, orient="row")
