"""Streamed retrieval: stores as galleries or queries equal the in-memory path (and a float64 brute force) for any
chunk size, with ties everywhere; relevance by id; one direction; the device choice; bounded score blocks."""

from __future__ import annotations

import json

import numpy as np
import pytest

import workbench.retrieval._ranking as rs
import workbench.store
from workbench.retrieval import evaluate_queries, evaluate_retrieval


class Enc:
    """Returns its items as embeddings (the store normalises them)."""

    name, modalities, fingerprint = "toy", ("image", "text"), "f0"

    def encode(self, modality, items, batch_size=32):
        return np.asarray(items, dtype=np.float32)


def _store(folder, vectors, modality, shard_size, ids=None):
    return workbench.store.write(Enc(), list(np.asarray(vectors)), modality, folder, shard_size=shard_size, ids=ids,
                                 progress=False)


def _vectors(store):
    return store.to_embeddings().vectors  # the rows exactly as stored: the in-memory path sees the same bits


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _planted(rng, n_images=30, per_image=3, dim=64):
    """Planted image-caption matches with duplicate images and duplicate captions of different images (the last
    rows duplicate early ones, so a short last block would have to score them bit-identically)."""
    images = _unit(rng.normal(size=(n_images, dim)))
    images[7] = images[2]
    images[-1] = images[3]
    t2i = np.repeat(np.arange(n_images), per_image)
    texts = _unit(images[t2i] + 1.5 * rng.normal(size=(len(t2i), dim)) / np.sqrt(dim))
    texts[40] = texts[1]  # caption 40 (image 13) is identical to caption 1 (image 0)
    texts[-1] = texts[5]
    return images, texts, t2i


def _half_vectors(rng, n, dim=8):
    """Rows with four entries of +-0.5: unit length, every score a multiple of 1/4 computed exactly in any order,
    so distinct items tie all the time and every path must agree bit for bit."""
    out = np.zeros((n, dim), dtype=np.float32)
    for row in out:
        row[rng.choice(dim, size=4, replace=False)] = rng.choice([-0.5, 0.5], size=4)
    return out


def _oracle(queries, gallery, relevant):
    """First-relevant rank (irrelevant items first among equal scores) and AP by sorting, in float64. Every row is
    summed the same way (a BLAS matrix-vector product can score a duplicate row differently in the last bit)."""
    ranks, aps = [], []
    for q, rel in enumerate(relevant):
        scores = (gallery.astype(np.float64) * queries[q].astype(np.float64)).sum(axis=1)
        is_rel = np.zeros(len(gallery), dtype=bool)
        is_rel[list(rel)] = True
        hits = is_rel[np.lexsort((is_rel, -scores))]
        positions = np.flatnonzero(hits) + 1
        ranks.append(positions[0])
        aps.append(np.mean(np.arange(1, len(positions) + 1) / positions))
    return np.array(ranks), np.array(aps)


def _check_against_oracle(out, images, texts, t2i, ks):
    ranks, aps = _oracle(texts, images, [[i] for i in t2i])  # captions query images
    for k in ks:
        assert out[f"image_retrieval_recall@{k}"] == pytest.approx(np.mean(ranks <= k))
    assert out["image_retrieval_mean_rank"] == pytest.approx(ranks.mean())
    assert out["image_retrieval_mAP"] == pytest.approx(aps.mean())
    ranks, aps = _oracle(images, texts, [np.flatnonzero(t2i == i) for i in range(len(images))])
    for k in ks:
        assert out[f"text_retrieval_recall@{k}"] == pytest.approx(np.mean(ranks <= k))
    assert out["text_retrieval_median_rank"] == pytest.approx(np.median(ranks))
    assert out["text_retrieval_mAP"] == pytest.approx(aps.mean())


@pytest.mark.parametrize("chunk", [1, 4, 7, 16, 89, None])
def test_streamed_captions_equal_in_memory(tmp_path, rng, chunk):
    images, texts, t2i = _planted(rng)
    store = _store(tmp_path / "texts", texts, "text", shard_size=7)  # chunks of 4 and 16 straddle the shards
    stored = _vectors(store)
    streamed = evaluate_retrieval(images, store, t2i, ks=(1, 5), chunk_size=chunk)
    assert streamed == evaluate_retrieval(images, stored, t2i, ks=(1, 5), chunk_size=chunk)  # the same blocks
    assert streamed == evaluate_retrieval(images, stored, t2i, ks=(1, 5))
    _check_against_oracle(streamed, _unit(images), stored, t2i, ks=(1, 5))
    assert evaluate_retrieval(images, str(tmp_path / "texts"), t2i, ks=(1, 5), chunk_size=chunk) == streamed


@pytest.mark.parametrize("chunk", [1, 3, 11, None])
def test_streamed_images_equal_in_memory(tmp_path, rng, chunk):
    images, texts, t2i = _planted(rng)
    store = _store(tmp_path / "images", images, "image", shard_size=4)
    streamed = evaluate_retrieval(store, texts, t2i, chunk_size=chunk)
    assert streamed == evaluate_retrieval(_vectors(store), texts, t2i)
    _check_against_oracle(streamed, _vectors(store), _unit(texts), t2i, ks=(1, 5, 10))


@pytest.mark.parametrize("chunk", [1, 2, 5, 13, None])
def test_exact_ties_between_distinct_items(tmp_path, chunk):
    rng = np.random.default_rng(5)
    images = _half_vectors(rng, 23)
    t2i = rng.permutation(np.arange(60) % 23)
    texts = _half_vectors(rng, 60)
    image_store = _store(tmp_path / "images", images, "image", shard_size=6)
    text_store = _store(tmp_path / "texts", texts, "text", shard_size=9)
    scores = texts @ images.T
    assert len(np.unique(scores)) <= 9  # multiples of 1/4: ties everywhere
    expected = evaluate_retrieval(images, texts, t2i, ks=(1, 3))
    _check_against_oracle(expected, images, texts, t2i, ks=(1, 3))
    for a, b in ((image_store, texts), (images, text_store), (image_store, text_store)):
        assert evaluate_retrieval(a, b, t2i, ks=(1, 3), chunk_size=chunk) == expected
        lenient = evaluate_retrieval(a, b, t2i, ks=(1, 3), chunk_size=chunk, identical_is_relevant=True)
        assert lenient == evaluate_retrieval(images, texts, t2i, ks=(1, 3), identical_is_relevant=True)


def test_in_memory_chunks_keep_ties_between_duplicates():
    # a short last chunk used to be scored by another BLAS kernel: a duplicate caption in it stopped tying
    rng = np.random.default_rng(3)
    for _ in range(12):
        images = _unit(rng.normal(size=(6, 64)))
        t2i = np.arange(10) % 6
        texts = _unit(images[t2i] + rng.normal(size=(10, 64)))
        texts[9] = texts[0]  # describes image 3, identical to a caption of image 0
        whole = evaluate_retrieval(images, texts, t2i)
        for chunk in (1, 3, 4, 7):
            assert evaluate_retrieval(images, texts, t2i, chunk_size=chunk) == whole


@pytest.mark.parametrize(("n_images", "per_image"), [(17, 1), (20, 3), (34, 2)])
def test_duplicates_tie_at_shapes_where_openblas_rounds_them_apart(tmp_path, n_images, per_image):
    # numpy's OpenBLAS scores identical rows differently in the last bit at these shapes (the old small-block path
    # gave duplicates rank 1 here); every block now goes through torch and matches the float64 brute force
    rng = np.random.default_rng(0)
    images = _unit(rng.normal(size=(n_images, 64)))
    images[-1], images[n_images // 2] = images[0], images[1]
    t2i = np.arange(n_images * per_image) % n_images
    texts = _unit(images[t2i] + 0.15 * rng.normal(size=(len(t2i), 64)))
    texts[-1], texts[len(t2i) // 2] = texts[0], texts[2]
    out = evaluate_retrieval(images, texts, t2i, ks=(1, 5))
    _check_against_oracle(out, images, texts, t2i, ks=(1, 5))
    store = _store(tmp_path / "texts", texts, "text", shard_size=5)
    assert evaluate_retrieval(images, store, t2i, ks=(1, 5), chunk_size=3) == out


def test_relevance_by_equal_ids_and_by_many_to_many_pairs(tmp_path, rng):
    images = _unit(rng.normal(size=(9, 6)))
    texts = _unit(images + 0.8 * rng.normal(size=(9, 6)))
    names = [f"item-{i}" for i in range(9)]
    order = rng.permutation(9)  # the caption store holds the same ids in another order
    image_store = _store(tmp_path / "images", images, "image", shard_size=4, ids=names)
    text_store = _store(tmp_path / "texts", texts[order], "text", shard_size=5, ids=[names[i] for i in order])
    by_id = evaluate_retrieval(image_store, text_store, chunk_size=2)
    assert by_id == evaluate_retrieval(_vectors(image_store), _vectors(text_store), order)
    # many-to-many: caption rows relevant to several images and images with several captions
    table = [("item-0", "item-0"), ("item-0", "item-3"), ("item-1", "item-1"), ("item-1", "item-0"),
             ("item-2", "item-2"), ("item-3", "item-4"), ("item-4", "item-5"), ("item-5", "item-6"),
             ("item-6", "item-7"), ("item-7", "item-8"), ("item-8", "item-8"), ("item-8", "item-1")]
    out = evaluate_retrieval(image_store, text_store, pairs=table, ks=(1, 2), chunk_size=3)
    text_row = {names[i]: r for r, i in enumerate(order)}
    rows = np.array([(int(i[5:]), text_row[t]) for i, t in table])  # (image row, text row)
    iv, tv = _vectors(image_store), _vectors(text_store)
    captions_query = evaluate_queries(tv, iv, rows[:, ::-1], ks=(1, 2))
    images_query = evaluate_queries(iv, tv, rows, ks=(1, 2))
    assert {k: out[f"image_retrieval_{k}"] for k in captions_query} == captions_query
    assert {k: out[f"text_retrieval_{k}"] for k in images_query} == images_query
    assert evaluate_retrieval(iv, tv, pairs=rows, ks=(1, 2)) == out  # arrays: ids are row positions
    import polars as pl

    frame = pl.DataFrame({"text_id": [t for _, t in table], "image_id": [i for i, _ in table]})
    assert evaluate_retrieval(image_store, text_store, pairs=frame, ks=(1, 2)) == out


@pytest.mark.parametrize("chunk", [1, 6, None])
def test_caption_queries_against_a_gallery_with_distractors(tmp_path, rng, chunk):
    gallery = _unit(rng.normal(size=(50, 8)))
    gallery[31] = gallery[4]  # a distractor identical to a relevant image
    targets = rng.choice(50, size=15, replace=False)
    queries = _unit(gallery[targets] + 0.9 * rng.normal(size=(15, 8)))
    store = _store(tmp_path / "gallery", gallery, "image", shard_size=8)
    out = evaluate_retrieval(store, queries, targets, ks=(1, 5), chunk_size=chunk, directions=("image_retrieval",))
    expected = evaluate_queries(queries, _vectors(store), np.stack([np.arange(15), targets], axis=1), ks=(1, 5))
    assert out == {f"image_retrieval_{k}": v for k, v in expected.items()}
    with pytest.raises(ValueError, match=r"35 of 50 images have no caption .*directions=\('image_retrieval',\)"):
        evaluate_retrieval(store, queries, targets)


def test_torch_counting_equals_the_numba_kernels(monkeypatch, rng):
    # the CUDA branch's code (torch matmul, gathering and counting) run on CPU tensors; no GPU is exercised here
    images, texts, t2i = _planted(rng)
    ties = _half_vectors(np.random.default_rng(2), 20)
    reversed_pairs = np.stack([np.arange(20), np.arange(20)[::-1]], axis=1)  # (image, text): text j is image 19 - j
    expected = evaluate_retrieval(images, texts, t2i)  # in memory: numba kernels
    expected_ties = evaluate_retrieval(ties, ties[::-1].copy(), np.arange(20)[::-1].copy())
    monkeypatch.setattr(rs, "_engine", lambda resident, block, device: rs._TorchEngine(resident, block, "cpu"))
    assert evaluate_retrieval(images, texts, t2i, chunk_size=5, directions=rs.DIRECTIONS) == expected
    one_way = evaluate_retrieval(images, texts, t2i, chunk_size=5, directions="image_retrieval")
    assert one_way == {k: v for k, v in expected.items() if k.startswith("image_retrieval_")}
    assert evaluate_retrieval(ties, ties[::-1].copy(), pairs=reversed_pairs, chunk_size=3) == expected_ties


def test_device_selection(monkeypatch):
    import torch

    assert rs.resolve_device("cpu") == "cpu"
    assert rs.resolve_device("auto", multiply_adds=1e6) == "cpu"  # never worth a GPU, torch not consulted
    assert rs.resolve_device("auto", multiply_adds=1e12) == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        rs.resolve_device("gpu")
    monkeypatch.setattr(rs, "_cuda_available", lambda: False)
    with pytest.raises(ValueError, match=r"device='cuda' but torch.cuda.is_available\(\) is False"):
        rs.resolve_device("cuda")
    with pytest.raises(ValueError, match="is False"):
        evaluate_retrieval(np.eye(3), np.eye(3), np.arange(3), device="cuda")
    monkeypatch.setattr(rs, "_cuda_available", lambda: True)  # selection only: nothing runs on a GPU here
    assert rs.resolve_device("auto", multiply_adds=1e12) == "cuda"
    assert rs.resolve_device("auto", multiply_adds=1e6) == "cpu"
    assert rs.resolve_device("cuda", multiply_adds=1e6) == "cuda"


def test_score_blocks_are_bounded_and_passes_counted(tmp_path, rng, monkeypatch):
    gallery = _unit(rng.normal(size=(200, 8)))
    targets = rng.choice(200, size=12, replace=False)
    queries = _unit(gallery[targets] + rng.normal(size=(12, 8)))
    store = _store(tmp_path / "gallery", gallery, "image", shard_size=64)
    shapes, reads = [], []
    scores, batches = rs._CpuEngine.scores, store.iter_batches
    monkeypatch.setattr(rs._CpuEngine, "scores", lambda self, block, *args: shapes.append(block.shape) or scores(
        self, block, *args))
    monkeypatch.setattr(store, "iter_batches", lambda rows: reads.append(rows) or batches(rows))
    evaluate_retrieval(store, queries, targets, chunk_size=20, directions="image_retrieval")
    assert set(shapes) == {(20, 8)}  # every score block is chunk x queries (x 16 at least, zero-padded)
    # pass 1 scores only the 12 relevant gallery rows (1 block), pass 2 all 200 (10 blocks); two reads
    assert len(shapes) == 1 + 10 and len(reads) == 2
    shapes.clear()
    evaluate_retrieval(store, queries, targets, chunk_size=3, directions="image_retrieval")
    assert set(shapes) == {(16, 8)} and len(shapes) == 4 + 67  # never fewer than 16 rows


def test_bad_inputs(tmp_path, rng):
    images = _unit(rng.normal(size=(6, 4)))
    store = _store(tmp_path / "images", images, "image", shard_size=4, ids=list("abcdef"))
    texts = _store(tmp_path / "texts", images[:3], "text", shard_size=4, ids=list("abc"))
    with pytest.raises(ValueError, match="images have 4 dimensions but texts have 3"):
        evaluate_retrieval(store, np.ones((6, 3)), np.arange(6))
    with pytest.raises(ValueError, match=r"pairs: image ids: 1 of 2 are not ids of the images \(e.g. 'zz'\)"):
        evaluate_retrieval(store, texts, pairs=[("a", "a"), ("zz", "b")], directions="image_retrieval")
    with pytest.raises(ValueError, match="pairs: text ids: 1 of 1 are not ids of the texts"):
        evaluate_retrieval(store, texts, pairs=[("a", "q")], directions="image_retrieval")
    with pytest.raises(TypeError, match="pairs: image ids are Int64 but the ids of the images are String"):
        evaluate_retrieval(store, texts, pairs=[(0, "a")], directions="image_retrieval")
    with pytest.raises(ValueError, match="1 of 3 texts have no relevant image"):
        evaluate_retrieval(store, texts, pairs=[("a", "a"), ("b", "b")], directions="image_retrieval")
    with pytest.raises(ValueError, match="3 of 6 images have no caption"):
        evaluate_retrieval(store, texts)  # paired by id: d, e, f have no caption
    with pytest.raises(ValueError, match=r"text ids .* 3 of 3 are not ids of the image store"):
        evaluate_retrieval(texts, _store(tmp_path / "other", images[:3], "text", 4, ids=list("xyz")))
    with pytest.raises(ValueError, match="not both"):
        evaluate_retrieval(store, texts, np.arange(3), pairs=[("a", "a")])
    with pytest.raises(ValueError, match="relevance by equal ids needs both sides to be stores"):
        evaluate_retrieval(images, images, directions="image_retrieval")
    with pytest.raises(ValueError, match="one entry per text"):
        evaluate_retrieval(store, texts, np.arange(4))
    with pytest.raises(TypeError, match="integer image rows"):
        evaluate_retrieval(store, texts, np.zeros(3))
    with pytest.raises(ValueError, match="point outside the 6"):
        evaluate_retrieval(store, texts, np.array([0, 1, 6]), directions="image_retrieval")
    with pytest.raises(ValueError, match="directions must be a non-empty subset"):
        evaluate_retrieval(store, texts, directions=("image",))
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        evaluate_retrieval(store, texts, np.arange(3), chunk_size=0, directions="image_retrieval")
    with pytest.raises(FileNotFoundError, match="no embedding store"):
        evaluate_retrieval(str(tmp_path / "missing"), texts)
    # a store whose last shard is not (yet) recorded is refused, not silently evaluated on fewer rows
    manifest = store.path / "manifest.jsonl"
    lines = manifest.read_bytes().splitlines()
    manifest.write_bytes(b"\n".join(lines[:-1]) + b"\n")
    assert json.loads(lines[0])["rows"] == 4
    with pytest.raises(ValueError, match="is incomplete"):
        evaluate_retrieval(workbench.store.open(store.path), texts, directions="image_retrieval")
