"""Zero-shot classification against hand computations, scikit-learn's metrics and open_clip's own ensembling."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    recall_score,
    top_k_accuracy_score,
)

from workbench import Embeddings
from workbench.zeroshot import (
    ZeroShotResult,
    build_classifier,
    classify,
    open_clip_text_encoder,
    zero_shot_classify,
)

DIM = 32
_PROJECTION = np.random.default_rng(7).normal(size=(512, DIM))
CLASSES = ["cat", "dog", "owl", "school bus", "tabby cat", "maple tree", "violin", "dolphin"]
TEMPLATES = ["a photo of a {}.", "a blurry drawing of the {}", lambda c: f"itap of my {c}!"]


def toy_encode(prompts: list[str]) -> np.ndarray:
    """A deterministic stand-in text tower: character bigrams hashed into a fixed random projection.

    Row norms grow with the prompt length, so skipping the per-template normalisation would change the result.
    """
    out = np.zeros((len(prompts), DIM))
    for i, prompt in enumerate(prompts):
        codes = [ord(ch) for ch in prompt]
        for a, b in itertools.pairwise(codes):
            out[i] += _PROJECTION[(a * 131 + b) % 512]
    return out


class CountingEncoder:
    def __init__(self, fn=toy_encode) -> None:
        self.fn = fn
        self.calls: list[list[str]] = []

    def __call__(self, prompts: list[str]) -> np.ndarray:
        self.calls.append(list(prompts))
        return self.fn(prompts)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def hand_classifier(names, templates, encode) -> np.ndarray:
    rows = []
    for name in names:
        prompts = [t.format(name) if isinstance(t, str) else t(name) for t in templates]
        rows.append(_unit(_unit(encode(prompts)).mean(axis=0)))
    return np.array(rows)


@pytest.fixture(scope="module")
def clip():
    """A random-init open_clip ViT-B-32 (no weights are downloaded) and its tokenizer."""
    open_clip = pytest.importorskip("open_clip")
    import torch

    torch.manual_seed(0)
    model, _, _ = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    model.eval()
    return open_clip, model, open_clip.get_tokenizer("ViT-B-32")


@pytest.fixture
def toy_data():
    rng = np.random.default_rng(3)
    labels = rng.permutation(np.arange(64) % len(CLASSES))  # every class present, 8 images each
    images = rng.normal(size=(64, DIM)) * rng.uniform(0.5, 3.0, size=(64, 1))
    return images, labels


# -- the classifier ----------------------------------------------------------------------------------------------------
def test_classifier_is_the_renormalised_mean_of_normalised_template_embeddings():
    weights = build_classifier(CLASSES, toy_encode, TEMPLATES)
    expected = hand_classifier(CLASSES, TEMPLATES, toy_encode)
    assert weights.shape == (len(CLASSES), DIM) and weights.dtype == np.float32
    np.testing.assert_allclose(weights, expected, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(weights, axis=1), 1.0, atol=1e-6)
    assert not weights.flags.writeable
    # the per-template normalisation matters here: the unnormalised mean points elsewhere
    unnormalised = np.array([_unit(toy_encode([t.format(c) if isinstance(t, str) else t(c) for t in TEMPLATES])
                                   .mean(axis=0)) for c in CLASSES])
    assert np.abs(unnormalised - expected).max() > 1e-3


def test_one_template_is_the_normalised_prompt_embedding():
    weights = build_classifier(["cat", "dog"], toy_encode, "a photo of a {}.")
    np.testing.assert_allclose(weights, _unit(toy_encode(["a photo of a cat.", "a photo of a dog."])), atol=1e-6)


def test_classes_per_call_batches_prompts_without_changing_the_result():
    results = []
    for per_call, n_calls in ((None, 1), (1, len(CLASSES)), (3, 3), (10, 1)):
        enc = CountingEncoder()
        results.append(build_classifier(CLASSES, enc, TEMPLATES, classes_per_call=per_call))
        assert len(enc.calls) == n_calls
        prompts = [p for call in enc.calls for p in call]
        assert prompts == [t.format(c) if isinstance(t, str) else t(c) for c in CLASSES for t in TEMPLATES]
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_encode_text_may_return_torch_tensors_or_lists():
    torch = pytest.importorskip("torch")
    expected = build_classifier(CLASSES[:3], toy_encode, TEMPLATES)
    as_tensor = build_classifier(CLASSES[:3], lambda p: torch.tensor(toy_encode(p)), TEMPLATES)
    as_lists = build_classifier(CLASSES[:3], lambda p: toy_encode(p).tolist(), TEMPLATES)
    np.testing.assert_array_equal(as_tensor, expected)
    np.testing.assert_array_equal(as_lists, expected)


def test_ensembling_equals_open_clip_build_zero_shot_classifier(clip):
    _, model, tokenizer = clip
    from open_clip.zero_shot_classifier import build_zero_shot_classifier

    names = ["cat", "dog", "school bus"]
    templates = [lambda c: f"a photo of a {c}.", lambda c: f"a drawing of the {c}.", lambda c: f"{c}!"]
    reference = build_zero_shot_classifier(model, tokenizer, names, templates, num_classes_per_batch=2).T.numpy()
    text_tower = open_clip_text_encoder(model, tokenizer)
    seen: dict[str, np.ndarray] = {}

    def encode(prompts: list[str]) -> np.ndarray:  # the text tower, each prompt run once (keeps the test fast)
        new = [p for p in dict.fromkeys(prompts) if p not in seen]
        if new:
            seen.update(zip(new, text_tower(new), strict=True))
        return np.stack([seen[p] for p in prompts])

    ours = build_classifier(names, encode, templates)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    # format strings give the same prompts, hence the same weights
    same = build_classifier(names, encode, ["a photo of a {}.", "a drawing of the {}.", "{}!"])
    np.testing.assert_allclose(same, ours, atol=1e-6)
    # the ensemble is not any single template's embedding
    single = build_classifier(names, encode, templates[:1])
    assert np.abs(single - ours).max() > 1e-3


def test_default_and_named_templates_are_open_clips(clip):
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

    for templates, expected in ((None, OPENAI_IMAGENET_TEMPLATES), ("openai", OPENAI_IMAGENET_TEMPLATES),
                                ("simple", SIMPLE_IMAGENET_TEMPLATES)):
        enc = CountingEncoder()
        zero_shot_classify(np.ones((2, DIM)), ["cat", "dog"], enc, templates)
        assert enc.calls == [[t(c) for c in ("cat", "dog") for t in expected]]
    assert len(OPENAI_IMAGENET_TEMPLATES) == 80


# -- classification and metrics ----------------------------------------------------------------------------------------
def test_predictions_scores_and_metrics_match_a_hand_computation_and_sklearn(toy_data):
    images, labels = toy_data
    r = zero_shot_classify(images, CLASSES, toy_encode, TEMPLATES, labels=labels, ks=(1, 3, 5))
    weights = hand_classifier(CLASSES, TEMPLATES, toy_encode)
    scores = _unit(images) @ weights.T
    np.testing.assert_allclose(r.scores, scores, atol=1e-5)
    np.testing.assert_allclose(r.classifier, weights, atol=1e-6)
    predictions = scores.argmax(axis=1)
    assert np.array_equal(r.predictions, predictions)
    assert r.predicted_names == [CLASSES[i] for i in predictions]
    classes = np.arange(len(CLASSES))
    for k in (1, 3, 5):
        assert r.accuracy[k] == pytest.approx(top_k_accuracy_score(labels, scores, k=k, labels=classes))
        assert r.top_k(k) == r.accuracy[k]
    assert list(r.accuracy) == [1, 3, 5]
    assert r.top1 == pytest.approx(np.mean(predictions == labels))
    assert r.top5 == r.accuracy[5]
    assert np.array_equal(r.confusion, confusion_matrix(labels, predictions, labels=classes))
    assert r.confusion.dtype == np.int64 and r.confusion.sum() == len(images)
    per_class = r.per_class_recall
    assert per_class.columns == ["class", "n", "correct", "recall"]
    assert per_class["class"].to_list() == CLASSES
    assert per_class["n"].to_list() == np.bincount(labels).tolist()
    np.testing.assert_allclose(per_class["recall"].to_numpy(), recall_score(labels, predictions, labels=classes,
                                                                            average=None))
    assert r.balanced_accuracy == pytest.approx(balanced_accuracy_score(labels, predictions))
    ranks = (scores >= scores[np.arange(len(labels)), labels][:, None]).sum(axis=1)
    assert np.array_equal(r.ranks, ranks)


def test_labels_as_names_ints_arrays_or_series_agree(toy_data):
    images, labels = toy_data
    names = [CLASSES[i] for i in labels]
    forms = [labels, labels.tolist(), names, np.array(names), pl.Series(names), pl.Series(labels)]
    results = [zero_shot_classify(images, CLASSES, toy_encode, TEMPLATES, labels=f) for f in forms]
    for r in results:
        assert np.array_equal(r.labels, labels)
        assert r.accuracy == results[0].accuracy
        assert np.array_equal(r.confusion, results[0].confusion)


def test_planted_images_near_their_class_text_are_classified_correctly():
    rng = np.random.default_rng(0)
    weights = hand_classifier(CLASSES, TEMPLATES, toy_encode)
    labels = rng.integers(0, len(CLASSES), size=200)
    images = weights[labels] + rng.normal(scale=0.01, size=(200, DIM))  # noisy copies of the class text embeddings
    r = zero_shot_classify(images, CLASSES, toy_encode, TEMPLATES, labels=labels)
    assert np.array_equal(r.predictions, labels)
    assert r.top1 == 1.0 and r.accuracy == {1: 1.0, 5: 1.0} and r.balanced_accuracy == 1.0
    assert np.array_equal(r.confusion, np.diag(np.bincount(labels, minlength=len(CLASSES))))
    # pure noise does far worse
    noise = zero_shot_classify(rng.normal(size=(200, DIM)), CLASSES, toy_encode, TEMPLATES, labels=labels)
    assert noise.top1 < 0.5


def test_ties_count_against_the_true_class():
    images = [[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]]  # the first two score class 0 and class 1 exactly equally
    r = classify(images, np.eye(2), ["cat", "dog"], labels=[0, 1, 0], ks=(1, 2))
    assert r.scores[0, 0] == r.scores[0, 1]
    assert r.predictions.tolist() == [0, 0, 0]  # argmax: the lowest index among tied maxima
    assert r.ranks.tolist() == [2, 2, 1]  # pessimistic: a tie with the true class is a miss
    assert r.accuracy == {1: pytest.approx(1 / 3), 2: 1.0}
    assert r.per_class_recall["correct"].to_list() == [1, 0]
    assert r.per_class_recall["recall"].to_list() == [0.5, 0.0]
    assert r.balanced_accuracy == 0.25
    assert r.confusion.tolist() == [[2, 0], [1, 0]]  # the confusion matrix counts predictions


def test_absent_classes_have_null_recall_and_do_not_enter_balanced_accuracy():
    r = classify([[1.0, 0.0, 0.0], [0.9, 0.2, 0.0], [0.0, 1.0, 0.1]], np.eye(3), ["a", "b", "c"], labels=[0, 1, 1])
    assert r.per_class_recall["n"].to_list() == [1, 2, 0]
    assert r.per_class_recall["recall"].to_list() == [1.0, 0.5, None]
    assert r.balanced_accuracy == 0.75
    assert r.accuracy[5] == 1.0  # k beyond the number of classes: every true class is within the top k


def test_without_labels_there_are_only_predictions():
    r = zero_shot_classify(np.eye(4, DIM) + 0.1, CLASSES[:3], toy_encode, TEMPLATES)
    assert isinstance(r, ZeroShotResult)
    assert r.scores.shape == (4, 3) and r.predictions.shape == (4,)
    assert r.accuracy == {} and r.top1 is None and r.top5 is None
    assert r.per_class_recall is None and r.confusion is None and r.balanced_accuracy is None
    with pytest.raises(ValueError, match="no labels were given"):
        r.top_k(1)
    assert repr(r) == "ZeroShotResult(n_images=4, n_classes=3)"
    for arr in (r.scores, r.predictions, r.classifier):
        assert not arr.flags.writeable


def test_embeddings_objects_and_unnormalised_rows_give_the_same_result(toy_data):
    images, labels = toy_data
    a = zero_shot_classify(images, CLASSES, toy_encode, TEMPLATES, labels=labels)
    b = zero_shot_classify(Embeddings(images, "image"), CLASSES, toy_encode, TEMPLATES, labels=labels)
    c = zero_shot_classify(_unit(images) * 7.0, CLASSES, toy_encode, TEMPLATES, labels=labels)
    for other in (b, c):
        np.testing.assert_allclose(other.scores, a.scores, atol=1e-6)
        assert np.array_equal(other.predictions, a.predictions)


# -- bad input ---------------------------------------------------------------------------------------------------------
def _run(images=None, classes=None, encode=toy_encode, templates=None, **kw):
    images = np.ones((3, DIM)) if images is None else images
    return zero_shot_classify(images, CLASSES[:2] if classes is None else classes, encode,
                              TEMPLATES if templates is None else templates, **kw)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": np.array([[1.0] * DIM, [np.nan] * DIM, [1.0] * DIM])}, r"image embeddings: 1 of 3 rows .*NaN"),
        ({"images": np.array([[1.0] * DIM, [np.inf] * DIM])}, r"1 of 2 rows contain inf"),
        ({"images": np.zeros((2, DIM))}, r"2 of 2 rows have zero norm"),
        ({"images": np.ones((0, DIM))}, r"image embeddings is empty"),
        ({"images": np.ones((3, 5))}, r"image embeddings have dimension 5 but encode_text returned dimension 32"),
        ({"classes": []}, r"class_names is empty"),
        ({"classes": ["cat", "dog", "cat", "cat"]}, r"class_names must be distinct; 2 of 4 repeat .*\['cat'\]"),
        ({"labels": [0, 1]}, r"labels has 2 entries but there are 3 images"),
        ({"labels": [0, 2, -1]}, r"labels: 2 of 3 are out of range for 2 classes \(valid 0..1; rows 1, 2"),
        ({"labels": ["cat", "bat", "dog"]}, r"labels: 1 of 3 are not in class_names .*'bat'"),
        ({"labels": [[0, 1, 1]]}, r"labels must be one-dimensional"),
        ({"encode": lambda p: toy_encode(p)[:1]}, r"encode_text returned 1 rows for 6 prompts \(2 classes x 3 temp"),
        ({"encode": lambda p: toy_encode(p) * np.nan}, r"encode_text output .*6 of 6 rows contain NaN"),
        ({"encode": lambda p: np.zeros((len(p), DIM))}, r"encode_text output .*zero norm"),
        ({"encode": lambda p: toy_encode(p)[:, 0]}, r"must be a 2-D matrix"),
        ({"templates": ["a photo of a cat."]}, r"template 0 .* has no \{\} placeholder"),
        ({"templates": ["a {} of a {}."]}, r"template 0 .*not a format string"),
        ({"templates": []}, r"templates is empty"),
        ({"templates": "cat photos"}, r"neither a template set"),
        ({"ks": [0]}, r"ks must be positive integers"),
        ({"ks": []}, r"ks is empty"),
        ({"encode": lambda p: np.array([[1.0, 0.0] if q.startswith("x") else [-1.0, 0.0] for q in p]),
          "templates": ["x {}", "y {}"], "images": np.ones((3, 2))}, r"cancel to a zero mean"),
    ],
)
def test_bad_input_raises_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _run(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": "cat"}, r"got the single string 'cat'"),
        ({"classes": ["cat", 3]}, r"class_names must be strings; 1 of 2"),
        ({"labels": [0.0, 1.0, 1.0]}, r"labels must be integer class indices or class-name strings, got dtype float"),
        ({"labels": [True, False, True]}, r"booleans are not class indices"),
        ({"encode": "not callable"}, r"encode_text must be callable"),
        ({"templates": [3]}, r"template 0 must be a format string or a callable"),
        ({"templates": [lambda c: 3]}, r"template 0 returned int for class 'cat'"),
    ],
)
def test_bad_types_raise_type_error(kwargs, message):
    with pytest.raises(TypeError, match=message):
        _run(**kwargs)


def test_cheap_checks_run_before_the_text_encoder():
    enc = CountingEncoder()
    for bad in ({"images": np.full((2, DIM), np.nan)}, {"labels": [5, 0, 0]}, {"ks": [-1]}):
        with pytest.raises(ValueError):
            _run(encode=enc, **bad)
    assert enc.calls == []


def test_classify_checks_its_classifier():
    with pytest.raises(ValueError, match="classifier has 3 rows but there are 2 class names"):
        classify(np.ones((2, 3)), np.eye(3), ["a", "b"])
    with pytest.raises(ValueError, match="image embeddings have dimension 4 but the class weights"):
        classify(np.ones((2, 4)), np.eye(2, 3), ["a", "b"])
    with pytest.raises(ValueError, match=r"classifier: 1 of 2 rows have zero norm"):
        classify(np.ones((2, 3)), [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], ["a", "b"])
