"""Retrieval: agreement with CLIP_benchmark, brute-force ranks and mAP, ties, chunking, intervals, the paired test."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import datasets
from workbench.retrieval import (
    bootstrap_ci,
    evaluate_queries,
    evaluate_retrieval,
    matched_ranks,
    paired_bootstrap_test,
    per_query_ranks,
)


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _planted(rng, n_images, per_image, dim=32, noise=1.0):
    images = _unit(rng.normal(size=(n_images, dim)))
    text_to_image = np.repeat(np.arange(n_images), per_image)
    texts = _unit(images[text_to_image] + noise * rng.normal(size=(len(text_to_image), dim)) / np.sqrt(dim) * 4)
    return images, texts, text_to_image


def _clip_benchmark(images, texts, text_to_image, ks, batch_size=64):
    """CLIP_benchmark's metric exactly as its evaluate() runs it (the reference oracle)."""
    torch = pytest.importorskip("torch")
    from clip_benchmark.metrics.zeroshot_retrieval import batchify, recall_at_k

    scores = torch.tensor(texts) @ torch.tensor(images).t()
    positive_pairs = torch.zeros_like(scores, dtype=bool)
    positive_pairs[torch.arange(len(scores)), torch.tensor(text_to_image)] = True
    out = {}
    for k in ks:
        out[f"image_retrieval_recall@{k}"] = (batchify(recall_at_k, scores, positive_pairs, batch_size, "cpu", k=k)
                                              > 0).float().mean().item()
        out[f"text_retrieval_recall@{k}"] = (batchify(recall_at_k, scores.T, positive_pairs.T, batch_size, "cpu", k=k)
                                             > 0).float().mean().item()
    return out


def _brute_force(queries, gallery, relevant):
    """First-relevant rank (pessimistic ties) and AP by explicit sorting, one query at a time."""
    ranks, aps = [], []
    for q, rel in enumerate(relevant):
        scores = gallery.astype(np.float64) @ queries[q].astype(np.float64)
        is_rel = np.zeros(len(gallery), bool)
        is_rel[list(rel)] = True
        # sort descending; among equal scores irrelevant items come first (pessimistic)
        order = np.lexsort((is_rel, -scores))
        hits = is_rel[order]
        positions = np.flatnonzero(hits) + 1
        ranks.append(positions[0])
        aps.append(np.mean(np.arange(1, len(positions) + 1) / positions))
    return np.array(ranks), np.array(aps)


@pytest.mark.parametrize("per_image", [1, 5])
def test_recall_agrees_with_clip_benchmark(rng, per_image):
    images, texts, t2i = _planted(rng, 300, per_image, noise=0.5)
    ours = evaluate_retrieval(images, texts, t2i, ks=(1, 5, 10))
    reference = _clip_benchmark(images, texts, t2i, ks=(1, 5, 10))
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key
    assert 0.05 < ours["image_retrieval_recall@1"] < 0.95  # a non-trivial task


def test_ranks_and_map_equal_brute_force_with_many_captions(rng):
    images, texts, t2i = _planted(rng, 40, 5, dim=16, noise=2.0)
    out = evaluate_retrieval(images, texts, t2i, ks=(1, 3))
    # captions query images
    ranks, aps = _brute_force(texts, images, [[i] for i in t2i])
    assert out["image_retrieval_mean_rank"] == pytest.approx(ranks.mean())
    assert out["image_retrieval_median_rank"] == pytest.approx(np.median(ranks))
    assert out["image_retrieval_mAP"] == pytest.approx(aps.mean())
    # images query captions: all five captions are relevant
    ranks, aps = _brute_force(images, texts, [np.flatnonzero(t2i == i) for i in range(40)])
    assert out["text_retrieval_mean_rank"] == pytest.approx(ranks.mean())
    assert out["text_retrieval_recall@3"] == pytest.approx(np.mean(ranks <= 3))
    assert out["text_retrieval_mAP"] == pytest.approx(aps.mean())


def test_uneven_caption_counts_and_unpaired_gallery(rng):
    images = _unit(rng.normal(size=(12, 8)))
    t2i = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    texts = _unit(images[t2i] + rng.normal(size=(20, 8)))
    relevance = np.stack([np.arange(20), t2i], axis=1)
    result = per_query_ranks(texts, images, relevance, with_ap=True)
    ranks, aps = _brute_force(texts, images, [[i] for i in t2i])
    np.testing.assert_array_equal(result.ranks, ranks)
    np.testing.assert_allclose(result.average_precision, aps)
    # a gallery with distractors nobody asks for
    distractors = _unit(rng.normal(size=(30, 8)))
    gallery = np.concatenate([images, distractors])
    ranks, aps = _brute_force(texts, gallery, [[i] for i in t2i])
    np.testing.assert_array_equal(per_query_ranks(texts, gallery, relevance).ranks, ranks)
    assert evaluate_queries(texts, gallery, relevance)["mAP"] == pytest.approx(aps.mean())


def test_ties_count_against_the_relevant_item():
    gallery = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # rows 0 and 1 identical
    queries = np.array([[1.0, 0.0], [0.0, 1.0]])
    # the relevant row 1 ties with the irrelevant row 0: rank 2, never 1
    assert per_query_ranks(queries, gallery, [(0, 1), (1, 2)]).ranks.tolist() == [2, 1]
    # identical items count as relevant when asked
    assert per_query_ranks(queries, gallery, [(0, 1), (1, 2)], identical_is_relevant=True).ranks.tolist() == [1, 1]
    # duplicate captions in the CLIP protocol
    images = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    texts = np.array([[0.0, 1.0, 0.1], [0.0, 1.0, 0.1], [1.0, 0.0, 0.0]])  # two identical captions
    t2i = np.array([0, 1, 0])
    strict = evaluate_retrieval(images, texts, t2i, ks=(1,))
    lenient = evaluate_retrieval(images, texts, t2i, ks=(1,), identical_is_relevant=True)
    # captions query images: caption 0 describes image 0 but points at image 1 (rank 2); no duplicate images
    assert strict["image_retrieval_recall@1"] == lenient["image_retrieval_recall@1"] == pytest.approx(2 / 3)
    # images query captions: image 1's caption ties with its identical twin, which describes image 0
    assert strict["text_retrieval_recall@1"] == pytest.approx(0.5)
    assert lenient["text_retrieval_recall@1"] == pytest.approx(1.0)


def test_builtin_clip_numbers():
    a, b = datasets.load("liang2022/clip").matched()
    m = evaluate_retrieval(a, b, np.arange(500))
    sims = _unit(a).astype(np.float64) @ _unit(b).T.astype(np.float64)
    assert m["text_retrieval_recall@1"] == pytest.approx(np.mean(sims.argmax(1) == np.arange(500)))
    assert m["image_retrieval_recall@1"] == pytest.approx(np.mean(sims.argmax(0) == np.arange(500)))
    assert m["text_retrieval_recall@1"] == pytest.approx(0.552)  # images query captions (Liang et al.'s files)
    assert m["image_retrieval_recall@1"] == pytest.approx(0.506)


def test_chunked_equals_whole_matrix(rng):
    images, texts, t2i = _planted(rng, 101, 3, noise=2.0)
    whole = evaluate_retrieval(images, texts, t2i)
    for chunk in (1, 7, 64, 1000):
        assert evaluate_retrieval(images, texts, t2i, chunk_size=chunk) == whole
    ra, rb = matched_ranks(images, texts[::3])
    ra2, rb2 = matched_ranks(images, texts[::3], chunk_size=10)
    np.testing.assert_array_equal(ra, ra2)
    np.testing.assert_array_equal(rb, rb2)


def test_bad_inputs(rng):
    images, texts, t2i = _planted(rng, 5, 2)
    with pytest.raises(ValueError, match="point outside the 5"):
        evaluate_retrieval(images, texts, np.where(t2i == 4, 5, t2i))
    with pytest.raises(ValueError, match="one entry per text"):
        evaluate_retrieval(images, texts, t2i[:-1])
    with pytest.raises(ValueError, match="dimensions"):
        evaluate_retrieval(images[:, :4], texts, t2i)
    bad = texts.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="1 of 10 rows contain NaN"):
        evaluate_retrieval(images, bad, t2i)
    with pytest.raises(ValueError, match="1 of 5 queries have no relevant item"):
        evaluate_retrieval(images, texts[t2i != 2], t2i[t2i != 2])
    with pytest.raises(ValueError, match="no relevant item"):
        per_query_ranks(texts, images, [(0, 0)])
    with pytest.raises(TypeError, match="integer"):
        evaluate_retrieval(images, texts, t2i.astype(float))


def test_bootstrap_interval_width_matches_the_binomial_standard_error(rng):
    hits = (rng.random(2000) < 0.3).astype(float)
    mean, lo, hi = bootstrap_ci(hits, n_resamples=2000, seed=1)
    se = np.sqrt(mean * (1 - mean) / len(hits))
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert lo < mean < hi
    assert bootstrap_ci(hits, seed=1) == bootstrap_ci(hits, seed=1)


def test_paired_test_p_values_are_uniform_under_identical_systems():
    # two identical systems: each query's rank is drawn from the same distribution for both
    rng = np.random.default_rng(7)
    p_values = []
    for _ in range(300):
        quality = rng.random(300)
        a = 1 + rng.binomial(20, quality)
        b = 1 + rng.binomial(20, quality)
        p_values.append(paired_bootstrap_test(a, b, k=3, n_resamples=400, seed=int(rng.integers(1 << 30)))["p_value"])
    p_values = np.array(p_values)
    for alpha in (0.05, 0.1, 0.25, 0.5):
        assert np.mean(p_values <= alpha) == pytest.approx(alpha, abs=max(0.035, alpha * 0.3)), alpha
    # and it detects a real improvement
    a = 1 + rng.binomial(20, rng.random(300))
    assert paired_bootstrap_test(a, np.maximum(a - 3, 1), k=3)["p_value"] < 0.01
