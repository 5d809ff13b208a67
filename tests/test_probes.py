"""Linear probes against planted answers: known separability, and direct scikit-learn computations of the same folds."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from threadpoolctl import threadpool_limits

import workbench
from workbench import PairedEmbeddings
from workbench.probes import (
    ProbeResult,
    TransferResult,
    cross_modal_transfer,
    fusion_probe,
    linear_probe,
    modality_probe_accuracy,
)

MAX_ITER = 5000  # the probes' default


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def direct_cv(x: np.ndarray, y, folds: int = 5, seed: int = 0, C: float = 1.0) -> tuple[float, float]:
    """Mean and std of fold accuracies, computed straight with scikit-learn."""
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with threadpool_limits(limits=1, user_api="blas"):  # as the probes do; faster, and the same result
        scores = cross_val_score(LogisticRegression(C=C, max_iter=MAX_ITER), unit(x), np.asarray(y), cv=cv)
    return float(scores.mean()), float(scores.std())


def direct_transfer(train_x: np.ndarray, train_y, test_x: np.ndarray, test_y) -> float:
    with threadpool_limits(limits=1, user_api="blas"):
        clf = LogisticRegression(max_iter=MAX_ITER).fit(train_x, train_y)
        return float(clf.score(test_x, test_y))


def clusters(rng: np.random.Generator, n: int, k: int, dim: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows in ``k`` Gaussian clusters around centres ``spread`` apart (on orthogonal axes)."""
    y = np.arange(n) % k
    return spread * np.eye(dim)[y] + rng.normal(size=(n, dim)), y


# -- linear_probe ------------------------------------------------------------------------------------------------------
def test_well_separated_clusters_are_probed_perfectly(rng):
    x, y = clusters(rng, 120, 4, 16, spread=8.0)
    result = linear_probe(x, y)
    assert result == ProbeResult(1.0, 0.0, 5, 120, None)
    assert (result.accuracy, result.std) == pytest.approx(direct_cv(x, y))


def test_noise_labels_give_chance_and_match_sklearn(rng):
    x = rng.normal(size=(200, 16))
    y = rng.permutation(np.arange(200) % 4)  # labels unrelated to x: chance is 0.25
    result = linear_probe(x, y, folds=4, seed=3)
    assert result.accuracy == pytest.approx(direct_cv(x, y, folds=4, seed=3)[0])
    assert result.std == pytest.approx(direct_cv(x, y, folds=4, seed=3)[1])
    assert abs(result.accuracy - 0.25) < 0.1


def test_overlapping_clusters_match_sklearn_for_any_folds_seed_and_c(rng):
    x, y = clusters(rng, 150, 3, 10, spread=1.2)
    for folds, seed, C in [(5, 0, 1.0), (3, 7, 0.1), (10, 1, 10.0)]:
        result = linear_probe(x, y, folds=folds, seed=seed, C=C)
        assert (result.accuracy, result.std) == pytest.approx(direct_cv(x, y, folds, seed, C))
        assert result.folds == folds and result.n == 150 and result.reason is None
        assert 0.4 < result.accuracy < 1.0  # informative but not perfect


def test_labels_may_be_any_hashables_and_rows_any_scale(rng):
    x, y = clusters(rng, 60, 3, 8, spread=2.0)
    names = np.array(["cat", "dog", "owl"])[y]
    as_tuples = [("class", int(v)) for v in y]
    expected = linear_probe(x, y)
    assert linear_probe(x * 7.5, names.tolist()) == expected  # rows are L2-normalised first
    assert linear_probe(x.astype(np.float32), as_tuples).accuracy == pytest.approx(expected.accuracy)
    assert linear_probe(workbench.Embeddings(x, "image"), names).accuracy == pytest.approx(expected.accuracy)


def test_torch_inputs(rng):
    torch = pytest.importorskip("torch")
    x, y = clusters(rng, 60, 3, 8, spread=2.0)
    assert linear_probe(torch.from_numpy(x), torch.from_numpy(y)).accuracy == pytest.approx(
        linear_probe(x, y).accuracy
    )


def test_too_little_data_gives_none_with_a_reason(rng):
    x = rng.normal(size=(40, 4))
    few = linear_probe(x[:9], np.arange(9) % 2)
    assert few.accuracy is None and few.std is None and "9 rows" in few.reason and few.n == 9
    one_class = linear_probe(x, ["a"] * 40)
    assert one_class.accuracy is None and "only one class ('a')" in one_class.reason
    rare = linear_probe(x, ["a"] * 37 + ["b"] * 3)
    assert rare.accuracy is None and "class 'b' has 3 rows, fewer than folds=5" in rare.reason
    assert linear_probe(x, ["a"] * 37 + ["b"] * 3, folds=3).accuracy is not None


# -- modality_probe_accuracy -------------------------------------------------------------------------------------------
def test_clip_modalities_are_linearly_separable():
    paired = workbench.datasets.load("liang2022/clip")
    result = modality_probe_accuracy(paired)
    assert result.n == 1000 and result.accuracy >= 0.99
    a, b = paired.matched()
    assert modality_probe_accuracy(a, b) == result  # one-to-one: the same rows
    assert result.accuracy == pytest.approx(direct_cv(np.vstack([a, b]), [0] * 500 + [1] * 500)[0])


def test_one_distribution_split_in_two_is_at_chance(rng):
    x = rng.normal(size=(400, 16))
    result = modality_probe_accuracy(x[:200], x[200:])
    assert result.accuracy == pytest.approx(direct_cv(x, [0] * 200 + [1] * 200)[0])
    assert abs(result.accuracy - 0.5) < 0.1


def test_modality_probe_counts_each_paired_item_once(rng):
    images = rng.normal(size=(12, 6)) + 3.0
    captions = rng.normal(size=(60, 6)) - 3.0
    pairs = [(i, 5 * i + j) for i in range(12) for j in range(5)]  # five captions per image
    paired = PairedEmbeddings.from_arrays(images, captions, pairs=pairs)
    result = modality_probe_accuracy(paired)
    assert result.n == 72  # 12 images once each, not 60 times
    assert result == modality_probe_accuracy(images, captions)
    assert result.accuracy == 1.0


def test_modality_probe_below_ten_pairs_is_none(rng):
    a, b = rng.normal(size=(9, 4)), rng.normal(size=(9, 4))
    result = modality_probe_accuracy(a, b)
    assert result.accuracy is None and result.reason == "too little data: 9 pairs, at least 10 are needed"
    assert modality_probe_accuracy(PairedEmbeddings.from_arrays(a, b)).accuracy is None
    assert modality_probe_accuracy(rng.normal(size=(10, 4)), rng.normal(size=(10, 4))).accuracy is not None


# -- cross_modal_transfer ----------------------------------------------------------------------------------------------
def gapped_modalities(rng: np.random.Generator, n: int = 160, gap: float = 10.0):
    """Four classes along e0..e3, shared by both modalities; each modality offset by its own large gap vector.

    The gaps lean towards different classes (a's towards class 0, b's towards class 1): a probe trained on one
    modality sends every row of the other to one class, unless each modality is centred on its own mean first.
    """
    e = np.eye(8)
    y = np.arange(n) % 4
    a = 3 * e[y] + 0.5 * rng.normal(size=(n, 8)) + gap * (e[4] + e[0]) / np.sqrt(2)
    b = 3 * e[y] + 0.5 * rng.normal(size=(n, 8)) + gap * (e[5] + e[1]) / np.sqrt(2)
    return a, y, b, y.copy()


def test_removing_a_planted_gap_makes_the_probe_transfer(rng):
    a, ya, b, yb = gapped_modalities(rng)
    kept = cross_modal_transfer(a, ya, b, yb)
    removed = cross_modal_transfer(a, ya, b, yb, remove_gap=True)
    assert isinstance(kept, TransferResult) and not kept.remove_gap and removed.remove_gap
    assert kept.a_to_b <= 0.3 and kept.b_to_a <= 0.3  # chance is 0.25
    assert removed.a_to_b >= 0.95 and removed.b_to_a >= 0.95
    assert kept.a_to_a >= 0.95 and kept.b_to_b >= 0.95  # each modality alone is easy
    # the same numbers straight from scikit-learn
    ua, ub = unit(a), unit(b)
    assert kept.a_to_b == pytest.approx(direct_transfer(ua, ya, ub, yb))
    assert kept.b_to_a == pytest.approx(direct_transfer(ub, yb, ua, ya))
    ca, cb = unit(ua - ua.mean(0)), unit(ub - ub.mean(0))
    assert removed.a_to_b == pytest.approx(direct_transfer(ca, ya, cb, yb))
    assert removed.b_to_a == pytest.approx(direct_transfer(cb, yb, ca, ya))
    assert removed.a_to_a == pytest.approx(direct_cv(ca, ya)[0])
    assert kept.b_to_b == pytest.approx(direct_cv(ub, yb)[0])


def test_transfer_without_a_gap_is_perfect_on_separated_clusters(rng):
    a, ya = clusters(rng, 80, 4, 12, spread=8.0)
    b, yb = clusters(rng, 100, 4, 12, spread=8.0)
    result = cross_modal_transfer(a, ya, b, yb)
    assert (result.a_to_b, result.b_to_a, result.a_to_a, result.b_to_b) == (1.0, 1.0, 1.0, 1.0)
    assert (result.n_a, result.n_b) == (80, 100)


def test_transfer_labels_are_matched_by_value_and_unseen_classes_count_as_errors(rng):
    a, ya = clusters(rng, 80, 4, 12, spread=8.0)
    b, yb = clusters(rng, 80, 4, 12, spread=8.0)
    names = np.array(["cat", "dog", "owl", "eel"])
    result = cross_modal_transfer(a, names[ya], b, names[yb].tolist())
    assert result.a_to_b == 1.0
    # b has a fifth class that a never saw: those rows cannot be right
    yb5 = yb.copy()
    yb5[:16] = 4
    five = np.append(names, "fox")
    assert cross_modal_transfer(a, names[ya], b, five[yb5]).a_to_b == pytest.approx(1 - 16 / 80)
    # a too small for cross-validation: the in-modality reference is None, the transfer still computed
    small = cross_modal_transfer(a[:8], ya[:8], b, yb)
    assert small.a_to_a is None and small.b_to_b == 1.0 and small.a_to_b == 1.0


# -- fusion_probe ------------------------------------------------------------------------------------------------------
def half_and_half(rng: np.random.Generator, n: int = 200):
    """Four labels; a knows only the first bit (y // 2), b only the second (y % 2)."""
    y = np.arange(n) % 4
    a = 4 * np.eye(8)[y // 2] + rng.normal(size=(n, 8))
    b = 4 * np.eye(8)[4 + y % 2] + rng.normal(size=(n, 8))
    return a, b, y


def test_fusion_beats_either_modality_when_each_holds_half_the_labels(rng):
    a, b, y = half_and_half(rng)
    frame = fusion_probe(a, b, y)
    assert frame.columns == ["input", "accuracy", "std", "reason"]
    acc = dict(zip(frame["input"], frame["accuracy"], strict=True))
    assert abs(acc["a"] - 0.5) < 0.1 and abs(acc["b"] - 0.5) < 0.1  # one bit of two
    assert acc["concat"] > 0.95 and acc["sum"] > 0.95
    assert min(acc["concat"], acc["sum"]) > max(acc["a"], acc["b"]) + 0.3
    assert frame["reason"].null_count() == 4
    # the same folds, straight from scikit-learn
    ua, ub = unit(a), unit(b)
    expected = {"a": ua, "b": ub, "concat": np.hstack([ua, ub]), "sum": ua + ub}
    for name, x in expected.items():
        row = frame.filter(frame["input"] == name)
        assert (row["accuracy"][0], row["std"][0]) == pytest.approx(direct_cv(x, y)), name


def test_fusion_of_a_paired_set_uses_its_matched_rows(rng):
    a, b, y = half_and_half(rng, n=60)
    paired = PairedEmbeddings.from_arrays(a, b)
    assert fusion_probe(paired, labels=y).equals(fusion_probe(a, b, y, folds=5, seed=0))
    with pytest.raises(TypeError, match="not both"):
        fusion_probe(paired, y)


def test_fusion_with_different_dimensions_or_too_little_data(rng):
    a, b, y = half_and_half(rng, n=60)
    frame = fusion_probe(a, b[:, :6], y)
    sum_row = frame.filter(frame["input"] == "sum")
    assert sum_row["accuracy"][0] is None and "different dimensions (8 and 6)" in sum_row["reason"][0]
    assert frame["accuracy"].null_count() == 1
    tiny = fusion_probe(a[:8], b[:8], y[:8])
    assert tiny["accuracy"].null_count() == 4 and tiny["reason"].str.contains("8 rows").all()


# -- bad input ---------------------------------------------------------------------------------------------------------
def test_bad_inputs_raise_clear_errors(rng):
    x, y = clusters(rng, 40, 2, 4, spread=3.0)
    nan = x.copy()
    nan[3, 1] = np.nan
    inf = x.copy()
    inf[5, 0] = np.inf
    zero = x.copy()
    zero[7] = 0.0
    with pytest.raises(ValueError, match=r"1 of 40 rows contain (NaN|inf) \(rows 3\)"):
        linear_probe(nan, y)
    with pytest.raises(ValueError, match=r"NaN|inf"):
        modality_probe_accuracy(x, inf)
    with pytest.raises(ValueError, match="zero norm"):
        fusion_probe(x, zero, y)
    with pytest.raises(ValueError, match="1-D"):
        linear_probe(x, y[:, None])
    with pytest.raises(ValueError, match="1-D"):
        linear_probe(x, [[v] for v in y])
    with pytest.raises(ValueError, match="39 labels but there are 40 rows"):
        linear_probe(x, y[:39])
    with pytest.raises(ValueError, match="missing"):
        linear_probe(x, [None, *y[1:].tolist()])
    with pytest.raises(ValueError, match="missing"):
        linear_probe(x, np.where(y == 0, np.nan, 1.0))
    with pytest.raises(ValueError, match="2-D matrix"):
        linear_probe(x[0], y[:1])
    with pytest.raises(ValueError, match="same dimension"):
        modality_probe_accuracy(x, x[:, :3])
    with pytest.raises(ValueError, match="same dimension"):
        cross_modal_transfer(x, y, x[:, :3], y)
    with pytest.raises(ValueError, match="equal row counts, got 40 and 39"):
        fusion_probe(x, x[:39], y)
    with pytest.raises(ValueError, match="one class"):
        cross_modal_transfer(x, y, x, np.zeros(40))
    with pytest.raises(ValueError, match="no class in common"):
        cross_modal_transfer(x, y, x, y + 10)
    with pytest.raises(ValueError, match="centring"):
        cross_modal_transfer(x, y, np.tile(x[:1], (40, 1)), y, remove_gap=True)
    with pytest.raises(ValueError, match="folds must be at least 2"):
        linear_probe(x, y, folds=1)
    with pytest.raises(ValueError, match="C must be"):
        linear_probe(x, y, C=0)
    with pytest.raises(TypeError, match="hashable"):
        linear_probe(x[:2], [{1}, {2}])
    with pytest.raises(TypeError, match="PairedEmbeddings"):
        linear_probe(PairedEmbeddings.from_arrays(x, x), y)
    with pytest.raises(TypeError, match="labels are required"):
        fusion_probe(x, x)
    with pytest.raises(TypeError):
        modality_probe_accuracy(x)


def test_import_does_not_load_sklearn():
    code = "import workbench.probes, sys; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
