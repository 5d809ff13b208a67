"""Where the gap is: conformity against a direct cosine computation, identity (1) against a brute-force mean over
every cross-modal pair, the Frechet split against scipy's matrix square root, the energy identity, rotation
invariance, and the figure."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import sqrtm
from scipy.spatial.distance import cdist
from sklearn.metrics.pairwise import cosine_similarity

from workbench import PairedEmbeddings
from workbench.gap import conformity, conformity_frame, gap_decomposition, gap_shares, paired_items

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _many_to_many(rng: np.random.Generator) -> PairedEmbeddings:
    a, b = rng.normal(size=(7, 5)) + 1.0, rng.normal(size=(12, 5)) - 0.5
    pairs = [(i % 7, i) for i in range(12)] + [(3, 0)]
    return PairedEmbeddings.from_arrays(a, b, pairs=pairs)


def test_conformity_is_the_cosine_to_the_mean_and_averages_to_the_mean_norm(rng) -> None:
    x = rng.normal(size=(40, 6)) + 0.7
    u = _unit(x)
    expected = cosine_similarity(u, u.mean(axis=0, keepdims=True)).ravel()
    np.testing.assert_allclose(conformity(x), expected, atol=1e-12)
    assert conformity(x).mean() == pytest.approx(np.linalg.norm(u.mean(axis=0)))
    # Levi & Gilboa's mean cosine to the other rows is an increasing affine map of it
    gram = u @ u.T
    mean_to_others = (gram.sum(axis=1) - 1) / (len(u) - 1)
    assert np.array_equal(np.argsort(mean_to_others), np.argsort(conformity(x)))
    with pytest.raises(ValueError, match="mean is zero"):
        conformity(np.array([[1.0, 0.0], [-1.0, 0.0]]))


def test_conformity_frame_counts_each_paired_item_once(rng) -> None:
    paired = _many_to_many(rng)
    frame = conformity_frame(paired)
    items_a, items_b, _ = paired_items(paired)
    assert frame.filter(frame["modality"] == "a").height == len(items_a) == 7
    np.testing.assert_allclose(frame.filter(frame["modality"] == "b")["conformity"].to_numpy(), conformity(items_b))


@SETTINGS
@given(st.integers(0, 10_000))
def test_identity_one_holds_against_every_cross_modal_pair(seed: int) -> None:
    rng = np.random.default_rng(seed)
    paired = _many_to_many(rng)
    items_a, items_b, _ = paired_items(paired)
    d = gap_decomposition(paired)
    brute = cdist(items_a, items_b, "sqeuclidean").mean()  # E||X - Y||^2 over every (a item, b item)
    assert d["mean_sq_distance"] == pytest.approx(brute, abs=1e-12)
    assert d["centroid_term"] + d["spread_a"] + d["spread_b"] == pytest.approx(brute, abs=1e-12)
    # unit rows: tr S = 1 - ||mu||^2, and the mean conformity is ||mu||
    assert d["spread_a"] == pytest.approx(1 - d["mean_conformity_a"] ** 2, abs=1e-6)  # float32 unit rows
    # the squared-distance energy distance sees only the centroid: 2 E|X-Y|^2 - E|X-X'|^2 - E|Y-Y'|^2 = 2 |mu_a-mu_b|^2
    energy = 2 * brute - cdist(items_a, items_a, "sqeuclidean").mean() - cdist(items_b, items_b, "sqeuclidean").mean()
    assert energy == pytest.approx(2 * d["centroid_term"], abs=1e-12)


def test_frechet_split_matches_scipys_matrix_square_root(rng) -> None:
    a, b = _unit(rng.normal(size=(50, 4)) + 0.5), _unit(rng.normal(size=(50, 4)) * [1, 2, 1, 0.5] - 0.3)
    d = gap_decomposition(a, b)
    s_a, s_b = np.cov(a.T, bias=True), np.cov(b.T, bias=True)
    mu = a.mean(axis=0) - b.mean(axis=0)
    expected = mu @ mu + np.trace(s_a + s_b - 2 * np.real(sqrtm(s_a @ s_b)))
    assert d["frechet_sq"] == pytest.approx(expected, abs=1e-9)
    assert d["frechet_sq"] - d["frechet_covariance_term"] == pytest.approx(d["centroid_term"])


def test_a_hand_case_of_two_points_per_side() -> None:
    # a = {e1, e2}, b = {-e1, -e2}: mu_a = (.5, .5), mu_b = -mu_a; centroid term |(1, 1)|^2 = 2; each spread
    # 1 - |mu|^2 = 0.5; identical covariances, so the Frechet distance is the centroid term alone
    a, b = np.eye(2), -np.eye(2)
    d = gap_decomposition(a, b, ks=(1, 2))
    assert (d["centroid_term"], d["spread_a"], d["spread_b"], d["mean_sq_distance"]) == pytest.approx((2, .5, .5, 3))
    assert d["frechet_covariance_term"] == pytest.approx(0.0, abs=1e-12) and d["centroid_share"] == pytest.approx(2 / 3)
    assert (d["gap_top1_share"], d["gap_top2_share"]) == pytest.approx((0.5, 1.0))


def test_top_k_shares_are_gap_shares(rng) -> None:
    paired = _many_to_many(rng)
    d = gap_decomposition(paired, ks=(1, 3))
    assert {k: d[f"gap_top{k}_share"] for k in (1, 3)} == gap_shares(paired, ks=(1, 3))


@SETTINGS
@given(st.integers(0, 10_000))
def test_the_decomposition_and_conformity_are_invariant_to_a_rotation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(30, 6)) + 1, rng.normal(size=(30, 6)) - 1
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    one, two = gap_decomposition(a, b), gap_decomposition(a @ q, b @ q)
    for key in ("mean_sq_distance", "centroid_term", "spread_a", "frechet_sq", "mean_conformity_b"):
        assert one[key] == pytest.approx(two[key], abs=1e-9), key
    np.testing.assert_allclose(conformity(a), conformity(a @ q), atol=1e-12)


def test_the_decomposition_figure_shows_the_parts_that_sum_to_the_distance(rng) -> None:
    from workbench.gap_figures import gap_decomposition_figure

    paired = PairedEmbeddings.from_arrays(rng.normal(size=(40, 8)) + 1, rng.normal(size=(40, 8)) - 1,
                                          modalities=("image", "text"))
    fig = gap_decomposition_figure(paired, ks=(1, 4, 8, 16))
    d = gap_decomposition(paired, ks=(1, 4, 8))
    bars = [t for t in fig.data if t.type == "bar"]
    assert sum(t.y[0] for t in bars) == pytest.approx(d["mean_sq_distance"])
    assert sum(t.y[1] for t in bars) == pytest.approx(d["frechet_sq"])
    line = next(t for t in fig.data if t.type == "scatter")
    assert list(line.x) == [1, 4, 8]  # k above the dimension is left out
    assert list(line.y) == pytest.approx([d["gap_top1_share"], d["gap_top4_share"], d["gap_top8_share"]])
