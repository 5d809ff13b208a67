"""The data model: validation, normalisation, pairing, subsets and the multimodal join."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench import Embeddings, MultimodalEmbeddings, PairedEmbeddings


def test_rows_are_normalised_in_float64_and_stored_read_only_float32(rng):
    x = rng.normal(size=(20, 7)) * rng.uniform(0.1, 50, size=(20, 1))
    e = Embeddings(x, "image", "m")
    expected = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    assert e.vectors.dtype == np.float32
    np.testing.assert_allclose(e.vectors, expected, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(e.vectors.astype(np.float64), axis=1), 1.0, atol=1e-6)
    assert not e.vectors.flags.writeable
    with pytest.raises(ValueError):
        e.vectors[0, 0] = 1.0
    assert e.shape == (20, 7) and e.dim == 7 and len(e) == 20
    assert e.ids.to_list() == list(range(20))


def test_torch_tensors_are_accepted():
    torch = pytest.importorskip("torch")
    e = Embeddings(torch.tensor([[3.0, 4.0]]), "image")
    np.testing.assert_allclose(e.vectors, [[0.6, 0.8]], rtol=1e-6)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.array([[1.0, np.nan], [1.0, 0.0], [np.nan, 2.0]]), "2 of 3 rows contain NaN"),
        (np.array([[1.0, np.inf], [1.0, 0.0]]), "1 of 2 rows contain inf"),
        (np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]), "2 of 3 rows have zero norm"),
        (np.zeros((0, 4)), "empty: 0 rows"),
        (np.ones((3, 0)), "0 dimensions"),
        (np.ones(5), "2-D matrix"),
        (np.ones((2, 2, 2)), "2-D matrix"),
    ],
)
def test_bad_matrices_raise_value_errors_naming_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        Embeddings(bad, "image")


def test_non_numeric_input_is_a_type_error():
    with pytest.raises(TypeError, match="must hold numbers"):
        Embeddings(np.array([["a", "b"]]), "text")
    with pytest.raises(TypeError, match="modality"):
        Embeddings(np.ones((2, 2)), "")


def test_metadata_validation():
    with pytest.raises(ValueError, match="metadata has 2 rows but there are 3"):
        Embeddings(np.eye(3), "image", metadata={"id": [1, 2]})
    with pytest.raises(ValueError, match="1 rows repeat an id"):
        Embeddings(np.eye(3), "image", metadata={"id": ["a", "b", "a"]})
    with pytest.raises(ValueError, match="null id"):
        Embeddings(np.eye(2), "image", metadata={"id": ["a", None]})
    e = Embeddings(np.eye(2), "image", metadata={"caption": ["x", "y"]})
    assert e.metadata.columns == ["id", "caption"]


def test_normalize_false_keeps_bits_and_rejects_non_unit_rows():
    x = np.array([[0.6, 0.8], [1.0, 0.0]], dtype=np.float32)
    assert Embeddings(x, "image", normalize=False).vectors.tobytes() == x.tobytes()
    with pytest.raises(ValueError, match="not unit length"):
        Embeddings(x * 2, "image", normalize=False)


def test_duplicates_found_and_counted():
    x = np.array([[1.0, 0], [0, 1.0], [1.0, 0], [0.5, 0.5], [0, 1.0], [1.0, 0]])
    e = Embeddings(x, "text")
    d = e.duplicates()
    assert d["row"].to_list() == [2, 4, 5]
    assert d["duplicate_of"].to_list() == [0, 1, 0]
    assert e.n_unique == 3


def test_pairing_validation():
    a, b = Embeddings(np.eye(3), "image"), Embeddings(np.eye(3), "text")
    with pytest.raises(ValueError, match=r"2 of 3 pairs point outside the 3 text rows"):
        PairedEmbeddings(a, b, [(0, 0), (1, 3), (2, -1)])
    with pytest.raises(ValueError, match="pairs is empty"):
        PairedEmbeddings(a, b, np.zeros((0, 2), dtype=int))
    with pytest.raises(ValueError, match=r"shape \(P, 2\)"):
        PairedEmbeddings(a, b, [0, 1, 2])
    with pytest.raises(TypeError, match="integer"):
        PairedEmbeddings(a, b, [(0.0, 1.0)])
    with pytest.raises(ValueError, match="1 pairs are listed more than once"):
        PairedEmbeddings(a, b, [(0, 0), (1, 1), (0, 0)])
    with pytest.raises(ValueError, match="dimensions differ: image has 3, text has 4"):
        PairedEmbeddings(a, Embeddings(np.eye(3, 4), "text"))
    with pytest.raises(ValueError, match="image has 3 rows and text has 2"):
        PairedEmbeddings(a, Embeddings(np.eye(2, 3), "text"))
    with pytest.raises(TypeError, match="from_arrays"):
        PairedEmbeddings(np.eye(3), b)


def test_many_to_many_matched_rows_follow_the_pairs(rng):
    images, texts = rng.normal(size=(4, 5)), rng.normal(size=(9, 5))
    pairs = [(0, 0), (0, 1), (1, 2), (1, 3), (1, 4), (2, 5), (3, 6), (3, 7), (0, 8)]
    p = PairedEmbeddings.from_arrays(images, texts, modalities=("image", "text"), pairs=pairs)
    ma, mb = p.matched()
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    for k, (i, j) in enumerate(pairs):
        np.testing.assert_array_equal(ma[k], unit(images)[i])
        np.testing.assert_array_equal(mb[k], unit(texts)[j])
    assert not p.is_one_to_one and p.n_pairs == 9 and len(p) == 9
    rows_a, rows_b = p.paired_rows()
    assert rows_a.tolist() == [0, 1, 2, 3] and rows_b.tolist() == list(range(9))


def test_subset_keeps_pairs_and_renumbers_rows(rng):
    meta_b = {"id": [f"c{j}" for j in range(6)], "caption": list("abcdef")}
    p = PairedEmbeddings.from_arrays(rng.normal(size=(3, 4)), rng.normal(size=(6, 4)), modalities=("image", "text"),
                                     pairs=[(0, 0), (0, 1), (1, 2), (1, 3), (2, 4), (2, 5)], metadata_b=meta_b)
    s = p.subset([1, 4, 5])
    assert s.pairs.tolist() == [[0, 0], [1, 1], [1, 2]]
    assert s.b.metadata["caption"].to_list() == ["b", "e", "f"]
    np.testing.assert_array_equal(s.a.vectors, p.a.vectors[[0, 2]])
    # matched rows of the subset are the matched rows of the selected pairs
    np.testing.assert_array_equal(s.matched()[1], p.matched()[1][[1, 4, 5]])
    mask = np.zeros(6, bool)
    mask[[1, 4, 5]] = True
    assert p.subset(mask).pairs.tolist() == s.pairs.tolist()
    with pytest.raises(ValueError, match="out of range"):
        p.subset([7])
    with pytest.raises(ValueError, match="keeps no pair"):
        p.subset([])


def test_sample_is_seeded_and_swap_exchanges_roles(rng):
    p = PairedEmbeddings.from_arrays(rng.normal(size=(30, 4)), rng.normal(size=(30, 4)), modalities=("x", "y"))
    s1, s2 = p.sample(10, seed=3), p.sample(10, seed=3)
    assert s1.a.ids.to_list() == s2.a.ids.to_list() and s1.n_pairs == 10
    assert p.sample(100) is p
    q = p.swap()
    assert q.modalities == ("y", "x")
    np.testing.assert_array_equal(q.matched()[0], p.matched()[1])


def test_multimodal_pair_joins_on_the_key_many_to_many(rng):
    images = Embeddings(rng.normal(size=(3, 4)), "image", metadata={"id": [10, 20, 30], "image_id": [10, 20, 30]})
    texts = Embeddings(rng.normal(size=(5, 4)), "text",
                       metadata={"id": [100, 101, 102, 103, 104], "image_id": [20, 10, 20, 99, 30]})
    audio = Embeddings(rng.normal(size=(2, 4)), "audio", metadata={"id": [30, 10], "image_id": [30, 10]})
    mm = MultimodalEmbeddings([images, texts, audio], key="image_id")
    p = mm.pair("image", "text")
    # brute force: every (i, j) with equal keys
    expected = sorted((i, j) for i, ki in enumerate([10, 20, 30]) for j, kj in enumerate([20, 10, 20, 99, 30])
                      if ki == kj)
    assert p.pairs.tolist() == [list(x) for x in expected]
    assert mm.pair("audio", "image").pairs.tolist() == [[0, 2], [1, 0]]
    assert set(mm.pairs_with("image")) == {"text", "audio"}
    with pytest.raises(ValueError, match="share no value"):
        MultimodalEmbeddings([images, Embeddings(np.eye(1, 4), "depth", metadata={"image_id": [7]})],
                             key="image_id").pair("image", "depth")
    with pytest.raises(ValueError, match="distinct"):
        MultimodalEmbeddings([images, images])
    with pytest.raises(ValueError, match="no key column"):
        MultimodalEmbeddings([images, Embeddings(np.eye(2), "text")], key="image_id")


def test_from_frame_reads_a_row_paired_table(rng):
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    df = pl.DataFrame({"id": ["p", "q", "r", "s"], "image_emb": a.tolist(), "text_emb": b.tolist()})
    p = PairedEmbeddings.from_frame(df, "image_emb", "text_emb")
    assert p.modalities == ("image", "text")
    assert p.a.ids.to_list() == ["p", "q", "r", "s"]
    np.testing.assert_allclose(p.b.vectors, b / np.linalg.norm(b, axis=1, keepdims=True), rtol=1e-6)
    with pytest.raises(ValueError, match="not in the table"):
        PairedEmbeddings.from_frame(df, "image_emb", "audio_emb")


def test_normalising_twice_keeps_the_bits_and_unit_float32_rows_are_kept_as_given(rng):
    x = rng.normal(size=(300, 512)) * rng.uniform(0.1, 50, size=(300, 1))
    once = Embeddings(x, "image", "m").vectors
    # the float64 rule, computed independently: divide by the float64 norm, round once
    np.testing.assert_allclose(once, (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), rtol=1e-7)
    twice = Embeddings(once, "image", "m").vectors
    assert twice.tobytes() == once.tobytes()
    # rows normalised in float32 (as torch's F.normalize does) whose squares sum to 1 within the rounding bound are
    # kept as given; plain float64 re-division would move some of those by an ulp
    encoder_rows = x.astype(np.float32)
    encoder_rows /= np.linalg.norm(encoder_rows, axis=1, keepdims=True)
    within = np.abs(np.einsum("ij,ij->i", encoder_rows, encoder_rows, dtype=np.float64) - 1) <= 2.0**-23
    assert within.mean() > 0.5
    kept = Embeddings(encoder_rows, "image", "m").vectors
    assert kept[within].tobytes() == encoder_rows[within].tobytes()
    redivided = encoder_rows / np.linalg.norm(encoder_rows.astype(np.float64), axis=1, keepdims=True)
    assert (redivided.astype(np.float32)[within] != encoder_rows[within]).any()
    # a mix: unit rows keep their bits, the others are normalised
    mixed = once.copy()
    mixed[::2] *= 3.0
    out = Embeddings(mixed, "image", "m").vectors
    np.testing.assert_array_equal(out[1::2], once[1::2])
    np.testing.assert_allclose(out[::2], once[::2], atol=1e-7)


def test_modality_matrices_unpacks_each_item_once_or_takes_two_arrays(rng):
    from workbench.data import modality_matrices

    images, texts = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    p = PairedEmbeddings.from_arrays(images, texts, pairs=[(0, 0), (0, 1), (1, 2), (2, 3), (2, 4)])
    ma, mb = modality_matrices(p)
    # each modality's rows once (the stored unit rows), not the 5 row-paired rows of matched()
    assert ma.shape == (3, 4) and mb.shape == (5, 4)
    np.testing.assert_allclose(ma, images / np.linalg.norm(images, axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(mb, texts / np.linalg.norm(texts, axis=1, keepdims=True), rtol=1e-6)
    # two arrays come back as given (not normalised), row counts may differ
    xa, xb = modality_matrices(images, texts[:2])
    np.testing.assert_array_equal(xa, images)
    np.testing.assert_array_equal(xb, texts[:2])


def test_modality_matrices_errors_name_the_problem(rng):
    from workbench.data import modality_matrices

    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    p = PairedEmbeddings.from_arrays(a, b)
    with pytest.raises(TypeError, match=r"^fit: pass either a PairedEmbeddings or two arrays \(a, b\), not both$"):
        modality_matrices(p, b, caller="fit")
    with pytest.raises(TypeError, match=r"^two arrays \(a, b\) or one PairedEmbeddings are needed$"):
        modality_matrices(a)
    with pytest.raises(ValueError, match="dimensions differ: a has 3, b has 2; both must share one space"):
        modality_matrices(a, b[:, :2])
    with pytest.raises(ValueError, match="b must be a 2-D matrix"):
        modality_matrices(a, b[0])
