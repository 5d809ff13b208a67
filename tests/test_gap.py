"""Gap metrics: hand computations, brute force, peer libraries, invariances, and the published CLIP numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist
from scipy.stats import special_ortho_group

from workbench import PairedEmbeddings, datasets, gap

ROTATION_INVARIANT = [
    "centroid_distance", "paired_distance", "relative_modality_gap", "alignment", "uniformity_a", "uniformity_b",
    "mean_matched_cosine", "mean_unmatched_cosine", "intra_cosine_a", "intra_cosine_b",
]


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def clip():
    return datasets.load("liang2022/clip")


def _brute_force(a_items, b_items, pairs):
    """Every metric by its textbook definition, with explicit loops over pairs of items."""
    a_items, b_items = _unit(a_items), _unit(b_items)
    ma, mb = a_items[pairs[:, 0]], b_items[pairs[:, 1]]
    matched = np.array([ma[k] @ mb[k] for k in range(len(pairs))])
    pair_set = {tuple(p) for p in pairs.tolist()}
    unmatched = [a_items[i] @ b_items[j] for i in range(len(a_items)) for j in range(len(b_items))
                 if (i, j) not in pair_set]

    def intra(x):
        return np.mean([x[i] @ x[j] for i in range(len(x)) for j in range(len(x)) if i != j])

    def unif(x):
        return np.log(np.mean(np.exp(-2 * pdist(x, "sqeuclidean"))))

    def d(c):
        return 1 - (c + 1) / 2

    m, s_a, s_b = matched.mean(), intra(a_items), intra(b_items)
    return {
        "centroid_distance": np.linalg.norm(a_items.mean(0) - b_items.mean(0)),
        "paired_distance": np.mean([np.linalg.norm(ma[k] - mb[k]) for k in range(len(pairs))]),
        "relative_modality_gap": d(m) / (d(m) + (d(s_a) + d(s_b)) / 2),
        "alignment": np.mean([np.sum((ma[k] - mb[k]) ** 2) for k in range(len(pairs))]),
        "uniformity_a": unif(a_items),
        "uniformity_b": unif(b_items),
        "mean_matched_cosine": m,
        "mean_unmatched_cosine": np.mean(unmatched),
        "intra_cosine_a": s_a,
        "intra_cosine_b": s_b,
    }


def test_report_equals_textbook_definitions_on_row_paired_data(rng):
    a = rng.normal(size=(40, 6)) + 1.5
    b = rng.normal(size=(40, 6)) - 0.5
    report = gap.gap_report(a, b, probe=False)
    expected = _brute_force(a, b, np.stack([np.arange(40)] * 2, axis=1))
    for key, value in expected.items():
        assert report[key] == pytest.approx(value, abs=1e-10), key
    # single-metric functions agree with the report
    assert gap.centroid_distance(a, b) == pytest.approx(report["centroid_distance"])
    assert gap.paired_distance(a, b) == pytest.approx(report["paired_distance"])
    assert gap.relative_modality_gap(a, b) == pytest.approx(report["relative_modality_gap"])
    assert gap.alignment(a, b) == pytest.approx(report["alignment"])
    assert gap.uniformity(a) == pytest.approx(report["uniformity_a"])
    assert gap.mean_unmatched_cosine(a, b) == pytest.approx(report["mean_unmatched_cosine"])
    assert gap.intra_modality_cosine(b) == pytest.approx(report["intra_cosine_b"])
    assert report.notes == {"modality_probe_accuracy": "not computed (probe=False)"}


def test_many_to_many_counts_each_item_once_and_each_pair_once(rng):
    images = rng.normal(size=(6, 5)) + 1.0
    captions = rng.normal(size=(14, 5))
    pairs = np.array([(i, j) for j, i in enumerate([0, 0, 0, 0, 0, 1, 1, 2, 3, 3, 4, 5, 5, 5])])
    paired = PairedEmbeddings.from_arrays(images, captions, pairs=pairs)
    report = gap.gap_report(paired, probe=False)
    expected = _brute_force(images, captions, pairs)
    for key, value in expected.items():
        assert report[key] == pytest.approx(value, abs=1e-6), key
    # an image with five captions must not weigh five times in its centroid
    weighted = np.linalg.norm(_unit(images)[pairs[:, 0]].mean(0) - _unit(captions).mean(0))
    assert report["centroid_distance"] != pytest.approx(weighted, abs=1e-3)


def test_items_outside_every_pair_are_left_out(rng):
    images, captions = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    pairs = np.array([[0, 0], [1, 1], [2, 2]])  # rows 3 and 4 are gallery distractors
    report = gap.gap_report(PairedEmbeddings.from_arrays(images, captions, pairs=pairs), probe=False)
    assert report["centroid_distance"] == pytest.approx(gap.centroid_distance(images[:3], captions[:3]))


def test_gap_shares_and_dimensions_by_hand():
    a = np.array([[0.0, 0.0, 3.0, 4.0], [0.0, 0.0, 3.0, 4.0]])
    b = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    # gap = (-.5, -.5, .6, .8): squares .25 .25 .36 .64, total 1.5
    report = gap.gap_report(a, b, probe=False)
    assert report["gap_top1_share"] == pytest.approx(0.64 / 1.5)
    assert report["gap_top5_share"] == pytest.approx(1.0)
    dims = gap.gap_dimensions(a, b, k=2)
    assert dims["dimension"].to_list() == [3, 2]
    np.testing.assert_allclose(dims["gap"].to_numpy(), [0.8, 0.6])
    np.testing.assert_allclose(dims["share"].to_numpy(), [0.64 / 1.5, 0.36 / 1.5])
    assert gap.gap_shares(a, b, ks=(2,)) == {2: pytest.approx(1.0 / 1.5)}


def test_published_clip_numbers(clip):
    report = gap.gap_report(clip, probe=False)
    assert report["centroid_distance"] == pytest.approx(0.851, abs=1e-3)  # Liang et al.'s files, measured here
    # 500-way R@1 by an independent argmax over the full similarity matrix
    a, b = (_unit(x) for x in clip.matched())
    sims = a @ b.T
    r1_image_to_text = np.mean(sims.argmax(axis=1) == np.arange(500))
    r1_text_to_image = np.mean(sims.argmax(axis=0) == np.arange(500))
    assert r1_image_to_text == pytest.approx(0.552, abs=1e-3)
    assert r1_text_to_image == pytest.approx(0.506, abs=1e-3)
    from workbench.retrieval import matched_ranks

    ranks_ab, ranks_ba = matched_ranks(*clip.matched())
    assert np.mean(ranks_ab == 1) == pytest.approx(r1_image_to_text)
    assert np.mean(ranks_ba == 1) == pytest.approx(r1_text_to_image)
    # the cone effect: items of one modality are far more similar to each other than unrelated pairs would be
    assert report["intra_cosine_a"] > 0.3 and report["intra_cosine_b"] > 0.3


def test_modality_probe_in_the_report(clip):
    report = gap.gap_report(clip)
    assert report["modality_probe_accuracy"] >= 0.99  # CLIP's modalities are linearly separable (Liang et al.)
    tiny = gap.gap_report(clip.subset(np.arange(5)))
    assert tiny["modality_probe_accuracy"] is None
    assert tiny.notes["modality_probe_accuracy"]


def test_uniformity_subsamples_above_max_rows_and_says_so(rng):
    a = rng.normal(size=(60, 4))
    b = rng.normal(size=(60, 4))
    report = gap.gap_report(a, b, probe=False, max_rows=30, seed=3)
    assert "subsample of 30 of 60" in report.notes["uniformity_a"]
    rows = np.sort(np.random.default_rng(3).choice(60, size=30, replace=False))
    assert report["uniformity_a"] == pytest.approx(np.log(np.mean(np.exp(-2 * pdist(_unit(a)[rows], "sqeuclidean")))))
    # below the threshold the exact value
    assert gap.gap_report(a, b, probe=False)["uniformity_b"] == pytest.approx(
        np.log(np.mean(np.exp(-2 * pdist(_unit(b), "sqeuclidean")))))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(3, 25), d=st.integers(2, 9), seed=st.integers(0, 2**31 - 1))
def test_rotation_permutation_and_swap_invariance(n, d, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d)) + rng.normal(size=d)
    b = rng.normal(size=(n, d))
    base = gap.gap_report(a, b, probe=False)
    rotation = special_ortho_group.rvs(d, random_state=seed) if d > 1 else np.eye(1)
    rotated = gap.gap_report(a @ rotation, b @ rotation, probe=False)
    for key in ROTATION_INVARIANT:
        assert rotated[key] == pytest.approx(base[key], abs=1e-6), key
    perm = rng.permutation(n)
    permuted = gap.gap_report(a[perm], b[perm], probe=False)
    for key, value in base.items():
        if value is not None:
            assert permuted[key] == pytest.approx(value, abs=1e-9), key
    swapped = gap.gap_report(b, a, probe=False)
    for key, value in base.items():
        if value is None:
            continue
        partner = key[:-2] + ("_b" if key.endswith("_a") else "_a") if key.endswith(("_a", "_b")) else key
        assert swapped[partner] == pytest.approx(value, abs=1e-9), key


def test_cosine_histograms_match_brute_force(rng):
    images, captions = rng.normal(size=(7, 5)), rng.normal(size=(12, 5))
    pairs = np.array([(j % 7, j) for j in range(12)])
    h = gap.cosine_histograms(PairedEmbeddings.from_arrays(images, captions, pairs=pairs), bins=10)
    a, b = _unit(images), _unit(captions)
    edges = np.linspace(-1, 1, 11)
    pair_set = {tuple(p) for p in pairs.tolist()}
    expected = {
        "matched": [a[i] @ b[j] for i, j in pairs],
        "unmatched": [a[i] @ b[j] for i in range(7) for j in range(12) if (i, j) not in pair_set],
        "intra_a": [a[i] @ a[j] for i in range(7) for j in range(i + 1, 7)],
        "intra_b": [b[i] @ b[j] for i in range(12) for j in range(i + 1, 12)],
    }
    for kind, values in expected.items():
        got = h.filter(h["kind"] == kind)
        assert got["count"].to_list() == np.histogram(values, bins=edges)[0].tolist(), kind
        assert got["density"].sum() == pytest.approx(1.0)


def test_clip_loss_equals_open_clip(rng):
    torch = pytest.importorskip("torch")
    from open_clip.loss import ClipLoss

    a, b = _unit(rng.normal(size=(50, 16))), _unit(rng.normal(size=(50, 16)))
    reference = ClipLoss()(torch.tensor(a), torch.tensor(b), logit_scale=torch.tensor(100.0)).item()
    assert gap.clip_loss(a, b, logit_scale=100.0, batch_size=50) == pytest.approx(reference, rel=1e-9)
    # consecutive batches: the mean of each batch's loss
    a2, b2 = _unit(rng.normal(size=(120, 16))), _unit(rng.normal(size=(120, 16)))
    per_batch = [ClipLoss()(torch.tensor(a2[s:s + 50]), torch.tensor(b2[s:s + 50]),
                            logit_scale=torch.tensor(30.0)).item() for s in (0, 50, 100)]
    assert gap.clip_loss(a2, b2, logit_scale=30.0, batch_size=50) == pytest.approx(np.mean(per_batch), rel=1e-9)


def test_loss_landscape_minimum_lies_near_the_models_own_gap(clip):
    landscape = gap.gap_loss_landscape(clip, deltas=np.linspace(-0.5, 1.0, 16))
    original = gap.centroid_distance(clip)
    at_zero = landscape.filter(landscape["delta"].abs() < 1e-9)
    assert at_zero["centroid_distance"].item() == pytest.approx(original, abs=1e-6)
    best = landscape.sort("loss").row(0, named=True)
    assert abs(best["centroid_distance"] - original) < 0.15  # Liang et al., Fig. 3
    closed = landscape.filter((landscape["delta"] - 1.0).abs() < 1e-9)
    assert closed["centroid_distance"].item() < 0.02
    # R@1 at delta 0 is the model's own
    a, b = (_unit(x) for x in clip.matched())
    assert at_zero["r1_a_to_b"].item() == pytest.approx(np.mean((a @ b.T).argmax(1) == np.arange(500)))


def test_bad_inputs():
    with pytest.raises(ValueError, match="row-paired"):
        gap.gap_report(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="same dimension"):
        gap.gap_report(np.ones((3, 2)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="1 of 2 rows contain NaN"):
        gap.gap_report(np.array([[np.nan, 1.0], [1.0, 0.0]]), np.ones((2, 2)))
    with pytest.raises(ValueError, match="at least 2 pairs"):
        gap.gap_report(np.ones((1, 2)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="zero norm"):
        gap.centroid_distance(np.zeros((1, 2)), np.ones((1, 2)))
    with pytest.raises(TypeError):
        gap.centroid_distance(np.ones((1, 2)))
    with pytest.raises(ValueError, match="k must be between 1 and the dimension 2"):
        gap.gap_dimensions(np.eye(2), np.eye(2)[::-1], k=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gap.gap_report(np.eye(3), np.eye(3)[::-1], probe=False)["centroid_distance"] == pytest.approx(0.0)


def test_hand_examples():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([[-1.0, 0.0], [0.0, -1.0]])
    assert gap.centroid_distance(a, b) == pytest.approx(np.sqrt(2))
    np.testing.assert_allclose(gap.gap_vector(a * 7, b * 0.1), [1.0, 1.0])
    a = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    b = np.array([[1.0, 1.0], [0.0, -1.0], [4.0, 3.0]])
    assert gap.mean_matched_cosine(a, b) == pytest.approx((1 / np.sqrt(2) - 1.0 + 24 / 25) / 3)


def test_a_report_becomes_a_table_with_its_notes(rng):
    import polars as pl

    a, b = rng.normal(size=(8, 5)), rng.normal(size=(8, 5))
    report = gap.gap_report(a, b)  # 8 pairs: the probe is skipped with a note
    long = report.to_frame()
    assert long["metric"].to_list() == list(report)
    assert long["value"].to_list() == [report[k] for k in report]
    assert long.filter(pl.col("metric") == "modality_probe_accuracy")["note"].item() == \
        report.notes["modality_probe_accuracy"]
    wide = pl.concat([report.to_frame(wide=True), gap.gap_report(a, b[::-1]).to_frame(wide=True)])
    assert wide.columns == list(report) and wide.height == 2
    assert wide["centroid_distance"][0] == report["centroid_distance"]
