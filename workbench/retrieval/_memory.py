"""Cross-modal retrieval metrics: exact, rank-based, chunked, and fast (one score matmul for both directions).

A query's rank is 1 + the number of irrelevant gallery items that score at least as high as its best relevant
item. Ties between a relevant and an irrelevant item therefore count against the relevant one (pessimistic), so no
input can overstate recall; recall@k is the fraction of queries of rank <= k. Every score a rank is computed from
is read from the same score matrix (a relevant item's score is never recomputed by a separate dot product, which
rounds differently). Nothing builds a one-hot top-k tensor: counting "how many items score above the best
positive" needs one pass over each row of scores, fused in a numba kernel.

The protocol follows the CLIP paper (Radford et al., ICML 2021) as CLIP_benchmark implements it
(``clip_benchmark.metrics.zeroshot_retrieval``), with the same key names:

- ``image_retrieval_recall@k``: a caption queries the images; a hit if its image is in the top k.
- ``text_retrieval_recall@k``: an image queries the captions; a hit if ANY of its captions is in the top k.

plus ``*_mean_rank`` and ``*_median_rank`` (1-based rank of the first relevant item) and ``*_mAP`` (mean average
precision over all relevant items: with five captions per image, all five count).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench._blocks import MIN_BLOCK
from workbench._blocks import columns as _columns
from workbench._blocks import matmul as _matmul
from workbench._blocks import padded_rows as _block
from workbench._validation import as_matrix, row_norms
from workbench._validation import relevance_pairs as _relevance

__all__ = [
    "RankResult",
    "bootstrap_ci",
    "evaluate_queries",
    "evaluate_retrieval",
    "first_relevant_ranks",
    "matched_ranks",
    "paired_bootstrap_test",
    "per_query_ranks",
    "recall_at_k",
]

#: Default cap on the score matrix kept in memory (bytes); above it scores are recomputed per chunk.
MAX_SCORE_BYTES = 1 << 30
_DEFAULT_CHUNK_BYTES = 256 << 20


# -- numba kernels ------------------------------------------------------------------------------------------------
def _count_rows(scores, thresholds, counts):  # pragma: no cover - compiled by numba
    # counts[r, k] += #{c : scores[r, c] >= thresholds[r, k]}; thresholds ascending, padded with +inf
    n_rows, n_cols = scores.shape
    m = thresholds.shape[1]
    for r in _prange(n_rows):
        lowest = thresholds[r, 0]
        for c in range(n_cols):
            s = scores[r, c]
            if s >= lowest:
                for k in range(m):
                    if s >= thresholds[r, k]:
                        counts[r, k] += 1
                    else:
                        break


def _count_columns(scores, thresholds, counts):  # pragma: no cover - compiled by numba
    # counts[c, k] += #{r : scores[r, c] >= thresholds[c, k]}; parallel over blocks of columns
    n_rows, n_cols = scores.shape
    m = thresholds.shape[1]
    block = 256
    n_blocks = (n_cols + block - 1) // block
    for b in _prange(n_blocks):
        c0 = b * block
        c1 = min(n_cols, c0 + block)
        for r in range(n_rows):
            for c in range(c0, c1):
                s = scores[r, c]
                if s >= thresholds[c, 0]:
                    for k in range(m):
                        if s >= thresholds[c, k]:
                            counts[c, k] += 1
                        else:
                            break


def _prange(n):  # pragma: no cover - replaced by numba.prange when compiled
    return range(n)


#: Score blocks with more entries than this are counted by all cores; smaller ones on one (numba's threads cost
#: more than they save on small blocks, and far more when another process holds a core).
PARALLEL_ABOVE = 4_000_000
_KERNELS: dict[bool, tuple[Any, Any]] = {}


def _kernels(parallel: bool = True) -> tuple[Any, Any]:
    """The two counting kernels, compiled once per process (and cached on disk) in a parallel or serial variant."""
    if parallel not in _KERNELS:
        import numba

        # the kernels' globals see numba.prange; njit(parallel=False) treats it as range
        globals()["_prange"] = numba.prange
        jit = numba.njit(parallel=parallel, cache=True, fastmath=False)
        _KERNELS[parallel] = (jit(_count_rows), jit(_count_columns))
    return _KERNELS[parallel]


# -- inputs ----------------------------------------------------------------------------------------------------------
def _is_store(x: Any) -> bool:
    """An embedding store or a store folder (read by :mod:`workbench.retrieval_stream`)."""
    return isinstance(x, (str, os.PathLike)) or all(hasattr(x, n) for n in ("iter_batches", "ids", "dim", "__len__"))


def _unit32(x: Any, what: str) -> np.ndarray:
    arr = as_matrix(x, what)
    norms = row_norms(arr, what)
    if arr.dtype == np.float32 and np.all(np.abs(norms - 1.0) < 1e-6):
        return np.ascontiguousarray(arr)
    return np.ascontiguousarray((arr / norms[:, None]).astype(np.float32))


def _expand_identical(pairs: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Add (q, g') for every gallery row g' whose bytes equal those of a relevant g."""
    rows = np.ascontiguousarray(gallery).view(np.dtype((np.void, gallery.dtype.itemsize * gallery.shape[1])))
    _, group = np.unique(rows.ravel(), return_inverse=True)
    group = group.ravel()
    members = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[members], np.arange(group.max() + 2))
    extra = [
        np.stack([np.full(starts[g + 1] - starts[g], q), members[starts[g] : starts[g + 1]]], axis=1)
        for q, g in zip(pairs[:, 0], group[pairs[:, 1]], strict=True)
        if starts[g + 1] - starts[g] > 1
    ]
    return np.unique(np.concatenate([pairs, *extra]), axis=0) if extra else pairs


@dataclass(frozen=True)
class RankResult:
    """Per-query results: ``ranks`` (1-based rank of the first relevant item) and ``average_precision``."""

    ranks: np.ndarray
    average_precision: np.ndarray | None

    def recall(self, k: int) -> float:
        return float(np.mean(self.ranks <= k))


class _Side:
    """Bookkeeping for one direction: the relevant gallery items of every query and the counts against them."""

    def __init__(self, pairs: np.ndarray, n_queries: int, with_ap: bool) -> None:
        per_query = np.bincount(pairs[:, 0], minlength=n_queries)  # >= 1 each: pairs come from _relevance
        self.pairs = pairs  # sorted by query
        self.indptr = np.concatenate([[0], np.cumsum(per_query)])
        self.sizes = per_query
        self.width = int(per_query.max()) if with_ap else 1
        self.with_ap = with_ap
        self.n_queries = n_queries
        self.positive_scores = np.empty(len(pairs), dtype=np.float32)
        self.counts = np.zeros((n_queries, self.width), dtype=np.int64)

    def _sorted(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs lo:hi (whole queries) sorted by (query, score): query ids, scores, position within the query."""
        q = self.pairs[lo:hi, 0]
        ps = self.positive_scores[lo:hi]
        order = np.lexsort((ps, q))
        q, ps = q[order], ps[order]
        return q, ps, np.arange(lo, hi) - self.indptr[q]

    def thresholds(self, queries: slice) -> np.ndarray:
        """Ascending relevant scores per query (only the best one unless with_ap), padded with +inf."""
        lo, hi = self.indptr[queries.start], self.indptr[queries.stop]
        out = np.full((queries.stop - queries.start, self.width), np.inf, dtype=np.float32)
        if self.with_ap:
            q, ps, pos = self._sorted(lo, hi)
            out[q - queries.start, pos] = ps
        else:
            out[:, 0] = np.maximum.reduceat(self.positive_scores[lo:hi], self.indptr[queries.start : queries.stop] - lo)
        return out

    def result(self) -> RankResult:
        q, ps, pos = self._sorted(0, len(self.pairs))
        m = self.sizes[q]
        # relevant items scoring >= each relevant score: from the start of its run of equal scores to the group end
        new_run = np.ones(len(q), dtype=bool)
        new_run[1:] = (q[1:] != q[:-1]) | (ps[1:] != ps[:-1])
        run_start = np.maximum.accumulate(np.where(new_run, np.arange(len(q)), 0))
        relevant_ge = self.indptr[q + 1] - run_start
        if self.with_ap:
            negatives_ge = self.counts[q, pos] - relevant_ge
        else:  # only the best score was counted: it sits at the last position of each query
            negatives_ge = self.counts[q, 0] - relevant_ge
        last = self.indptr[1:] - 1
        ranks = 1 + negatives_ge[last]
        ap = None
        if self.with_ap:
            k = m - pos  # the k-th best relevant item (ascending order within the query)
            ap = np.add.reduceat(k / (k + negatives_ge), self.indptr[:-1]) / self.sizes
        return RankResult(ranks.astype(np.int64), ap)


def _gather_positives(side: _Side, scores: np.ndarray, queries: slice, transpose: bool) -> None:
    lo, hi = side.indptr[queries.start], side.indptr[queries.stop]
    q, g = side.pairs[lo:hi, 0] - queries.start, side.pairs[lo:hi, 1]
    side.positive_scores[lo:hi] = scores[g, q] if transpose else scores[q, g]


def _rank_both_ways(
    a: np.ndarray,
    b: np.ndarray,
    pairs: np.ndarray,
    *,
    with_ap: bool,
    chunk_size: int | None,
    max_score_bytes: int,
    a_queries: bool = True,
    b_pairs: np.ndarray | None = None,
) -> tuple[RankResult | None, RankResult]:
    """Ranks of a queries over gallery b and of b queries over gallery a, from one score matrix S = b @ a.T.

    Rows of S are b queries (row counting); columns are a queries (column counting, thresholds known only after
    every row was seen, so a second sweep over the rows of S -- kept in memory when it fits, else recomputed).
    With ``a_queries=False`` only the b queries are ranked (a is just a gallery). ``b_pairs`` (as (a, b) pairs)
    gives the b queries their own relevance (default: ``pairs``).
    """
    n_a, n_b = len(a), len(b)
    count_rows, count_columns = _kernels(parallel=n_a * n_b > PARALLEL_ABOVE)
    b_pairs = pairs if b_pairs is None else b_pairs
    b_side = _Side(_relevance(b_pairs[:, ::-1], n_b, n_a, "b queries"), n_b, with_ap)
    a_side = _Side(_relevance(pairs, n_a, n_b, "a queries"), n_a, with_ap) if a_queries else None
    if chunk_size is None:
        chunk_size = n_b if n_a * n_b * 4 <= max_score_bytes else max(1, _DEFAULT_CHUNK_BYTES // (4 * n_a))
    block = max(min(chunk_size, n_b), MIN_BLOCK)
    keep = a_queries and n_a * n_b * 4 <= max_score_bytes
    kept: list[np.ndarray] = []
    a_t = _columns(a)
    # sweep 1: b queries (rows), and the scores of every relevant pair for the a queries
    for s in range(0, n_b, chunk_size):
        rows = slice(s, min(s + chunk_size, n_b))
        scores = _matmul(_block(b, rows, block), a_t, rows.stop - s, n_a)
        _gather_positives(b_side, scores, rows, transpose=False)
        count_rows(scores, b_side.thresholds(rows), b_side.counts[rows])
        if a_side is not None:  # relevant (a row, b row) pairs with b in this chunk: S[b - s, a]
            in_chunk = (a_side.pairs[:, 1] >= rows.start) & (a_side.pairs[:, 1] < rows.stop)
            a_side.positive_scores[in_chunk] = scores[a_side.pairs[in_chunk, 1] - s, a_side.pairs[in_chunk, 0]]
        if keep:
            kept.append(scores)
    if a_side is None:
        return None, b_side.result()
    # sweep 2: a queries (columns), thresholds now known
    a_thresholds = a_side.thresholds(slice(0, n_a))
    for i, s in enumerate(range(0, n_b, chunk_size)):
        rows = slice(s, min(s + chunk_size, n_b))
        scores = kept[i] if keep else _matmul(_block(b, rows, block), a_t, rows.stop - s, n_a)
        count_columns(scores, a_thresholds, a_side.counts)
    return a_side.result(), b_side.result()


# -- public API ----------------------------------------------------------------------------------------------------
def per_query_ranks(
    queries: Any,
    gallery: Any,
    relevance: Any,
    *,
    with_ap: bool = False,
    identical_is_relevant: bool = False,
    chunk_size: int | None = None,
) -> RankResult:
    """Rank of the first relevant gallery item (and average precision) for every query, for failure browsing.

    Parameters
    ----------
    queries : (Q x D) array, gallery : (G x D) array
        Rows are L2-normalised; scores are cosines.
    relevance : (P x 2) integer array
        ``(query row, gallery row)`` pairs; every query needs at least one.
    with_ap : bool
        Also compute each query's average precision over all its relevant items.
    identical_is_relevant : bool
        Gallery rows with exactly the same embedding as a relevant row are relevant too (duplicate captions).
    chunk_size : int, optional
        Queries scored at a time (memory ~ chunk_size x G x 4 bytes).

    Examples
    --------
    >>> import numpy as np
    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> g = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    >>> per_query_ranks(q, g, [(0, 2), (1, 1)]).ranks.tolist()   # 0.6 beaten by 1.0; 0.0 by 1.0 and 0.8
    [2, 3]
    """
    qa, ga = _unit32(queries, "queries"), _unit32(gallery, "gallery")
    if qa.shape[1] != ga.shape[1]:
        raise ValueError(f"queries have {qa.shape[1]} dimensions but the gallery has {ga.shape[1]}")
    pairs = _relevance(relevance, len(qa), len(ga), "relevance")
    if identical_is_relevant:
        pairs = _expand_identical(pairs, ga)
    # S = queries @ gallery.T: the b side of _rank_both_ways, with a = gallery
    _, result = _rank_both_ways(ga, qa, pairs[:, ::-1].copy(), with_ap=with_ap, chunk_size=chunk_size,
                                max_score_bytes=0, a_queries=False)
    return result


def first_relevant_ranks(queries: Any, gallery: Any, pairs: Any, *, chunk_size: int | None = None) -> np.ndarray:
    """1-based rank of the best relevant gallery item for every query (see :func:`per_query_ranks`).

    Examples
    --------
    >>> import numpy as np
    >>> first_relevant_ranks(np.eye(2), np.eye(2), [(0, 0), (1, 1)]).tolist()
    [1, 1]
    """
    return per_query_ranks(queries, gallery, pairs, chunk_size=chunk_size).ranks


def matched_ranks(a: Any, b: Any, *, chunk_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ranks for row-paired data (row i of a matches row i of b): ``(a queries b, b queries a)``, one matmul."""
    ua, ub = _unit32(a, "a"), _unit32(b, "b")
    if len(ua) != len(ub):
        raise ValueError(f"row-paired data needs equal row counts, got {len(ua)} and {len(ub)}")
    if ua.shape[1] != ub.shape[1]:
        raise ValueError(f"a has {ua.shape[1]} dimensions but b has {ub.shape[1]}")
    diag = np.repeat(np.arange(len(ua), dtype=np.int64)[:, None], 2, axis=1)
    ra, rb = _rank_both_ways(ua, ub, diag, with_ap=False, chunk_size=chunk_size, max_score_bytes=MAX_SCORE_BYTES)
    assert ra is not None
    return ra.ranks, rb.ranks


def recall_at_k(ranks: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """Fraction of queries whose first relevant item is within the top k, for each k.

    Examples
    --------
    >>> recall_at_k(np.array([1, 2, 7, 30]), ks=(1, 5, 10))
    {1: 0.25, 5: 0.5, 10: 0.75}
    """
    ranks = np.asarray(ranks)
    return {int(k): float(np.mean(ranks <= k)) for k in ks}


def _summary(prefix: str, result: RankResult, ks: Sequence[int]) -> dict[str, float]:
    out = {f"{prefix}recall@{k}": result.recall(k) for k in ks}
    out[f"{prefix}mean_rank"] = float(result.ranks.mean())
    out[f"{prefix}median_rank"] = float(np.median(result.ranks))
    if result.average_precision is not None:
        out[f"{prefix}mAP"] = float(result.average_precision.mean())
    return out


def evaluate_retrieval(
    images: Any,
    texts: Any,
    text_to_image: Any = None,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int | None = None,
    *,
    identical_is_relevant: bool = False,
    with_map: bool = True,
    pairs: Any = None,
    directions: Sequence[str] | str = ("image_retrieval", "text_retrieval"),
    device: str = "auto",
) -> dict[str, float]:
    """Image-text retrieval both ways, the CLIP-paper protocol with CLIP_benchmark's key names.

    Parameters
    ----------
    images : (N_img x D) array, texts : (N_txt x D) array; or either an embedding store (or its folder)
        Embeddings (rows L2-normalised here; scores are cosines). A store is streamed in chunks, never loaded
        whole (see :mod:`workbench.retrieval_stream`).
    text_to_image : (N_txt,) integer array, optional
        ``text_to_image[j]`` is the row of the image that caption j describes (several captions per image).
    ks : R@K cut-offs.
    chunk_size : int, optional
        Captions (or streamed rows) scored at a time. Default: the whole score matrix when it fits in 1 GiB (COCO-5k:
        500 MB), else chunks of about 256 MB (scores are then computed twice: once per direction).
    identical_is_relevant : bool, default False
        Count gallery items whose embedding equals a relevant one as relevant too (duplicate captions, which no
        ranking can separate; CLIP_benchmark counts them against the query).
    with_map : bool, default True
        Also compute mean average precision over all relevant items (a little slower with many per query).
    pairs : (P x 2) array-like of ``(image id, text id)``, optional
        Many-to-many relevance by id instead of ``text_to_image`` (store ids; row positions for arrays). Two stores
        given neither are paired by equal ids.
    directions : subset of ``("image_retrieval", "text_retrieval")``
        Which directions to compute; a gallery of distractor images (no caption) takes ``("image_retrieval",)``.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where scores are computed: "auto" uses a GPU through torch when ``torch.cuda.is_available()`` and the job is
        large (see :func:`workbench.retrieval_stream.resolve_device`).

    Returns
    -------
    dict
        ``image_retrieval_recall@k`` (captions query images), ``text_retrieval_recall@k`` (images query captions),
        ``*_mean_rank``, ``*_median_rank`` and ``*_mAP``.

    Examples
    --------
    >>> import workbench
    >>> a, b = workbench.datasets.load("liang2022/clip").matched()
    >>> m = evaluate_retrieval(a, b, np.arange(500))
    >>> m["text_retrieval_recall@1"], m["image_retrieval_recall@1"]
    (0.552, 0.506)
    """
    options = {"identical_is_relevant": identical_is_relevant, "with_map": with_map, "pairs": pairs,
               "directions": directions, "device": device}
    both = {"image_retrieval", "text_retrieval"} == ({directions} if isinstance(directions, str) else set(directions))
    if text_to_image is None or pairs is not None or not both or any(_is_store(x) for x in (images, texts)):
        from workbench.retrieval_stream import evaluate_retrieval_streamed

        return evaluate_retrieval_streamed(images, texts, text_to_image, ks, chunk_size, **options)
    ia, ta = _unit32(images, "images"), _unit32(texts, "texts")
    if ia.shape[1] != ta.shape[1]:
        raise ValueError(f"images have {ia.shape[1]} dimensions but texts have {ta.shape[1]}")
    if device != "cpu":
        from workbench.retrieval_stream import evaluate_retrieval_streamed, resolve_device

        if resolve_device(device, float(len(ia)) * len(ta) * ia.shape[1]) == "cuda":
            return evaluate_retrieval_streamed(ia, ta, text_to_image, ks, chunk_size, **options)
    t2i = np.asarray(text_to_image)
    if t2i.ndim != 1 or len(t2i) != len(ta):
        raise ValueError(f"text_to_image must have one entry per text ({len(ta)}), got shape {t2i.shape}")
    if t2i.dtype.kind not in "iu":
        raise TypeError(f"text_to_image must hold integer image rows, got dtype {t2i.dtype}")
    pairs = _relevance(np.stack([t2i, np.arange(len(ta))], axis=1), len(ia), len(ta), "text_to_image")
    text_pairs = None
    if identical_is_relevant:
        text_pairs = _expand_identical(pairs[:, ::-1].copy(), ia)[:, ::-1].copy()  # captions query images
        pairs = _expand_identical(pairs, ta)  # images query captions
    image_side, text_side = _rank_both_ways(ia, ta, pairs, with_ap=with_map, chunk_size=chunk_size,
                                            max_score_bytes=0 if chunk_size else MAX_SCORE_BYTES, b_pairs=text_pairs)
    assert image_side is not None
    return {**_summary("image_retrieval_", text_side, ks), **_summary("text_retrieval_", image_side, ks)}


def evaluate_queries(
    queries: Any,
    gallery: Any,
    relevance: Any,
    ks: Sequence[int] = (1, 5, 10),
    *,
    identical_is_relevant: bool = False,
    chunk_size: int | None = None,
) -> dict[str, float]:
    """The general form for any two modalities: ``recall@k``, ``mean_rank``, ``median_rank`` and ``mAP``.

    Examples
    --------
    >>> import numpy as np
    >>> evaluate_queries(np.eye(3), np.eye(3), [(0, 0), (1, 1), (2, 2)], ks=(1,))["recall@1"]
    1.0
    """
    result = per_query_ranks(queries, gallery, relevance, with_ap=True, identical_is_relevant=identical_is_relevant,
                             chunk_size=chunk_size)
    return _summary("", result, ks)


# -- uncertainty ---------------------------------------------------------------------------------------------------
def bootstrap_ci(
    values: Any, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Percentile bootstrap interval of the mean of per-query values (hits, ranks, APs): ``(mean, lo, hi)``.

    Resample queries with replacement against a fixed gallery (resampling gallery items would put duplicates of
    the right answer into the gallery and distort recall).

    Examples
    --------
    >>> import numpy as np
    >>> hits = np.array([1, 0, 1, 1, 0, 1, 1, 0, 1, 1], dtype=float)
    >>> mean, lo, hi = bootstrap_ci(hits, seed=0)
    >>> mean, bool(lo < mean < hi)
    (0.7, True)
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError("bootstrap_ci needs a non-empty array of finite values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for s in range(0, n_resamples, 256):  # bounded memory: 256 resamples at a time
        e = min(s + 256, n_resamples)
        means[s:e] = v[rng.integers(0, v.size, size=(e - s, v.size))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(v.mean()), float(lo), float(hi)


def paired_bootstrap_test(
    ranks_a: Any, ranks_b: Any, *, k: int = 1, n_resamples: int = 10000, seed: int = 0
) -> dict[str, float]:
    """Did system B really change R@k over system A on the same queries? A two-sided paired bootstrap test.

    Per query, ``d = hit_b - hit_a``. The queries are resampled with replacement; the null distribution is the
    bootstrap distribution of the mean of d shifted to zero, and the p-value is the share of resampled means at
    least as far from zero as the observed one, ``(1 + count) / (1 + n_resamples)`` (never 0; under identical
    systems the p-values are uniform, as the tests check by simulation). See Koehn (EMNLP 2004) and Efron &
    Tibshirani (1993, ch. 16).

    Returns
    -------
    dict
        ``recall_a``, ``recall_b``, ``difference`` (b - a) and ``p_value``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.integers(1, 20, size=400)
    >>> out = paired_bootstrap_test(a, np.maximum(a - 5, 1), k=1)
    >>> out["difference"] > 0 and out["p_value"] < 0.001
    True
    """
    ra, rb = np.asarray(ranks_a).ravel(), np.asarray(ranks_b).ravel()
    if ra.shape != rb.shape or ra.size == 0:
        raise ValueError(f"paired test needs two non-empty rank arrays of one length, got {ra.shape} and {rb.shape}")
    d = (rb <= k).astype(np.float64) - (ra <= k).astype(np.float64)
    observed = d.mean()
    rng = np.random.default_rng(seed)
    extreme = 0
    for s in range(0, n_resamples, 256):
        e = min(s + 256, n_resamples)
        means = d[rng.integers(0, d.size, size=(e - s, d.size))].mean(axis=1) - observed
        extreme += int(np.sum(np.abs(means) >= abs(observed) - 1e-12))
    return {
        "recall_a": float(np.mean(ra <= k)),
        "recall_b": float(np.mean(rb <= k)),
        "difference": float(observed),
        "p_value": float((1 + extreme) / (1 + n_resamples)),
    }
