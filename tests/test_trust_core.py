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

from workbench import gap, probes, retrieval, zeroshot
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
