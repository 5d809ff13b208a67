"""Trust (issue 13): no silent wrong result in the analysis core.

- 13.2: every size/count parameter of the public analysis API is a positive integer (or its documented range); a bad
  value raises a ValueError naming the parameter instead of computing something meaningless.
- 13.3: rows of huge (1e200) or tiny (1e-200) float64 values normalise to the same unit rows as ordinary ones
  (their plain sum of squares overflows to inf or underflows to 0).
- 13.15: ``summarise_seeds`` reports a Student-t 95% interval over seeds (not 1.96 standard errors).
- 13.18: a fixed training temperature outside [0.01, 1] is refused, not silently clamped.
"""

from __future__ import annotations

import numpy as np
import pytest

from workbench import compare, gap, probes, retrieval, zeroshot
from workbench.correct import AblateGapDimensions, LinearAdapter
from workbench.data import PairedEmbeddings


def _data(n: int = 24, dim: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, dim)) + 1.0
    b = a + 0.5 * rng.normal(size=(n, dim)) - 1.0
    return a, b


A, B = _data()
EYE = np.repeat(np.arange(len(A))[:, None], 2, axis=1)
RANKS = np.arange(1, 25)


def _paired() -> PairedEmbeddings:
    return PairedEmbeddings.from_arrays(A, B)


def _labels() -> np.ndarray:
    return np.arange(len(A)) % 2


def _zeroshot(**kw):
    return zeroshot.classify(A, B[:3], ["x", "y", "z"], labels=np.arange(len(A)) % 3, **kw)


def _trainer(**kw):
    torch = pytest.importorskip("torch")  # noqa: F841
    from workbench.towers import FeatureHead
    from workbench.train import ContrastiveTrainer

    return ContrastiveTrainer(FeatureHead(6, 4, seed=0), FeatureHead(6, 4, seed=1), **kw)


def _learning_curve(**kw):
    from workbench.train import ValidationSet, learning_curve

    a, b = A.astype(np.float32), B.astype(np.float32)
    return learning_curve(lambda s: _trainer(seed=s, epochs=1, batch_size=4), a, b, ValidationSet(a, b), **kw)


def _project(**kw):
    from workbench.projection import project

    return project(A, "pca", cache=False, progress=False, **kw)


def _search():
    pytest.importorskip("faiss")
    from workbench import search

    return search


def _index(**kw):
    return _search().Index(np.random.default_rng(0).normal(size=(200, 6)), threads=1, **kw)


# -- 13.2: size and count parameters -----------------------------------------------------------------------------------
# (id, call(value), parameter name): every call is valid except for the parameter under test
SIZE_PARAMETERS = [
    ("evaluate_retrieval.ks", lambda v: retrieval.evaluate_retrieval(A, B, np.arange(len(A)), ks=v), "ks"),
    ("evaluate_retrieval.chunk_size",
     lambda v: retrieval.evaluate_retrieval(A, B, np.arange(len(A)), chunk_size=v), "chunk_size"),
    ("evaluate_retrieval.chunk_size.one_way",
     lambda v: retrieval.evaluate_retrieval(A, B, np.arange(len(A)), chunk_size=v,
                                            directions=("image_retrieval",)), "chunk_size"),
    ("evaluate_queries.ks", lambda v: retrieval.evaluate_queries(A, B, EYE, ks=v), "ks"),
    ("evaluate_queries.chunk_size", lambda v: retrieval.evaluate_queries(A, B, EYE, chunk_size=v), "chunk_size"),
    ("per_query_ranks.chunk_size", lambda v: retrieval.per_query_ranks(A, B, EYE, chunk_size=v), "chunk_size"),
    ("first_relevant_ranks.chunk_size",
     lambda v: retrieval.first_relevant_ranks(A, B, EYE, chunk_size=v), "chunk_size"),
    ("matched_ranks.chunk_size", lambda v: retrieval.matched_ranks(A, B, chunk_size=v), "chunk_size"),
    ("recall_at_k.ks", lambda v: retrieval.recall_at_k(RANKS, ks=v), "ks"),
    ("RankResult.recall.k", lambda v: retrieval.per_query_ranks(A, B, EYE).recall(v), "k"),
    ("bootstrap_ci.n_resamples", lambda v: retrieval.bootstrap_ci(RANKS <= 5, n_resamples=v), "n_resamples"),
    ("paired_bootstrap_test.k", lambda v: retrieval.paired_bootstrap_test(RANKS, RANKS[::-1], k=v), "k"),
    ("paired_bootstrap_test.n_resamples",
     lambda v: retrieval.paired_bootstrap_test(RANKS, RANKS[::-1], n_resamples=v), "n_resamples"),
    ("gap_shares.ks", lambda v: gap.gap_shares(A, B, ks=v), "ks"),
    ("gap_dimensions.k", lambda v: gap.gap_dimensions(A, B, k=v), "k"),
    ("gap_report.max_rows", lambda v: gap.gap_report(A, B, probe=False, max_rows=v), "max_rows"),
    ("uniformity.max_rows", lambda v: gap.uniformity(A, max_rows=v), "max_rows"),
    ("core_metrics.ks", lambda v: gap.core_metrics(_paired(), A, B, ks=v), "ks"),
    ("core_metrics.uniformity_rows", lambda v: gap.core_metrics(_paired(), A, B, uniformity_rows=v),
     "uniformity_rows"),
    ("cosine_histograms.bins", lambda v: gap.cosine_histograms(A, B, bins=v), "bins"),
    ("clip_loss.batch_size", lambda v: gap.clip_loss(A, B, batch_size=v), "batch_size"),
    ("gap_loss_landscape.batch_size", lambda v: gap.gap_loss_landscape(A, B, deltas=(0.0,), batch_size=v),
     "batch_size"),
    ("ShiftedGap.ks", lambda v: gap.ShiftedGap(_paired(), ks=v), "ks"),
    ("ShiftedGap.batch_size", lambda v: gap.ShiftedGap(_paired(), batch_size=v), "batch_size"),
    ("ShiftedGap.uniformity_rows", lambda v: gap.ShiftedGap(_paired(), uniformity_rows=v), "uniformity_rows"),
    ("recall_keys.ks", lambda v: gap.recall_keys(v), "ks"),
    ("AblateGapDimensions.k", lambda v: AblateGapDimensions(k=v).fit(A, B), "k"),
    ("LinearAdapter.dim", lambda v: LinearAdapter(dim=v, epochs=1).fit(A, B), "dim"),
    ("LinearAdapter.epochs", lambda v: LinearAdapter(epochs=v).fit(A, B), "epochs"),
    ("LinearAdapter.batch_size", lambda v: LinearAdapter(epochs=1, batch_size=v).fit(A, B), "batch_size"),
    ("linear_probe.folds", lambda v: probes.linear_probe(A, _labels(), folds=v), "folds"),
    ("linear_probe.max_iter", lambda v: probes.linear_probe(A, _labels(), max_iter=v), "max_iter"),
    ("modality_probe_accuracy.folds", lambda v: probes.modality_probe_accuracy(A, B, folds=v), "folds"),
    ("fusion_probe.folds", lambda v: probes.fusion_probe(A, B, labels=_labels(), folds=v), "folds"),
    ("cross_modal_transfer.folds",
     lambda v: probes.cross_modal_transfer(A, _labels(), B, _labels(), folds=v), "folds"),
    ("compare_correctors.ks", lambda v: compare.compare_correctors(_paired(), [], ks=v, probe=False), "ks"),
    ("compare_correctors.n_resamples",
     lambda v: compare.compare_correctors(_paired(), [], n_resamples=v, probe=False), "n_resamples"),
    ("mixed_index_report.k", lambda v: compare.mixed_index_report(A, B, k=v), "k"),
    ("mixed_index_report.chunk_size", lambda v: compare.mixed_index_report(A, B, chunk_size=v), "chunk_size"),
    ("classify.ks", lambda v: _zeroshot(ks=v), "ks"),
    ("classify.chunk_size", lambda v: _zeroshot(chunk_size=v), "chunk_size"),
    ("ZeroShotResult.top_k.k", lambda v: _zeroshot().top_k(v), "k"),
    ("build_classifier.classes_per_call",
     lambda v: zeroshot.build_classifier(["x", "y"], lambda p: np.ones((len(p), 2)), "a {}", classes_per_call=v),
     "classes_per_call"),
    ("zero_shot_classify.ks",
     lambda v: zeroshot.zero_shot_classify(A[:, :2], ["x", "y"], lambda p: np.eye(2)[[len(q) % 2 for q in p]],
                                           "a {}", ks=v), "ks"),
    ("open_clip_text_encoder.batch_size",
     lambda v: zeroshot.open_clip_text_encoder(object(), lambda t: t, device="cpu", batch_size=v), "batch_size"),
    ("ContrastiveTrainer.epochs", lambda v: _trainer(epochs=v), "epochs"),
    ("ContrastiveTrainer.batch_size", lambda v: _trainer(batch_size=v), "batch_size"),
    ("ContrastiveTrainer.embed.batch_size",
     lambda v: _trainer().embed("a", A.astype(np.float32), batch_size=v), "batch_size"),
    ("learning_curve.sizes", lambda v: _learning_curve(sizes=[v]), "sizes"),
    ("learning_curve.seeds", lambda v: _learning_curve(sizes=[4], seeds=[v]), "seeds"),
    ("project.batch_size", lambda v: _project(batch_size=v), "batch_size"),
    ("project.workers", lambda v: _project(workers=v), "workers"),
    ("project.seed", lambda v: _project(seed=v), "seed"),
    ("Index.search.k", lambda v: _index().search(A[:2], k=v), "k"),
    ("Index.recall_at.k", lambda v: _index().recall_at(k=v), "k"),
    ("Index.recall_at.sample", lambda v: _index().recall_at(sample=v), "sample"),
    ("Index.M", lambda v: _index(kind="hnsw", M=v), "M"),
    ("Index.nprobe", lambda v: _index(kind="ivf", nlist=2, nprobe=v), "nprobe"),
    ("Index.set_params.nprobe", lambda v: _index(kind="ivf", nlist=2).set_params(nprobe=v), "nprobe"),
    ("recall_at_k_faiss.ks", lambda v: _search().recall_at_k_faiss(A, B, EYE, ks=v), "ks"),
]

BAD_SIZES = [0, -1, 1.5, True, "3"]


def _bad_values(label: str, name: str) -> list:
    if name == "ks":
        # zero-shot's ks also takes one k (ks=5 is top-5)
        return [(0,), (-1,), (1.5,), ()] + ([] if label.startswith(("classify", "zero_shot")) else [5])
    if name == "seeds" or label.endswith(".seed") or label == "LinearAdapter.epochs":  # epochs=0 keeps the start
        return [-1, 1.5, True, "3"]
    return BAD_SIZES


@pytest.mark.parametrize(
    ("call", "name", "bad"),
    [pytest.param(call, name, bad, id=f"{label}={bad!r}") for label, call, name in SIZE_PARAMETERS
     for bad in _bad_values(label, name)],
)
def test_size_parameters_refuse_non_positive_and_non_integer_values(call, name, bad):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call(bad)


# -- 13.2: the reported cases, and a size whose range depends on the data ---------------------------------------------
def test_retrieval_and_gap_shares_reported_cases_raise_naming_the_parameter():
    t2i = np.arange(len(A))
    for kwargs, name in (({"chunk_size": -1}, "chunk_size"), ({"ks": (-1,)}, "ks"), ({"ks": (1.5,)}, "ks")):
        with pytest.raises(ValueError, match=name):
            retrieval.evaluate_retrieval(A, B, t2i, **kwargs)
    with pytest.raises(ValueError, match="ks"):
        gap.gap_shares(A, B, ks=(0,))


def test_mixed_index_k_beyond_the_other_items_is_refused():
    # 2N - 1 other items: k = 2N would count the query itself (scored -inf) among its own top k
    n = len(A)
    assert compare.mixed_index_report(A, B, k=2 * n - 1)["same_modality_at_k"].to_list() == pytest.approx(
        [(n - 1) / (2 * n - 1)] * 2)  # every other item is retrieved: n - 1 of them share the modality
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 47\]"):
        compare.mixed_index_report(A, B, k=2 * n)


# -- 13.3: huge and tiny float64 rows ---------------------------------------------------------------------------------
SCALES = [1e200, 1e-200, 1e300, 1e-300]


def _reference_unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)  # of ordinary values: no overflow


@pytest.mark.parametrize("scale", SCALES)
def test_huge_and_tiny_rows_normalise_to_the_unit_rows_of_ordinary_ones(scale):
    from workbench._validation import row_norms, unit_matrix32, unit_rows32, unit_rows64

    x = np.random.default_rng(1).normal(size=(20, 16))
    expected = _reference_unit(x)
    mixed = x.copy()
    mixed[::2] *= scale  # every other row scaled: the ordinary rows next to them keep their exact results
    np.testing.assert_allclose(unit_rows64(mixed, "x"), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(unit_rows32(mixed, "x"), expected.astype(np.float32), rtol=0, atol=1e-7)
    np.testing.assert_allclose(unit_matrix32(mixed, "x"), expected.astype(np.float32), rtol=0, atol=1e-7)
    np.testing.assert_allclose(row_norms(mixed, "x")[::2] / scale, np.linalg.norm(x[::2], axis=1), rtol=1e-14)
    assert np.array_equal(unit_rows64(mixed, "x")[1::2], unit_rows64(x, "x")[1::2])


def test_ordinary_rows_keep_the_plain_division_bit_for_bit():
    from workbench._validation import unit_rows64

    x = np.random.default_rng(2).normal(size=(50, 32))
    assert np.array_equal(unit_rows64(x, "x"), x / np.sqrt(np.einsum("ij,ij->i", x, x))[:, None])


def test_rows_near_the_largest_float_normalise():
    from workbench._validation import unit_rows64

    x = np.full((1, 4), 1e308)  # the norm itself (2e308) is beyond float64
    np.testing.assert_allclose(unit_rows64(x, "x"), np.full((1, 4), 0.5), rtol=1e-15)


@pytest.mark.parametrize(("scale_a", "scale_b"), [(1e200, 1e-200), (1e-200, 1e200)])
def test_gap_retrieval_and_correctors_ignore_the_scale_of_rows(scale_a, scale_b):
    from workbench.correct import GapShift
    from workbench.data import Embeddings

    a2, b2 = A * scale_a, B * scale_b
    np.testing.assert_allclose(Embeddings(a2, "a").vectors, Embeddings(A, "a").vectors, rtol=0, atol=1e-7)
    expected, got = gap.gap_report(A, B, probe=False), gap.gap_report(a2, b2, probe=False)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == (None if value is None else pytest.approx(value, rel=1e-9, abs=1e-12)), key
    assert gap.gap_shares(a2, b2) == pytest.approx(gap.gap_shares(A, B), rel=1e-12)
    t2i = np.arange(len(A))
    assert retrieval.evaluate_retrieval(a2, b2, t2i) == retrieval.evaluate_retrieval(A, B, t2i)
    assert np.array_equal(retrieval.matched_ranks(a2, b2)[0], retrieval.matched_ranks(A, B)[0])
    for moved, plain in zip(GapShift().fit_transform(a2, b2), GapShift().fit_transform(A, B), strict=True):
        np.testing.assert_allclose(moved, plain, rtol=0, atol=1e-6)
    assert probes.modality_probe_accuracy(a2, b2).accuracy == probes.modality_probe_accuracy(A, B).accuracy
    scores = zeroshot.classify(a2, B[:3] * scale_b, ["x", "y", "z"]).scores
    np.testing.assert_allclose(scores, zeroshot.classify(A, B[:3], ["x", "y", "z"]).scores, rtol=0, atol=1e-6)


# -- 13.15: the interval over seeds ------------------------------------------------------------------------------------
def test_seed_interval_is_students_t_interval():
    import polars as pl
    from scipy import stats

    from workbench.train import summarise_seeds

    values = np.array([0.2, 0.4, 0.3, 0.5, 0.45])
    runs = pl.DataFrame({"n_pairs": [10] * 5, "seed": range(5), "r1": values})
    row = summarise_seeds(runs, "n_pairs").row(0, named=True)
    # by hand: mean +- t(0.975, n - 1) * sd / sqrt(n), and scipy's own t interval
    half = stats.t.ppf(0.975, 4) * values.std(ddof=1) / np.sqrt(5)
    assert (row["r1_lo"], row["r1_hi"]) == pytest.approx((values.mean() - half, values.mean() + half), rel=1e-12)
    lo, hi = stats.t.interval(0.95, 4, loc=values.mean(), scale=stats.sem(values))
    assert (row["r1_lo"], row["r1_hi"]) == pytest.approx((lo, hi), rel=1e-12)


def test_seed_interval_covers_the_true_mean_95_percent_of_the_time_with_three_seeds():
    import polars as pl

    from workbench.train import summarise_seeds

    draws, seeds = 2000, 3
    values = np.random.default_rng(13).normal(loc=0.5, scale=0.1, size=(draws, seeds))
    runs = pl.DataFrame({"draw": np.repeat(np.arange(draws), seeds), "seed": np.tile(np.arange(seeds), draws),
                         "r1": values.ravel()})
    summary = summarise_seeds(runs, "draw")
    assert summary.height == draws and set(summary["seeds"].to_list()) == {seeds}
    covered = ((summary["r1_lo"] <= 0.5) & (summary["r1_hi"] >= 0.5)).mean()
    assert 0.93 <= covered <= 0.97  # 1.96 standard errors cover about 81% with 3 seeds


# -- 13.18: a fixed temperature is the one trained with ----------------------------------------------------------------
@pytest.mark.parametrize("tau", [3.0, 1.5, 0.005, 0.0, -0.1])
@pytest.mark.parametrize("learn", [False, True])
def test_temperature_outside_the_trained_range_is_refused(tau, learn):
    with pytest.raises(ValueError, match=r"temperature must lie in \[0\.01, 1\.0\]"):
        _trainer(temperature=tau, learn_temperature=learn)


@pytest.mark.parametrize("tau", [0.01, 0.3, 1.0])
def test_fixed_temperatures_in_range_are_trained_as_given(tau):
    a = np.random.default_rng(3).normal(size=(16, 6)).astype(np.float32)
    trainer = _trainer(temperature=tau, learn_temperature=False, epochs=2, batch_size=8).fit(a, a[::-1].copy())
    assert trainer.history_["temperature"].to_list() == pytest.approx([tau, tau], rel=1e-12)
    assert trainer.temperature_ == pytest.approx(tau, rel=1e-12)


def test_temperature_changed_after_construction_is_refused_at_fit():
    a = np.random.default_rng(3).normal(size=(16, 6)).astype(np.float32)
    trainer = _trainer(learn_temperature=False)
    trainer.temperature = 3.0
    with pytest.raises(ValueError, match=r"temperature must lie in \[0\.01, 1\.0\]"):
        trainer.fit(a, a)


def test_temperature_study_refuses_temperatures_it_would_not_train_with():
    from workbench.train import ValidationSet, temperature_study

    a = np.random.default_rng(4).normal(size=(16, 6)).astype(np.float32)
    b = a[::-1].copy()
    val = ValidationSet(a, b)

    def fixed(tau, seed):
        return _trainer(temperature=tau, learn_temperature=False, epochs=1, batch_size=8, seed=seed)

    with pytest.raises(ValueError, match=r"temperatures must lie in \[0\.01, 1\.0\], got 3\.0"):
        temperature_study(fixed, a, b, val, temperatures=(0.1, 3.0))
    with pytest.raises(ValueError, match="learn_temperature=False"):  # the trainer would learn tau
        temperature_study(lambda tau, s: _trainer(temperature=tau, epochs=1, batch_size=8), a, b, val,
                          temperatures=(0.1,))
    with pytest.raises(ValueError, match=r"temperature=0\.1"):  # the trainer ignores tau
        temperature_study(lambda tau, s: _trainer(learn_temperature=False, epochs=1, batch_size=8), a, b, val,
                          temperatures=(0.1,))
    table = temperature_study(fixed, a, b, val, temperatures=(0.01, 1.0), seeds=(0, 1))
    assert table["temperature"].to_list() == [0.01, 0.01, 1.0, 1.0]
