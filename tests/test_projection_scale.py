"""`project(x, "umap", sample=...)`: fit on a seeded sample, transform the rest in batches, cache, optionally on Ray."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from workbench.projection import _project as projection
from workbench.projection import _scale as projection_scale
from workbench.projection import batch_bounds, clear_memory_cache, project, resolve_parallel, sample_indices

N, SAMPLE, BATCH = 1500, 500, 400


pytestmark = pytest.mark.usefixtures("isolated_cache")


def clustered_sphere(n: int, dim: int = 32, clusters: int = 10, spread: float = 1.6, seed: int = 3):
    """Gaussian clusters on the unit sphere; 10-NN in the full space recovers ~94% of the labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, clusters, size=n)
    x = centres[labels] + rng.normal(scale=spread / np.sqrt(dim), size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), labels


class FakeModel:
    """Stands in for a fitted UMAP: ``embedding_`` is the fitted rows' first two features, ``transform`` too."""

    def __init__(self, rows):
        self.embedding_ = np.asarray(rows[:, :2], dtype=np.float32) + 100.0
        self.batches = []

    def transform(self, rows):
        self.batches.append(len(rows))
        return np.asarray(rows[:, :2], dtype=np.float32)


class CountingFit:
    def __init__(self):
        self.calls = []
        self.models = []

    def __call__(self, rows, seed, **params):
        self.calls.append((rows.shape, seed, params))
        self.models.append(FakeModel(rows))
        return self.models[-1]


@pytest.fixture
def fake_fit(monkeypatch):
    counting = CountingFit()
    monkeypatch.setattr(projection_scale, "fit_umap_model", counting)
    return counting


@pytest.fixture(scope="module")
def real():
    """One real sampled run, the full fit, and a fit of the sampled rows alone (numba compiles once, ~15 s)."""
    x, labels = clustered_sphere(N)
    sampled = project(x, "umap", sample=SAMPLE, batch_size=BATCH, cache=False, progress=False)
    full = project(x, "umap", sample=None, cache=False)
    rows = np.sort(np.random.default_rng(0).choice(N, SAMPLE, replace=False))  # the documented draw, seed 0
    alone = project(x[rows], "umap", sample=None, cache=False)
    return types.SimpleNamespace(x=x, labels=labels, sampled=sampled, full=full, rows=rows, alone=alone)


def _knn_accuracy(coords, labels):
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    return cross_val_score(KNeighborsClassifier(10), coords, labels, cv=5).mean()


def test_sampled_umap_keeps_the_structure_of_a_full_fit(real):
    from sklearn.manifold import trustworthiness

    assert real.sampled.shape == (N, 2) and np.isfinite(real.sampled).all()
    trust_sampled = trustworthiness(real.x, real.sampled, n_neighbors=10, metric="cosine")
    trust_full = trustworthiness(real.x, real.full, n_neighbors=10, metric="cosine")
    # measured: sampled 0.898, full fit 0.915, PCA 0.725; the transformed rows put at random fitted points 0.54
    assert trust_sampled >= trust_full - 0.02 and trust_sampled > 0.85, (trust_sampled, trust_full)
    accuracy = _knn_accuracy(real.sampled, real.labels)  # measured 0.92 (full fit 0.93, 10-NN in 32-D 0.94)
    assert accuracy >= _knn_accuracy(real.full, real.labels) - 0.05 and accuracy > 0.85, accuracy
    # the transformed rows alone are placed in their clusters too (not only the fitted ones)
    rest = np.setdiff1d(np.arange(N), real.rows)
    assert _knn_accuracy(real.sampled[rest], real.labels[rest]) > 0.85


def test_sampled_rows_keep_the_coordinates_of_a_fit_on_them_alone(real):
    np.testing.assert_array_equal(real.sampled[real.rows], real.alone)
    rest = np.setdiff1d(np.arange(N), real.rows)
    assert not np.isin(real.sampled[rest, 0], real.alone[:, 0]).any()  # the others were placed, not copied


def test_sample_is_a_sorted_seeded_draw_without_replacement():
    rows = sample_indices(1000, 300, seed=5)
    np.testing.assert_array_equal(rows, np.sort(np.random.default_rng(5).choice(1000, 300, replace=False)))
    assert len(np.unique(rows)) == 300 and rows.dtype == np.int64
    assert not np.array_equal(rows, sample_indices(1000, 300, seed=6))
    assert batch_bounds(7, 3) == [(0, 3), (3, 6), (6, 7)]


def test_the_other_rows_are_transformed_in_order_in_batches(fake_fit, rng):
    x = rng.normal(size=(230, 6))
    coords = project(x, "umap", seed=4, sample=100, batch_size=60, cache=False, progress=False)
    rows = sample_indices(230, 100, seed=4)
    rest = np.setdiff1d(np.arange(230), rows)
    (shape, seed, params), = fake_fit.calls
    assert shape == (100, 6) and seed == 4 and params == {"metric": "cosine", "min_dist": 0.1, "n_neighbors": 15}
    assert fake_fit.models[0].batches == [60, 60, 10]
    np.testing.assert_allclose(coords[rows], x[rows, :2] + 100.0, rtol=1e-6)
    np.testing.assert_allclose(coords[rest], x[rest, :2], rtol=1e-6)


def test_a_cached_sampled_projection_is_read_back_without_refitting(fake_fit, rng, tmp_path, monkeypatch):
    x = rng.normal(size=(200, 5))
    first = project(x, "umap", sample=80, batch_size=50, cache_dir=tmp_path, progress=False)
    again = project(x, "umap", sample=80, batch_size=50, cache_dir=tmp_path, parallel="serial", progress=False)
    assert len(fake_fit.calls) == 1 and np.array_equal(first, again)
    clear_memory_cache()  # as a new process: the file holds every row's coordinates
    np.testing.assert_array_equal(project(x, "umap", sample=80, batch_size=50, cache_dir=tmp_path), first)
    assert len(fake_fit.calls) == 1
    (path,) = tmp_path.glob("*/*.npz")
    with np.load(path) as z:
        assert z["coords"].shape == (200, 2)
    # sample, batch size and seed are part of the key
    project(x, "umap", sample=81, batch_size=50, cache_dir=tmp_path, progress=False)
    project(x, "umap", sample=80, batch_size=51, cache_dir=tmp_path, progress=False)
    project(x, "umap", seed=1, sample=80, batch_size=50, cache_dir=tmp_path, progress=False)
    assert len(fake_fit.calls) == 4
    # without sampling (N <= sample, or sample=None) the full fitter runs, as before
    full_fits = []
    monkeypatch.setitem(projection._FITTERS, "umap", lambda arr, seed, **p: full_fits.append(1) or arr[:, :2])
    project(x, "umap", sample=200, cache_dir=tmp_path)
    project(x, "umap", sample=None, cache_dir=tmp_path)  # the same result, the same file
    assert len(full_fits) == 1 and len(fake_fit.calls) == 4


def test_tiny_samples_of_many_rows_use_the_approximate_index(fake_fit, rng, monkeypatch):
    monkeypatch.setattr(projection_scale, "EXACT_PAIR_LIMIT", 100 * 150)
    x = rng.normal(size=(251, 4))
    project(x, "umap", sample=100, cache=False, progress=False)  # 100 x 151 pairs: above the limit
    project(x[:250], "umap", sample=100, cache=False, progress=False)  # 100 x 150: exact
    project(x, "umap", sample=100, cache=False, progress=False, force_approximation_algorithm=False)
    assert [c[2].get("force_approximation_algorithm") for c in fake_fit.calls] == [True, None, False]


def test_auto_picks_ray_only_when_it_is_initialised_and_the_rest_is_large(monkeypatch):
    big = projection_scale.RAY_AUTO_MIN_ROWS
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    assert resolve_parallel("auto", big) == "serial"
    fake = types.SimpleNamespace(is_initialized=lambda: False)
    monkeypatch.setitem(sys.modules, "ray", fake)
    assert resolve_parallel("auto", big) == "serial"
    fake.is_initialized = lambda: True
    assert resolve_parallel("auto", big) == "ray" and resolve_parallel("auto", big - 1) == "serial"
    assert resolve_parallel("serial", big) == "serial" and resolve_parallel("ray", 5) == "ray"


def test_ray_refuses_a_cluster_with_no_cpu_to_spare(monkeypatch):
    fake = types.SimpleNamespace(is_initialized=lambda: True, cluster_resources=lambda: {"CPU": 1.0})
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(ValueError, match="every CPU"):
        projection_scale.transform_on_ray(object(), np.zeros((4, 2)), np.arange(4), [(0, 4)])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sample": 10}, ValueError, "sample=10 must exceed n_neighbors=15"),
        ({"sample": 30, "n_neighbors": 30}, ValueError, "must exceed n_neighbors=30"),
        ({"sample": -5}, ValueError, "sample must be positive"),
        ({"batch_size": 0}, ValueError, "batch_size must be at least 1"),
        ({"batch_size": -100}, ValueError, "batch_size must be at least 1"),
        ({"parallel": "threads"}, ValueError, "parallel must be one of"),
        ({"workers": 0}, ValueError, "workers must be at least 1"),
        ({"sample": 50.0}, TypeError, "sample must be an integer"),
        ({"batch_size": True}, TypeError, "batch_size must be an integer"),
    ],
)
def test_bad_scale_options_raise_clearly(kwargs, error, match, fake_fit):
    x = np.random.default_rng(0).normal(size=(120, 4))
    with pytest.raises(error, match=match):
        project(x, "umap", cache=False, progress=False, **{"sample": 60, **kwargs})
    assert fake_fit.calls == []
