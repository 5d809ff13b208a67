"""What the gap changes: clustering scores against scikit-learn, NDCG against scikit-learn, hand cases with known
answers (a wide gap: every cluster one modality, every mixed search returns its own modality), the trace along
GapShift's delta against the corrector itself, invariance to a rotation of the shared space."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from workbench import PairedEmbeddings
from workbench.correct import GapShift, MeanCenter
from workbench.gap import clustering_scores, consequences, consequences_trace, ndcg_at_k

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)


def _values(frame: pl.DataFrame) -> dict[str, float | None]:
    return dict(zip(frame["metric"].to_list(), frame["value"].to_list(), strict=True))


def _classes(rng: np.random.Generator, n: int = 120, dim: int = 16, n_classes: int = 3, gap: float = 0.0,
             noise: float = 0.2) -> tuple[PairedEmbeddings, np.ndarray]:
    """Items of a few classes, each side its own noisy view of a class centre, with an optional gap offset."""
    centres = rng.normal(size=(n_classes, dim))
    labels = np.arange(n) % n_classes
    offset = gap * rng.normal(size=dim)
    a = centres[labels] + noise * rng.normal(size=(n, dim)) + offset
    b = centres[labels] + noise * rng.normal(size=(n, dim)) - offset
    return PairedEmbeddings.from_arrays(a, b, modalities=("image", "text")), labels


# -- the clustering scores and NDCG against scikit-learn ---------------------------------------------------------
@SETTINGS
@given(st.integers(0, 10_000), st.integers(2, 6), st.integers(2, 6))
def test_clustering_scores_equal_scikit_learn(seed: int, n_clusters: int, n_labels: int) -> None:
    rng = np.random.default_rng(seed)
    clusters, labels = rng.integers(0, n_clusters, 80), rng.integers(0, n_labels, 80)
    ours = clustering_scores(clusters, labels)
    assert ours["v_measure"] == pytest.approx(skm.v_measure_score(labels, clusters), abs=1e-12)
    assert ours["ari"] == pytest.approx(skm.adjusted_rand_score(labels, clusters), abs=1e-12)
    assert ours["nmi"] == pytest.approx(skm.normalized_mutual_info_score(labels, clusters), abs=1e-12)
    assert ours["homogeneity"] == pytest.approx(skm.homogeneity_score(labels, clusters), abs=1e-12)


def test_weighted_clustering_scores_equal_scikit_learn_on_the_repeated_items(rng) -> None:
    clusters, labels = rng.integers(0, 4, 50), rng.integers(0, 3, 50)
    weights = rng.integers(0, 4, 50)  # a bootstrap resample: items drawn 0-3 times
    ours = clustering_scores(clusters, labels, weights)
    rep_c, rep_l = np.repeat(clusters, weights), np.repeat(labels, weights)
    assert ours["v_measure"] == pytest.approx(skm.v_measure_score(rep_l, rep_c), abs=1e-12)
    assert ours["ari"] == pytest.approx(skm.adjusted_rand_score(rep_l, rep_c), abs=1e-12)
    assert ours["nmi"] == pytest.approx(skm.normalized_mutual_info_score(rep_l, rep_c), abs=1e-12)


def test_clustering_scores_of_degenerate_clusterings_match_scikit_learn() -> None:
    for clusters, labels in (([0, 0, 0, 0], [0, 0, 1, 1]), ([0, 1, 2, 3], [0, 0, 0, 0]), ([0, 0, 0], [1, 1, 1])):
        ours = clustering_scores(clusters, labels)
        assert ours["v_measure"] == pytest.approx(skm.v_measure_score(labels, clusters))
        assert ours["ari"] == pytest.approx(skm.adjusted_rand_score(labels, clusters))
        assert ours["nmi"] == pytest.approx(skm.normalized_mutual_info_score(labels, clusters))


@SETTINGS
@given(st.integers(0, 10_000), st.integers(1, 12))
def test_ndcg_equals_scikit_learn_per_query(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    scores, relevant = rng.normal(size=(6, 15)), rng.random((6, 15)) < 0.3
    relevant[:, 0] = True  # every query has a relevant item
    ours = ndcg_at_k(scores, relevant, k)
    for q in range(6):
        assert ours[q] == pytest.approx(skm.ndcg_score(relevant[q:q + 1].astype(float), scores[q:q + 1], k=k))


def test_ndcg_by_hand_leaves_out_minus_infinity_and_is_nan_without_relevant_items() -> None:
    scores = np.array([[np.inf * -1, 0.9, 0.5, 0.1], [0.3, 0.2, 0.1, 0.0]])
    relevant = np.array([[True, False, True, True], [False, False, False, False]])
    out = ndcg_at_k(scores, relevant, k=2)
    # query 0: the left-out item is relevant but not retrievable; ranking 0.9 (no), 0.5 (yes): DCG = 1/log2(3);
    # two relevant items remain, so the ideal is 1 + 1/log2(3)
    assert out[0] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert np.isnan(out[1])


# -- hand cases with known answers --------------------------------------------------------------------------------
def test_a_wide_gap_splits_every_cluster_by_modality_and_every_mixed_search_returns_its_own_modality(rng) -> None:
    paired, labels = _classes(rng, gap=20.0)
    out = _values(consequences(paired, labels=labels, n_boot=20))
    assert out["cluster_modality_homogeneity"] == pytest.approx(1.0)
    assert out["pair_co_clustered"] == 0.0
    assert out["mixed_own_share_a"] == 1.0 and out["mixed_own_share_b"] == 1.0
    # every pair lands in different clusters, so clusters cannot match 3 labels across both modalities perfectly
    assert out["cluster_ari"] < 0.9


def test_without_a_gap_clusters_follow_the_classes_and_mix_the_modalities(rng) -> None:
    paired, labels = _classes(rng, gap=0.0, noise=0.05)
    out = _values(consequences(paired, labels=labels, n_boot=20))
    assert out["cluster_v_measure"] == pytest.approx(1.0) and out["cluster_ari"] == pytest.approx(1.0)
    assert out["cluster_modality_homogeneity"] < 0.05 and out["pair_co_clustered"] == 1.0
    # the other modality holds as many same-class items as the own one: about half of the top 10 each
    assert 0.3 < out["mixed_own_share_a"] < 0.7
    assert out["mixed_ndcg@10_a"] == pytest.approx(1.0) and out["intra_direct_ndcg@10_a"] == pytest.approx(1.0)


def test_flip_rates_are_zero_without_noise_and_for_well_separated_items(rng) -> None:
    paired = PairedEmbeddings.from_arrays(np.eye(8)[:6] + 0.01, np.eye(8)[:6])
    out = _values(consequences(paired, noise=0.0, n_clusters=2, n_boot=10))
    assert out["flip_noise_a_to_b"] == 0.0 and out["flip_noise_b_to_a"] == 0.0
    assert out["flip_int8_a_to_b"] == 0.0 and out["a_to_b_R@1"] == 1.0
    noisy = _values(consequences(PairedEmbeddings.from_arrays(rng.normal(size=(200, 8)), rng.normal(size=(200, 8))),
                                 noise=1.0, n_boot=10))
    assert noisy["flip_noise_a_to_b"] > 0.3  # random data, noise as large as the vectors: top-1 mostly moves


def test_through_the_other_modality_beats_direct_when_the_other_modality_carries_the_classes(rng) -> None:
    n, dim = 90, 12
    labels = np.arange(n) % 3
    centres = 3 * rng.normal(size=(3, dim))
    b = centres[labels] + 0.1 * rng.normal(size=(n, dim))  # text: clean class signal
    a = b + 8.0 * rng.normal(size=(n, dim))  # image: the same plus heavy item noise
    out = _values(consequences(PairedEmbeddings.from_arrays(a, b), labels=labels, n_boot=20))
    assert out["intra_via_b_ndcg@10_a"] > out["intra_direct_ndcg@10_a"] + 0.2


def test_intra_modal_search_is_undefined_without_labels_on_one_to_one_pairs_and_defined_with_shared_partners(
        rng) -> None:
    out = consequences(PairedEmbeddings.from_arrays(rng.normal(size=(30, 8)), rng.normal(size=(30, 8))), n_boot=5)
    row = out.filter(pl.col("metric") == "intra_direct_ndcg@10_a")
    assert row["value"][0] is None and "undefined" in row["description"][0]
    # two captions per image: captions of one image are relevant to each other
    a, b = rng.normal(size=(10, 8)), rng.normal(size=(20, 8))
    pairs = [(i // 2, i) for i in range(20)]
    many = _values(consequences(PairedEmbeddings.from_arrays(a, b, pairs=pairs), n_clusters=3, n_boot=5))
    assert many["intra_direct_ndcg@10_b"] is not None and 0 <= many["intra_direct_ndcg@10_b"] <= 1


def test_intervals_hold_the_value_and_labels_are_checked(rng) -> None:
    paired, labels = _classes(rng, gap=1.0, noise=0.5)
    out = consequences(paired, labels=labels, n_boot=50).drop_nulls("value")
    assert (out["low"] <= out["value"] + 1e-12).all() and (out["value"] <= out["high"] + 1e-12).all()
    with pytest.raises(ValueError, match="one label per pair"):
        consequences(paired, labels=labels[:-1])
    a, b = rng.normal(size=(4, 8)), rng.normal(size=(8, 8))
    many = PairedEmbeddings.from_arrays(a, b, pairs=[(i // 2, i) for i in range(8)])
    with pytest.raises(ValueError, match="labels disagree"):
        consequences(many, labels=[0, 1, 1, 1, 2, 2, 3, 3])
    with pytest.raises(TypeError, match="PairedEmbeddings"):
        consequences(a)


# -- along the corrector ------------------------------------------------------------------------------------------
def test_the_trace_equals_consequences_with_the_corrector_at_each_delta(rng) -> None:
    paired, labels = _classes(rng, gap=1.5, noise=0.3)
    trace = consequences_trace(paired, deltas=(0.0, 1.0), correctors={"none": None, "MeanCenter": MeanCenter()},
                               labels=labels, n_boot=30)
    assert trace["setting"].unique(maintain_order=True).to_list() == [
        "GapShift(delta=+0.00)", "GapShift(delta=+1.00)", "none", "MeanCenter"]
    for setting, corrector in (("GapShift(delta=+1.00)", GapShift(delta=1.0)), ("none", None),
                               ("GapShift(delta=+0.00)", None), ("MeanCenter", MeanCenter())):
        direct = consequences(paired, labels=labels, corrector=corrector, n_boot=30)
        part = trace.filter(pl.col("setting") == setting)
        assert part["metric"].to_list() == direct["metric"].to_list()
        np.testing.assert_allclose(part["value"].to_numpy(), direct["value"].to_numpy(), atol=1e-6)
    # closing the gap mixes the modalities in the clusters and in mixed search
    at = {s: _values(trace.filter(pl.col("setting") == s)) for s in ("GapShift(delta=+0.00)", "GapShift(delta=+1.00)")}
    assert at["GapShift(delta=+1.00)"]["mixed_own_share_a"] < at["GapShift(delta=+0.00)"]["mixed_own_share_a"]


def test_a_fitted_corrector_is_used_as_given(rng) -> None:
    paired, _ = _classes(rng, gap=2.0)
    other, _ = _classes(np.random.default_rng(7), gap=-2.0)
    fitted = GapShift(delta=1.0).fit(other)  # fitted elsewhere: its gap is not paired's
    refit = _values(consequences(paired, corrector=GapShift(delta=1.0), n_boot=5))
    given_ = _values(consequences(paired, corrector=fitted, n_boot=5))
    assert refit["mixed_own_share_a"] != given_["mixed_own_share_a"]


@settings(max_examples=5, deadline=None, derandomize=True)
@given(st.integers(0, 1000))
def test_search_metrics_are_invariant_to_a_rotation_of_the_shared_space(seed: int) -> None:
    rng = np.random.default_rng(seed)
    paired, labels = _classes(rng, n=60, gap=1.0, noise=0.5)
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    rotated = PairedEmbeddings.from_arrays(paired.a.vectors @ q, paired.b.vectors @ q)
    keys = ["a_to_b_R@1", "b_to_a_R@1", "mixed_ndcg@10_a", "mixed_own_share_b", "intra_direct_ndcg@10_a",
            "intra_via_b_ndcg@10_a"]
    one = _values(consequences(paired, labels=labels, n_boot=5))
    two = _values(consequences(rotated, labels=labels, n_boot=5))
    for key in keys:
        assert one[key] == pytest.approx(two[key], abs=1e-9), key


def test_r_at_1_and_top_k_equal_the_retrieval_engine_and_numpy(rng) -> None:
    from workbench.gap._mixed import argmax_both, top_k
    from workbench.retrieval import per_query_ranks

    a, b = rng.normal(size=(30, 8)), rng.normal(size=(45, 8))
    pairs = [(i % 30, i) for i in range(45)]  # 15 images with two captions
    paired = PairedEmbeddings.from_arrays(a, b, pairs=pairs)
    out = _values(consequences(paired, n_clusters=3, n_boot=5))
    assert out["a_to_b_R@1"] == pytest.approx(np.mean(per_query_ranks(a, b, pairs).ranks <= 1))
    assert out["b_to_a_R@1"] == pytest.approx(np.mean(per_query_ranks(b, a, [(j, i) for i, j in pairs]).ranks <= 1))
    scores = np.round(rng.normal(size=(20, 50)), 1).astype(np.float32)  # many ties
    expected = np.stack([np.lexsort((np.arange(50), -row))[:7] for row in scores])  # by score, then position
    assert np.array_equal(top_k(scores, 7), expected)
    rows, cols = argmax_both(scores)
    assert np.array_equal(rows, scores.argmax(axis=1)) and np.array_equal(cols, scores.argmax(axis=0))


def test_the_gap_explorer_readout_follows_the_slider_and_the_corrector(rng) -> None:
    from workbench.panels import GapExplorer

    paired, labels = _classes(rng, n=90, gap=1.5, noise=0.3)
    explorer = GapExplorer(paired)
    readout = explorer.show_consequences(labels=labels, max_pairs=60, n_boot=10)
    sample = paired.subset(np.sort(np.random.default_rng(0).choice(90, size=60, replace=False)))
    explorer.delta = 0.5  # the readout equals consequences on its sample with GapShift fitted on all pairs
    expected = consequences(sample, labels=labels[np.sort(np.random.default_rng(0).choice(90, 60, replace=False))],
                            corrector=GapShift(delta=0.5).fit(paired), n_boot=10)
    np.testing.assert_allclose(readout.frame["value"].to_numpy(), expected["value"].to_numpy(), atol=1e-9)
    explorer.corrector = "MeanCenter"
    assert readout.values == _values(consequences(sample, labels=readout.labels,
                                                  corrector=explorer.fitted_["MeanCenter"], n_boot=10))
    assert "clusters split by modality" in readout.html() and "sample of 60 of 90" in readout.html()
    with pytest.raises(ValueError, match="one label per pair"):
        explorer.show_consequences(labels=labels[:5])


def test_sets_too_large_for_the_score_matrices_are_refused_with_a_way_out() -> None:
    big = PairedEmbeddings.from_arrays(np.ones((17_000, 2)) + np.arange(2), np.ones((17_000, 2)))
    with pytest.raises(ValueError, match=r"paired.sample\(n\)"):
        consequences(big)
