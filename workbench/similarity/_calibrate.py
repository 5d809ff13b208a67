"""Calibrated similarity: a permutation null for any metric of :mod:`workbench.similarity._metrics`, an interval,
and the N x N matrix over several encoders of one item pool.

The null follows Algorithm 1 of Gröger, Wen, Brbić ("Revisiting the Platonic Representation Hypothesis: An
Aristotelian View", ICML 2026) as the ``calibrated-similarity`` package implements it (``calibrate``): b's rows are
permuted K times, which breaks the item correspondence and keeps each set's own geometry. Permutations re-index the
precomputed neighbour lists (mutual kNN, CKNNA: O(n k^2) each, in a numba kernel parallel over permutations) or the
centred features (CKA: one d_a x d_b product each) instead of recomputing the metric from scratch.
The null itself is computed in :mod:`workbench.similarity._null`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from workbench._gram import torch_device
from workbench._params import check_choice, check_int, check_number, check_seed
from workbench._validation import as_matrix
from workbench.similarity._metrics import (
    _cka_from,
    _cknna_cross,
    _cknna_norms,
    _knn,
    _overlap,
    _pair,
    _prepare,
    _reverse_slots,
    _Side,
    _unit,
)
from workbench.similarity._null import _KNN_METRICS, _CallableScorer, _null_scores, _order_index, _Scorer

__all__ = ["METRICS", "CalibratedScore", "SimilarityMatrix", "calibrated", "similarity_matrix"]

#: The metrics :func:`calibrated` knows by name (any callable ``metric(a, b) -> float`` works too, more slowly).
METRICS = ("mutual_knn", "cka", "unbiased_cka", "cknna")


@dataclass(frozen=True)
class CalibratedScore:
    """A similarity score calibrated against its permutation null (see :func:`calibrated`).

    Attributes
    ----------
    metric : str
    calibrated : float
        ``clip((raw - threshold) / (1 - threshold), 0, 1)``: 0 when the raw score is within what unrelated sets
        reach 1 - alpha of the time, 1 for a perfect score.
    raw : float
        The metric itself.
    p_value : float
        ``(1 + #{null >= raw}) / (K + 1)`` over the K permutations (never 0).
    threshold : float
        The ``ceil((1 - alpha) (K + 1))``-th smallest of the raw score and the K null scores (``tau``).
    null_mean : float
        The mean null score: the metric's baseline for unrelated sets of this size.
    n_permutations, alpha
        As called.
    raw_lo, raw_hi, calibrated_lo, calibrated_hi : float or None
        The interval of the raw score (``confidence``, half-sample bootstrap) and its image under the calibration
        map; None when ``n_bootstrap=0``.
    """

    metric: str
    calibrated: float
    raw: float
    p_value: float
    threshold: float
    null_mean: float
    n_permutations: int
    alpha: float
    raw_lo: float | None = None
    raw_hi: float | None = None
    calibrated_lo: float | None = None
    calibrated_hi: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (one row of a table)."""
        return asdict(self)

    def __iter__(self) -> Iterator[float]:
        """Unpacks as ``calibrated, raw, p_value = calibrated(...)``."""
        return iter((self.calibrated, self.raw, self.p_value))


def _threshold(observed: float, null: np.ndarray, alpha: float) -> float:
    combined = np.sort(np.concatenate([[observed], null]))
    return float(combined[_order_index(alpha, len(null))])


def _calibrate_value(x: float, tau: float, smax: float | None) -> float:
    if smax is None:
        return max(x - tau, 0.0)
    return float(np.clip((x - tau) / max(smax - tau, 1e-12), 0.0, 1.0))


# -- the interval: half-samples without replacement --------------------------------------------------------------
def _sub_side(full: _Side, cand: tuple[np.ndarray, np.ndarray] | None, h: np.ndarray) -> _Side:
    """The side of the items ``h`` alone; its neighbours are the first k of each item's longer full-set list that
    lie in ``h`` (exactly the neighbours within h), recomputed for the rare item with too few of them."""
    x = full.x[h]
    if cand is None:
        return _Side(x)
    k = full.k
    cidx, cval = cand
    pos = np.full(full.n, -1, dtype=np.int64)
    pos[h] = np.arange(len(h))
    inside = pos[cidx[h]] >= 0
    first = np.argsort(~inside, axis=1, kind="stable")[:, :k]
    idx = pos[np.take_along_axis(cidx[h], first, axis=1)]
    val = np.take_along_axis(cval[h], first, axis=1)
    short = np.flatnonzero(inside.sum(axis=1) < k)
    if len(short):  # fewer than k of the candidates were drawn: score these items against the half-sample
        scores = x[short] @ x.T
        scores[np.arange(len(short)), short] = -np.inf
        part = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        idx[short], val[short] = part, np.take_along_axis(scores, part, axis=1)
    return _Side(x, idx, val, _reverse_slots(idx))


def _width(k: int, n: int) -> int:
    """Neighbours kept per item for the half-samples: the first k of them inside a half-sample are almost always
    among the first 4k + 20 (a shortfall is recomputed exactly)."""
    return min(n - 1, 4 * k + 20)


def _interval(metric: str, sa: _Side, sb: _Side, n_bootstrap: int, confidence: float, rng: np.random.Generator,
              observed: float, bar: Any) -> tuple[float, float]:
    n = sa.n
    half = max(4, n // 2)
    if half >= n:
        raise ValueError(f"the interval needs at least 5 items (half-samples of at least 4), got {n}; pass "
                         "n_bootstrap=0")
    cands: list[tuple[np.ndarray, np.ndarray] | None] = [None, None]
    if metric in _KNN_METRICS:
        width = _width(sa.k, n)
        cands = [s.cand if s.cand is not None and s.cand[0].shape[1] >= width else _knn(s.x, width) for s in (sa, sb)]
    else:  # CKA's half-sample products in float32 (about 2x faster; errors ~1e-6, far below the interval's width)
        xa32, xb32 = sa.x.astype(np.float32), sb.x.astype(np.float32)
    values = np.empty(n_bootstrap)
    for r in range(n_bootstrap):
        h = np.sort(rng.choice(n, size=half, replace=False))
        if metric in _KNN_METRICS:
            ha, hb = _sub_side(sa, cands[0], h), _sub_side(sb, cands[1], h)
            if metric == "mutual_knn":
                values[r] = _overlap(ha, hb).mean() / ha.k
            else:
                values[r] = _cknna_cross(ha, hb) / _cknna_norms(ha, hb)
        else:
            values[r] = _cka_from(xa32[h], xb32[h], metric == "unbiased_cka")
        bar.update(1)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail]) - values.mean() + observed
    return float(lo), float(hi)


# -- public API ----------------------------------------------------------------------------------------------------
def calibrated(
    metric: str | Callable[[Any, Any], float],
    a: Any,
    b: Any,
    n_permutations: int = 1000,
    seed: int = 0,
    *,
    k: int = 10,
    alpha: float = 0.05,
    n_bootstrap: int = 100,
    confidence: float = 0.95,
    smax: float | None = 1.0,
    progress: bool = True,
    device: Any = None,
) -> CalibratedScore:
    """A similarity score with its permutation null: calibrated score, raw score, p-value and an interval.

    **Null** (Gröger, Wen, Brbić, ICML 2026, Algorithm 1; the ``calibrated-similarity`` package's ``calibrate``).
    The rows of b are permuted K = ``n_permutations`` times (permutation j is the j-th ``rng.permutation(n)`` of
    ``numpy.random.default_rng(seed)``), which pairs each item's a-embedding with another item's b-embedding and
    keeps both geometries intact. With the raw score ``s`` and the null scores ``s_1 .. s_K``:

    - ``threshold`` tau: the ``ceil((1 - alpha)(K + 1))``-th smallest of ``{s, s_1, .., s_K}``;
    - ``p_value = (1 + #{j : s_j >= s}) / (K + 1)``;
    - ``calibrated = clip((s - tau) / (smax - tau), 0, 1)`` (``max(s - tau, 0)`` with ``smax=None``): 0 for a score
      that unrelated sets reach, a fraction of the way from there to the best possible score otherwise.

    **Interval.** ``n_bootstrap`` half-samples of the items drawn without replacement (a duplicated item would be
    its own nearest neighbour), the metric recomputed on each; the raw interval is their ``confidence`` percentiles
    shifted to centre on ``s`` (a half-sample's neighbourhoods are wider, which moves its mean, not its spread; for a
    mean-like statistic a half-sample without replacement has the variance of the full-sample estimate). The
    calibrated interval is the raw one through the calibration map with tau fixed (the uncertainty of tau itself,
    small with 1,000 permutations, is not included).

    **Cost.** The kNN metrics find each set's neighbours once (an n x n cosine pass) and re-index them per
    permutation (O(n k^2), compiled): at 5,000 items x 512 dimensions the 1,000-permutation null took about 2.6 s of
    CPU (``benchmarks/bench_similarity.py``). CKA needs one (d_a x n)(n x d_b) product per permutation (n d_a d_b
    multiply-adds; rows are first reduced to n columns when d > n): about 12 ms each in float32 on 2 cores at that
    size. Where the CPU has bfloat16 matrix units (Intel AMX, AVX512-BF16) and n d_a d_b >= 2^26 they run in
    bfloat16 (about 3.5 ms): 16 permutations are also scored in float32, which bounds the relative error of the
    others (4x the largest seen there; float32 throughout when that exceeds 1e-3), and every null score within its
    bound of the raw score or of the threshold is recomputed in float32, so ``threshold``, ``p_value`` and
    ``calibrated`` equal the float32 computation's; ``null_mean`` may differ by less than the mean bound (~1e-4
    relative). The interval's half-samples are scored in float32.

    Parameters
    ----------
    metric : {"mutual_knn", "cka", "unbiased_cka", "cknna"} or callable
        A name from :data:`METRICS` (fast: permutations re-index precomputed structures) or any
        ``metric(a, b) -> float`` (called once per permutation with ``b[perm]``; no interval).
    a, b : (n x d_a), (n x d_b) arrays or Embeddings of the same n items (row i of both is item i)
    n_permutations : int, default 1000
    seed : int, default 0
        Seeds the permutations and the half-samples.
    k : int, default 10
        Neighbourhood size of mutual_knn and cknna.
    alpha : float, default 0.05
        Level of the threshold.
    n_bootstrap : int, default 100
        Half-samples for the interval (0: no interval).
    confidence : float, default 0.95
    smax : float or None, default 1.0
        The best possible score (1 for the four named metrics).
    progress : bool, default True
        A progress bar (``tqdm.auto``) over permutations and half-samples.
    device : None, "cpu", "cuda" or a torch.device, default None
        Where CKA's null products run, in float32 (TF32 off), e.g. ``"cuda"``; None: on the CPU, in bfloat16
        where it has bfloat16 matrix units (as above). The kNN metrics' compiled kernels run on the CPU.

    Returns
    -------
    CalibratedScore
        ``calibrated``, ``raw``, ``p_value``, ``threshold``, ``null_mean``, the interval and the settings; it
        unpacks as ``calibrated, raw, p_value``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(300, 32))
    >>> b = a @ np.linalg.qr(rng.normal(size=(32, 32)))[0] + 0.5 * rng.normal(size=(300, 32))
    >>> s = calibrated("mutual_knn", a, b, n_permutations=200, progress=False)
    >>> s.p_value < 0.01 and 0 < s.calibrated < s.raw < 1 and s.raw_lo < s.raw < s.raw_hi
    True
    >>> round(s.null_mean, 2)   # unrelated sets share about k / (n - 1) of their neighbours
    0.03
    >>> score, raw, p = calibrated("mutual_knn", a, rng.normal(size=(300, 32)), n_permutations=200, progress=False)
    >>> score, p > 0.05
    (0.0, True)
    """
    n_permutations = check_int(n_permutations, "n_permutations")
    seed, alpha = check_seed(seed), check_number(alpha, "alpha", low=0, high=1, inclusive=False)
    n_bootstrap = check_int(n_bootstrap, "n_bootstrap", low=0)
    device = torch_device(device)
    confidence = check_number(confidence, "confidence", low=0, high=1, inclusive=False)
    smax = check_number(smax, "smax", low=0, inclusive=False, allow_none=True)
    scorer: _Scorer | _CallableScorer
    if callable(metric):
        name = getattr(metric, "__name__", type(metric).__name__)
        scorer, n = _CallableScorer(metric, a, b), len(np.asarray(b))
        if n_bootstrap:
            n_bootstrap = 0  # a user metric gets no interval (documented)
    else:
        name = check_choice(metric, "metric", METRICS)
        knn = name in _KNN_METRICS
        width = _width(k, len(as_matrix(b, "b"))) if knn and n_bootstrap and isinstance(k, int) else None
        sa, sb = _pair(a, b, k if knn else None, min_rows=2 if name == "cka" else 4, width=width)
        scorer, n = _Scorer(name, sa, sb, device), sa.n
    rng = np.random.default_rng(seed)
    from tqdm.auto import tqdm

    with tqdm(total=n_permutations + n_bootstrap, desc=f"calibrating {name}", disable=not progress) as bar:
        null = _null_scores(scorer, rng, n, n_permutations, alpha, bar)
        observed = scorer.observed
        tau = _threshold(observed, null, alpha)
        result = CalibratedScore(
            metric=name, calibrated=_calibrate_value(observed, tau, smax), raw=observed,
            p_value=float((1 + np.sum(null >= observed)) / (n_permutations + 1)), threshold=tau,
            null_mean=float(null.mean()), n_permutations=n_permutations, alpha=alpha,
        )
        if n_bootstrap and isinstance(scorer, _Scorer):
            lo, hi = _interval(name, scorer.sa, scorer.sb, n_bootstrap, confidence, rng, observed, bar)
            result = CalibratedScore(**{**result.as_dict(), "raw_lo": lo, "raw_hi": hi,
                                        "calibrated_lo": _calibrate_value(lo, tau, smax),
                                        "calibrated_hi": _calibrate_value(hi, tau, smax)})
    return result


@dataclass(frozen=True)
class SimilarityMatrix:
    """Pairwise similarity of several encoders of one item pool (see :func:`similarity_matrix`).

    ``raw``, ``calibrated`` and ``p_value`` are (N x N) float arrays in the order of ``names``; the diagonal holds
    each encoder against itself (raw 1 for every named metric; calibrated and p_value NaN: not computed).
    """

    names: tuple[str, ...]
    metric: str
    raw: np.ndarray
    calibrated: np.ndarray
    p_value: np.ndarray

    def to_frame(self) -> pl.DataFrame:
        """One row per ordered pair: ``a``, ``b``, ``raw``, ``calibrated``, ``p_value``."""
        rows = [{"a": x, "b": y, "raw": float(self.raw[i, j]), "calibrated": float(self.calibrated[i, j]),
                 "p_value": float(self.p_value[i, j])}
                for i, x in enumerate(self.names) for j, y in enumerate(self.names)]
        return pl.DataFrame(rows)


def similarity_matrix(
    embeddings: Mapping[str, Any] | Sequence[Any],
    metric: str = "mutual_knn",
    *,
    k: int = 10,
    n_permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    progress: bool = True,
    device: Any = None,
) -> SimilarityMatrix:
    """Calibrated similarity of every pair of several encoders of one item pool: an N x N matrix.

    Each encoder's neighbour lists (or centred features) are computed once; each pair is then calibrated as by
    :func:`calibrated` (same seed for every pair, no interval).

    Parameters
    ----------
    embeddings : mapping of name -> (n x d_i) array or Embeddings, or a sequence (named "0", "1", ...)
        Row r of every set is item r (for Embeddings with ids, the ids must agree row by row).
    metric, k, n_permutations, alpha, seed
        As in :func:`calibrated`.
    progress : bool, default True
        One bar over the pairs.
    device : None, "cpu", "cuda" or a torch.device, default None
        As in :func:`calibrated`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> base = rng.normal(size=(200, 16))
    >>> m = similarity_matrix({"x": base, "y": base + 0.3 * rng.normal(size=(200, 16)),
    ...                        "z": rng.normal(size=(200, 16))}, n_permutations=100, progress=False)
    >>> m.names, bool(m.calibrated[0, 1] > 0.5), float(m.calibrated[0, 2])
    (('x', 'y', 'z'), True, 0.0)
    """
    name = check_choice(metric, "metric", METRICS)
    n_permutations, seed = check_int(n_permutations, "n_permutations"), check_seed(seed)
    alpha = check_number(alpha, "alpha", low=0, high=1, inclusive=False)
    device = torch_device(device)
    items = list(embeddings.items()) if isinstance(embeddings, Mapping) else [
        (str(i), e) for i, e in enumerate(embeddings)]
    if len(items) < 2:
        raise ValueError(f"embeddings needs at least 2 encoders to compare, got {len(items)}")
    ids = [e.ids.to_list() for _, e in items if hasattr(e, "ids") and hasattr(e, "modality")]
    if len(ids) == len(items) and any(i != ids[0] for i in ids):
        raise ValueError("embeddings: the encoders' ids differ row by row; put every set in one item order first "
                         "(e.g. emb.subset(rows) with rows from the ids)")
    units = [(str(n), _unit(e, str(n))) for n, e in items]
    sizes = {len(u) for _, u in units}
    if len(sizes) != 1:
        raise ValueError(f"embeddings: every encoder must embed the same items, got row counts "
                         f"{[len(u) for _, u in units]}")
    n = sizes.pop()
    knn = name in _KNN_METRICS
    if n < (2 if name == "cka" else 4):
        raise ValueError(f"embeddings need at least {2 if name == 'cka' else 4} items for {name}, got {n}")
    kk = check_int(k, "k", high=n - 1) if knn else None
    sides = [_prepare(u, kk) for _, u in units]
    size = len(sides)
    raw, cal, pv = np.eye(size), np.full((size, size), np.nan), np.full((size, size), np.nan)
    from tqdm.auto import tqdm

    pairs = [(i, j) for i in range(size) for j in range(i + 1, size)]
    for i, j in tqdm(pairs, desc=f"similarity matrix ({name})", disable=not progress):
        scorer = _Scorer(name, sides[i], sides[j], device)
        null = _null_scores(scorer, np.random.default_rng(seed), n, n_permutations, alpha)
        tau = _threshold(scorer.observed, null, alpha)
        raw[i, j] = raw[j, i] = scorer.observed
        cal[i, j] = cal[j, i] = _calibrate_value(scorer.observed, tau, 1.0)
        pv[i, j] = pv[j, i] = (1 + np.sum(null >= scorer.observed)) / (n_permutations + 1)
    return SimilarityMatrix(tuple(n for n, _ in units), name, raw, cal, pv)
