"""Trust, issue 13 (14, 16, 17): the held-out gap's bias and coverage, the correctors' sources, mAP's tie rule.

Every expectation is independent of the code under test: simulated data whose true gap is known analytically,
closed-form statistics computed with numpy, scikit-learn's average precision, a re-implementation of I0T's post-hoc
step (github.com/xfactlab/I0T, ``src/features.py``, ``remove_artifact_features``) and hand-ranked galleries.
"""

from __future__ import annotations

import numpy as np
import pytest

from workbench import PairedEmbeddings, retrieval
from workbench.compare import centroid_gap, compare_correctors, split_pairs
from workbench.correct import MeanCenter, Standardize


# -- 13.14: the held-out centroid gap -------------------------------------------------------------------------------
def _world(gap: float, n: int, dim: int, rng: np.random.Generator, noise: float = 1.0):
    """n unit pairs whose modality means are EXACTLY m_a and m_b, with ||m_a - m_b|| = gap.

    Each row is ``m + sqrt(1 - ||m||^2) v`` with v a unit vector orthogonal to m: the rows are unit, and v's
    distribution is symmetric (v and -v equally likely), so its mean is 0 and the modality's mean is m. A row of b
    is built from its a row's latent plus noise (the pairs are correlated, as an image and its caption are), and
    the latent has spread in every direction, the gap's included.
    """
    m_a, m_b = np.zeros(dim), np.zeros(dim)
    m_a[0], m_b[0], m_a[1], m_b[1] = gap / 2, -gap / 2, 0.5, 0.5

    def spread(x: np.ndarray, m: np.ndarray) -> np.ndarray:
        u = m / np.linalg.norm(m)
        x = x - np.outer(x @ u, u)
        return m + np.sqrt(1 - m @ m) * x / np.linalg.norm(x, axis=1, keepdims=True)

    latent = rng.normal(size=(n, dim)) * np.linspace(2.0, 0.5, dim)
    return spread(latent, m_a), spread(latent + noise * rng.normal(size=(n, dim)), m_b)


def test_the_simulated_world_has_the_gap_it_is_built_with():
    a, b = _world(0.1, 200_000, 16, np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-12)
    assert np.linalg.norm(a.mean(0) - b.mean(0)) == pytest.approx(0.1, abs=2e-3)


REPLICATES, N_PAIRS, DIM = 300, 250, 16


@pytest.fixture(scope="module")
def simulated():
    """REPLICATES held-out sets of N_PAIRS pairs at each true gap, with the estimate of each (seeded)."""
    rng = np.random.default_rng(2026)
    out = {}
    for gap in (0.0, 0.1, 0.45):
        runs = []
        for r in range(REPLICATES):
            a, b = _world(gap, N_PAIRS, DIM, rng)
            runs.append((np.linalg.norm(a.mean(0) - b.mean(0)), centroid_gap(a, b, n_resamples=400, seed=r)))
        out[gap] = runs
    return out


@pytest.mark.parametrize("gap", [0.1, 0.45])
def test_the_gap_interval_covers_the_true_gap_95_percent_of_the_time(simulated, gap):
    covered = np.mean([e["centroid_gap_lo"] <= gap <= e["centroid_gap_hi"] for _, e in simulated[gap]])
    assert 0.90 <= covered <= 0.99, covered


def test_no_gap_is_not_called_distinguishable_from_zero(simulated):
    flagged = np.mean([e["centroid_gap_above_noise"] for _, e in simulated[0.0]])
    assert flagged <= 0.10, flagged
    # ... while every replicate's plug-in distance is above 0 (the bias the estimate removes: sqrt(tr(S) / n))
    plug_in = np.array([p for p, _ in simulated[0.0]])
    assert plug_in.min() > 0.02
    estimate = np.array([e["centroid_gap"] for _, e in simulated[0.0]])
    assert np.median(estimate) < 0.5 * np.median(plug_in)


@pytest.mark.parametrize("gap", [0.1, 0.45])
def test_a_real_gap_stands_above_the_noise_floor(simulated, gap):
    assert np.mean([e["centroid_gap_above_noise"] for _, e in simulated[gap]]) >= 0.95
    # the squared estimate is unbiased: its mean over replicates is the true square within 3 standard errors
    squares = np.array([e["centroid_gap_squared"] for _, e in simulated[gap]])
    assert abs(squares.mean() - gap**2) < 3 * squares.std(ddof=1) / np.sqrt(len(squares))


def test_the_squared_gap_is_the_paired_u_statistic(rng):
    a, b = _world(0.2, 60, 8, rng)
    d = a - b
    n = len(d)
    # ||mean d||^2 - tr(Cov d) / n, with numpy's covariance (divisor n - 1) ...
    by_covariance = d.mean(0) @ d.mean(0) - np.trace(np.cov(d.T)) / n
    # ... equals the mean of <d_i, d_j> over ordered pairs i != j
    gram = d @ d.T
    by_pairs = (gram.sum() - np.trace(gram)) / (n * (n - 1))
    estimate = centroid_gap(a, b, n_resamples=50)
    assert estimate["centroid_gap_squared"] == pytest.approx(by_covariance, abs=1e-12)
    assert estimate["centroid_gap_squared"] == pytest.approx(by_pairs, abs=1e-12)
    assert estimate["centroid_gap"] == pytest.approx(np.sqrt(max(by_pairs, 0.0)), abs=1e-12)
    assert estimate["centroid_gap_groups"] == n
    lo, hi = estimate["centroid_gap_lo"], estimate["centroid_gap_hi"]
    assert lo <= estimate["centroid_gap"] <= hi


def test_many_to_many_pairs_are_grouped_by_image(rng):
    # 30 images with 3 captions each: the independent units are the images; with equal group sizes the estimate is
    # the U-statistic of the per-image differences x_c = image_c - mean(its captions)
    images = rng.normal(size=(30, 8)) + 1.0
    captions = np.repeat(images, 3, axis=0) + rng.normal(size=(90, 8))
    pairs = np.array([(j // 3, j) for j in range(90)])
    paired = PairedEmbeddings.from_arrays(images, captions, pairs=pairs, modalities=("image", "text"))
    ua, ub = (x.astype(np.float64) for x in (paired.a.vectors, paired.b.vectors))
    x = ua - ub.reshape(30, 3, 8).mean(axis=1)
    gram = x @ x.T
    expected = (gram.sum() - np.trace(gram)) / (30 * 29)
    estimate = centroid_gap(paired, n_resamples=50)
    assert estimate["centroid_gap_groups"] == 30
    assert estimate["centroid_gap_squared"] == pytest.approx(expected, abs=1e-10)
    # a caption that describes two images joins their groups
    joined = PairedEmbeddings.from_arrays(images, captions, pairs=np.concatenate([pairs, [(1, 0)]]),
                                          modalities=("image", "text"))
    assert centroid_gap(joined, n_resamples=50)["centroid_gap_groups"] == 29


def test_centroid_gap_bad_input():
    a = np.eye(4)
    with pytest.raises(ValueError, match="n_resamples"):
        centroid_gap(a, a, n_resamples=5)
    with pytest.raises(ValueError, match="row-paired"):
        centroid_gap(a, a[:3])
    with pytest.raises(TypeError, match="PairedEmbeddings"):
        centroid_gap(a)
    one_group = PairedEmbeddings.from_arrays(np.eye(3)[:2], np.eye(3)[1:], pairs=[(0, 0), (0, 1), (1, 1)])
    with pytest.raises(ValueError, match="2 independent groups"):
        centroid_gap(one_group, n_resamples=20)


def test_compare_table_reports_the_bias_corrected_gap_next_to_the_plug_in(rng):
    a, b = _world(0.3, 200, 12, rng)
    paired = PairedEmbeddings.from_arrays(a, b, modalities=("x", "y"))
    table = compare_correctors(paired, [MeanCenter()], n_resamples=60, probe=False, seed=3)
    _, test = split_pairs(paired, 0.5, seed=3)
    none, centred = table.rows(named=True)
    expected = centroid_gap(test, n_resamples=60, seed=3)
    for key, value in expected.items():
        assert none[key] == pytest.approx(value, abs=1e-12), key
    ta, tb = (x.astype(np.float64) for x in test.matched())
    assert none["centroid_distance"] == pytest.approx(np.linalg.norm(ta.mean(0) - tb.mean(0)), abs=1e-9)
    assert none["centroid_gap"] < none["centroid_distance"]  # the plug-in's upward bias is removed
    assert none["centroid_gap_above_noise"] is True
    # the corrected row is estimated from the corrected held-out pairs
    moved = MeanCenter().fit(*split_pairs(paired, 0.5, seed=3)[0].matched()).transform(*test.matched())
    assert centred["centroid_gap"] == pytest.approx(centroid_gap(*moved, n_resamples=60, seed=3)["centroid_gap"],
                                                    abs=1e-6)


# -- 13.16: where each corrector comes from -------------------------------------------------------------------------
def _i0t_post(image: np.ndarray, text: np.ndarray, image_mean: np.ndarray, text_mean: np.ndarray):
    """I0T's post-hoc step as its code does it: subtract each modality's mean, renormalise each row."""
    new_image, new_text = image - image_mean, text - text_mean
    return (new_image / np.linalg.norm(new_image, axis=1, keepdims=True),
            new_text / np.linalg.norm(new_text, axis=1, keepdims=True))


def test_mean_center_is_i0t_post_and_standardize_is_not(rng):
    a = rng.normal(size=(80, 6)) + 2.0
    b = (rng.normal(size=(80, 6)) - 2.0) * np.linspace(0.2, 3.0, 6)
    ua, ub = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (a, b))
    want_a, want_b = _i0t_post(ua, ub, ua.mean(0), ub.mean(0))
    got_a, got_b = MeanCenter().fit_transform(a, b)
    np.testing.assert_allclose(got_a, want_a, atol=1e-6)
    np.testing.assert_allclose(got_b, want_b, atol=1e-6)
    std_a, _ = Standardize().fit_transform(a, b)
    assert np.abs(std_a - want_a).max() > 0.05  # the per-dimension division is a different map

    # the docstrings say so
    assert "I0T" in MeanCenter.__doc__ and "remove_artifact_features" in MeanCenter.__doc__
    assert "z-score" in Standardize.__doc__.lower() and "NOT the post-hoc method of I0T" in Standardize.__doc__


# -- 13.17: average precision and ties ------------------------------------------------------------------------------
def _basis_queries(gallery_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Queries e_0..e_{Q-1} and a float32 unit gallery whose first Q coordinates are the wanted scores, exactly."""
    n_gallery, n_queries = gallery_scores.shape
    rest = np.sqrt(1.0 - (gallery_scores.astype(np.float64) ** 2).sum(axis=1))
    gallery = np.zeros((n_gallery, n_queries + 1), dtype=np.float32)
    gallery[:, :n_queries] = gallery_scores
    gallery[:, n_queries] = rest
    queries = np.eye(n_queries, n_queries + 1, dtype=np.float32)
    return queries, gallery


def _engine_ap(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    queries, gallery = _basis_queries(scores)
    # the engine's float32 scores must be the wanted ones exactly (a dot with a basis vector is one product)
    np.testing.assert_array_equal(queries @ gallery.T, gallery[:, : scores.shape[1]].T)
    pairs = np.argwhere(relevant.T)  # (query, gallery row)
    result = retrieval.per_query_ranks(queries, gallery, pairs, with_ap=True)
    assert result.average_precision is not None
    return result.average_precision


def test_average_precision_without_ties_equals_scikit_learn():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(7)
    n_gallery, n_queries = 40, 6
    scores = rng.permutation(np.arange(1, n_gallery * n_queries + 1)).reshape(n_gallery, n_queries) / 1000.0
    scores = scores.astype(np.float32)
    relevant = rng.random((n_gallery, n_queries)) < 0.25
    relevant[0] = True  # every query has a relevant item
    ap = _engine_ap(scores, relevant)
    for q in range(n_queries):
        assert len(np.unique(scores[:, q])) == n_gallery  # no ties
        assert ap[q] == pytest.approx(average_precision_score(relevant[:, q], scores[:, q]), abs=1e-12)


def _pessimistic_ap(scores: np.ndarray, relevant: np.ndarray) -> float:
    """By hand: sort by score, an irrelevant item ahead of every relevant item it ties; mean precision at hits."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], bool(relevant[i])))
    hits, total = 0, 0.0
    for position, i in enumerate(order, start=1):
        if relevant[i]:
            hits += 1
            total += hits / position
    return total / hits


def test_average_precision_with_ties_is_the_documented_pessimistic_rule():
    from sklearn.metrics import average_precision_score

    # the module docstring's example: irrelevant 0.9, relevant 0.8, relevant 0.8, irrelevant 0.8, relevant 0.5
    scores = np.array([[0.9], [0.8], [0.8], [0.8], [0.5], [0.25]], dtype=np.float32)
    relevant = np.array([[False], [True], [True], [False], [True], [False]])
    ap = _engine_ap(scores, relevant)[0]
    assert ap == pytest.approx(_pessimistic_ap(scores[:, 0], relevant[:, 0]), abs=1e-12)
    assert ap == pytest.approx((1 / 3 + 2 / 4 + 3 / 5) / 3, abs=1e-12)
    sk = average_precision_score(relevant[:, 0], scores[:, 0])
    assert sk == pytest.approx((2 / 4 + 2 / 4 + 3 / 5) / 3, abs=1e-12)  # the tied group at once
    assert ap < sk
    # a relevant item tied only with irrelevant ones: both rules agree
    relevant_one = np.array([[False], [True], [False], [False], [True], [False]])
    assert _engine_ap(scores, relevant_one)[0] == pytest.approx(
        average_precision_score(relevant_one[:, 0], scores[:, 0]), abs=1e-12)


def test_random_ties_match_the_hand_rule():
    rng = np.random.default_rng(11)
    scores = (rng.integers(1, 6, size=(30, 5)) / 16.0).astype(np.float32)  # many ties
    relevant = rng.random((30, 5)) < 0.3
    relevant[0] = True
    ap = _engine_ap(scores, relevant)
    for q in range(5):
        assert ap[q] == pytest.approx(_pessimistic_ap(scores[:, q], relevant[:, q]), abs=1e-12)


def test_the_tie_rule_of_average_precision_is_documented():
    from workbench.retrieval import _memory, _ranking

    for doc in (_ranking.__doc__, _memory.__doc__, retrieval.evaluate_retrieval.__doc__,
                retrieval.evaluate_queries.__doc__):
        assert doc is not None and "average_precision_score" in doc
    assert "0.478" in _ranking.__doc__ and "0.533" in _ranking.__doc__


def test_the_comparison_panel_shows_the_bias_corrected_gap_and_its_floor(rng):
    from workbench.panels import CorrectorComparison

    a, b = _world(0.3, 120, 8, rng)
    panel = CorrectorComparison(PairedEmbeddings.from_arrays(a, b, modalities=("x", "y")), [MeanCenter()],
                                n_resamples=30, probe=False)
    row = panel.table.row(0, named=True)
    shown = panel.widget.children[1].value
    assert (f"{row['centroid_gap']:.4f} <small>[{row['centroid_gap_lo']:.3f}, {row['centroid_gap_hi']:.3f}]</small>"
            f" <small>noise floor {row['centroid_gap_noise_floor']:.3f}</small>") in shown


# -- 13.19: why GapShift costs recall -------------------------------------------------------------------------------
def test_gap_shift_recall_drop_starts_before_renormalising():
    """The GapShift docstring's numbers: the shift alone drops image -> caption R@1 0.55 -> 0.45, renormalising 0.36."""
    from workbench import datasets
    from workbench.correct import GapShift

    a, b = (x.astype(np.float64) for x in datasets.load("liang2022/clip").matched())
    a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    s = (a.mean(0) - b.mean(0)) / 2

    def r1(x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean((x @ y.T).argmax(1) == np.arange(len(x))))

    assert r1(a, b) == pytest.approx(0.552)
    assert r1(a - s, b + s) == pytest.approx(0.454)  # shifted, NOT renormalised
    a2, b2 = GapShift(1.0).fit_transform(a, b)
    assert r1(a2.astype(np.float64), b2.astype(np.float64)) == pytest.approx(0.358)
    assert "the shift alone already drops R@1 to 0.45" in " ".join(GapShift.__doc__.split())
