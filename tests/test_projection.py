"""`workbench.projection`: PCA against an independent SVD, the seeded UMAP/t-SNE wiring, and the on-disk cache."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from workbench.projection import PCA2D, clear_memory_cache, default_projection_dir, pca_2d, project, projection_key
from workbench.projection import _project as projection
from workbench.store import CacheCorruptionWarning

pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture
def x(rng):
    return rng.normal(size=(60, 12)).astype(np.float32)


class Counting:
    """A fitter that counts its calls and returns seeded random coordinates."""

    def __init__(self):
        self.calls = []

    def __call__(self, arr, seed, **params):
        self.calls.append((arr.shape, seed, params))
        return np.random.default_rng(seed).normal(size=(len(arr), 2))


def _svd_coords(x):
    centred = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    return u[:, :2] * s[:2], vt[:2]


def _same_up_to_sign(a, b, atol):
    for k in range(a.shape[1]):
        sign = np.sign(np.dot(a[:, k], b[:, k])) or 1.0
        np.testing.assert_allclose(a[:, k], sign * b[:, k], atol=atol)


def test_pca_matches_an_independent_svd(x):
    coords, ratio = pca_2d(x)
    expected, _ = _svd_coords(x)
    _same_up_to_sign(coords, expected, atol=1e-5)
    centred = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(ratio, expected.var(axis=0) / centred.var(axis=0).sum(), rtol=1e-6)
    np.testing.assert_allclose(project(x, "pca"), coords, atol=1e-12)


def test_pca2d_places_new_points_in_the_fitted_frame(x, rng):
    pca = PCA2D().fit(x)
    np.testing.assert_allclose(pca.transform(x), pca_2d(x)[0], atol=1e-6)
    other = rng.normal(size=(7, 12))
    _, axes = _svd_coords(x)
    expected = (other - x.astype(np.float64).mean(axis=0)) @ axes.T
    _same_up_to_sign(pca.transform(other), expected, atol=1e-6)
    with pytest.raises(ValueError, match="12 dimensions"):
        pca.transform(other[:, :5])
    with pytest.raises(ValueError, match="not fitted"):
        PCA2D().transform(other)


def test_second_call_reads_the_cache_and_a_new_process_reads_the_file(x, tmp_path, monkeypatch):
    counting = Counting()
    monkeypatch.setitem(projection._FITTERS, "umap", counting)
    first = project(x, "umap", seed=3, cache_dir=tmp_path)
    again = project(x, "umap", seed=3, cache_dir=tmp_path)
    assert len(counting.calls) == 1 and np.array_equal(first, again)
    assert counting.calls[0] == (x.shape, 3, {"metric": "cosine", "min_dist": 0.1, "n_neighbors": 15})
    key = projection_key(x, "umap", 3, {"metric": "cosine", "min_dist": 0.1, "n_neighbors": 15})
    path = tmp_path / key[:2] / f"{key}.npz"
    assert path.is_file() and not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]

    clear_memory_cache()  # as a new process: only the file is left

    def fail(*args, **kwargs):
        raise AssertionError("recomputed instead of reading the file")

    monkeypatch.setitem(projection._FITTERS, "umap", fail)
    np.testing.assert_array_equal(project(x, "umap", seed=3, cache_dir=tmp_path), first)
    # defaults are part of the key: spelling them out finds the same file
    clear_memory_cache()
    np.testing.assert_array_equal(project(x, "umap", seed=3, cache_dir=tmp_path, n_neighbors=15), first)


def test_a_new_process_finds_the_file_written_here(x, tmp_path):
    import subprocess

    first = project(x, "pca", cache_dir=tmp_path)
    np.save(tmp_path / "x.npy", x)
    code = (
        "import numpy as np, sys\n"
        "from workbench.projection import _project as projection\n"
        "projection._FITTERS['pca'] = lambda *a, **k: (_ for _ in ()).throw(AssertionError('recomputed'))\n"
        f"c = projection.project(np.load(r'{tmp_path / 'x.npy'}'), 'pca', cache_dir=r'{tmp_path}')\n"
        f"np.save(r'{tmp_path / 'out.npy'}', c)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), first)


def test_key_depends_on_data_method_seed_and_parameters(x, tmp_path, monkeypatch):
    counting = Counting()
    monkeypatch.setitem(projection._FITTERS, "umap", counting)
    monkeypatch.setitem(projection._FITTERS, "tsne", counting)
    project(x, "umap", cache_dir=tmp_path)
    project(x, "umap", seed=1, cache_dir=tmp_path)
    project(x, "umap", cache_dir=tmp_path, n_neighbors=5)
    project(x, "tsne", cache_dir=tmp_path)
    project(x + 1, "umap", cache_dir=tmp_path)
    project(x.astype(np.float64), "umap", cache_dir=tmp_path)
    assert len(counting.calls) == 6
    project(x, "umap", cache=False, cache_dir=tmp_path)  # no cache: always computed
    assert len(counting.calls) == 7


def test_default_folder_follows_workbench_cache_dir(x, tmp_path):
    assert default_projection_dir() == tmp_path / "cache" / "projections"
    project(x, "pca")
    assert len(list((tmp_path / "cache" / "projections").glob("*/*.npz"))) == 1


def test_projection_and_embedding_folders_share_one_environment_lookup(tmp_path, monkeypatch):
    from workbench.store import default_cache_dir

    monkeypatch.delenv("WORKBENCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_projection_dir() == tmp_path / "xdg" / "workbench" / "projections"
    assert default_cache_dir() == tmp_path / "xdg" / "workbench" / "embeddings"
    with pytest.raises(ValueError, match="plain folder name"):
        default_cache_dir("../elsewhere")


def test_a_file_of_the_wrong_dtype_is_not_returned(x, tmp_path):
    from workbench.store import write_checked_array

    first = project(x, "pca", cache_dir=tmp_path)
    (path,) = tmp_path.glob("*/*.npz")
    key = path.stem
    write_checked_array(path, key, first, {}, name="coords", dtype=np.float32)  # a valid file, float32 coordinates
    clear_memory_cache()
    with pytest.warns(CacheCorruptionWarning, match="float32, expected"):
        np.testing.assert_array_equal(project(x, "pca", cache_dir=tmp_path), first)


def test_damaged_file_is_reported_removed_and_recomputed(x, tmp_path):
    first = project(x, "pca", cache_dir=tmp_path)
    (path,) = tmp_path.glob("*/*.npz")
    path.write_bytes(path.read_bytes()[:100])
    clear_memory_cache()
    with pytest.warns(CacheCorruptionWarning, match="damaged"):
        again = project(x, "pca", cache_dir=tmp_path)
    np.testing.assert_array_equal(again, first)
    assert path.is_file()  # written again


def test_umap_is_seeded_with_the_cosine_metric_and_leaves_numba_threads_alone(x, monkeypatch):
    import numba

    seen = {}

    class FakeUMAP:
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def fit_transform(self, arr):
            numba.set_num_threads(1)  # as umap-learn does with n_jobs=1
            return np.zeros((len(arr), 2), dtype=np.float32)

    monkeypatch.setitem(sys.modules, "umap", types.SimpleNamespace(UMAP=FakeUMAP))
    threads = numba.get_num_threads()
    coords = project(x, "umap", seed=7, cache=False, min_dist=0.3)
    assert coords.shape == (60, 2) and coords.dtype == np.float64
    assert seen == {"n_components": 2, "random_state": 7, "n_jobs": 1, "metric": "cosine", "min_dist": 0.3,
                    "n_neighbors": 15}
    assert numba.get_num_threads() == threads


def test_tsne_is_seeded_and_reproducible(rng):
    from threadpoolctl import threadpool_limits

    x = rng.normal(size=(30, 5))
    with threadpool_limits(1, user_api="openmp"):  # t-SNE's OpenMP threads stall ~100x on a busy 2-core machine
        _tsne_checks(x)


def _tsne_checks(x):
    first = project(x, "tsne", seed=0, cache=False, max_iter=250)  # init="pca": deterministic start
    assert first.shape == (30, 2)
    np.testing.assert_array_equal(project(x, "tsne", seed=0, cache=False, max_iter=250), first)
    random_start = project(x, "tsne", seed=0, cache=False, max_iter=250, init="random")
    np.testing.assert_array_equal(project(x, "tsne", seed=0, cache=False, max_iter=250, init="random"), random_start)
    assert not np.array_equal(project(x, "tsne", seed=1, cache=False, max_iter=250, init="random"), random_start)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((np.ones((5, 3)), "mds"), {}, ValueError, "unknown projection 'mds'"),
        ((np.ones((1, 3)), "pca"), {}, ValueError, "at least 2 rows"),
        ((np.ones((3, 3)), "tsne"), {}, ValueError, "at least 4 rows"),
        ((np.ones((5, 1)), "pca"), {}, ValueError, "2 columns"),
        ((np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 1.0]]), "pca"), {}, ValueError, "NaN or inf"),
        ((np.eye(5), "pca"), {"whiten": True}, ValueError, "PCA takes no parameters"),
        ((np.eye(5), "umap"), {"metric": [1, 2]}, TypeError, "metric"),
    ],
)
def test_bad_input_raises_clearly(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        project(*args, cache=False, **kwargs)
