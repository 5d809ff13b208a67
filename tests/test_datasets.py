"""The eight built-in sets: names, shapes, normalisation, duplicates, and values against the raw files."""

from __future__ import annotations

import warnings
from importlib import resources

import numpy as np
import polars as pl
import pytest

from workbench import DuplicateRowsWarning, datasets

# (name, modalities, N, D, unique rows a, unique rows b): from the data's README (Liang et al.'s files)
EXPECTED = [
    ("liang2022/clip", ("image", "text"), 500, 512, 500, 500),
    ("liang2022/clip-random", ("image", "text"), 500, 512, 500, 500),
    ("liang2022/convirt", ("image", "text"), 500, 512, 500, 443),
    ("liang2022/convirt-random", ("image", "text"), 500, 512, 500, 449),
    ("liang2022/videoclip", ("video", "text"), 100, 768, 100, 100),
    ("liang2022/videoclip-random", ("video", "text"), 100, 768, 100, 100),
    ("liang2022/clasp", ("protein", "text"), 99, 768, 99, 98),
    ("liang2022/clasp-random", ("protein", "text"), 99, 768, 98, 99),
]


def _raw(name: str) -> np.ndarray:
    file = f"features_{name.split('/')[1].replace('-random', '_random')}.npy"
    with (resources.files("workbench.datasets") / "data" / "liang2022" / file).open("rb") as handle:
        return np.load(handle)


@pytest.mark.parametrize(("name", "modalities", "n", "d", "unique_a", "unique_b"), EXPECTED)
def test_builtin_set(name, modalities, n, d, unique_a, unique_b):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paired = datasets.load(name)
    dup_warnings = [w for w in caught if issubclass(w.category, DuplicateRowsWarning)]
    assert len(dup_warnings) == (unique_a != n) + (unique_b != n) - ((unique_a != n) and (unique_b != n))
    assert paired.modalities == modalities
    assert paired.a.shape == paired.b.shape == (n, d)
    assert paired.is_one_to_one and paired.n_pairs == n
    assert ("random init" in paired.model) == name.endswith("-random")
    assert (paired.a.n_unique, paired.b.n_unique) == (unique_a, unique_b)
    for e in (paired.a, paired.b):
        assert e.vectors.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(e.vectors.astype(np.float64), axis=1), 1.0, atol=1e-6)
    raw = _raw(name).astype(np.float64)
    for k, e in enumerate((paired.a, paired.b)):
        expected = raw[k] / np.linalg.norm(raw[k], axis=1, keepdims=True)
        np.testing.assert_allclose(e.vectors, expected, atol=1e-7)


def test_short_names_table_and_unknown_names():
    assert datasets.load("clip", warn_duplicates=False).model == datasets.load("liang2022/clip").model
    table = datasets.list().filter(pl.col("name").str.starts_with("liang2022/"))  # the media sets: test_media_sets
    assert table["name"].to_list() == [row[0] for row in EXPECTED]
    assert table["pairs"].to_list() == [row[2] for row in EXPECTED]
    with pytest.raises(ValueError, match="Did you mean 'clip'"):
        datasets.load("clipp")
    with pytest.raises(TypeError):
        datasets.load(3)  # type: ignore[arg-type]


def test_clip_centroid_distance_matches_a_plain_numpy_computation():
    raw = _raw("liang2022/clip").astype(np.float64)
    a = raw[0] / np.linalg.norm(raw[0], axis=1, keepdims=True)
    b = raw[1] / np.linalg.norm(raw[1], axis=1, keepdims=True)
    from workbench import gap

    paired = datasets.load("liang2022/clip")
    assert gap.centroid_distance(paired) == pytest.approx(np.linalg.norm(a.mean(0) - b.mean(0)), abs=1e-6)
    # the value measured for this project with numpy (RECIPES.md), and Liang et al.'s order of magnitude (~0.8)
    assert gap.centroid_distance(paired) == pytest.approx(0.8514, abs=5e-4)


def test_license_and_attribution_ship_with_the_data():
    folder = resources.files("workbench.datasets") / "data" / "liang2022"
    assert "MIT License" in (folder / "LICENSE").read_text()
    assert "Mind the Gap" in (folder / "README.md").read_text()
