"""Zero-shot classification from text prompts: CLIP's prompt ensembling, top-k accuracy and per-class recall.

A zero-shot classifier needs no training images: each class name is written into prompt templates ("a photo of a
{}."), the prompts are embedded by the text encoder, and the class's weight vector is the renormalised mean of its
L2-normalised prompt embeddings (prompt ensembling, Radford et al., "Learning Transferable Visual Models From
Natural Language Supervision", ICML 2021, Sec. 3.1.4). An image is assigned the class whose weight vector has the
highest cosine with its embedding.

- :func:`build_classifier` -- the (C x D) class weight matrix from class names, templates and any text encoder.
- :func:`classify` -- scores, predictions and, with labels, top-k accuracy, per-class recall, confusion matrix.
- :func:`zero_shot_classify` -- both steps in one call.
- :func:`open_clip_text_encoder` -- wraps an open_clip model and tokenizer as the ``encode_text`` callable.

The ensembling is computed in numpy (float64), so this module imports neither torch nor open_clip; it equals
``open_clip.zero_shot_classifier.build_zero_shot_classifier`` (transposed), which the tests check on a random-init
open_clip ViT-B-32. The default templates are open_clip's own ``OPENAI_IMAGENET_TEMPLATES`` (the 80 prompts of
Radford et al.), imported from ``open_clip.zero_shot_metadata`` only when they are used.

Ties: the rank of an image's true class is 1 + the number of *other* classes scoring at least as high, so a tie
between the true class and another class counts against the true class (pessimistic, as in
:mod:`workbench.retrieval`); no input can overstate accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from workbench._params import InvalidParameterError, check_int
from workbench._validation import as_matrix, describe_rows, unit_rows64
from workbench.retrieval import count_at_least

__all__ = [
    "TEMPLATE_SETS",
    "ZeroShotResult",
    "build_classifier",
    "classify",
    "open_clip_text_encoder",
    "zero_shot_classify",
]

#: A prompt template: a format string with one ``{}`` for the class name, or a callable ``class name -> prompt``.
Template = str | Callable[[str], str]

#: Named template sets, resolved from ``open_clip.zero_shot_metadata`` on use: ``"openai"`` (80 prompts, Radford et
#: al. 2021; the default) and ``"simple"`` (open_clip's 2-prompt set).
TEMPLATE_SETS = {"openai": "OPENAI_IMAGENET_TEMPLATES", "simple": "SIMPLE_IMAGENET_TEMPLATES"}

_SENTINEL = "\x00class\x00"


# -- inputs ------------------------------------------------------------------------------------------------------------
def _class_names(class_names: Any) -> tuple[str, ...]:
    if isinstance(class_names, str):
        raise TypeError(f"class_names must be a sequence of strings, got the single string {class_names!r}")
    try:
        names = tuple(class_names)
    except TypeError:
        raise TypeError(f"class_names must be a sequence of strings, got {type(class_names).__name__}") from None
    if not names:
        raise ValueError("class_names is empty: a classifier needs at least one class")
    bad = [i for i, n in enumerate(names) if not isinstance(n, str)]
    if bad:
        raise TypeError(
            f"class_names must be strings; {len(bad)} of {len(names)} are not (first: position {bad[0]}, "
            f"{type(names[bad[0]]).__name__} {names[bad[0]]!r})"
        )
    n_repeats = len(names) - len(set(names))
    if n_repeats:
        shown = list(dict.fromkeys(n for n in names if names.count(n) > 1))[:5]
        raise ValueError(
            f"class_names must be distinct; {n_repeats} of {len(names)} repeat an earlier name (e.g. {shown})"
        )
    return names


def _resolve_templates(templates: Any) -> list[Callable[[str], str]]:
    """Templates as callables; ``None`` or a set name load open_clip's template tuples."""
    if templates is None:
        templates = "openai"
    if isinstance(templates, str):
        if templates in TEMPLATE_SETS:
            from open_clip import zero_shot_metadata

            templates = getattr(zero_shot_metadata, TEMPLATE_SETS[templates])
        elif "{" in templates:
            templates = [templates]
        else:
            raise ValueError(
                f"templates={templates!r} is neither a template set ({', '.join(TEMPLATE_SETS)}) nor a format "
                "string with a {} for the class name; pass a list of templates"
            )
    try:
        items = list(templates)
    except TypeError:
        raise TypeError(
            f"templates must be a sequence of strings or callables, got {type(templates).__name__}"
        ) from None
    if not items:
        raise ValueError("templates is empty: each class needs at least one prompt")
    out: list[Callable[[str], str]] = []
    for i, t in enumerate(items):
        if isinstance(t, str):
            try:
                probe = t.format(_SENTINEL)
            except (IndexError, KeyError, ValueError) as exc:
                raise ValueError(f"template {i} ({t!r}) is not a format string with one {{}}: {exc!r}") from None
            if _SENTINEL not in probe:
                raise ValueError(f"template {i} ({t!r}) has no {{}} placeholder for the class name")
            out.append(t.format)
        elif callable(t):
            out.append(t)
        else:
            raise TypeError(f"template {i} must be a format string or a callable, got {type(t).__name__}")
    return out


def _labels(labels: Any, names: tuple[str, ...], n_images: int) -> np.ndarray:
    """Class indices (int64) from integer indices or class-name strings."""
    if hasattr(labels, "to_numpy") and not isinstance(labels, np.ndarray):  # polars/pandas series
        labels = labels.to_numpy()
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be one-dimensional (one per image), got shape {arr.shape}")
    if len(arr) != n_images:
        raise ValueError(f"labels has {len(arr)} entries but there are {n_images} images")
    if arr.dtype.kind in "US" or (arr.dtype == object and all(isinstance(x, str) for x in arr)):
        index = {n: i for i, n in enumerate(names)}
        out = np.array([index.get(str(x), -1) for x in arr], dtype=np.int64)
        unknown = np.flatnonzero(out < 0)
        if len(unknown):
            shown = list(dict.fromkeys(str(arr[i]) for i in unknown))[:5]
            raise ValueError(
                f"labels: {len(unknown)} of {len(arr)} are not in class_names ({describe_rows(unknown)}; "
                f"e.g. {shown})"
            )
        return out
    if arr.dtype.kind not in "iu":
        raise TypeError(
            f"labels must be integer class indices or class-name strings, got dtype {arr.dtype}"
            + ("" if arr.dtype.kind != "b" else " (booleans are not class indices)")
        )
    out = arr.astype(np.int64)
    bad = np.flatnonzero((out < 0) | (out >= len(names)))
    if len(bad):
        raise ValueError(
            f"labels: {len(bad)} of {len(out)} are out of range for {len(names)} classes (valid 0..{len(names) - 1}; "
            f"{describe_rows(bad)}, e.g. {int(out[bad[0]])})"
        )
    return out


def _ks(ks: Any) -> tuple[int, ...]:
    if isinstance(ks, str | bytes) or not isinstance(ks, int | np.integer | Iterable):
        raise InvalidParameterError(f"ks must be a positive integer or a sequence of them, got {ks!r}")
    values = (ks,) if isinstance(ks, int | np.integer) else tuple(ks)
    if not values:
        raise InvalidParameterError("ks is empty: name at least one k for top-k accuracy")
    for k in values:
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InvalidParameterError(f"ks must be positive integers, got {k!r}")
    return tuple(sorted({int(k) for k in values}))


def _image_matrix(image_emb: Any) -> np.ndarray:
    from workbench.data import Embeddings

    if isinstance(image_emb, Embeddings):
        image_emb = image_emb.vectors
    return unit_rows64(image_emb, "image embeddings")


# -- the classifier ----------------------------------------------------------------------------------------------------
def build_classifier(
    class_names: Sequence[str],
    encode_text: Callable[[list[str]], Any],
    templates: Sequence[Template] | str | None = None,
    *,
    classes_per_call: int | None = 10,
) -> np.ndarray:
    """Zero-shot class weights by prompt ensembling: one unit row per class (C x D, float32).

    For class ``c`` the prompts are ``[t(c) for t in templates]``; each prompt embedding is L2-normalised, the
    class's mean is taken and renormalised (Radford et al. 2021). This equals
    ``open_clip.zero_shot_classifier.build_zero_shot_classifier(model, tokenizer, class_names, templates).T`` when
    ``encode_text`` is the model's text tower (see :func:`open_clip_text_encoder`); the mean is taken in float64.

    Parameters
    ----------
    class_names : sequence of str
        Distinct class names, in class-index order.
    encode_text : callable
        ``encode_text(list_of_prompts) -> (len(prompts) x D)`` numpy array, torch tensor or nested lists. Prompts
        are passed class by class (all templates of a class together), ``classes_per_call`` classes at a time.
    templates : sequence of str or callable, or str, optional
        Format strings with one ``{}`` (``"a photo of a {}."``) or callables ``name -> prompt`` (open_clip's
        templates are lambdas); may be mixed. A string names a set: ``"openai"`` (open_clip's
        ``OPENAI_IMAGENET_TEMPLATES``, 80 prompts, the default when ``None``) or ``"simple"``
        (``SIMPLE_IMAGENET_TEMPLATES``); any other single string with ``{}`` is one template.
    classes_per_call : int or None, default 10
        Classes whose prompts go into one ``encode_text`` call (as open_clip's ``num_classes_per_batch``); ``None``
        sends all prompts at once.

    Returns
    -------
    numpy.ndarray
        Read-only float32 array (C x D), row ``c`` the unit weight vector of class ``c``.

    Raises
    ------
    ValueError
        Empty or repeated class names, a template without ``{}``, ``encode_text`` returning the wrong number of
        rows, NaN/inf or zero-norm rows, different dimensions between calls, or templates whose normalised
        embeddings cancel to a zero mean.

    Examples
    --------
    >>> import numpy as np
    >>> table = {"a cat.": [1.0, 0.0], "the cat!": [0.0, 3.0], "a dog.": [0.0, 1.0], "the dog!": [0.0, 2.0]}
    >>> encode = lambda prompts: np.array([table[p] for p in prompts])
    >>> build_classifier(["cat", "dog"], encode, ["a {}.", "the {}!"]).round(4)  # cat: mean of (1,0) and (0,1)
    array([[0.7071, 0.7071],
           [0.    , 1.    ]], dtype=float32)
    """
    names = _class_names(class_names)
    prompt_fns = _resolve_templates(templates)
    if not callable(encode_text):
        raise TypeError(
            f"encode_text must be callable (list of prompts -> N x D array), got {type(encode_text).__name__}"
        )
    classes_per_call = check_int(classes_per_call, "classes_per_call", allow_none=True) or len(names)
    n_templates = len(prompt_fns)
    weights: list[np.ndarray] = []
    dim: int | None = None
    for start in range(0, len(names), classes_per_call):
        batch = names[start : start + classes_per_call]
        prompts = []
        for name in batch:
            for i, fn in enumerate(prompt_fns):
                prompt = fn(name)
                if not isinstance(prompt, str):
                    raise TypeError(f"template {i} returned {type(prompt).__name__} for class {name!r}, not a string")
                prompts.append(prompt)
        what = f"encode_text output for classes {start}..{start + len(batch) - 1}"
        emb = as_matrix(encode_text(prompts), what)
        if len(emb) != len(prompts):
            raise ValueError(
                f"{what}: encode_text returned {len(emb)} rows for {len(prompts)} prompts "
                f"({len(batch)} classes x {n_templates} templates); it must return one row per prompt"
            )
        if dim is not None and emb.shape[1] != dim:
            raise ValueError(f"{what}: encode_text returned dimension {emb.shape[1]}, earlier calls {dim}")
        dim = emb.shape[1]
        emb = unit_rows64(emb, what)
        mean = emb.reshape(len(batch), n_templates, dim).mean(axis=1)
        norms = np.linalg.norm(mean, axis=1)
        cancel = np.flatnonzero(norms < 1e-12)
        if len(cancel):
            raise ValueError(
                f"{len(cancel)} classes have normalised template embeddings that cancel to a zero mean "
                f"(e.g. {batch[cancel[0]]!r}); their direction is undefined"
            )
        weights.append(mean / norms[:, None])
    out = np.ascontiguousarray(np.concatenate(weights), dtype=np.float32)
    out.flags.writeable = False
    return out


def open_clip_text_encoder(
    model: Any, tokenizer: Any, *, device: Any = None, batch_size: int = 256
) -> Callable[[list[str]], np.ndarray]:
    """An ``encode_text`` callable for an open_clip model: tokenise, ``model.encode_text``, float32 numpy.

    Parameters
    ----------
    model : open_clip model
        Anything with ``encode_text(tokens)``; put it in ``eval()`` mode yourself.
    tokenizer : callable
        ``open_clip.get_tokenizer(model_name)``.
    device : torch device or str, optional
        Where tokens go; by default the device of the model's first parameter (CPU if it has none).
    batch_size : int, default 256
        Prompts per forward pass (under ``torch.no_grad``).

    Examples
    --------
    >>> class Toy:  # stands in for a model and tokenizer: a prompt's "embedding" is its length
    ...     def encode_text(self, tokens):
    ...         return tokens
    >>> import torch
    >>> tokenize = lambda texts: torch.tensor([[float(len(t)), 1.0] for t in texts])
    >>> open_clip_text_encoder(Toy(), tokenize, device="cpu")(["a cat", "a dog."])
    array([[5., 1.],
           [6., 1.]], dtype=float32)
    """
    import torch

    if device is None:
        first = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
        device = first.device if first is not None else "cpu"
    batch_size = check_int(batch_size, "batch_size")

    def encode_text(prompts: list[str]) -> np.ndarray:
        chunks = []
        with torch.no_grad():
            for s in range(0, len(prompts), batch_size):
                tokens = tokenizer(list(prompts[s : s + batch_size])).to(device)
                chunks.append(model.encode_text(tokens).float().cpu().numpy())
        return np.concatenate(chunks)

    return encode_text


# -- classification and its metrics ------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False, eq=False)
class ZeroShotResult:
    """Zero-shot predictions and, when labels were given, their accuracy.

    Attributes
    ----------
    class_names : tuple of str
        Class ``c`` is ``class_names[c]``.
    classifier : ndarray (C x D), float32
        Unit class weight rows.
    scores : ndarray (N x C), float32
        Cosine of each (L2-normalised) image with each class weight.
    predictions : ndarray (N,), int64
        ``scores.argmax(axis=1)``: the top-1 class; among exactly tied maxima the lowest class index.
    labels : ndarray (N,), int64, or None
        True class indices (class-name labels are converted).
    ranks : ndarray (N,), int64, or None
        Rank of the true class: 1 + the number of other classes scoring at least as high (ties count against it).
    accuracy : dict of int to float
        Top-k accuracy, the fraction of images with ``rank <= k``, for each requested k (empty without labels). A k
        at or above the number of classes gives 1.0.
    per_class_recall : polars.DataFrame or None
        One row per class: ``class``, ``n`` (images of that class), ``correct`` (rank 1), ``recall`` (correct / n;
        null when n is 0).
    confusion : ndarray (C x C), int64, or None
        Counts of (true class, predicted class): rows are true classes, columns ``predictions``.
    balanced_accuracy : float or None
        Mean recall over the classes present in the labels.

    With exact ties between the true class and another, ``predictions`` (and so ``confusion``) may name the true
    class while ``ranks``, ``accuracy``, ``per_class_recall`` and ``balanced_accuracy`` count a miss; without ties
    they agree (``top1`` equals the confusion trace over N).
    """

    class_names: tuple[str, ...]
    classifier: np.ndarray
    scores: np.ndarray
    predictions: np.ndarray
    labels: np.ndarray | None = None
    ranks: np.ndarray | None = None
    accuracy: dict[int, float] = field(default_factory=dict)
    per_class_recall: pl.DataFrame | None = None
    confusion: np.ndarray | None = None
    balanced_accuracy: float | None = None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def predicted_names(self) -> list[str]:
        """The predicted class name of every image."""
        return [self.class_names[i] for i in self.predictions]

    def top_k(self, k: int) -> float:
        """Top-k accuracy for any k (pessimistic ties), whether or not it was in ``ks``; needs labels."""
        if self.ranks is None:
            raise ValueError("no labels were given: accuracy is undefined (pass labels= to zero_shot_classify)")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise InvalidParameterError(f"k must be a positive integer, got {k!r}")
        return float(np.mean(self.ranks <= k))

    @property
    def top1(self) -> float | None:
        """Top-1 accuracy (None without labels)."""
        return None if self.ranks is None else self.top_k(1)

    @property
    def top5(self) -> float | None:
        """Top-5 accuracy (None without labels; 1.0 with five classes or fewer)."""
        return None if self.ranks is None else self.top_k(5)

    def __repr__(self) -> str:
        n, c = self.scores.shape
        parts = [f"n_images={n}", f"n_classes={c}"]
        parts += [f"top{k}={v:.4f}" for k, v in self.accuracy.items()]
        if self.balanced_accuracy is not None:
            parts.append(f"balanced_accuracy={self.balanced_accuracy:.4f}")
        return f"ZeroShotResult({', '.join(parts)})"


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def classify(
    image_emb: Any,
    classifier: Any,
    class_names: Sequence[str],
    labels: Any = None,
    ks: Sequence[int] = (1, 5),
    *,
    chunk_size: int = 4096,
) -> ZeroShotResult:
    """Classify images with given class weights (e.g. from :func:`build_classifier`, or a corrected copy).

    Scores are cosines: ``normalize(image_emb) @ normalize(classifier).T`` in float32.

    Parameters
    ----------
    image_emb : array-like (N x D) or Embeddings
        Image embeddings (any norm; rows are L2-normalised).
    classifier : array-like (C x D)
        One weight row per class (rows are L2-normalised).
    class_names : sequence of str
        C distinct names.
    labels : sequence of int or of str, optional
        True class of every image, as indices ``0..C-1`` or as class names.
    ks : sequence of int, default (1, 5)
        The k of the top-k accuracies in ``result.accuracy``.
    chunk_size : int, default 4096
        Images ranked at a time (memory: chunk_size x C booleans).

    Returns
    -------
    ZeroShotResult

    Examples
    --------
    >>> import numpy as np
    >>> r = classify([[1.0, 0.1], [0.2, 1.0], [1.0, 1.0]], np.eye(2), ["cat", "dog"], labels=[0, 1, 1], ks=[1])
    >>> r.predictions.tolist(), r.accuracy   # the third image ties: argmax says cat, the tie counts as a miss
    ([0, 1, 0], {1: 0.6666666666666666})
    """
    names = _class_names(class_names)
    images = _image_matrix(image_emb)
    weights = unit_rows64(classifier, "classifier")
    if len(weights) != len(names):
        raise ValueError(f"classifier has {len(weights)} rows but there are {len(names)} class names")
    if weights.shape[1] != images.shape[1]:
        raise ValueError(
            f"image embeddings have dimension {images.shape[1]} but the class weights (text embeddings) have "
            f"{weights.shape[1]}; both must come from one model's shared space"
        )
    chunk_size = check_int(chunk_size, "chunk_size")
    k_values = _ks(ks)
    y = None if labels is None else _labels(labels, names, len(images))
    w32 = np.ascontiguousarray(weights, dtype=np.float32)
    scores = images.astype(np.float32) @ w32.T
    predictions = scores.argmax(axis=1).astype(np.int64)
    result: dict[str, Any] = {
        "class_names": names,
        "classifier": _readonly(w32),
        "scores": _readonly(scores),
        "predictions": _readonly(predictions),
    }
    if y is not None:
        c = len(names)
        ranks = np.empty(len(y), dtype=np.int64)
        for s in range(0, len(y), chunk_size):
            block = scores[s : s + chunk_size]
            true = block[np.arange(len(block)), y[s : s + chunk_size]]
            ranks[s : s + chunk_size] = count_at_least(block, true[:, None])[:, 0]  # the true class counts once
        n = np.bincount(y, minlength=c)
        correct = np.bincount(y[ranks == 1], minlength=c)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(n > 0, correct / np.maximum(n, 1), np.nan)
        present = n > 0
        result.update(
            labels=_readonly(y),
            ranks=_readonly(ranks),
            accuracy={k: float(np.mean(ranks <= k)) for k in k_values},
            per_class_recall=pl.DataFrame({
                "class": list(names),
                "n": n.astype(np.int64),
                "correct": correct.astype(np.int64),
                "recall": pl.Series(recall, dtype=pl.Float64, nan_to_null=True),
            }),
            confusion=_readonly(np.bincount(y * c + predictions, minlength=c * c).reshape(c, c).astype(np.int64)),
            balanced_accuracy=float(recall[present].mean()),
        )
    return ZeroShotResult(**result)


def zero_shot_classify(
    image_emb: Any,
    class_names: Sequence[str],
    encode_text: Callable[[list[str]], Any],
    templates: Sequence[Template] | str | None = None,
    labels: Any = None,
    ks: Sequence[int] = (1, 5),
    *,
    classes_per_call: int | None = 10,
) -> ZeroShotResult:
    """Zero-shot classification: prompt-ensembled class weights (:func:`build_classifier`), then :func:`classify`.

    Parameters
    ----------
    image_emb : array-like (N x D), torch tensor or Embeddings
        Image embeddings from the same model as ``encode_text`` (rows are L2-normalised).
    class_names : sequence of str
        C distinct class names, in class-index order.
    encode_text : callable
        ``list of prompts -> (len(prompts) x D)`` array, e.g. :func:`open_clip_text_encoder` or a test stub.
    templates : sequence of str or callable, or str, optional
        Prompt templates (``"a photo of a {}."`` or ``lambda c: ...``); default open_clip's
        ``OPENAI_IMAGENET_TEMPLATES`` (the 80 ImageNet prompts of Radford et al. 2021); ``"simple"`` for open_clip's
        two-prompt set.
    labels : sequence of int or of str, optional
        True classes (indices ``0..C-1`` or class names); enables accuracy, per-class recall and the confusion matrix.
    ks : sequence of int, default (1, 5)
        Top-k accuracies to report. Ties count against the true class (see :class:`ZeroShotResult`).
    classes_per_call : int or None, default 10
        Classes per ``encode_text`` call.

    Returns
    -------
    ZeroShotResult
        ``predictions``, ``scores``, ``classifier``; with labels also ``accuracy``/``top1``/``top5``,
        ``per_class_recall``, ``confusion``, ``balanced_accuracy``.

    Raises
    ------
    ValueError
        NaN/inf or zero-norm image rows, image and text dimensions that differ, empty or repeated class names,
        labels of the wrong length, out of range or naming unknown classes, ``encode_text`` returning the wrong
        number of rows.

    Examples
    --------
    >>> import numpy as np
    >>> vectors = {"cat": [1.0, 0.0, 0.0], "dog": [0.0, 1.0, 0.0], "owl": [0.0, 0.0, 1.0]}
    >>> def encode_text(prompts):  # a stand-in text tower: the class word decides, the template adds a tilt
    ...     return np.array([np.add(vectors[p.split()[-1].strip(".")], 0.1 * len(p)) for p in prompts])
    >>> images = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.3], [0.0, 0.6, 0.7], [0.5, 0.4, 0.1]])
    >>> r = zero_shot_classify(images, ["cat", "dog", "owl"], encode_text, ["a photo of a {}.", "a drawing of a {}."],
    ...                        labels=["cat", "dog", "owl", "dog"], ks=(1, 2))
    >>> r
    ZeroShotResult(n_images=4, n_classes=3, top1=0.7500, top2=1.0000, balanced_accuracy=0.8333)
    >>> r.predicted_names
    ['cat', 'dog', 'owl', 'cat']
    >>> r.confusion.tolist()
    [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    """
    names = _class_names(class_names)
    images = _image_matrix(image_emb)  # everything cheap is checked before the text encoder runs
    _ks(ks)
    if labels is not None:
        _labels(labels, names, len(images))
    weights = build_classifier(names, encode_text, templates, classes_per_call=classes_per_call)
    if images.shape[1] != weights.shape[1]:
        raise ValueError(
            f"image embeddings have dimension {images.shape[1]} but encode_text returned dimension "
            f"{weights.shape[1]}; both must come from one model's shared space"
        )
    return classify(images, weights, names, labels, ks)
