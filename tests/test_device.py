"""The device (torch) paths, run on CPU tensors: retrieval's torch engine, gap_report and the half-sample engine.

No GPU here: these run the code the GPU runs (torch gathering, thresholds and counting kept on the device, the
duplicate rule) on CPU tensors and check it against the numpy / numba paths, ties included.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import workbench.retrieval._device as dev  # noqa: E402
from workbench._validation import unit_matrix32  # noqa: E402
from workbench.retrieval import evaluate_queries, evaluate_retrieval  # noqa: E402

ENGINE = "torch:cpu"  # the torch engine on CPU tensors


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _coco_like(rng, n_images=40, per_image=5, dim=32, duplicates=12):
    """Images with five captions each; ``duplicates`` captions are copies of captions of OTHER images (exact ties
    between a relevant and an irrelevant caption), and two images are copies of others."""
    images = _unit(rng.normal(size=(n_images, dim)))
    images[9] = images[4]
    images[-1] = images[0]
    t2i = np.repeat(np.arange(n_images), per_image)
    texts = _unit(images[t2i] + 1.2 * rng.normal(size=(len(t2i), dim)) / np.sqrt(dim))
    src = rng.choice(len(texts), size=duplicates, replace=False)
    dst = (src + 7 * per_image) % len(texts)  # a caption of an image seven further on
    texts[dst] = texts[src]
    return images, texts, t2i


def _half_vectors(rng, n, dim=8):
    """Every score a multiple of 1/4, exact in any order: distinct items tie all the time."""
    out = np.zeros((n, dim), dtype=np.float32)
    for row in out:
        row[rng.choice(dim, size=4, replace=False)] = rng.choice([-0.5, 0.5], size=4)
    return out


@pytest.mark.parametrize("chunk_size", [None, 7, 64])
@pytest.mark.parametrize("identical_is_relevant", [False, True])
def test_torch_engine_on_tensors_equals_the_numpy_path_with_duplicates(rng, chunk_size, identical_is_relevant):
    images, texts, t2i = _coco_like(rng)
    expected = evaluate_retrieval(images, texts, t2i, chunk_size=chunk_size, device="cpu",
                                  identical_is_relevant=identical_is_relevant)
    got = evaluate_retrieval(torch.from_numpy(images), torch.from_numpy(texts), t2i, chunk_size=chunk_size,
                             device=ENGINE, identical_is_relevant=identical_is_relevant)
    assert got == expected  # every key, exactly: recall, mean/median rank, mAP
    from_numpy = evaluate_retrieval(images, texts, t2i, chunk_size=chunk_size, device=ENGINE,
                                    identical_is_relevant=identical_is_relevant)
    assert from_numpy == expected


def test_torch_engine_with_ties_between_distinct_items_and_one_direction(rng):
    g = _half_vectors(np.random.default_rng(5), 60)
    t2i = np.random.default_rng(6).integers(0, 60, size=90)
    texts = _half_vectors(np.random.default_rng(7), 90)
    pairs = np.stack([t2i, np.arange(90)], axis=1)
    for directions in (("image_retrieval",), ("image_retrieval", "text_retrieval")):
        if "text_retrieval" in directions:
            pairs = np.concatenate([pairs, np.stack([np.arange(60), np.arange(60)], axis=1)])
        for chunk in (None, 16, 25):
            expected = evaluate_retrieval(g, texts, pairs=pairs, directions=directions, chunk_size=chunk, device="cpu")
            got = evaluate_retrieval(torch.from_numpy(g), torch.from_numpy(texts), pairs=pairs,
                                     directions=directions, chunk_size=chunk, device=ENGINE)
            assert got == expected, (directions, chunk)


def test_tensor_rows_are_normalised_by_the_numpy_rule(rng):
    for x in (rng.normal(size=(20, 6)), rng.normal(size=(20, 6)).astype(np.float32), _unit(rng.normal(size=(9, 4)))):
        np.testing.assert_array_equal(dev.unit32(torch.from_numpy(x), "x").numpy(), unit_matrix32(x, "x"))
    with pytest.raises(ValueError, match="x"):
        dev.unit32(torch.zeros((2, 3)), "x")
    with pytest.raises(ValueError, match="2-D"):
        dev.unit32(torch.zeros(3), "x")


def test_duplicate_rows_are_found_exactly(rng):
    x = rng.normal(size=(30, 5)).astype(np.float32)
    x[[7, 19, 25]] = x[3]
    x[28] = x[11]
    rep = dev._row_representatives(torch.from_numpy(x))
    expected = np.arange(30)
    expected[[7, 19, 25]] = 3
    expected[28] = 11
    np.testing.assert_array_equal(rep, expected)


def test_duplicates_tie_even_when_the_device_product_rounds_them_apart(rng, monkeypatch):
    # a GPU kernel may sum identical rows in a different order (split-K): emulate it by moving every other row and
    # column of each product one float32 step up. Duplicates still tie (their scores are copied from the first
    # copy); without that rule the results move, as on the H200.
    images, texts, t2i = _coco_like(rng, duplicates=20)
    expected = evaluate_retrieval(images, texts, t2i, device="cpu")
    product = dev._TorchEngine._product

    def rounded_apart(self, x):
        out = product(self, x)
        out[1::2] = torch.nextafter(out[1::2], torch.tensor(np.inf))
        out[:, 1::2] = torch.nextafter(out[:, 1::2], torch.tensor(np.inf))
        return out

    monkeypatch.setattr(dev._TorchEngine, "_product", rounded_apart)
    assert evaluate_retrieval(images, texts, t2i, device=ENGINE) == expected
    monkeypatch.setattr(dev, "_row_representatives", lambda x: np.arange(len(x)))  # the rule switched off
    broken = evaluate_retrieval(images, texts, t2i, device=ENGINE)
    assert broken != expected


def test_no_host_copy_per_block(rng, monkeypatch):
    # every per-block step stays on the device: the device -> host copies are the same for 2 blocks and for 30
    images, texts, t2i = _coco_like(rng)
    calls = []
    cpu = torch.Tensor.cpu
    monkeypatch.setattr(torch.Tensor, "cpu", lambda self, *a, **k: calls.append(1) or cpu(self, *a, **k))
    counts = []
    for chunk in (100, 7):
        calls.clear()
        evaluate_retrieval(torch.from_numpy(images), torch.from_numpy(texts), t2i, chunk_size=chunk, device=ENGINE)
        counts.append(len(calls))
    assert counts[0] == counts[1] and counts[0] <= 8


def test_general_queries_on_the_torch_engine_equal_numpy(rng):
    q, g = _unit(rng.normal(size=(25, 6))), _unit(rng.normal(size=(50, 6)))
    g[30] = g[3]
    relevance = np.stack([np.arange(25), np.arange(25) + 3], axis=1)
    expected = evaluate_queries(q, g, relevance)
    got = evaluate_retrieval(torch.from_numpy(g), torch.from_numpy(q), pairs=relevance[:, ::-1].copy(),
                             directions="image_retrieval", device=ENGINE)
    assert got == {f"image_retrieval_{k}": v for k, v in expected.items()}


def test_block_bytes_on_the_cpu_and_bad_devices():
    assert dev.device_block_bytes("cpu") == 256 << 20
    with pytest.raises(ValueError, match="device must be one of"):
        evaluate_retrieval(np.eye(3), np.eye(3), np.arange(3), device="tpu")


# -- the analysis core on a device --------------------------------------------------------------------------------
def test_gap_report_on_a_torch_device_equals_numpy(rng):
    from workbench import PairedEmbeddings
    from workbench.gap import gap_report

    a, b = rng.normal(size=(300, 16)) + 0.5, rng.normal(size=(300, 16)) - 0.5
    images, captions = rng.normal(size=(40, 8)), rng.normal(size=(120, 8))
    paired = PairedEmbeddings.from_arrays(images, captions, pairs=np.array([(j // 3, j) for j in range(120)]))
    for args, options in (((a, b), {}), ((a, b), {"max_rows": 100}), ((paired,), {})):
        expected = gap_report(*args, probe=False, **options)
        got = gap_report(*args, probe=False, device="cpu", **options)
        assert got.notes == expected.notes
        assert set(got) == set(expected)
        for key, value in expected.items():
            assert got[key] == (None if value is None else pytest.approx(value, rel=1e-10, abs=1e-12)), key
    with pytest.raises(ValueError, match="device"):
        gap_report(a, b, device="nonsense")


def test_probes_on_a_torch_device_reach_scikit_learns_optimum(rng, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    from workbench._logistic import TorchLogistic
    from workbench.probes import linear_probe, modality_probe_accuracy

    # the fitted weights are scikit-learn's optimum of C * log-loss + ||w||^2 / 2 (binary and multinomial)
    x = rng.normal(size=(120, 6))
    for y in ((x[:, 0] + 0.5 * rng.normal(size=120) > 0).astype(int), rng.integers(0, 3, size=120) + (x[:, 1] > 0)):
        ours = TorchLogistic(C=0.7, device="cpu").fit(x, y)
        theirs = LogisticRegression(C=0.7, max_iter=5000, tol=1e-10).fit(x, y)
        coef = ours.weight_.numpy().T
        if coef.shape[0] == 1:
            np.testing.assert_allclose(coef, theirs.coef_, atol=1e-5)
        else:  # softmax weights are defined up to a common shift; scikit-learn's penalty centres them as ours does
            np.testing.assert_allclose(coef, theirs.coef_, atol=1e-5)
        np.testing.assert_array_equal(ours.predict(x), theirs.predict(x))
    a, b = rng.normal(size=(30, 4)) + 0.3, rng.normal(size=(30, 4)) - 0.3
    assert modality_probe_accuracy(a, b, device="cpu") == modality_probe_accuracy(a, b)
    labels = (a[:, 0] > 0).astype(int)
    assert linear_probe(a, labels, device="cpu") == linear_probe(a, labels)
    # the transfer and fusion probes pass the device on to every fit
    from workbench.probes import cross_modal_transfer, fusion_probe

    labels_b = (b[:, 0] > -0.3).astype(int)
    for remove_gap in (False, True):
        assert cross_modal_transfer(a, labels, b, labels_b, remove_gap=remove_gap, folds=3, device="cpu") == \
            cross_modal_transfer(a, labels, b, labels_b, remove_gap=remove_gap, folds=3)
    assert fusion_probe(a, b, labels, folds=3, device="cpu").equals(fusion_probe(a, b, labels, folds=3))
    fits = []
    real = TorchLogistic.fit
    monkeypatch.setattr(TorchLogistic, "fit", lambda self, *args: fits.append(1) or real(self, *args))
    fusion_probe(a, b, labels, folds=3, device="cpu")
    assert len(fits) == 4 * 3  # four inputs x three folds, all in torch


def test_loss_landscape_on_a_torch_device_equals_the_engine(rng):
    from workbench.gap import gap_loss_landscape

    a, b = rng.normal(size=(120, 16)) + 0.8, rng.normal(size=(120, 16)) - 0.8
    b = b + 2.0 * a  # pairs that retrieve each other (R@1 well above chance)
    deltas = [-0.5, 0.0, 0.5, 1.0]
    expected = gap_loss_landscape(a, b, deltas=deltas, batch_size=40)
    got = gap_loss_landscape(a, b, deltas=deltas, batch_size=40, device="cpu")
    assert got.columns == expected.columns
    for column in expected.columns:
        np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=column)
    assert expected["r1_a_to_b"][1] > 0.2
