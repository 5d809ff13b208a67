"""First gap metrics: hand computations, and each item counted once in many-to-many sets."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import PairedEmbeddings, gap


def test_centroid_distance_by_hand():
    a = np.array([[1.0, 0.0], [0.0, 1.0]])
    b = np.array([[-1.0, 0.0], [0.0, -1.0]])
    # centroids (0.5, 0.5) and (-0.5, -0.5): distance sqrt(2)
    assert gap.centroid_distance(a, b) == pytest.approx(np.sqrt(2))
    np.testing.assert_allclose(gap.gap_vector(a, b), [1.0, 1.0])
    # unnormalised input is normalised first
    assert gap.centroid_distance(a * 7, b * 0.1) == pytest.approx(np.sqrt(2))


def test_mean_matched_cosine_by_hand():
    a = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    b = np.array([[1.0, 1.0], [0.0, -1.0], [4.0, 3.0]])
    expected = (1 / np.sqrt(2) + -1.0 + 24 / 25) / 3
    assert gap.mean_matched_cosine(a, b) == pytest.approx(expected)


def test_an_image_with_five_captions_weighs_once_in_its_centroid():
    images = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    captions = np.array([[0.0, 0.0, 1.0]] * 5 + [[0.0, 0.6, 0.8]])
    pairs = [(0, j) for j in range(5)] + [(1, 5)]
    p = PairedEmbeddings.from_arrays(images, captions, pairs=pairs)
    # image centroid (0.5, 0.5, 0): each image once, although image 0 has five pairs
    expected = np.array([0.5, 0.5, 0.0]) - captions.mean(0)
    np.testing.assert_allclose(gap.gap_vector(p), expected)
    assert gap.centroid_distance(p) == pytest.approx(np.linalg.norm(expected))
    # matched cosine uses every pair: five pairs of cosine 0 and one of 0.6
    assert gap.mean_matched_cosine(p) == pytest.approx(0.6 / 6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="equal shapes"):
        gap.centroid_distance(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="NaN or inf"):
        gap.mean_matched_cosine(np.array([[np.nan, 1.0]]), np.ones((1, 2)))
    with pytest.raises(ValueError, match="zero-norm"):
        gap.centroid_distance(np.zeros((1, 2)), np.ones((1, 2)))
    with pytest.raises(TypeError):
        gap.centroid_distance(np.ones((1, 2)))
