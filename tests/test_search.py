from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("faiss")

from workbench import Embeddings
from workbench.retrieval import evaluate_queries, evaluate_retrieval
from workbench.search import Index, recall_at_k_faiss

N, D = 5000, 64


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    gallery = rng.normal(size=(N, D)).astype(np.float32)
    queries = rng.normal(size=(200, D)).astype(np.float32)
    return gallery, queries


@pytest.fixture(scope="module")
def hard() -> np.ndarray:
    """Clustered rows (a hard case for approximate search): 50 centres, points spread around each."""
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(50, D))
    return (centres[rng.integers(0, 50, N)] + 0.6 * rng.normal(size=(N, D))).astype(np.float32)


def _exact_top(queries: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = _unit(queries.astype(np.float64)) @ _unit(gallery.astype(np.float64)).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def _recall(approx: np.ndarray, exact: np.ndarray) -> float:
    shared = [len(set(a.tolist()) & set(e.tolist())) for a, e in zip(approx, exact, strict=True)]
    return float(np.mean(shared) / exact.shape[1])


# -- exact search ----------------------------------------------------------------------------------------------------
def test_exact_search_equals_numpy_argsort(data):
    gallery, queries = data
    index = Index(gallery, threads=1)
    scores, ids = index.search(queries, k=10)
    true_scores, true_ids = _exact_top(queries, gallery, 10)
    assert scores.dtype == np.float32 and scores.shape == (200, 10)
    assert ids.dtype == np.int64
    np.testing.assert_allclose(scores, true_scores, atol=1e-5)
    # ids agree wherever the numpy scores are not within float32 rounding of a neighbour's
    gaps = np.diff(true_scores, axis=1)
    ambiguous = np.zeros_like(ids, dtype=bool)
    ambiguous[:, :-1] |= np.abs(gaps) < 1e-5
    ambiguous[:, 1:] |= np.abs(gaps) < 1e-5
    assert ambiguous.mean() < 0.01
    np.testing.assert_array_equal(ids[~ambiguous], true_ids[~ambiguous])
    assert index.measured_recall_ == 1.0


def test_torch_and_unnormalised_input_match(data):
    torch = pytest.importorskip("torch")
    gallery, queries = data
    a = Index(gallery * 3.0).search(queries[:5], k=3)
    b = Index(torch.from_numpy(gallery)).search(torch.from_numpy(queries[:5]), k=3)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0], atol=1e-6)


def test_ip_metric_keeps_norms():
    x = np.array([[1.0, 0.0], [0.0, 3.0]])
    scores, ids = Index(x, metric="ip").search(np.array([[1.0, 1.0]]), k=2)
    assert ids.tolist() == [[1, 0]] and scores.tolist() == [[3.0, 1.0]]


# -- R@K through FAISS equals the exact protocol -----------------------------------------------------------------------
def test_recall_at_k_equals_evaluate_queries_one_relevant():
    rng = np.random.default_rng(3)
    gallery = rng.normal(size=(2000, 32))
    target = rng.integers(0, 2000, 300)
    queries = gallery[target] + 1.2 * rng.normal(size=(300, 32))  # hard enough that R@1 is far from 0 and 1
    relevance = np.stack([np.arange(300), target], axis=1)
    ks = (1, 5, 10, 50)
    ours = recall_at_k_faiss(queries, gallery, relevance, ks)
    ref = evaluate_queries(queries, gallery, relevance, ks)
    assert ours == {f"recall@{k}": ref[f"recall@{k}"] for k in ks}
    assert 0.1 < ours["recall@1"] < 0.9


def test_recall_at_k_equals_evaluate_retrieval_several_relevant():
    rng = np.random.default_rng(5)
    images = rng.normal(size=(400, 32))
    text_to_image = np.repeat(np.arange(400), 5)  # five captions per image
    texts = images[text_to_image] + 2.0 * rng.normal(size=(2000, 32))
    ks = (1, 5, 10)
    ref = evaluate_retrieval(images, texts, text_to_image, ks)
    captions_query_images = recall_at_k_faiss(texts, images, np.stack([np.arange(2000), text_to_image], axis=1), ks)
    images_query_captions = recall_at_k_faiss(images, texts, np.stack([text_to_image, np.arange(2000)], axis=1), ks)
    for k in ks:
        assert captions_query_images[f"recall@{k}"] == ref[f"image_retrieval_recall@{k}"]
        assert images_query_captions[f"recall@{k}"] == ref[f"text_retrieval_recall@{k}"]
    assert 0.1 < images_query_captions["recall@1"] < 0.95


def test_recall_at_k_needs_a_relevant_item_per_query():
    x = np.eye(3)
    with pytest.raises(ValueError, match="no relevant item"):
        recall_at_k_faiss(x, x, [(0, 0), (1, 1)])
    with pytest.raises(ValueError, match="outside"):
        recall_at_k_faiss(x, x, [(0, 0), (1, 1), (2, 7)])


# -- approximate kinds: measured recall -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "params"),
    [("hnsw", {"M": 8, "ef_construction": 20, "ef_search": 8}), ("ivf", {"nlist": 64, "nprobe": 2})],
)
def test_measured_recall_matches_independent_recomputation(hard, kind, params):
    index = Index(hard, kind=kind, threads=1, **params)
    r = index.measured_recall_
    assert r is not None and 0.0 <= r <= 1.0
    assert f"measured recall@10={r:.3f}" in repr(index)
    # independent recomputation on the documented sample: seeded rows of the indexed vectors as queries
    rows = np.sort(np.random.default_rng(0).choice(N, size=1000, replace=False))
    _, exact = _exact_top(hard[rows], hard, 10)
    _, approx = index.search(hard[rows], k=10)
    assert r == pytest.approx(_recall(approx, exact), abs=2e-3)  # float32 vs float64 near-ties only
    assert r < 1.0  # the cheap settings above do miss neighbours on clustered data
    # given queries
    queries = hard[:300] + 0.1
    _, exact_q = _exact_top(queries, hard, 10)
    assert index.recall_at(queries=queries) == pytest.approx(_recall(index.search(queries, 10)[1], exact_q), abs=2e-3)


def test_more_search_effort_raises_recall(hard):
    hnsw = Index(hard, kind="hnsw", M=8, ef_construction=20, ef_search=8)
    low = hnsw.measured_recall_
    assert hnsw.set_params(ef_search=128).measured_recall_ > low
    ivf = Index(hard, kind="ivf", nlist=32, nprobe=1)
    low = ivf.measured_recall_
    assert ivf.set_params(nprobe=32).measured_recall_ == 1.0 > low
    with pytest.raises(TypeError, match="nprobe"):
        ivf.set_params(ef_search=3)


def test_measure_recall_off():
    x = np.random.default_rng(0).normal(size=(300, 8))
    index = Index(x, kind="hnsw", measure_recall=False)
    assert index.measured_recall_ is None and "not measured" in repr(index)


# -- ids and incremental builds ---------------------------------------------------------------------------------------
def test_string_ids_and_embeddings_ids(data):
    gallery, queries = data
    names = np.array([f"item-{i}" for i in range(N)])
    index = Index(gallery, ids=names)
    _, ids = index.search(queries[:4], k=5)
    _, positions = Index(gallery).search(queries[:4], k=5)
    assert ids.dtype == object and type(ids[0, 0]) is str
    assert ids.tolist() == names[positions].tolist()
    emb = Embeddings(gallery[:100], modality="image", metadata={"id": [f"img{i}" for i in range(100)]})
    _, ids = Index(emb).search(gallery[7], k=1)
    assert ids.tolist() == [["img7"]]


def test_missing_results_are_none_or_minus_one():
    x = np.random.default_rng(0).normal(size=(50, 8))
    _, ids = Index(x, kind="hnsw").search(x[:2], k=60)  # approximate kinds may ask for more than N
    assert ids.dtype == np.int64 and (ids[:, 50:] == -1).all()
    _, ids = Index(x, ids=[str(i) for i in range(50)], kind="hnsw").search(x[:2], k=60)
    assert all(v is None for v in ids[:, 50:].ravel())


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_add_equals_building_at_once(data, kind):
    gallery, queries = data
    params = {"nlist": 16, "nprobe": 16} if kind == "ivf" else {}
    whole = Index(gallery[:2000], kind=kind, **params)
    parts = Index(gallery[:1000], kind=kind, **params).add(gallery[1000:2000])
    assert len(parts) == 2000 and parts.ids.tolist() == list(range(2000))
    if kind != "hnsw":  # HNSW's graph depends on insertion batches; exact and fully probed IVF do not
        np.testing.assert_array_equal(whole.search(queries, 5)[1], parts.search(queries, 5)[1])
    labelled = Index(gallery[:10], ids=list("abcdefghij")).add(gallery[10:12], ids=["k", "l"])
    assert labelled.search(gallery[11], k=1)[1].tolist() == [["l"]]
    with pytest.raises(ValueError, match="pass ids"):
        labelled.add(gallery[12:13])
    with pytest.raises(ValueError, match="unique"):
        labelled.add(gallery[12:13], ids=["a"])
    with pytest.raises(ValueError, match="same kind"):
        labelled.add(gallery[12:13], ids=[12])


# -- bad input --------------------------------------------------------------------------------------------------------
def test_bad_inputs_raise(data):
    gallery, _ = data
    index = Index(gallery[:100])
    with pytest.raises(ValueError, match="dimensions"):
        index.search(np.ones((2, 3)), k=1)
    with pytest.raises(ValueError, match="dimensions"):
        index.add(np.ones((2, 3)))
    bad = gallery[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Index(bad)
    with pytest.raises(ValueError, match="NaN"):
        index.search(bad, k=1)
    with pytest.raises(ValueError, match="NaN"):
        Index(bad, metric="ip")
    with pytest.raises(ValueError, match="zero norm"):
        Index(np.zeros((2, 4)))
    for k in (0, -1, 101, 2.5):
        with pytest.raises(ValueError, match="k"):
            index.search(gallery[:2], k=k)
    with pytest.raises(ValueError, match="one id per row"):
        Index(gallery[:10], ids=range(9))
    with pytest.raises(ValueError, match="unique"):
        Index(gallery[:3], ids=["a", "b", "a"])
    with pytest.raises(ValueError, match=">= 0"):
        Index(gallery[:3], ids=[0, -1, 2])
    with pytest.raises(ValueError, match="kind"):
        Index(gallery[:10], kind="lsh")
    with pytest.raises(ValueError, match="metric"):
        Index(gallery[:10], metric="l1")
    with pytest.raises(ValueError, match="nlist"):
        Index(gallery[:10], kind="ivf", nlist=20)
    with pytest.raises(TypeError, match="unexpected"):
        Index(gallery[:10], ef_search=10)
    with pytest.raises(ValueError, match="threads"):
        Index(gallery[:10], threads=0)


def test_threads_setting_is_restored():
    import faiss

    before = faiss.omp_get_max_threads()
    Index(np.random.default_rng(0).normal(size=(100, 8)), threads=1).search(np.ones((1, 8)), k=1)
    assert faiss.omp_get_max_threads() == before


def test_missing_faiss_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` raise ImportError
    with pytest.raises(ImportError, match=r'pip install "alignment-workbench\[scale\]".*faiss-cpu'):
        Index(np.eye(3))


def test_an_embedding_store_or_its_folder_is_indexed_with_its_ids(data, tmp_path):
    from workbench.store import write

    class Rows:
        name, modalities, fingerprint = "rows", ("image",), "rows-0"

        def __init__(self, x):
            self.x = x

        def encode(self, modality, items, batch_size=32):
            return self.x[list(items)]

    gallery, queries = data
    names = [f"img-{i:05d}" for i in range(N)]
    store = write(Rows(gallery), list(range(N)), "image", tmp_path, shard_size=1234, ids=names, progress=False)
    expected_scores, expected_ids = Index(gallery, ids=np.array(names)).search(queries, k=5)
    for source in (store, tmp_path, str(tmp_path)):
        scores, ids = Index(source).search(queries, k=5)
        assert ids.tolist() == expected_ids.tolist()
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-6)
    (tmp_path / "shard-000002.parquet").unlink()
    with pytest.raises(ValueError, match="incomplete or damaged"), pytest.warns(UserWarning):
        Index(tmp_path)
