"""The N-modality gap matrix: every entry against the two-modality metrics and retrieval engine, hand cases with
known answers (no gap: distance 0 and R@1 1; a wide gap: every mixed search returns its own modality), intervals,
invariance to a rotation of the shared space, input checks."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import Embeddings, MultimodalEmbeddings
from workbench.gap import centroid_distance, gap_matrix
from workbench.retrieval import per_query_ranks

MODALITIES = ("image", "text", "audio")


def _pool(rng: np.random.Generator, n: int = 40, dim: int = 12, gap: float = 1.0, noise: float = 0.3,
          rotation: np.ndarray | None = None) -> MultimodalEmbeddings:
    z = rng.normal(size=(n, dim))
    ids = {"id": [f"item{i}" for i in range(n)]}
    out = []
    for m in MODALITIES:
        x = z + gap * rng.normal(size=dim) + noise * rng.normal(size=(n, dim))
        out.append(Embeddings(x if rotation is None else x @ rotation, m, metadata=ids))
    return MultimodalEmbeddings(out)


def _value(frame: pl.DataFrame, q: str, g: str, metric: str) -> float:
    row = frame.filter((pl.col("query") == q) & (pl.col("gallery") == g) & (pl.col("metric") == metric))
    assert row.height == 1
    return float(row["value"][0])


def test_every_entry_equals_the_two_modality_metric_and_the_retrieval_engine(rng) -> None:
    mm = _pool(rng)
    out = gap_matrix(mm, n_boot=20)
    assert out.select("query", "gallery").unique().height == 6
    for q in MODALITIES:
        for g in MODALITIES:
            if q == g:
                continue
            paired = mm.pair(q, g)
            assert _value(out, q, g, "centroid_distance") == pytest.approx(centroid_distance(paired), abs=1e-12)
            ranks = per_query_ranks(paired.a.vectors, paired.b.vectors, paired.pairs).ranks
            assert _value(out, q, g, "R@1") == pytest.approx(np.mean(ranks <= 1))
            assert _value(out, q, g, "own_share_expected") == pytest.approx(39 / 79)  # 39 others + 40 of g


def test_without_a_gap_distances_are_zero_and_every_query_finds_its_item_first() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(25, 8))
    ids = {"id": list(range(25))}
    mm = MultimodalEmbeddings([Embeddings(z, m, metadata=ids) for m in MODALITIES])  # one vector per item
    out = gap_matrix(mm, n_boot=20)
    for metric, expected in (("centroid_distance", 0.0), ("R@1", 1.0)):
        values = out.filter(pl.col("metric") == metric)["value"].to_numpy()
        np.testing.assert_allclose(values, expected, atol=1e-7)
    # the partner (cosine 1) is relevant and ranked first; NDCG@10 is 1 only if nothing else relevant is missed
    np.testing.assert_allclose(out.filter(pl.col("metric") == "mixed_ndcg@10")["value"].to_numpy(), 1.0)


def test_a_wide_gap_makes_every_mixed_search_return_its_own_modality(rng) -> None:
    out = gap_matrix(_pool(rng, gap=10.0, noise=0.1), n_boot=20)
    share = out.filter(pl.col("metric") == "own_share")
    assert (share["value"] == 1.0).all() and (share["low"] == 1.0).all()


def test_intervals_hold_the_value_and_narrow_with_more_items() -> None:
    small = gap_matrix(_pool(np.random.default_rng(0), n=30), n_boot=100)
    large = gap_matrix(_pool(np.random.default_rng(0), n=300), n_boot=100)
    for out in (small, large):
        assert ((out["low"] <= out["value"] + 1e-12) & (out["value"] <= out["high"] + 1e-12)).all()
    width = {name: frame.filter(pl.col("metric") == "centroid_distance").select((pl.col("high") - pl.col("low"))
                                                                                 .mean()).item()
             for name, frame in (("small", small), ("large", large))}
    assert width["large"] < width["small"]


def test_many_to_many_keys_are_paired_by_the_key() -> None:
    rng = np.random.default_rng(1)
    image = Embeddings(rng.normal(size=(5, 6)), "image", metadata={"item": list(range(5))})
    text = Embeddings(rng.normal(size=(10, 6)), "text", metadata={"item": [i // 2 for i in range(10)]})
    out = gap_matrix(MultimodalEmbeddings([image, text], key="item"), n_boot=10)
    assert _value(out, "image", "text", "own_share_expected") == pytest.approx(4 / 14)
    assert out.filter(pl.col("query") == "text")["n_queries"][0] == 10


@settings(max_examples=5, deadline=None, derandomize=True)
@given(st.integers(0, 1000))
def test_the_matrix_is_invariant_to_a_rotation_of_the_shared_space(seed: int) -> None:
    q, _ = np.linalg.qr(np.random.default_rng(seed + 1).normal(size=(12, 12)))
    one = gap_matrix(_pool(np.random.default_rng(seed)), n_boot=20)
    two = gap_matrix(_pool(np.random.default_rng(seed), rotation=q), n_boot=20)
    np.testing.assert_allclose(one["value"].to_numpy(), two["value"].to_numpy(), atol=1e-6)


def test_bad_input_is_named(rng) -> None:
    with pytest.raises(TypeError, match="MultimodalEmbeddings"):
        gap_matrix(rng.normal(size=(4, 4)))
    one = MultimodalEmbeddings([Embeddings(rng.normal(size=(4, 4)), "image", metadata={"id": list(range(4))})])
    with pytest.raises(ValueError, match="at least two modalities"):
        gap_matrix(one)
    mixed = MultimodalEmbeddings([Embeddings(rng.normal(size=(4, 4)), "image", metadata={"id": list(range(4))}),
                                  Embeddings(rng.normal(size=(4, 6)), "text", metadata={"id": list(range(4))})])
    with pytest.raises(ValueError, match="one embedding space"):
        gap_matrix(mixed)
