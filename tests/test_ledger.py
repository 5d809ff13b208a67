"""workbench.retrieval.flip_ledger: counts equal a brute-force comparison of per-query ranks, ranks from score
matrices equal a brute-force count with the pessimistic tie rule, and the McNemar p-value equals scipy's exact
binomial test on the discordant pairs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from workbench.correct import GapShift
from workbench.data import PairedEmbeddings
from workbench.retrieval import flip_ledger, mcnemar_exact, per_query_ranks, ranks_from_scores


def _brute_rank(row, relevant):
    best = max(row[j] for j in relevant)
    return 1 + sum(1 for j, v in enumerate(row) if j not in relevant and v >= best)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(1, 80), k=st.integers(1, 6))
def test_counts_equal_brute_force_comparison_of_ranks(seed, n, k):
    rng = np.random.default_rng(seed)
    before, after = rng.integers(1, 10, size=n), rng.integers(1, 10, size=n)
    ledger = flip_ledger(before, after, k=k)
    gained = [q for q in range(n) if before[q] > k and after[q] <= k]
    lost = [q for q in range(n) if before[q] <= k and after[q] > k]
    assert (ledger.gained, ledger.lost) == (len(gained), len(lost))
    assert ledger.frame["query"].to_list() == sorted(gained + lost)
    for q, b, a, change in ledger.frame.iter_rows():
        assert (b, a) == (before[q], after[q]) and change == ("gained" if q in gained else "lost")
    assert ledger.both_hit == sum(1 for q in range(n) if before[q] <= k and after[q] <= k)
    assert ledger.both_miss == n - ledger.gained - ledger.lost - ledger.both_hit
    assert ledger.delta == pytest.approx(np.mean(after <= k) - np.mean(before <= k))
    assert ledger.p_value == pytest.approx(binomtest(len(gained), len(gained) + len(lost)).pvalue if gained or lost
                                           else 1.0)


@pytest.mark.parametrize(("gained", "lost"), [(0, 0), (1, 0), (10, 2), (2, 10), (7, 7), (300, 280), (0, 25)])
def test_mcnemar_equals_scipy_exact_binomial(gained, lost):
    expected = 1.0 if gained + lost == 0 else binomtest(gained, gained + lost, 0.5).pvalue
    assert mcnemar_exact(gained, lost) == pytest.approx(expected, rel=1e-12)


def test_ranks_from_scores_follow_the_pessimistic_tie_rule():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, size=(30, 12)).astype(float)  # many ties
    relevance = [(q, j) for q in range(30) for j in rng.choice(12, size=rng.integers(1, 3), replace=False)]
    ranks = ranks_from_scores(scores, relevance)
    for q in range(30):
        rel = {j for qq, j in relevance if qq == q}
        assert ranks[q] == _brute_rank(scores[q], rel)


def test_score_matrices_and_embeddings_give_the_engine_ranks():
    rng = np.random.default_rng(2)
    q, g = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    engine = per_query_ranks(q, g, np.repeat(np.arange(50)[:, None], 2, axis=1)).ranks
    assert ranks_from_scores(q @ g.T).tolist() == engine.tolist()  # no ties in continuous data
    ledger = flip_ledger((q, g), q @ g.T, k=3)
    assert ledger.gained == ledger.lost == 0 and ledger.frame.height == 0 and ledger.p_value == 1.0


def test_paired_embeddings_before_and_after_a_corrector():
    rng = np.random.default_rng(3)
    n, d = 120, 16
    a = rng.normal(size=(n, d)) + 1.5
    b = a + 1.2 * rng.normal(size=(n, d)) - 1.5
    p = PairedEmbeddings.from_arrays(a, b, modalities=("image", "text"))
    a2, b2 = GapShift(1.0).fit_transform(p)
    moved = PairedEmbeddings.from_arrays(a2, b2, modalities=("image", "text"))
    for direction, (qa, qb, qa2, qb2) in (("a_to_b", (a, b, a2, b2)), ("b_to_a", (b, a, b2, a2))):
        ledger = flip_ledger(p, moved, k=1, direction=direction)
        rb = [_brute_rank(row, {i}) for i, row in enumerate(_u(qa) @ _u(qb).T)]
        ra = [_brute_rank(row, {i}) for i, row in enumerate(_u(qa2) @ _u(qb2).T)]
        gained = [i for i in range(n) if rb[i] > 1 and ra[i] == 1]
        lost = [i for i in range(n) if rb[i] == 1 and ra[i] > 1]
        assert (ledger.gained, ledger.lost) == (len(gained), len(lost))
        assert ledger.frame["query"].to_list() == sorted(gained + lost)
        assert ledger.frame.columns == ["query", "before_rank", "after_rank", "change", "query_id"]
        assert ledger.frame["query_id"].to_list() == [p.a.ids[i] if direction == "a_to_b" else p.b.ids[i]
                                                     for i in ledger.frame["query"]]
        assert ledger.frame.schema["before_rank"] == pl.Int64
        assert ledger.recall_before == pytest.approx(np.mean(np.array(rb) == 1))
        assert "gained" in repr(ledger) and ledger.summary()["delta"] == pytest.approx(ledger.delta)


def _u(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="same queries"):
        flip_ledger(np.array([1, 2]), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="integers >= 1"):
        flip_ledger(np.array([0, 2]), np.array([1, 2]))
    with pytest.raises(ValueError, match="relevance"):
        flip_ledger(np.zeros((3, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="NaN"):
        ranks_from_scores(np.array([[np.nan, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="k must be"):
        flip_ledger(np.array([1]), np.array([1]), k=0)
    with pytest.raises(TypeError, match="per-query ranks"):
        flip_ledger(np.zeros((2, 2, 2)), np.array([1, 1]))
