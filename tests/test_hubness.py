"""Hubness diagnostics (workbench.gap.hubness) against scikit-learn's neighbours and the scikit-hubness definitions,
and the hubness-reducing re-rankers (workbench.correct.NNN / QBNorm / DBNorm) against the nnn-retrieval package and
hand computations of their published formulas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import skew
from sklearn.neighbors import NearestNeighbors

import workbench
from workbench import gap
from workbench.compare import compare_correctors, split_pairs
from workbench.correct.rerankers import ALL_RERANKERS, NNN, DBNorm, QBNorm, ReRanker
from workbench.retrieval import ranks_from_scores


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _gapped(n_a=150, n_b=120, d=24, seed=0):
    rng = np.random.default_rng(seed)
    shift = rng.normal(size=d)
    return _unit(rng.normal(size=(n_a, d)) + shift), _unit(rng.normal(size=(n_b, d)) - 0.5 * shift)


def test_k_occurrence_equals_scikit_learn_neighbours():
    a, b = _gapped()
    for queries, gallery in ((a, b), (b, a)):
        nn = NearestNeighbors(n_neighbors=7, metric="cosine").fit(gallery)
        expected = np.bincount(nn.kneighbors(queries, return_distance=False).ravel(), minlength=len(gallery))
        assert gap.k_occurrence(queries, gallery, k=7).tolist() == expected.tolist()


def test_hubness_measures_follow_scikit_hubness_definitions():
    a, b = _gapped(seed=1)
    h = gap.hubness(a, b, k=5, hub_size=2.0)
    for suffix, queries, gallery in (("b", a, b), ("a", b, a)):
        counts = np.bincount(NearestNeighbors(n_neighbors=5, metric="cosine").fit(gallery)
                             .kneighbors(queries, return_distance=False).ravel(), minlength=len(gallery))
        hubs = np.flatnonzero(counts >= 10)
        assert h[f"k_skewness_{suffix}"] == pytest.approx(skew(counts))
        assert h[f"hubs_{suffix}"] == len(hubs)
        assert h[f"hub_occurrence_{suffix}"] == pytest.approx(counts[hubs].sum() / 5 / len(queries))
        assert h[f"antihubs_{suffix}"] == int(np.sum(counts == 0))
        assert h[f"antihub_occurrence_{suffix}"] == pytest.approx(np.mean(counts == 0))
        assert h[f"robinhood_{suffix}"] == pytest.approx(0.5 * np.abs(counts - counts.mean()).sum() / counts.sum())


def test_hubness_by_hand_and_in_gap_report():
    gallery = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    queries = np.array([[0.9, 0.1], [0.8, 0.3], [0.95, -0.1], [0.1, 0.9]])
    h = gap.hubness(queries, gallery, k=1, hub_size=2.0)
    # N_1 of the gallery: [3, 1, 0, 0]; one hub (3 >= 2) with 3 of the 4 slots; two anti-hubs
    assert (h["hubs_b"], h["hub_occurrence_b"], h["antihubs_b"]) == (1, 0.75, 2)
    assert h["k_skewness_b"] == pytest.approx(skew([3, 1, 0, 0]))
    p = workbench.datasets.load("liang2022/clip")
    report = gap.gap_report(p, probe=False, hubness_k=10)
    assert {k: report[k] for k in gap.hubness(p, k=10)} == gap.hubness(p.a.vectors, p.b.vectors, k=10)
    assert "k_skewness_a" not in gap.gap_report(p, probe=False)
    # a gallery of equal rows has no neighbourhoods (every neighbour a tie, the counts set by row order)
    with pytest.raises(ValueError, match="b has no spread"):
        gap.hubness(queries, np.tile([[0.6, 0.8]], (4, 1)))


def test_nnn_matches_the_nnn_retrieval_package():
    nnn = pytest.importorskip("nnn")
    a, b = _gapped(n_a=200, n_b=150, seed=2)
    bank_a, bank_b = a[:120], b[:90]
    queries, gallery = a[120:], b[90:]
    ours = NNN(k=16, alpha=0.75).fit(bank_a, bank_b).scores(queries, gallery, query_modality="a")
    ranker = nnn.NNNRanker(nnn.NNNRetriever(gallery.shape[1]), gallery, bank_a, alternate_ks=16,
                           alternate_weight=0.75, batch_size=64)
    values, indices = ranker.search(queries, top_k=5)
    assert (np.argsort(-ours, axis=1, kind="stable")[:, :5] == indices).all()
    assert np.take_along_axis(ours, indices, axis=1) == pytest.approx(values, abs=1e-9)


def _inverted_softmax(test, train, beta):
    """exp(beta s) / sum over the bank of exp(beta s), per gallery column (Smith et al. 2017)."""
    return np.exp(beta * test) / np.exp(beta * train).sum(axis=0, keepdims=True)


def test_qbnorm_dynamic_inverted_softmax_by_hand():
    a, b = _gapped(n_a=160, n_b=100, seed=3)
    bank, queries, gallery = a[:6], a[100:], b[50:]  # a small bank activates few gallery items
    ours = QBNorm(beta=20, k=1).fit(bank, b[:50]).scores(queries, gallery)
    train, test = bank @ gallery.T, queries @ gallery.T
    activated = set(np.argmax(train, axis=1).tolist())  # every bank query's top-1 gallery item
    normalise = np.array([int(np.argmax(row)) in activated for row in test])
    assert normalise.any() and (~normalise).any()  # both kinds of rows occur
    expected = _inverted_softmax(test, train, 20)
    assert np.exp(ours[normalise]) == pytest.approx(expected[normalise], rel=1e-9)
    assert ours[~normalise] == pytest.approx(test[~normalise], abs=1e-12)
    plain = QBNorm(beta=20, dynamic=False).fit(bank, b[:50]).scores(queries, gallery)
    assert np.exp(plain) == pytest.approx(expected, rel=1e-9)


def test_dbnorm_dual_inverted_softmax_by_hand():
    a, b = _gapped(n_a=120, n_b=120, seed=4)
    ours = DBNorm(beta_query=7.0, beta_gallery=3.0).fit(a[:60], b[:60]).scores(b[60:], a[60:], query_modality="b")
    test = b[60:] @ a[60:].T
    expected = _inverted_softmax(test, b[:60] @ a[60:].T, 7.0) * _inverted_softmax(test, a[:60] @ a[60:].T, 3.0)
    assert np.exp(ours) == pytest.approx(expected, rel=1e-9)


def test_rerankers_reduce_hubness_on_held_out_clip_pairs():
    p = workbench.datasets.load("liang2022/clip")
    train, test = split_pairs(p, 0.5, seed=0)
    raw = test.a.vectors @ test.b.vectors.T
    for reranker in (NNN(k=16), QBNorm(dynamic=False)):
        s = reranker.fit(train).scores(test.a.vectors, test.b.vectors)
        before = np.bincount(np.argmax(raw, axis=1), minlength=raw.shape[1])
        after = np.bincount(np.argmax(s, axis=1), minlength=raw.shape[1])
        assert skew(after) < skew(before), type(reranker).__name__  # the top-1 answers spread more evenly


def test_compare_correctors_evaluates_rerankers_on_held_out_pairs():
    p = workbench.datasets.load("liang2022/clip")
    table = compare_correctors(p, {"nnn": NNN(k=16)}, n_resamples=20, probe=False, progress=False)
    train, test = split_pairs(p, 0.5, seed=0)
    fitted = NNN(k=16).fit(train.a.vectors, train.b.vectors)  # banks: training items only
    r_ab = ranks_from_scores(fitted.scores(test.a.vectors, test.b.vectors), test.pairs)
    r_ba = ranks_from_scores(fitted.scores(test.b.vectors, test.a.vectors, query_modality="b"), test.pairs[:, ::-1])
    row = table.row(1, named=True)
    assert row["image_to_text_R@1"] == pytest.approx(np.mean(r_ab <= 1))
    assert row["text_to_image_R@5"] == pytest.approx(np.mean(r_ba <= 5))
    assert row["centroid_distance"] == table["centroid_distance"][0]  # the embeddings are untouched


def test_reranker_checks():
    a, b = _gapped()
    assert all(issubclass(c, ReRanker) for c in ALL_RERANKERS)
    with pytest.raises(ValueError, match="k must be"):
        NNN(k=500).fit(a, b)
    with pytest.raises(ValueError, match="dimensions"):
        NNN(k=5).fit(a, b).scores(a[:, :10], b)
    with pytest.raises(ValueError, match="query_modality"):
        NNN(k=5).fit(a, b).scores(a, b, query_modality="c")
    with pytest.raises(ValueError, match="beta"):
        QBNorm(beta=0).fit(a, b)
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        DBNorm().scores(a, b)
