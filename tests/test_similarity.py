"""workbench.similarity: each metric against an independent dense reimplementation of its published formula, the
permutation null against the calibrated-similarity package (Gröger et al. 2026) fed the same permutations, and the
property tests of issue 17 (rotation invariance, self-similarity 1, calibrated ~ 0 for independent sets)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.similarity import (
    calibrated,
    cka,
    cknna,
    mutual_knn,
    neighbourhood_agreement,
    similarity_matrix,
)
from workbench.similarity._calibrate import _sub_side
from workbench.similarity._metrics import _knn, _prepare


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- dense references: numpy translations of platonic-rep's metrics.py (Huh et al. 2024), written from the formulas
def _ref_knn(x, k):
    s = _unit(x) @ _unit(x).T
    np.fill_diagonal(s, -1e8)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def _ref_mutual_knn(a, b, k):
    n = len(a)
    ma, mb = np.zeros((n, n)), np.zeros((n, n))
    ma[np.arange(n)[:, None], _ref_knn(a, k)] = 1
    mb[np.arange(n)[:, None], _ref_knn(b, k)] = 1
    return float(((ma * mb).sum(axis=1) / k).mean())


def _ref_hsic_biased(k_, l_):
    n = len(k_)
    h = np.eye(n) - 1.0 / n
    return np.trace(k_ @ h @ l_ @ h)


def _ref_hsic_unbiased(k_, l_):
    m = len(k_)
    kt, lt = k_.copy(), l_.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    value = np.sum(kt * lt.T) + kt.sum() * lt.sum() / ((m - 1) * (m - 2)) - 2 * np.sum(kt @ lt) / (m - 2)
    return value / (m * (m - 3))


def _ref_cka(a, b, unbiased):
    k_, l_ = _unit(a) @ _unit(a).T, _unit(b) @ _unit(b).T
    f = _ref_hsic_unbiased if unbiased else _ref_hsic_biased
    return f(k_, l_) / np.sqrt(f(k_, k_) * f(l_, l_))


def _ref_cknna(a, b, k):
    n = len(a)
    k_, l_ = _unit(a) @ _unit(a).T, _unit(b) @ _unit(b).T

    def sim(x, y):
        mx, my = np.zeros((n, n)), np.zeros((n, n))
        mx[np.arange(n)[:, None], np.argsort(-np.where(np.eye(n, dtype=bool), -np.inf, x), axis=1)[:, :k]] = 1
        my[np.arange(n)[:, None], np.argsort(-np.where(np.eye(n, dtype=bool), -np.inf, y), axis=1)[:, :k]] = 1
        mask = mx * my
        return _ref_hsic_unbiased(mask * x, mask * y)

    return sim(k_, l_) / np.sqrt(sim(k_, k_) * sim(l_, l_))


def _related(n=120, d=12, noise=0.7, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    b = np.concatenate([a, rng.normal(size=(n, 3))], axis=1) + noise * rng.normal(size=(n, d + 3))
    return a, b


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_equal_dense_reference_formulas(seed):
    a, b = _related(seed=seed)
    assert mutual_knn(a, b, k=7) == pytest.approx(_ref_mutual_knn(a, b, 7), abs=1e-12)
    assert neighbourhood_agreement(a, b, k=7).mean() == pytest.approx(mutual_knn(a, b, k=7), abs=1e-12)
    assert cka(a, b) == pytest.approx(_ref_cka(a, b, False), rel=1e-10)
    assert cka(a, b, unbiased=True) == pytest.approx(_ref_cka(a, b, True), rel=1e-9)
    assert cknna(a, b, k=7) == pytest.approx(_ref_cknna(a, b, 7), rel=1e-9)


def test_neighbourhood_agreement_by_hand():
    # a: {0,1} and {2,3} are neighbours; b: 0's nearest is 1 still, but 2 and 3 are each nearest to 0 / 1
    a = np.array([[1.0, 0.0], [0.95, 0.05], [0.0, 1.0], [0.05, 0.95]])
    b = np.array([[1.0, 0.0], [0.95, 0.05], [0.9, 0.0 + 0.2], [0.2, 0.9]])
    # kNN(k=1) in a: 0->1, 1->0, 2->3, 3->2.  in b: 0->1, 1->0 (cos .9985 vs .99), 2->1?  computed by hand below
    ub = _unit(b)
    s = ub @ ub.T
    np.fill_diagonal(s, -np.inf)
    nb = s.argmax(axis=1)
    expected = (nb == np.array([1, 0, 3, 2])).astype(float)
    assert neighbourhood_agreement(a, b, k=1).tolist() == expected.tolist()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(3, 12))
def test_rotation_invariance(seed, d):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(40, d)), rng.normal(size=(40, d)) + 0.5 * rng.normal(size=(1, d))
    b = b + 0.5 * a
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    assert mutual_knn(a @ q, b, k=5) == mutual_knn(a, b, k=5)
    assert cka(a @ q, b) == pytest.approx(cka(a, b), abs=1e-10)
    assert cka(a, b @ q, unbiased=True) == pytest.approx(cka(a, b, unbiased=True), abs=1e-10)
    assert cknna(a @ q, b @ q, k=5) == pytest.approx(cknna(a, b, k=5), abs=1e-10)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(6, 60), k=st.integers(1, 5))
def test_a_set_with_itself_scores_one(seed, n, k):
    a = np.random.default_rng(seed).normal(size=(n, 8))
    assert mutual_knn(a, a, k=k) == 1.0
    assert neighbourhood_agreement(a, a, k=k).min() == 1.0
    assert cka(a, a) == pytest.approx(1.0, abs=1e-12)


def test_calibrated_matches_the_calibrated_similarity_package_with_the_same_permutations():
    torch = pytest.importorskip("torch")
    calibration = pytest.importorskip("calibrated_similarity")
    a, b = _related(n=80, noise=2.0, seed=3)  # weakly related: the null and the score overlap
    for name, fn in (("mutual_knn", lambda x, y: mutual_knn(x, y, k=5)), ("cka", cka),
                     ("unbiased_cka", lambda x, y: cka(x, y, unbiased=True)),
                     ("cknna", lambda x, y: cknna(x, y, k=5))):
        ours = calibrated(name, a, b, n_permutations=60, seed=7, k=5, n_bootstrap=0, progress=False)
        rng = np.random.default_rng(7)  # the documented permutation sequence
        score, p, tau = calibration.calibrate(
            torch.from_numpy(a), torch.from_numpy(b), lambda x, y, f=fn: float(f(x.numpy(), y.numpy())), K=60,
            alpha=0.05, perm_fn=lambda n, device, r=rng: torch.from_numpy(r.permutation(n)))
        assert ours.raw == pytest.approx(fn(a, b), abs=1e-12), name
        assert ours.threshold == pytest.approx(float(tau), abs=1e-5), name
        assert ours.p_value == pytest.approx(float(p), abs=1e-6), name
        assert ours.calibrated == pytest.approx(float(score), abs=1e-5), name


def test_callable_metric_equals_named_metric():
    a, b = _related(n=60, noise=1.5, seed=4)
    named = calibrated("cka", a, b, n_permutations=40, seed=2, n_bootstrap=0, progress=False)
    called = calibrated(cka, a, b, n_permutations=40, seed=2, progress=False)
    assert called.raw == pytest.approx(named.raw, abs=1e-12)
    assert called.threshold == pytest.approx(named.threshold, abs=1e-6)
    assert called.p_value == named.p_value and called.raw_lo is None
    score, raw, p = named
    assert (score, raw, p) == (named.calibrated, named.raw, named.p_value)


@pytest.mark.parametrize("name", ["mutual_knn", "cka", "unbiased_cka", "cknna"])
def test_calibrated_score_of_independent_sets_is_about_zero(name):
    # issue 17: p > 0.05 in >= 90% of seeds (under the null p is uniform: about 95% expected)
    results = []
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        a, b = rng.normal(size=(100, 16)), rng.normal(size=(100, 16))
        results.append(calibrated(name, a, b, n_permutations=199, seed=seed, n_bootstrap=0, progress=False))
    assert np.mean([r.p_value > 0.05 for r in results]) >= 0.9
    assert np.mean([r.calibrated for r in results]) < 0.01
    if name == "mutual_knn":
        assert all(abs(r.null_mean - 10 / 99) < 0.01 for r in results)  # the k / (n - 1) baseline
    if name == "unbiased_cka":
        assert abs(np.mean([r.null_mean for r in results])) < 0.005  # unbiased: centred on 0


def test_related_sets_are_significant_with_an_interval_around_the_raw_score():
    a, b = _related(n=200, noise=0.5, seed=5)
    for name in ("mutual_knn", "cka", "unbiased_cka", "cknna"):
        s = calibrated(name, a, b, n_permutations=99, seed=0, n_bootstrap=30, progress=False)
        assert s.p_value == pytest.approx(0.01), name  # no permutation reaches the observed score
        assert 0 < s.calibrated <= 1 and s.raw_lo < s.raw < s.raw_hi, name
        assert s.calibrated_lo <= s.calibrated <= s.calibrated_hi, name


def test_half_sample_neighbours_are_the_exact_neighbours_within_the_half_sample():
    rng = np.random.default_rng(0)
    x = _unit(rng.normal(size=(300, 8)))
    side = _prepare(x, 6)
    h = np.sort(rng.choice(300, size=150, replace=False))
    for width in (30, 7):  # 7: most items lack 6 candidates inside h and are recomputed
        sub = _sub_side(side, _knn(x, width), h)
        exact, _ = _knn(x[h], 6)
        assert (np.sort(sub.idx, axis=1) == np.sort(exact, axis=1)).all()


def test_similarity_matrix_pairs_equal_calibrated():
    a, b = _related(n=90, noise=1.0, seed=6)
    c = np.random.default_rng(9).normal(size=(90, 5))
    m = similarity_matrix({"a": a, "b": b, "c": c}, "cknna", k=5, n_permutations=50, seed=3, progress=False)
    for (i, x), (j, y) in (((0, a), (1, b)), ((0, a), (2, c)), ((1, b), (2, c))):
        s = calibrated("cknna", x, y, n_permutations=50, seed=3, k=5, n_bootstrap=0, progress=False)
        assert m.raw[i, j] == m.raw[j, i] == pytest.approx(s.raw)
        assert m.calibrated[i, j] == pytest.approx(s.calibrated) and m.p_value[i, j] == pytest.approx(s.p_value)
    assert np.isnan(m.calibrated[0, 0]) and m.raw[1, 1] == 1.0
    frame = m.to_frame()
    assert frame.shape == (9, 5) and frame.filter((frame["a"] == "a") & (frame["b"] == "b"))["raw"][0] == m.raw[0, 1]


def test_bad_input_names_the_problem():
    a = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(ValueError, match="a has 20 rows but b has 19"):
        mutual_knn(a, a[:19])
    with pytest.raises(ValueError, match="k must be"):
        mutual_knn(a, a, k=20)
    with pytest.raises(ValueError, match="metric must be one of"):
        calibrated("rsa", a, a)
    with pytest.raises(ValueError, match="n_permutations"):
        calibrated("cka", a, a, n_permutations=0)
    with pytest.raises(ValueError, match="at least 2 encoders"):
        similarity_matrix({"a": a})
    with pytest.raises(ValueError, match="same items"):
        similarity_matrix({"a": a, "b": a[:10]})
    with pytest.raises(ValueError, match="no spread"):
        cka(np.ones((5, 3)), a[:5])
    # equal rows whose unit form is not exact in binary: centring leaves rounding (~1e-16), not zero, and the CKA
    # of that rounding (~1e-33) must not pass as a score
    equal = np.ones((20, 4)) * [1.0, 2.0, 3.0, 4.0]
    unit = equal / np.linalg.norm(equal, axis=1, keepdims=True)
    assert 0 < np.abs(unit - unit.mean(axis=0)).max() < 1e-15
    for unbiased in (False, True):
        with pytest.raises(ValueError, match="b has no spread"):
            cka(a, equal, unbiased=unbiased)
    with pytest.raises(ValueError, match="a has no spread"):
        calibrated("cka", np.ones((50, 4)) * [1.0, 2.0, 3.0, 4.0], np.random.default_rng(1).normal(size=(50, 4)),
                   n_permutations=10, progress=False)
    assert 0 <= cka(a, equal + 1e-6 * np.random.default_rng(2).normal(size=(20, 4))) <= 1  # tiny spread is spread
    # equal rows have no neighbourhoods either (every neighbour a tie, broken by row order)
    for metric in (mutual_knn, cknna):
        with pytest.raises(ValueError, match="b has no spread"):
            metric(a, equal, k=3)
    with pytest.raises(ValueError, match="flat has no spread"):
        similarity_matrix({"ok": a, "flat": equal}, n_permutations=10, progress=False)


def test_compiled_null_equals_the_numpy_permutation_path():
    from workbench.similarity._metrics import _cknna_cross, _null_cknna_cross, _null_overlap, _overlap

    a, b = _related(n=70, noise=1.0, seed=8)
    sa, sb = _prepare(_unit(a), 6), _prepare(_unit(b), 6)
    rng = np.random.default_rng(0)
    perms = np.stack([rng.permutation(70) for _ in range(12)])
    assert _null_overlap(sa, sb, perms).tolist() == pytest.approx(
        [_overlap(sa, sb, p).mean() / 6 for p in perms], abs=1e-12)
    assert _null_cknna_cross(sa, sb, perms).tolist() == pytest.approx(
        [_cknna_cross(sa, sb, p) for p in perms], rel=1e-10, abs=1e-15)


@pytest.mark.parametrize("name", ["cka", "unbiased_cka"])
def test_bfloat16_null_gives_the_float32_threshold_and_p_value(monkeypatch, name):
    # CKA's null in bfloat16 (the fast path on CPUs with AMX) must decide exactly as the float32 null does: the
    # permutations near the threshold or the raw score are recomputed in float32
    import workbench.similarity._null as calibrate_module

    rng = np.random.default_rng(11)
    for noise in (0.7, 4.0, None):  # related, weakly related (the raw score inside the null), unrelated
        a = rng.normal(size=(600, 48))
        b = rng.normal(size=(600, 48)) if noise is None else a + noise * rng.normal(size=(600, 48))
        results = {}
        for low in (False, True):
            monkeypatch.setattr(calibrate_module, "_LOW_PRECISION", low)
            results[low] = calibrated(name, a, b, n_permutations=300, seed=5, n_bootstrap=0, progress=False)
        exact, fast = results[False], results[True]
        assert fast.threshold == exact.threshold and fast.p_value == exact.p_value, noise
        assert fast.calibrated == exact.calibrated and fast.raw == exact.raw, noise
        spread = exact.threshold - exact.null_mean  # about 1.6 null standard deviations
        assert abs(fast.null_mean - exact.null_mean) < 0.02 * spread, noise  # far below its Monte Carlo error


def test_bfloat16_error_bounds_hold():
    import workbench.similarity._null as calibrate_module
    from workbench.similarity._metrics import _pair

    rng = np.random.default_rng(12)
    a, b = rng.normal(size=(500, 64)), rng.normal(size=(500, 64))
    sa, sb = _pair(a, b, None, min_rows=2)
    perms = np.stack([rng.permutation(500) for _ in range(80)])
    old = calibrate_module._LOW_PRECISION
    try:
        calibrate_module._LOW_PRECISION = True
        scorer = calibrate_module._Scorer("cka", sa, sb)
        approx, bound = scorer.null(perms)
    finally:
        calibrate_module._LOW_PRECISION = old
    exact = scorer.exact(perms)
    assert scorer.delta is not None  # the bfloat16 path ran
    assert (bound[:calibrate_module._ERROR_SAMPLE] == 0).all()  # the error sample is exact
    assert np.all(np.abs(approx - exact) <= bound)
    assert np.abs(approx - exact).max() > 0  # and the rest really was approximate


def test_null_refinement_recovers_exact_decisions_from_bounded_errors():
    # a scorer whose null values are off by up to their bound (the worst case the bound allows): the refined
    # threshold and p-value equal those of the exact values, for many raw scores and levels
    from workbench.similarity._calibrate import _threshold
    from workbench.similarity._null import _null_scores

    class Noisy:
        def __init__(self, observed: float, rng: np.random.Generator) -> None:
            self.observed, self.rng = observed, rng

        def exact(self, perms):
            return perms[:, :3].sum(axis=1) / 30.0  # any deterministic function of the permutation

        def null(self, perms):
            bound = np.full(len(perms), 0.05)
            return self.exact(perms) + self.rng.uniform(-1, 1, len(perms)) * bound, bound

    for trial in range(30):
        observed = 0.5 + 0.1 * trial / 30
        for alpha in (0.05, 0.2):
            scorer = Noisy(observed, np.random.default_rng(trial))
            null = _null_scores(scorer, np.random.default_rng(trial), 20, 150, alpha)
            rng = np.random.default_rng(trial)
            truth = scorer.exact(np.stack([rng.permutation(20) for _ in range(150)]))
            assert _threshold(observed, null, alpha) == _threshold(observed, truth, alpha)
            assert np.sum(null >= observed) == np.sum(truth >= observed)


def test_device_runs_the_float32_null_there(monkeypatch):
    # device="cpu" runs CKA's null in float32 on that device, never bfloat16 (which None picks on an AMX machine
    # for a problem this large): its null mean is the float32 one exactly, the automatic one differs in the last
    # digits (same decisions)
    import workbench.similarity._null as null_module

    rng = np.random.default_rng(13)
    a = rng.normal(size=(1100, 256)).astype(np.float32)  # n d^2 >= 2^26: large enough for bfloat16
    b = a + 3.0 * rng.normal(size=(1100, 256)).astype(np.float32)
    monkeypatch.setattr(null_module, "_bf16_units", lambda: True)  # as on an AMX machine
    options = {"n_permutations": 40, "seed": 1, "n_bootstrap": 0, "progress": False}
    automatic = calibrated("cka", a, b, **options)
    on_device = calibrated("cka", a, b, **options, device="cpu")
    monkeypatch.setattr(null_module, "_LOW_PRECISION", False)
    reference = calibrated("cka", a, b, **options)
    assert on_device == reference
    assert automatic.null_mean != reference.null_mean and automatic.p_value == reference.p_value
    matrix = similarity_matrix({"a": a, "b": b}, "cka", n_permutations=40, seed=1, progress=False, device="cpu")
    assert matrix.p_value[0, 1] == reference.p_value and matrix.calibrated[0, 1] == reference.calibrated
    with pytest.raises(ValueError, match="device must be"):
        calibrated("cka", a, b, n_permutations=10, device="nonsense")
    with pytest.raises(TypeError, match="device must be"):
        similarity_matrix({"a": a, "b": b}, "cka", n_permutations=10, device=3)
