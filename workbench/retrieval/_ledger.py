"""The per-query flip ledger: which queries one system gains and which it loses at R@K against another.

A net change of R@1 hides its parts: +0.2 points can be 300 queries gained and 280 lost. :func:`flip_ledger`
compares two systems query by query (two correctors, two slider positions, two models, a re-ranker or not) and lists
every query whose hit at K changes, with an exact McNemar test on those discordant queries.

For many systems at once: :func:`holm` (family-wise adjusted p-values), :func:`significance_letters` (ranx-style
superscripts: which systems each one beats) and :func:`detectable_difference` (the smallest change a paired test
on this many queries detects at 80% power).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from workbench._params import check_choice, check_int
from workbench._validation import relevance_pairs
from workbench.retrieval._memory import per_query_ranks
from workbench.retrieval._ranking import RankResult, count_at_least

__all__ = [
    "FlipLedger",
    "detectable_difference",
    "flip_ledger",
    "holm",
    "mcnemar_exact",
    "ranks_from_scores",
    "significance_letters",
]


def mcnemar_exact(gained: int, lost: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts (McNemar, Psychometrika 1947).

    Under "both systems hit as often", each discordant query is a gain or a loss with probability 1/2, so
    ``p = min(1, 2 P(X <= min(gained, lost)))`` with ``X ~ Binomial(gained + lost, 1/2)`` (1 when nothing flips):
    statsmodels' ``mcnemar(exact=True)`` and ``scipy.stats.binomtest(gained, gained + lost).pvalue``.

    Examples
    --------
    >>> mcnemar_exact(10, 2)   # 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * 79 / 4096
    0.03857421875
    """
    gained, lost = check_int(gained, "gained", low=0), check_int(lost, "lost", low=0)
    m = gained + lost
    if m == 0:
        return 1.0
    from scipy.stats import binom

    return float(min(1.0, 2.0 * binom.cdf(min(gained, lost), m, 0.5)))


def ranks_from_scores(scores: Any, relevance: Any = None) -> np.ndarray:
    """1-based rank of each query's best relevant item in a (Q x G) score matrix, with the engine's tie rule.

    ``rank = 1 + #{irrelevant items scoring >= the best relevant score}`` (ties count against the query, as in
    every rank of :mod:`workbench.retrieval`). ``relevance``: ``(query, gallery)`` pairs; default, for a square
    matrix, item i is relevant to query i.

    Examples
    --------
    >>> import numpy as np
    >>> ranks_from_scores(np.array([[0.9, 0.9, 0.1], [0.2, 0.5, 0.7], [0.0, 0.3, 0.8]])).tolist()
    [2, 2, 1]
    """
    s = np.asarray(scores)
    if s.ndim != 2 or s.size == 0 or s.dtype.kind not in "biuf":
        raise ValueError(f"scores must be a non-empty (queries x gallery) matrix of numbers, got shape {s.shape}")
    s = s.astype(np.float64, copy=True)
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; a NaN score has no rank")
    if relevance is None:
        if s.shape[0] != s.shape[1]:
            raise ValueError(f"scores are {s.shape[0]} x {s.shape[1]}: pass relevance=(query, gallery) pairs (the "
                             "default, item i relevant to query i, needs a square matrix)")
        pairs = np.repeat(np.arange(len(s))[:, None], 2, axis=1)
    else:
        pairs = relevance_pairs(relevance, s.shape[0], s.shape[1], "relevance")
    best = np.full(len(s), -np.inf)
    np.maximum.at(best, pairs[:, 0], s[pairs[:, 0], pairs[:, 1]])
    s[pairs[:, 0], pairs[:, 1]] = -np.inf  # relevant items never count against the best one
    return 1 + count_at_least(s, best[:, None])[:, 0]


def _system(x: Any, name: str, relevance: Any, direction: str) -> tuple[np.ndarray, Any]:
    """Per-query ranks of one system, and the query ids when the system knows them."""
    if isinstance(x, RankResult):
        return np.asarray(x.ranks), None
    if hasattr(x, "pairs") and hasattr(x, "matched"):  # a PairedEmbeddings
        p = x if direction == "a_to_b" else x.swap()
        return per_query_ranks(p.a.vectors, p.b.vectors, p.pairs).ranks, p.a.ids
    if isinstance(x, tuple) and len(x) == 2:  # (queries, gallery) embeddings
        q, g = np.asarray(x[0]), np.asarray(x[1])
        rel = relevance if relevance is not None else np.repeat(np.arange(len(q))[:, None], 2, axis=1)
        return per_query_ranks(q, g, rel).ranks, None
    arr = np.asarray(x)
    if arr.ndim == 1:
        if arr.size == 0 or arr.dtype.kind not in "iu" or arr.min() < 1:
            raise ValueError(f"{name}: a 1-D array is read as per-query ranks and must hold integers >= 1")
        return arr.astype(np.int64), None
    if arr.ndim == 2:
        return ranks_from_scores(arr, relevance), None
    raise TypeError(f"{name} must be per-query ranks (1-D), a score matrix (2-D), a (queries, gallery) pair of "
                    f"embeddings, a PairedEmbeddings or a RankResult; got {type(x).__name__}")


@dataclass(frozen=True)
class FlipLedger:
    """The queries whose hit at K changes between two systems (see :func:`flip_ledger`).

    Attributes
    ----------
    frame : polars.DataFrame
        One row per flipped query, sorted by query: ``query`` (Int64, the query's row), ``before_rank``,
        ``after_rank`` (Int64, 1-based, the engine's tie rule) and ``change`` (String: ``"gained"`` for
        miss -> hit, ``"lost"`` for hit -> miss); plus ``query_id`` when a system is a PairedEmbeddings (the
        query modality's ids, for showing each flipped query's media).
    k : int
    n_queries : int
    gained, lost : int
        Queries that go miss -> hit and hit -> miss (the discordant pairs).
    both_hit, both_miss : int
    recall_before, recall_after : float
        R@k of each system.
    p_value : float
        Exact two-sided McNemar p-value (:func:`mcnemar_exact`).
    """

    frame: pl.DataFrame
    k: int
    n_queries: int
    gained: int
    lost: int
    both_hit: int
    both_miss: int
    recall_before: float
    recall_after: float
    p_value: float

    @property
    def delta(self) -> float:
        """``recall_after - recall_before`` = ``(gained - lost) / n_queries``."""
        return (self.gained - self.lost) / self.n_queries

    def summary(self) -> dict[str, Any]:
        """The counts, recalls, delta and p-value as one dict (a table row)."""
        return {"k": self.k, "n_queries": self.n_queries, "gained": self.gained, "lost": self.lost,
                "both_hit": self.both_hit, "both_miss": self.both_miss, "recall_before": self.recall_before,
                "recall_after": self.recall_after, "delta": self.delta, "p_value": self.p_value}

    def __repr__(self) -> str:
        return (f"FlipLedger(R@{self.k}: {self.recall_before:.4f} -> {self.recall_after:.4f} over {self.n_queries} "
                f"queries; {self.gained} gained, {self.lost} lost; McNemar exact p = {self.p_value:.4g})")


def flip_ledger(
    before: Any,
    after: Any,
    *,
    k: int = 1,
    relevance: Any = None,
    direction: str = "a_to_b",
) -> FlipLedger:
    """Which queries go hit -> miss and miss -> hit at R@k between two systems, with an exact McNemar test.

    Parameters
    ----------
    before, after
        Each one of: per-query ranks (1-D integer array, or a :class:`RankResult`); a (Q x G) score matrix (ranks
        by :func:`ranks_from_scores`: relevance pairs, default the diagonal; re-rankers give such scores); a
        ``(queries, gallery)`` tuple of embeddings (ranked by :func:`per_query_ranks` with ``relevance``, default
        row i with row i); or a :class:`~workbench.data.PairedEmbeddings` (its ``a`` items query its ``b`` items,
        or the reverse with ``direction="b_to_a"``). The two may be of different kinds but must rank the same
        queries in the same order.
    k : int, default 1
        The cut-off: a query hits when its rank is <= k.
    relevance : (P x 2) pairs, optional
        ``(query, gallery)`` pairs for score matrices and embedding tuples.
    direction : {"a_to_b", "b_to_a"}
        Which side of a PairedEmbeddings queries.

    Returns
    -------
    FlipLedger
        ``frame`` (one row per flipped query: ``query``, ``before_rank``, ``after_rank``, ``change``
        [, ``query_id``]) and the counts, recalls and exact McNemar ``p_value``.

    Examples
    --------
    >>> import numpy as np
    >>> ledger = flip_ledger(np.array([1, 3, 1, 2, 1]), np.array([2, 1, 1, 1, 1]), k=1)
    >>> ledger.frame.rows()
    [(0, 1, 2, 'lost'), (1, 3, 1, 'gained'), (3, 2, 1, 'gained')]
    >>> ledger.gained, ledger.lost, ledger.delta, ledger.p_value
    (2, 1, 0.2, 1.0)
    """
    k = check_int(k, "k")
    direction = check_choice(direction, "direction", ("a_to_b", "b_to_a"))
    rb, ids_b = _system(before, "before", relevance, direction)
    ra, ids_a = _system(after, "after", relevance, direction)
    if rb.shape != ra.shape:
        raise ValueError(f"before ranks {len(rb)} queries but after ranks {len(ra)}; both systems must rank the same "
                         "queries in the same order")
    if ids_b is not None and ids_a is not None and not ids_b.equals(ids_a):
        raise ValueError("before and after query different items (their query ids differ); compare one query set")
    ids = ids_b if ids_b is not None else ids_a
    hit_b, hit_a = rb <= k, ra <= k
    flipped = np.flatnonzero(hit_b != hit_a)
    data: dict[str, Any] = {
        "query": pl.Series("query", flipped, dtype=pl.Int64),
        "before_rank": pl.Series("before_rank", rb[flipped], dtype=pl.Int64),
        "after_rank": pl.Series("after_rank", ra[flipped], dtype=pl.Int64),
        "change": pl.Series("change", np.where(hit_a[flipped], "gained", "lost").tolist(), dtype=pl.String),
    }
    if ids is not None:
        data["query_id"] = ids.gather(flipped)
    gained, lost = int(np.sum(hit_a & ~hit_b)), int(np.sum(hit_b & ~hit_a))
    return FlipLedger(
        frame=pl.DataFrame(data), k=k, n_queries=len(rb), gained=gained, lost=lost,
        both_hit=int(np.sum(hit_a & hit_b)), both_miss=int(np.sum(~hit_a & ~hit_b)),
        recall_before=float(hit_b.mean()), recall_after=float(hit_a.mean()), p_value=mcnemar_exact(gained, lost),
    )


# -- many systems at once: multiplicity, significance letters, power ---------------------------------------------
def holm(p_values: Any) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm, Scandinavian Journal of Statistics 1979).

    With the m p-values sorted ascending, ``p_(i)`` becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``; rejecting
    the adjusted p-values below alpha controls the family-wise error rate at alpha (as statsmodels'
    ``multipletests(method="holm")``). NaN entries are left out of the family and stay NaN.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, 0.005]).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must lie in [0, 1] (NaN for a missing one)")
    out = np.full(p.shape, np.nan)
    keep = np.flatnonzero(~np.isnan(p))
    m = len(keep)
    if m == 0:
        return out
    order = keep[np.argsort(p[keep], kind="stable")]
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out


def significance_letters(hits: Any, *, alpha: float = 0.05) -> list[str]:
    """ranx-style superscripts: for each system, the letters of the systems it beats significantly.

    ``hits`` is (S x Q) booleans: system s hits query q. Every pair of systems is compared with the exact McNemar
    test (:func:`mcnemar_exact`); the ``S (S - 1) / 2`` p-values are Holm-adjusted together (:func:`holm`), and
    system i gets system j's letter (``"a"`` for the first system, ``"b"`` for the second, ...) when the adjusted
    p-value is below ``alpha`` and i hits more queries than j (as ranx's ``compare`` marks each run with the runs it
    is significantly better than; Bassani, ECIR 2022).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> base = rng.random(400) < 0.5
    >>> better = base | (rng.random(400) < 0.3)       # gains many queries, loses none
    >>> significance_letters(np.stack([base, better, base.copy()]))
    ['', 'ac', '']
    """
    h = np.asarray(hits, dtype=bool)
    if h.ndim != 2 or h.shape[1] == 0:
        raise ValueError(f"hits must be a (systems x queries) boolean matrix, got shape {h.shape}")
    if len(h) > 26:
        raise ValueError(f"significance letters name at most 26 systems, got {len(h)}")
    pairs = [(i, j) for i in range(len(h)) for j in range(i + 1, len(h))]
    p = [mcnemar_exact(int(np.sum(h[i] & ~h[j])), int(np.sum(h[j] & ~h[i]))) for i, j in pairs]
    adjusted = holm(p) if pairs else np.array([])
    letters = [""] * len(h)
    totals = h.sum(axis=1)
    for (i, j), q in zip(pairs, adjusted, strict=True):
        if q < alpha and totals[i] != totals[j]:
            win, lose = (i, j) if totals[i] > totals[j] else (j, i)
            letters[win] += chr(ord("a") + lose)
    return ["".join(sorted(x)) for x in letters]


def detectable_difference(n_queries: int, discordance: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest change in R@K that a paired (McNemar) test on ``n_queries`` queries detects with this power.

    With ``psi`` the share of discordant queries (hit by one system only), McNemar's test at two-sided level alpha
    needs ``n = (z_{1-alpha/2} sqrt(psi) + z_{power} sqrt(psi - delta^2))^2 / delta^2`` queries to detect a
    difference delta with the given power (Connor, Biometrics 1987, eq. 3). Solved for delta:

    ``delta = sqrt(psi) (z_a sqrt(n) + z_b sqrt(n - z_a^2 + z_b^2)) / (n + z_b^2)``, ``z_a = z_{1-alpha/2}``,
    ``z_b = z_{power}``

    (about ``(z_a + z_b) sqrt(psi / n)`` for large n; capped at ``psi``, the largest possible difference).

    Examples
    --------
    >>> round(detectable_difference(250, 0.10), 4)   # 250 held-out queries, 10% discordant: (1.96 + 0.84) * 0.02
    0.0558
    """
    n = check_int(n_queries, "n_queries")
    psi = float(discordance)
    if not 0 < psi <= 1:
        raise ValueError(f"discordance must be in (0, 1], got {discordance}")
    from scipy.stats import norm

    za, zb = norm.ppf(1 - alpha / 2), norm.ppf(power)
    root = n - za**2 + zb**2
    if root < 0:
        return psi
    delta = np.sqrt(psi) * (za * np.sqrt(n) + zb * np.sqrt(root)) / (n + zb**2)
    return float(min(delta, psi))
