"""compare_correctors and mixed_index_report: values recomputed by hand, intervals checked against theory."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import PairedEmbeddings, datasets
from workbench.compare import compare_correctors, mixed_index_report, split_pairs
from workbench.correct import GapShift, MeanCenter


@pytest.fixture(scope="module")
def clip():
    return datasets.load("liang2022/clip")


@pytest.fixture(scope="module")
def table(clip):
    return compare_correctors(clip, [GapShift(1.0), MeanCenter()], n_resamples=300, seed=0)


def test_one_row_per_corrector_plus_none(table):
    assert table["corrector"].to_list() == ["none", "GapShift()", "MeanCenter()"]
    assert set(table["n_test"].to_list()) == {250}
    for key in ("centroid_distance", "relative_modality_gap", "image_to_text_R@1", "text_to_image_R@10",
                "modality_probe_accuracy", "gap_top20_share", "uniformity_b"):
        assert key in table.columns


def test_none_row_equals_a_hand_computation_on_the_held_out_half(clip, table):
    _, test = split_pairs(clip, 0.5, seed=0)
    a, b = test.matched()
    sims = a.astype(np.float64) @ b.T.astype(np.float64)
    none = table.row(0, named=True)
    assert none["image_to_text_R@1"] == pytest.approx(np.mean(sims.argmax(1) == np.arange(250)))
    assert none["text_to_image_R@1"] == pytest.approx(np.mean(sims.argmax(0) == np.arange(250)))
    top5 = np.argsort(-sims, axis=1)[:, :5]
    assert none["image_to_text_R@5"] == pytest.approx(np.mean((top5 == np.arange(250)[:, None]).any(1)))
    ua, ub = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    assert none["centroid_distance"] == pytest.approx(np.linalg.norm(ua.mean(0) - ub.mean(0)), abs=1e-6)


def test_corrections_fitted_on_train_close_the_held_out_gap(table):
    none, shift, center = table.rows(named=True)
    # on held-out pairs the train means are off by sampling noise (about 0.1 in 512-d with 250 pairs),
    # so the gap falls from 0.85 to about a tenth rather than to zero
    assert shift["centroid_distance"] < none["centroid_distance"] / 4
    assert center["centroid_distance"] < none["centroid_distance"] / 4
    # centring keeps retrieval; closing the gap completely by a shift costs R@1 (the rows are renormalised after
    # the shift, which reorders similarities; Liang et al.'s Fig. 3 shows the loss rising as the gap closes)
    for direction in ("image_to_text_R@1", "text_to_image_R@1"):
        assert abs(center[direction] - none[direction]) < 0.05
        assert shift[direction] < none[direction] - 0.05


def test_intervals_bracket_the_estimate_and_have_the_textbook_width(table):
    for row in table.rows(named=True):
        for key, value in row.items():
            if key.endswith(("_lo", "_hi")) or f"{key}_lo" not in row or row[f"{key}_lo"] is None:
                continue
            assert row[f"{key}_lo"] <= value + 1e-9 and value - 1e-9 <= row[f"{key}_hi"], (row["corrector"], key)
        assert row["modality_probe_accuracy_lo"] is None
    # R@1 is a mean of 250 hits: the bootstrap 95% interval is about 2 * 1.96 * sqrt(p (1 - p) / n) wide
    p = table["image_to_text_R@1"][0]
    width = table["image_to_text_R@1_hi"][0] - table["image_to_text_R@1_lo"][0]
    assert width == pytest.approx(2 * 1.96 * np.sqrt(p * (1 - p) / 250), rel=0.25)


def test_half_sample_interval_of_a_mean_matches_its_standard_error(rng):
    # mean matched cosine is a plain mean over pairs: its 95% interval should be 2 * 1.96 * sd / sqrt(n) wide
    shared = rng.normal(size=(400, 8))
    a, b = shared + rng.normal(size=(400, 8)), shared + rng.normal(size=(400, 8))
    paired = PairedEmbeddings.from_arrays(a, b, modalities=("x", "y"))
    t = compare_correctors(paired, [], n_resamples=400, probe=False, seed=1)
    _, test = split_pairs(paired, 0.5, seed=1)
    ta, tb = test.matched()
    cos = np.einsum("ij,ij->i", ta.astype(np.float64), tb.astype(np.float64))
    expected = 2 * 1.96 * cos.std(ddof=1) / np.sqrt(len(cos))
    width = t["mean_matched_cosine_hi"][0] - t["mean_matched_cosine_lo"][0]
    assert width == pytest.approx(expected, rel=0.25)


def test_split_keeps_every_item_on_one_side(rng):
    images, captions = rng.normal(size=(20, 6)), rng.normal(size=(60, 6))
    pairs = np.array([(j // 3, j) for j in range(60)])
    paired = PairedEmbeddings.from_arrays(images, captions, pairs=pairs, modalities=("image", "text"),
                                          metadata_a={"id": [f"img{i}" for i in range(20)]})
    train, test = split_pairs(paired, 0.3, seed=4)
    assert not set(train.a.ids.to_list()) & set(test.a.ids.to_list())
    assert train.n_pairs + test.n_pairs == 60 and test.n_pairs == 18
    t = compare_correctors(paired, {"shift": GapShift(0.5)}, n_resamples=20, probe=False)
    assert t["corrector"].to_list() == ["none", "shift"]


def test_bad_arguments(clip):
    with pytest.raises(ValueError, match="test_fraction"):
        compare_correctors(clip, [], test_fraction=1.0)
    with pytest.raises(ValueError, match="distinct"):
        compare_correctors(clip, [GapShift(1.0), GapShift(1.0)])
    with pytest.raises(ValueError, match="n_resamples"):
        compare_correctors(clip, [], n_resamples=3)


def test_mixed_index_same_modality_fraction_by_brute_force(clip):
    report = mixed_index_report(clip, k=10, correctors=[MeanCenter()])
    a, b = (x.astype(np.float64) for x in (clip.a.vectors, clip.b.vectors))
    index = np.concatenate([a, b])
    sims = index @ index.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1)[:, :10]
    is_text = np.arange(1000) >= 500
    same = (is_text[top] == is_text[:, None]).mean(axis=1)
    # own-pair rank among the 999 others
    partner = np.concatenate([np.arange(500, 1000), np.arange(500)])
    ranks = 1 + (sims > sims[np.arange(1000), partner][:, None]).sum(axis=1)
    none = report.filter(report["corrector"] == "none")
    assert none["same_modality_at_k"].to_list() == pytest.approx([same[:500].mean(), same[500:].mean()], abs=1e-6)
    assert none["pair_mean_rank"].to_list() == pytest.approx([ranks[:500].mean(), ranks[500:].mean()], abs=1e-6)
    assert min(none["same_modality_at_k"]) > 0.9  # the gap: a query returns its own modality
    centered = report.filter(report["corrector"] == "MeanCenter()")
    assert max(centered["same_modality_at_k"]) < min(none["same_modality_at_k"])
    assert centered["pair_recall_at_k"].to_list()[0] > none["pair_recall_at_k"].to_list()[0]


# -- the half-sample engine: one set of Gram matrices instead of a gap_report per half-sample ---------------------
def _brute_force(reports):
    return {key: np.array([r[key] for r in reports]) for key in reports[0] if reports[0][key] is not None}


@pytest.mark.parametrize("device", [None, "cpu"])
def test_half_samples_equal_a_fresh_gap_report_per_half_sample(clip, device):
    from workbench.compare import _half_sample_reports
    from workbench.gap import gap_report

    _, test = split_pairs(clip, 0.5, seed=0)
    rng = np.random.default_rng(3)
    halves = [np.sort(rng.choice(test.n_pairs, size=125, replace=False)) for _ in range(4)]
    got = _half_sample_reports(test, halves, 0, device)
    xa, xb = test.matched()
    expected = _brute_force([gap_report(xa[h], xb[h], probe=False) for h in halves])
    assert set(expected) <= set(got)
    for key, values in expected.items():
        np.testing.assert_allclose(got[key], values, rtol=0, atol=1e-10, err_msg=key)


@pytest.mark.parametrize("device", [None, "cpu"])
def test_half_samples_of_many_to_many_pairs_keep_the_items_their_pairs_reference(rng, device):
    from workbench.compare import _half_sample_reports
    from workbench.gap import gap_report

    images, captions = rng.normal(size=(30, 8)), rng.normal(size=(90, 8))
    pairs = np.array([(j // 3, j) for j in range(90)] + [(0, 5), (7, 40)])  # two captions with two images
    paired = PairedEmbeddings.from_arrays(images, captions, pairs=pairs, modalities=("image", "text"))
    halves = [np.sort(rng.choice(len(pairs), size=46, replace=False)) for _ in range(3)]
    got = _half_sample_reports(paired, halves, 0, device)
    expected = _brute_force([gap_report(paired.subset(h), probe=False) for h in halves])
    for key, values in expected.items():
        np.testing.assert_allclose(got[key], values, rtol=0, atol=1e-10, err_msg=key)


def test_compare_on_a_torch_device_equals_numpy(clip):
    from workbench.correct import GapShift

    numpy_table = compare_correctors(clip, [GapShift(1.0)], n_resamples=40, probe=False, progress=False)
    torch_table = compare_correctors(clip, [GapShift(1.0)], n_resamples=40, probe=False, progress=False,
                                     device="cpu")
    for column in numpy_table.columns[1:]:
        a, b = numpy_table[column].to_list(), torch_table[column].to_list()
        assert a == pytest.approx(b, abs=1e-10), column
    with pytest.raises(TypeError, match="device"):
        compare_correctors(clip, [], n_resamples=10, probe=False, progress=False, device=3)
