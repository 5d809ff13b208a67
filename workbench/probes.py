"""Linear probes: what a logistic-regression classifier can read from embeddings.

- :func:`linear_probe` -- cross-validated accuracy of a label probe on one modality.
- :func:`modality_probe_accuracy` -- how well a linear classifier tells one modality from the other. The modality
  gap (Liang et al., NeurIPS 2022) puts CLIP's images and texts in separate regions of the shared space, so the
  answer is close to 1.0; Schrodi et al. (ICLR 2025) find that a few embedding dimensions drive this separation.
- :func:`cross_modal_transfer` -- train a label probe on one modality and test it on the other, with or without
  removing the gap first (Zhang et al., "Diagnosing and Rectifying Vision Models using Language", ICLR 2023).
- :func:`fusion_probe` -- label-probe accuracy from each modality alone and from both fused.

Every probe L2-normalises rows (in float64), then fits scikit-learn's ``LogisticRegression`` (lbfgs, L2 penalty,
inverse strength ``C``). Cross-validation uses ``StratifiedKFold(n_splits=folds, shuffle=True,
random_state=seed)``, so results are reproducible and equal to ``cross_val_score`` with that splitter. Too little
data for cross-validation (fewer than 10 rows, fewer than 2 classes, a class with fewer rows than ``folds``) gives
an accuracy of ``None`` with the reason, not an exception; bad input (NaN/inf, zero-norm rows, mismatched shapes,
labels that are not 1-D or of the wrong length) raises a ``ValueError`` naming the problem.

scikit-learn is imported on first use, so ``import workbench.probes`` stays light. The fits run with BLAS limited
to one thread (threadpoolctl): a probe is many small solves, which a multi-threaded BLAS only slows down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench._params import InvalidParameterError, check_int, check_number, check_seed
from workbench._validation import describe_rows, unit_rows64
from workbench.data import Embeddings, PairedEmbeddings

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

__all__ = [
    "MIN_ROWS",
    "ProbeResult",
    "TransferResult",
    "cross_modal_transfer",
    "fusion_probe",
    "linear_probe",
    "modality_probe_accuracy",
]

#: Fewest rows (for the modality probe: pairs) for which a cross-validated accuracy is reported.
MIN_ROWS = 10

#: Norm below which a centred unit row counts as zero (it lies at its modality's mean, up to float64 rounding).
CENTRED_ZERO_NORM = 1e-9

#: Default iteration cap of the lbfgs solver: high enough that unit-norm embeddings converge without warnings.
DEFAULT_MAX_ITER = 5000


@dataclass(frozen=True)
class ProbeResult:
    """A cross-validated probe accuracy.

    Attributes
    ----------
    accuracy : float or None
        Mean accuracy over the folds; ``None`` when there was too little data (see ``reason``).
    std : float or None
        Population standard deviation (``ddof=0``, as ``numpy.std``) of the fold accuracies; ``None`` with
        ``accuracy``.
    folds : int
        The number of cross-validation folds asked for.
    n : int
        The number of rows classified.
    reason : str or None
        Why ``accuracy`` is ``None``; ``None`` when an accuracy was computed.
    """

    accuracy: float | None
    std: float | None
    folds: int
    n: int
    reason: str | None = None


@dataclass(frozen=True)
class TransferResult:
    """Accuracies of label probes trained on one modality and tested on the other (:func:`cross_modal_transfer`).

    Attributes
    ----------
    a_to_b : float
        Accuracy on every row of b of a probe trained on every row of a.
    b_to_a : float
        Accuracy on every row of a of a probe trained on every row of b.
    a_to_a, b_to_b : float or None
        In-modality references: cross-validated accuracy within a (within b), as :func:`linear_probe` computes it
        on the same features; ``None`` when that modality has too little data for cross-validation.
    remove_gap : bool
        Whether each modality was centred on its own mean (the gap removed) before probing.
    n_a, n_b : int
        Rows of a and of b.
    """

    a_to_b: float
    b_to_a: float
    a_to_a: float | None
    b_to_b: float | None
    remove_gap: bool
    n_a: int
    n_b: int


# -- input handling ------------------------------------------------------------------------------------------------
def _unit_rows(x: Any, what: str) -> np.ndarray:
    """A validated float64 matrix with unit rows, from numpy, torch, lists or an :class:`Embeddings`."""
    if isinstance(x, PairedEmbeddings):
        raise TypeError(
            f"{what} must be one modality's embeddings; got a PairedEmbeddings (pass paired.a, paired.b or the "
            "arrays of paired.matched())"
        )
    if isinstance(x, Embeddings):
        x = x.vectors
    return unit_rows64(x, what)


def _label_values(labels: Any, n: int, what: str) -> list[Any]:
    """Labels as a list of hashable Python values, one per row; raise naming the problem."""
    if labels is None or isinstance(labels, str | bytes):
        raise TypeError(f"{what} must be a 1-D array-like with one label per row; got {type(labels).__name__}")
    if hasattr(labels, "detach") and hasattr(labels, "cpu"):
        labels = labels.detach().cpu().numpy()
    if hasattr(labels, "__array__"):  # numpy, polars, pandas
        arr = np.asarray(labels)
        if arr.ndim != 1:
            raise ValueError(f"{what} must be 1-D (one label per row); got shape {arr.shape}")
        values = arr.tolist()
    else:
        try:
            values = list(labels)
        except TypeError:
            raise TypeError(f"{what} must be a 1-D array-like; got {type(labels).__name__}") from None
    for i, v in enumerate(values):
        if isinstance(v, list | np.ndarray):
            raise ValueError(f"{what} must be 1-D (one label per row); element {i} is a {type(v).__name__}")
        if v is None or (isinstance(v, float) and v != v):
            missing = sum(1 for u in values if u is None or (isinstance(u, float) and u != u))
            raise ValueError(f"{what}: {missing} of {len(values)} labels are missing (None or NaN), e.g. element {i}")
        try:
            hash(v)
        except TypeError:
            raise TypeError(f"{what} must be hashable; element {i} is a {type(v).__name__}") from None
    if len(values) != n:
        raise ValueError(f"{what} has {len(values)} labels but there are {n} rows")
    return values


def _encode(*label_lists: list[Any]) -> tuple[list[np.ndarray], list[Any]]:
    """Integer codes (shared across the lists, in order of first appearance) and the classes they stand for."""
    index: dict[Any, int] = {}
    codes = [np.array([index.setdefault(v, len(index)) for v in values], dtype=np.int64) for values in label_lists]
    return codes, list(index)


def _check_options(folds: Any, seed: Any, C: Any, max_iter: Any) -> None:
    # folds keeps its own wording ("folds must be at least 2"; check_int would say "an integer >= 2")
    if isinstance(folds, bool) or not isinstance(folds, int | np.integer):
        raise InvalidParameterError(f"folds must be an integer, got {type(folds).__name__}")
    if folds < 2:
        raise InvalidParameterError(f"folds must be at least 2, got {folds}")
    check_seed(seed)
    check_number(C, "C", low=0.0, inclusive=False)
    check_int(max_iter, "max_iter")


# -- the probes ----------------------------------------------------------------------------------------------------
def _too_little(y: np.ndarray, classes: list[Any], folds: int) -> str | None:
    """Why a stratified ``folds``-fold cross-validation of labels ``y`` is not possible, or None."""
    if len(y) < MIN_ROWS:
        return f"too little data: {len(y)} rows, at least {MIN_ROWS} are needed"
    counts = np.bincount(y, minlength=len(classes))
    present = np.flatnonzero(counts)
    if len(present) < 2:
        return f"only one class ({classes[present[0]]!r}); a probe needs at least 2"
    smallest = present[np.argmin(counts[present])]
    if counts[smallest] < folds:
        return (
            f"class {classes[smallest]!r} has {counts[smallest]} rows, fewer than folds={folds}; "
            "use fewer folds or more data"
        )
    return None


def _splits(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _one_blas_thread() -> Any:
    """A context in which BLAS runs single-threaded (threadpoolctl, a scikit-learn dependency).

    A probe is many small lbfgs solves; a multi-threaded BLAS spends most of their time synchronising its threads,
    which on a busy machine made them several times slower without changing a single result.
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:  # one controller per process: listing the loaded libraries costs about 5 ms a time
        import sklearn.linear_model  # noqa: F401  (its BLAS libraries are loaded before the controller lists them)
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


_BLAS_CONTROLLER: Any = None


def _fit(x: np.ndarray, y: np.ndarray, C: float, max_iter: int, device: Any = None) -> Any:
    if device is not None:  # the same objective in torch on the device (workbench._logistic)
        from workbench._logistic import TorchLogistic

        return TorchLogistic(C=C, max_iter=max_iter, device=device).fit(x, y)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=max_iter).fit(x, y)


def _cv(x: np.ndarray, y: np.ndarray, splits: list, folds: int, C: float, max_iter: int,
        device: Any = None) -> ProbeResult:
    with _one_blas_thread():
        scores = np.array([np.mean(_fit(x[tr], y[tr], C, max_iter, device).predict(x[te]) == y[te])
                           for tr, te in splits])
    return ProbeResult(float(scores.mean()), float(scores.std()), folds, len(y))


def _probe(x: np.ndarray, y: np.ndarray, classes: list[Any], folds: int, seed: int, C: float,
           max_iter: int, device: Any = None) -> ProbeResult:
    reason = _too_little(y, classes, folds)
    if reason is not None:
        return ProbeResult(None, None, folds, len(y), reason)
    return _cv(x, y, _splits(y, folds, seed), folds, C, max_iter, device)


def linear_probe(
    x: Any,
    labels: Any,
    *,
    folds: int = 5,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = DEFAULT_MAX_ITER,
    device: Any = None,
) -> ProbeResult:
    """Cross-validated accuracy of a logistic-regression probe predicting ``labels`` from ``x``.

    The linear-probe evaluation of representations (Alain & Bengio, "Understanding intermediate layers using
    linear classifier probes", 2016; used for CLIP by Radford et al., ICML 2021). Rows are L2-normalised, then
    a ``LogisticRegression(C=C, max_iter=max_iter)`` is scored on each fold of
    ``StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)``.

    Parameters
    ----------
    x : array-like of shape (N, D), or Embeddings
        Embeddings (numpy, torch, lists); rows are L2-normalised first.
    labels : 1-D array-like of length N
        Any hashable values (ints, strings, ...); None or NaN labels are rejected.
    folds : int, default 5
        Number of stratified cross-validation folds (at least 2).
    seed : int, default 0
        Seed of the fold shuffle.
    C : float, default 1.0
        Inverse L2-regularisation strength of the logistic regression.
    max_iter : int, default 5000
        Iteration cap of the lbfgs solver. scikit-learn warns (``ConvergenceWarning``) if it is reached.
    device : None, "cpu", "cuda" or a torch.device, default None
        None fits scikit-learn's solver; a device fits the same objective with torch L-BFGS there (float64; the
        predictions agree but for points at the decision boundary, see ``workbench._logistic``).

    Returns
    -------
    ProbeResult
        Mean and standard deviation of the fold accuracies. With fewer than 10 rows, fewer than 2 classes or a
        class with fewer than ``folds`` rows, ``accuracy`` and ``std`` are ``None`` and ``reason`` says why; no
        exception is raised.

    Raises
    ------
    ValueError
        For NaN or inf values, zero-norm rows, labels that are not 1-D, missing, or not one per row.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = np.vstack([rng.normal(size=(20, 8)) + 5 * np.eye(8)[0], rng.normal(size=(20, 8)) - 5 * np.eye(8)[0]])
    >>> linear_probe(x, ["cat"] * 20 + ["dog"] * 20)
    ProbeResult(accuracy=1.0, std=0.0, folds=5, n=40, reason=None)
    >>> linear_probe(x[:6], [0, 1] * 3).reason
    'too little data: 6 rows, at least 10 are needed'
    """
    _check_options(folds, seed, C, max_iter)
    ux = _unit_rows(x, "x")
    (y,), classes = _encode(_label_values(labels, len(ux), "labels"))
    return _probe(ux, y, classes, int(folds), int(seed), float(C), int(max_iter), device)


def modality_probe_accuracy(
    a: Any,
    b: Any | None = None,
    *,
    folds: int = 5,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = DEFAULT_MAX_ITER,
    device: Any = None,
) -> ProbeResult:
    """How well a linear classifier tells modality a from modality b (cross-validated accuracy).

    The rows of a (label 0) and of b (label 1) are stacked and probed as in :func:`linear_probe`. With a modality
    gap the two modalities are linearly separable: Liang et al. ("Mind the Gap", NeurIPS 2022) show CLIP's images
    and texts in separate cones, and Schrodi et al. ("Two Effects, One Trigger", ICLR 2025) trace the gap to a few
    embedding dimensions. CLIP on MSCOCO scores close to 1.0; two samples of one distribution score about 0.5.

    Parameters
    ----------
    a : array-like of shape (N_a, D), Embeddings, or PairedEmbeddings
        The first modality, or a ``PairedEmbeddings`` holding both (then ``b`` is omitted and every paired item
        counts once, via :meth:`~workbench.data.PairedEmbeddings.paired_rows`: an image with five captions is one
        image row, its captions five text rows).
    b : array-like of shape (N_b, D), or Embeddings
        The second modality; the row count may differ from a's, the dimension must not.
    folds, seed, C, max_iter, device
        As in :func:`linear_probe`.

    Returns
    -------
    ProbeResult
        ``n`` is ``N_a + N_b``. Accuracy is ``None`` (with the reason) below 10 pairs, i.e. when a
        ``PairedEmbeddings`` has fewer than 10 pairs or either array has fewer than 10 rows, or when a modality has
        fewer rows than ``folds``. When the row counts differ, compare with the majority rate
        ``max(N_a, N_b) / (N_a + N_b)``, not 0.5.

    Raises
    ------
    ValueError
        For NaN or inf values, zero-norm rows or different dimensions.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> images = rng.normal(size=(30, 16)) + 3 * np.eye(16)[0]
    >>> texts = rng.normal(size=(30, 16)) - 3 * np.eye(16)[0]
    >>> modality_probe_accuracy(images, texts).accuracy
    1.0
    >>> modality_probe_accuracy(images[:5], texts[:5]).reason
    'too little data: 5 pairs, at least 10 are needed'
    """
    _check_options(folds, seed, C, max_iter)
    if isinstance(a, PairedEmbeddings):
        if b is not None:
            raise TypeError("pass either a PairedEmbeddings or two arrays a, b, not both")
        rows_a, rows_b = a.paired_rows()
        ua, ub = _unit_rows(a.a.vectors[rows_a], "a"), _unit_rows(a.b.vectors[rows_b], "b")
        n_pairs, names = a.n_pairs, [a.a.modality, a.b.modality]
    else:
        if b is None:
            raise TypeError("two arrays (a, b) or one PairedEmbeddings are needed")
        ua, ub = _unit_rows(a, "a"), _unit_rows(b, "b")
        n_pairs, names = min(len(ua), len(ub)), ["a", "b"]
    if ua.shape[1] != ub.shape[1]:
        raise ValueError(f"a and b must have the same dimension, got {ua.shape[1]} and {ub.shape[1]}")
    n = len(ua) + len(ub)
    if n_pairs < MIN_ROWS:
        reason = f"too little data: {n_pairs} pairs, at least {MIN_ROWS} are needed"
        return ProbeResult(None, None, int(folds), n, reason)
    y = np.concatenate([np.zeros(len(ua), dtype=np.int64), np.ones(len(ub), dtype=np.int64)])
    return _probe(np.vstack([ua, ub]), y, names, int(folds), int(seed), float(C), int(max_iter), device)


def _centred(u: np.ndarray, what: str) -> np.ndarray:
    """Unit rows centred on their mean and normalised again; a row at the mean (norm <= ``CENTRED_ZERO_NORM``, not
    only exactly 0 as ``unit_rows64`` checks: centring leaves rounding residue) raises."""
    centred = u - u.mean(axis=0)
    norms = np.linalg.norm(centred, axis=1)
    zero = np.flatnonzero(norms <= CENTRED_ZERO_NORM)
    if len(zero):
        raise ValueError(
            f"{what} after centring on its mean: {len(zero)} of {len(centred)} rows have zero norm "
            f"({describe_rows(zero)}); they have no direction and cannot be L2-normalised (a row equal to its "
            "modality's mean; with one row, remove_gap is undefined)"
        )
    return centred / norms[:, None]


def cross_modal_transfer(
    a: Any,
    labels_a: Any,
    b: Any,
    labels_b: Any,
    *,
    remove_gap: bool = False,
    folds: int = 5,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = DEFAULT_MAX_ITER,
    device: Any = None,
) -> TransferResult:
    """Train a label probe on one modality and test it on the other, in both directions.

    Zhang et al., "Diagnosing and Rectifying Vision Models using Language", ICLR 2023: because of the modality
    gap, a classifier trained on image embeddings does not transfer to text embeddings (or back) as it is; once
    each modality is centred on its own mean, which removes the gap, it does.

    Rows are L2-normalised; with ``remove_gap=True`` each modality's mean (of its unit rows) is subtracted and the
    rows are normalised again. Then ``LogisticRegression(C=C, max_iter=max_iter)`` is fitted on all of a and scored
    on all of b, and the reverse. The in-modality references ``a_to_a`` and ``b_to_b`` are cross-validated on the
    same features as in :func:`linear_probe` (``folds``, ``seed``).

    Parameters
    ----------
    a, b : array-like of shapes (N_a, D) and (N_b, D), or Embeddings
        The two modalities (numpy, torch, lists); the dimensions must agree, the row counts need not.
    labels_a, labels_b : 1-D array-likes of lengths N_a and N_b
        Hashable labels; equal values mean the same class in both modalities. A test row whose class the other
        modality lacks counts as an error.
    remove_gap : bool, default False
        Centre each modality on its own mean (and re-normalise) before probing.
    folds, seed, C, max_iter, device
        As in :func:`linear_probe` (``device``: fit every probe with torch L-BFGS there).

    Returns
    -------
    TransferResult
        ``a_to_b`` and ``b_to_a`` accuracies, and the in-modality references ``a_to_a``, ``b_to_b`` (``None``
        when a modality has too little data for cross-validation).

    Raises
    ------
    ValueError
        For NaN or inf values, zero-norm rows, different dimensions, labels of the wrong shape or length, a
        modality with fewer than 2 classes (nothing to train), or label sets with no class in common.

    Examples
    --------
    >>> import numpy as np
    >>> rng, e, y = np.random.default_rng(0), np.eye(6), np.arange(40) % 2   # two classes, along e0 and e1
    >>> images = 3 * e[y] + 0.5 * rng.normal(size=(40, 6)) + 10 * (e[2] + e[0])  # each modality offset by
    >>> texts = 3 * e[y] + 0.5 * rng.normal(size=(40, 6)) + 10 * (e[3] + e[1])   # its own large gap vector
    >>> cross_modal_transfer(images, y, texts, y)
    TransferResult(a_to_b=0.5, b_to_a=0.5, a_to_a=1.0, b_to_b=1.0, remove_gap=False, n_a=40, n_b=40)
    >>> cross_modal_transfer(images, y, texts, y, remove_gap=True).a_to_b
    1.0
    """
    _check_options(folds, seed, C, max_iter)
    ua, ub = _unit_rows(a, "a"), _unit_rows(b, "b")
    if ua.shape[1] != ub.shape[1]:
        raise ValueError(f"a and b must have the same dimension, got {ua.shape[1]} and {ub.shape[1]}")
    (ya, yb), classes = _encode(
        _label_values(labels_a, len(ua), "labels_a"), _label_values(labels_b, len(ub), "labels_b")
    )
    for y, what in ((ya, "a"), (yb, "b")):
        present = np.unique(y)
        if len(present) < 2:
            raise ValueError(f"labels_{what} hold one class ({classes[present[0]]!r}); a probe needs at least 2")
    if not np.isin(ya, yb).any():
        raise ValueError("labels_a and labels_b have no class in common: transfer accuracy would be 0 by construction")
    if remove_gap:
        ua, ub = _centred(ua, "a"), _centred(ub, "b")
    folds, seed, C, max_iter = int(folds), int(seed), float(C), int(max_iter)
    with _one_blas_thread():
        a_to_b = float(np.mean(_fit(ua, ya, C, max_iter, device).predict(ub) == yb))
        b_to_a = float(np.mean(_fit(ub, yb, C, max_iter, device).predict(ua) == ya))
    return TransferResult(
        a_to_b=a_to_b,
        b_to_a=b_to_a,
        a_to_a=_probe(ua, ya, classes, folds, seed, C, max_iter, device).accuracy,
        b_to_b=_probe(ub, yb, classes, folds, seed, C, max_iter, device).accuracy,
        remove_gap=bool(remove_gap),
        n_a=len(ua),
        n_b=len(ub),
    )


def fusion_probe(
    a: Any,
    b: Any | None = None,
    labels: Any = None,
    *,
    folds: int = 5,
    seed: int = 0,
    C: float = 1.0,
    max_iter: int = DEFAULT_MAX_ITER,
    device: Any = None,
) -> pl.DataFrame:
    """Label-probe accuracy from modality a alone, b alone, and both fused, on the same folds.

    Four inputs are probed as in :func:`linear_probe`, all on one set of stratified folds:

    - ``a``, ``b``: each modality's unit rows;
    - ``concat``: the concatenation ``[a, b]`` of the unit rows (early fusion);
    - ``sum``: the sum ``a + b`` of the unit rows, which needs equal dimensions.

    Parameters
    ----------
    a : array-like of shape (N, D_a), Embeddings, or PairedEmbeddings
        The first modality, row-paired with b; or a ``PairedEmbeddings`` (then ``b`` is omitted, pass
        ``labels=...``, and the rows are those of :meth:`~workbench.data.PairedEmbeddings.matched`, one per pair).
    b : array-like of shape (N, D_b), or Embeddings
        The second modality; row i describes the same item as row i of a.
    labels : 1-D array-like of length N
        One hashable label per row (per pair).
    folds, seed, C, max_iter, device
        As in :func:`linear_probe` (``device``: fit every probe with torch L-BFGS there).

    Returns
    -------
    polars.DataFrame
        Columns ``input`` ("a", "b", "concat", "sum"), ``accuracy`` and ``std`` (mean and standard deviation of the
        fold accuracies) and ``reason``. ``accuracy`` and ``std`` are null, with ``reason`` saying why, when there
        is too little data (as in :func:`linear_probe`) or, for ``sum`` only, when the dimensions differ.

    Raises
    ------
    ValueError
        For NaN or inf values, zero-norm rows (also of ``a + b``), different row counts, or bad labels.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> y = np.arange(80) % 4
    >>> a = rng.normal(size=(80, 8)) + 4 * np.eye(8)[y // 2]      # a knows y // 2
    >>> b = rng.normal(size=(80, 8)) + 4 * np.eye(8)[4 + y % 2]   # b knows y % 2
    >>> frame = fusion_probe(a, b, y)
    >>> frame["input"].to_list()
    ['a', 'b', 'concat', 'sum']
    >>> bool(frame["accuracy"][2] > max(frame["accuracy"][0], frame["accuracy"][1]))
    True
    """
    import polars as pl

    _check_options(folds, seed, C, max_iter)
    if isinstance(a, PairedEmbeddings):
        if b is not None:
            raise TypeError("pass either a PairedEmbeddings (and labels=...) or two arrays a, b and labels, not both")
        ma, mb = a.matched()
        ua, ub = _unit_rows(ma, "a"), _unit_rows(mb, "b")
    else:
        if b is None:
            raise TypeError("two arrays (a, b) or one PairedEmbeddings are needed")
        ua, ub = _unit_rows(a, "a"), _unit_rows(b, "b")
    if labels is None:
        raise TypeError("labels are required: one label per row (per pair)")
    if len(ua) != len(ub):
        raise ValueError(f"a and b must be row-paired with equal row counts, got {len(ua)} and {len(ub)}")
    (y,), classes = _encode(_label_values(labels, len(ua), "labels"))
    folds, seed, C, max_iter = int(folds), int(seed), float(C), int(max_iter)

    inputs: dict[str, np.ndarray | str] = {"a": ua, "b": ub, "concat": np.hstack([ua, ub]) / np.sqrt(2.0)}
    if ua.shape[1] == ub.shape[1]:
        inputs["sum"] = unit_rows64(ua + ub, "a + b (unit rows of a plus unit rows of b)")
    else:
        inputs["sum"] = f"a and b have different dimensions ({ua.shape[1]} and {ub.shape[1]}); sum needs equal ones"
    reason = _too_little(y, classes, folds)
    splits = _splits(y, folds, seed) if reason is None else []
    rows: list[tuple[str, float | None, float | None, str | None]] = []
    for name, x in inputs.items():
        if reason is not None:
            rows.append((name, None, None, reason))
        elif isinstance(x, str):
            rows.append((name, None, None, x))
        else:
            r = _cv(x, y, splits, folds, C, max_iter, device)
            rows.append((name, r.accuracy, r.std, None))
    return pl.DataFrame(
        rows, schema={"input": pl.String, "accuracy": pl.Float64, "std": pl.Float64, "reason": pl.String}, orient="row"
    )
