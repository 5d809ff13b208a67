"""One-file save/load: bit-exact round trips in both formats, plain files, damaged files, atomic writes."""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import Embeddings, MultimodalEmbeddings, PairedEmbeddings
from workbench._files import atomic_write

FORMATS = ["npz", "parquet"]


def _assert_same_embeddings(x: Embeddings, y: Embeddings) -> None:
    assert x.vectors.tobytes() == y.vectors.tobytes()
    assert x.vectors.dtype == y.vectors.dtype == np.float32 and x.shape == y.shape
    assert (x.modality, x.model) == (y.modality, y.model)
    assert x.metadata.schema == y.metadata.schema
    assert x.metadata.equals(y.metadata, null_equal=True)


@pytest.fixture
def coco_like(rng) -> PairedEmbeddings:
    """Three images with two to three captions each, rich metadata with nulls and several dtypes."""
    images = Embeddings(rng.normal(size=(3, 16)), "image", "toy-clip",
                        {"id": [139, 285, 632], "path": ["a.jpg", None, "c.jpg"], "width": [640.0, 480.5, 320.0]})
    texts = Embeddings(rng.normal(size=(7, 16)), "text", "toy-clip",
                       {"id": list(range(1000, 1007)), "caption": ["a cat", "ein Hund", "🚲 bike", "", "x", "y", "z"],
                        "label": [1, 2, None, 4, 5, 6, 7], "flag": [True, False, True, True, None, False, True]})
    return PairedEmbeddings(images, texts, [(0, 0), (0, 1), (1, 2), (1, 3), (1, 4), (2, 5), (2, 6)])


@pytest.mark.parametrize("fmt", FORMATS)
def test_paired_round_trip_is_bit_exact(coco_like, tmp_path, fmt):
    path = tmp_path / f"pairs.{fmt}"
    coco_like.save(path)
    back = PairedEmbeddings.load(path)
    _assert_same_embeddings(back.a, coco_like.a)
    _assert_same_embeddings(back.b, coco_like.b)
    np.testing.assert_array_equal(back.pairs, coco_like.pairs)
    assert back.pairs.dtype == np.int64
    assert [p.name for p in tmp_path.iterdir()] == [f"pairs.{fmt}"]  # no temporary files left behind


@pytest.mark.parametrize("fmt", FORMATS)
def test_embeddings_and_multimodal_round_trips(rng, tmp_path, fmt):
    e = Embeddings(rng.normal(size=(5, 3)), "audio", "toy", {"id": ["a", "b", "c", "d", "e"]})
    e.save(tmp_path / f"e.{fmt}")
    _assert_same_embeddings(Embeddings.load(tmp_path / f"e.{fmt}"), e)

    items = {"id": ["a", "b", "c"]}
    modalities = ("image", "text", "audio")
    mm = MultimodalEmbeddings([Embeddings(rng.normal(size=(3, 4)), m, "toy", items) for m in modalities])
    mm.save(tmp_path / f"mm.{fmt}")
    back = MultimodalEmbeddings.load(tmp_path / f"mm.{fmt}")
    assert back.modalities == ("image", "text", "audio") and back.key == "id"
    for m in mm.modalities:
        _assert_same_embeddings(back[m], mm[m])


def test_same_modality_names_on_both_sides_round_trip(rng, tmp_path):
    p = PairedEmbeddings.from_arrays(rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), modalities=("image", "image"))
    p.save(tmp_path / "same.parquet")
    back = PairedEmbeddings.load(tmp_path / "same.parquet")
    _assert_same_embeddings(back.a, p.a)
    _assert_same_embeddings(back.b, p.b)


def test_parquet_file_is_readable_by_plain_polars(coco_like, tmp_path):
    coco_like.save(tmp_path / "p.parquet")
    df = pl.read_parquet(tmp_path / "p.parquet")
    assert df.height == 10
    assert df.filter(pl.col("modality") == "text")["m1.caption"].to_list()[:3] == ["a cat", "ein Hund", "🚲 bike"]
    np.testing.assert_array_equal(np.stack(df["embedding"].to_list()[:3]), coco_like.a.vectors)


@pytest.mark.filterwarnings("ignore::workbench.data.DuplicateRowsWarning")  # 1-D rows collapse to +-1
@settings(max_examples=25, deadline=None)
@given(
    n_a=st.integers(1, 6), n_b=st.integers(1, 6), dim=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
    fmt=st.sampled_from(FORMATS),
)
def test_round_trip_property(tmp_path_factory, n_a, n_b, dim, seed, fmt):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n_a, dim)) + 1e-3
    b = rng.normal(size=(n_b, dim)) + 1e-3
    pairs = np.argwhere(rng.random((n_a, n_b)) < 0.5)
    if len(pairs) == 0:
        pairs = np.array([[0, 0]])
    p = PairedEmbeddings.from_arrays(a, b, pairs=pairs, modalities=("u", "v"))
    path = tmp_path_factory.mktemp("rt") / f"x.{fmt}"
    p.save(path)
    back = PairedEmbeddings.load(path)
    assert back.a.vectors.tobytes() == p.a.vectors.tobytes()
    assert back.b.vectors.tobytes() == p.b.vectors.tobytes()
    np.testing.assert_array_equal(back.pairs, p.pairs)


def test_plain_npz_with_a_b_and_pairs(rng, tmp_path):
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(4, 3))
    np.savez(tmp_path / "mine.npz", a=a, b=b, pairs=np.array([[0, 0], [0, 1], [1, 2], [1, 3]]))
    p = PairedEmbeddings.load(tmp_path / "mine.npz", modalities=("image", "text"), model="my-model")
    assert p.modalities == ("image", "text") and p.model == "my-model" and p.n_pairs == 4
    np.testing.assert_allclose(p.a.vectors, a / np.linalg.norm(a, axis=1, keepdims=True), rtol=1e-6)
    np.savez(tmp_path / "other.npz", x=a)
    with pytest.raises(ValueError, match="arrays 'a' and 'b'"):
        PairedEmbeddings.load(tmp_path / "other.npz")


def test_bad_files_give_clear_errors(coco_like, tmp_path):
    with pytest.raises(ValueError, match=r"use \.npz or \.parquet"):
        coco_like.save(tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError, match="no embeddings file"):
        PairedEmbeddings.load(tmp_path / "missing.npz")
    coco_like.save(tmp_path / "p.npz")
    data = (tmp_path / "p.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot read"):
        PairedEmbeddings.load(tmp_path / "cut.npz")
    coco_like.save(tmp_path / "p.parquet")
    data = (tmp_path / "p.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot read"):
        PairedEmbeddings.load(tmp_path / "cut.parquet")
    pl.DataFrame({"x": [1]}).write_parquet(tmp_path / "foreign.parquet")
    with pytest.raises(ValueError, match="from_frame"):
        PairedEmbeddings.load(tmp_path / "foreign.parquet")
    Embeddings(np.eye(2), "x").save(tmp_path / "single.npz")
    with pytest.raises(ValueError, match="holds 'embeddings' data, not 'paired'"):
        PairedEmbeddings.load(tmp_path / "single.npz")


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target, "w") as handle:
        handle.write("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_duplicates_warned_once_on_load(tmp_path):
    from workbench import DuplicateRowsWarning

    p = PairedEmbeddings.from_arrays(np.eye(3), np.array([[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]]),
                                     modalities=("image", "text"))
    p.save(tmp_path / "d.npz")
    with pytest.warns(DuplicateRowsWarning, match="text 2 unique of 3") as record:
        PairedEmbeddings.load(tmp_path / "d.npz")
    assert len(record) == 1
