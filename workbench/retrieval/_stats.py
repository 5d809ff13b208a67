"""Recall@k from ranks and the uncertainty of retrieval metrics: bootstrap intervals and a paired test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench._params import check_int, check_ints


def recall_at_k(ranks: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """Fraction of queries whose first relevant item is within the top k, for each k.

    Examples
    --------
    >>> recall_at_k(np.array([1, 2, 7, 30]), ks=(1, 5, 10))
    {1: 0.25, 5: 0.5, 10: 0.75}
    """
    ranks = np.asarray(ranks)
    return {k: float(np.mean(ranks <= k)) for k in check_ints(ks, "ks")}


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
    n_resamples = check_int(n_resamples, "n_resamples")
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
    k, n_resamples = check_int(k, "k"), check_int(n_resamples, "n_resamples")
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
