"""Gap correctors: post-hoc maps, fitted on paired embeddings, that move two modalities closer in a shared space.

A corrector is a scikit-learn style estimator over a *pair* of modalities. ``fit(a, b)`` learns from row-paired
training embeddings (row i of ``a`` belongs with row i of ``b``, or one :class:`~workbench.data.PairedEmbeddings`,
whose :meth:`~workbench.data.PairedEmbeddings.matched` rows are used); ``transform(a, b)`` applies the learned map
to any embeddings of the two modalities -- held-out ones too, and galleries of different sizes -- and returns
L2-normalised float32 rows ``(a2, b2)``. Inputs are converted to float64 and L2-normalised first; learned
attributes end in ``_``; ``get_params``, ``set_params`` and :func:`sklearn.base.clone` work as for any estimator.

- :class:`GapShift` -- translate both modalities along the gap vector ``mean(a) - mean(b)`` (Liang et al.,
  "Mind the Gap: Understanding the Modality Gap in Multi-modal Contrastive Representation Learning", NeurIPS 2022).
- :class:`MeanCenter` -- subtract each modality's own mean (the "collapse" step of Zhang et al., "Connect,
  Collapse, Corrupt: Learning Cross-Modal Tasks with Uni-Modal Data", ICLR 2024).
- :class:`Standardize` -- per-modality, per-dimension standardisation (An et al., "I0T: Embedding
  Standardization Method Towards Zero Modality Gap", 2024, the post-hoc variant).
- :class:`Procrustes` -- the orthogonal map of ``b`` onto ``a`` that fits the training pairs best
  (Schönemann, "A generalized solution of the orthogonal Procrustes problem", Psychometrika 1966).
- :class:`LinearAdapter` -- one linear map per modality trained with the symmetric InfoNCE (CLIP) loss
  (Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021).
- :class:`ProjectOutGap` -- remove every vector's component along the unit gap direction.
- :class:`AblateGapDimensions` -- zero the few coordinates that carry most of the gap (Schrodi et al., "Two
  Effects, One Trigger: On the Modality Gap, Object Bias, and Information Imbalance in Contrastive
  Vision-Language Models", ICLR 2025).

Only :class:`GapShift` has a strength parameter (``delta``); the others are applied as fitted. Bad input (rows
that do not pair up, mismatched dimensions, NaN or inf, zero-norm rows, fewer than two training pairs, a
dimension other than the fitted one) raises a ``ValueError`` naming the problem.

Examples
--------
>>> import numpy as np
>>> from workbench import gap
>>> from workbench.correct import MeanCenter
>>> rng = np.random.default_rng(0)
>>> a, b = rng.normal(size=(50, 8)) + 3, rng.normal(size=(50, 8)) - 3
>>> round(gap.centroid_distance(a, b), 2)
1.91
>>> a2, b2 = MeanCenter().fit_transform(a, b)
>>> round(gap.centroid_distance(a2, b2), 2), a2.dtype
(0.07, dtype('float32'))
"""

from __future__ import annotations

import math
import numbers
from typing import Any, TypeVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from workbench._validation import as_matrix, describe_rows, row_norms
from workbench.data import PairedEmbeddings

__all__ = [
    "ALL_CORRECTORS",
    "AblateGapDimensions",
    "GapShift",
    "LinearAdapter",
    "MeanCenter",
    "Procrustes",
    "ProjectOutGap",
    "Standardize",
]

#: A transformed row shorter than this (inputs are unit rows) has lost its direction and cannot be renormalised.
_COLLAPSE_NORM = 1e-10

_C = TypeVar("_C", bound="_Corrector")


# -- input checks ------------------------------------------------------------------------------------------------
def _matrix64(values: Any, what: str) -> np.ndarray:
    return as_matrix(values, what).astype(np.float64)


def _unit_rows(arr: np.ndarray, what: str) -> np.ndarray:
    return arr / row_norms(arr, what)[:, None]


def _split(a: Any, b: Any, method: str) -> tuple[Any, Any]:
    if isinstance(a, PairedEmbeddings):
        if b is not None:
            raise TypeError(f"{method}: pass either a PairedEmbeddings or two arrays (a, b), not both")
        return a.matched()
    if b is None:
        raise TypeError(f"{method}: two arrays (a, b) or one PairedEmbeddings are needed")
    return a, b


def _fit_inputs(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _split(a, b, "fit")
    ma, mb = _matrix64(a, "a"), _matrix64(b, "b")
    if ma.shape[0] != mb.shape[0]:
        raise ValueError(
            f"row counts differ: a has {ma.shape[0]} rows but b has {mb.shape[0]}; fit needs row-paired "
            "training data (row i of a belongs with row i of b)"
        )
    if ma.shape[1] != mb.shape[1]:
        raise ValueError(f"dimensions differ: a has {ma.shape[1]}, b has {mb.shape[1]}; both must share one space")
    ua, ub = _unit_rows(ma, "a"), _unit_rows(mb, "b")
    if len(ua) < 2:
        raise ValueError(f"fit needs at least 2 pairs, got {len(ua)}")
    return ua, ub


def _transform_inputs(a: Any, b: Any, dim: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = _split(a, b, "transform")
    ma, mb = _matrix64(a, "a"), _matrix64(b, "b")
    for what, m in (("a", ma), ("b", mb)):
        if m.shape[1] != dim:
            raise ValueError(f"{what} has {m.shape[1]} dimensions but this {name} was fitted on {dim}")
    return _unit_rows(ma, "a"), _unit_rows(mb, "b")


def _renormalised(x: np.ndarray, what: str, name: str) -> np.ndarray:
    """Rows L2-normalised in float64, then cast to float32; rows the map sent to ~zero raise a ValueError."""
    norms = np.linalg.norm(x, axis=1)
    gone = np.flatnonzero(~(norms > _COLLAPSE_NORM))
    if len(gone):
        raise ValueError(
            f"{name} maps {len(gone)} of {len(x)} rows of {what} to (nearly) zero ({describe_rows(gone)}); "
            "they have no direction left to renormalise"
        )
    return (x / norms[:, None]).astype(np.float32)


def _real(value: Any, name: str, *, low: float | None = None, inclusive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value < low or (value == low and not inclusive)):
        raise ValueError(f"{name} must be {'>=' if inclusive else '>'} {low}, got {value}")
    return value


def _integer(value: Any, name: str, *, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


# -- the base class ----------------------------------------------------------------------------------------------
class _Corrector(BaseEstimator):
    """Shared fit/transform plumbing: validation, L2-normalisation, float32 unit-norm output.

    Subclasses implement ``_fit(a, b)`` and ``_transform(a, b)`` on validated float64 unit rows.
    """

    def fit(self: _C, a: Any, b: Any = None) -> _C:
        """Learn the correction from training pairs (row i of ``a`` with row i of ``b``, or one PairedEmbeddings).

        A PairedEmbeddings is fitted on its matched rows, so with five captions per image each image weighs five
        times in a's training mean (:func:`workbench.gap.gap_vector` counts each item once). Returns ``self``.
        """
        ua, ub = _fit_inputs(a, b)
        self._fit(ua, ub)
        self.n_features_in_ = ua.shape[1]
        return self

    def transform(self, a: Any, b: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Apply the fitted correction to embeddings of the two modalities (row counts may differ).

        A PairedEmbeddings is transformed through its matched rows; pass ``(p.a.vectors, p.b.vectors)`` to
        transform each modality's items once. Returns unit-norm float32 arrays ``(a2, b2)``.
        """
        check_is_fitted(self)
        name = type(self).__name__
        ua, ub = _transform_inputs(a, b, self.n_features_in_, name)
        a2, b2 = self._transform(ua, ub)
        return _renormalised(a2, "a", name), _renormalised(b2, "b", name)

    def fit_transform(self, a: Any, b: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """``fit(a, b)`` then ``transform(a, b)``."""
        return self.fit(a, b).transform(a, b)

    def _fit(self, a: np.ndarray, b: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        raise NotImplementedError


# -- the correctors ----------------------------------------------------------------------------------------------
class GapShift(_Corrector):
    """Translate both modalities along the gap vector, then renormalise (Liang et al., NeurIPS 2022, Sec. 4.3).

    With the training gap ``g = mean(a) - mean(b)`` (of unit rows), ``a2 = normalize(a - delta * g / 2)`` and
    ``b2 = normalize(b + delta * g / 2)``. Liang et al. shift along the *unit* gap direction; here ``delta`` is in
    units of the gap itself, so ``delta=1`` meets the centroids halfway (the gap closes up to the effect of
    renormalisation), ``delta=0`` is the identity and a negative ``delta`` widens the gap. Closing the gap this
    way is not free: the per-row renormalisation reorders cross-modal similarities, and on ``liang2022/clip``
    500-way R@1 falls markedly at ``delta=1`` (Liang et al. report task-dependent effects of such shifts).

    Parameters
    ----------
    delta : float, default 1.0
        Strength of the shift, in units of the gap vector (read at fit time).

    Attributes
    ----------
    gap_ : ndarray of shape (D,)
        The training gap vector ``mean(a) - mean(b)`` (float64).
    shift_ : ndarray of shape (D,)
        ``delta * gap_ / 2``, subtracted from a and added to b.
    n_features_in_ : int
        The dimension D seen at fit.

    Examples
    --------
    >>> import numpy as np
    >>> from workbench.gap import centroid_distance
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(100, 16)) + 2, rng.normal(size=(100, 16)) - 2
    >>> shift = GapShift(delta=1.0).fit(a, b)
    >>> a2, b2 = shift.transform(a, b)
    >>> bool(centroid_distance(a2, b2) < 0.05 < 1.5 < centroid_distance(a, b))
    True
    """

    def __init__(self, delta: float = 1.0) -> None:
        self.delta = delta

    def _fit(self, a: np.ndarray, b: np.ndarray) -> None:
        delta = _real(self.delta, "delta")
        self.gap_ = a.mean(axis=0) - b.mean(axis=0)
        self.shift_ = delta * self.gap_ / 2

    def _transform(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return a - self.shift_, b + self.shift_


class MeanCenter(_Corrector):
    """Subtract each modality's own training mean, then renormalise (the "collapse" step of C3).

    Zhang et al., "Connect, Collapse, Corrupt: Learning Cross-Modal Tasks with Uni-Modal Data", ICLR 2024: removing
    each modality's mean removes the constant offset that makes up the gap. ``a2 = normalize(a - mean_a_)``,
    ``b2 = normalize(b - mean_b_)``.

    Attributes
    ----------
    mean_a_, mean_b_ : ndarray of shape (D,)
        The training means of the unit rows of a and of b (float64).
    n_features_in_ : int
        The dimension D seen at fit.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.array([[2.0, 1.0], [2.0, -1.0]]), np.array([[-2.0, 1.0], [-2.0, -1.0]])
    >>> a2, b2 = MeanCenter().fit_transform(a, b)
    >>> a2.tolist(), b2.tolist()
    ([[0.0, 1.0], [0.0, -1.0]], [[0.0, 1.0], [0.0, -1.0]])
    """

    def _fit(self, a: np.ndarray, b: np.ndarray) -> None:
        self.mean_a_ = a.mean(axis=0)
        self.mean_b_ = b.mean(axis=0)

    def _transform(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return a - self.mean_a_, b - self.mean_b_


def _mean_and_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and population standard deviations; (near-)constant columns get scale 1 (as StandardScaler)."""
    mean = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    n, eps = len(x), np.finfo(np.float64).eps
    constant = var <= n * eps * var + (n * mean * eps) ** 2  # sklearn's bound on two-pass variance error
    return mean, np.where(constant, 1.0, np.sqrt(var))


class Standardize(_Corrector):
    """Standardise every dimension within each modality, then renormalise (I0T, An et al. 2024, post-hoc).

    An et al., "I0T: Embedding Standardization Method Towards Zero Modality Gap", 2024: subtracting each
    modality's per-dimension mean and dividing by its per-dimension standard deviation (both learned on that
    modality's training rows) removes the gap and equalises the dimensions' spread. The result equals
    :class:`sklearn.preprocessing.StandardScaler` fitted on each modality, followed by row renormalisation.
    Dimensions that are constant in the training rows are only centred (scale 1), as StandardScaler does.

    Attributes
    ----------
    mean_a_, mean_b_ : ndarray of shape (D,)
        Per-dimension training means of the unit rows of a and of b.
    scale_a_, scale_b_ : ndarray of shape (D,)
        Per-dimension population standard deviations (1 for constant dimensions).
    n_features_in_ : int
        The dimension D seen at fit.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(20, 4)) + 1, rng.normal(size=(20, 4)) * [1, 5, 1, 1]
    >>> a2, b2 = Standardize().fit_transform(a, b)
    >>> a2.shape, b2.dtype, bool(np.allclose(np.linalg.norm(b2, axis=1), 1))
    ((20, 4), dtype('float32'), True)
    """

    def _fit(self, a: np.ndarray, b: np.ndarray) -> None:
        self.mean_a_, self.scale_a_ = _mean_and_scale(a)
        self.mean_b_, self.scale_b_ = _mean_and_scale(b)

    def _transform(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (a - self.mean_a_) / self.scale_a_, (b - self.mean_b_) / self.scale_b_


class Procrustes(_Corrector):
    """Rotate b onto a with the orthogonal map that best fits the training pairs (orthogonal Procrustes).

    ``rotation_`` is the orthogonal R minimising ``||b R - a||_F`` over the training pairs: with the SVD
    ``b^T a = U S V^T``, ``R = U V^T`` (Schönemann 1966; equal to ``scipy.linalg.orthogonal_procrustes(b, a)``).
    ``transform`` returns ``(a, normalize(b @ R))``: a is only normalised. Being orthogonal, R keeps all
    similarities within b and rotates its whole cloud, gap included, onto a.

    Attributes
    ----------
    rotation_ : ndarray of shape (D, D)
        The orthogonal map applied to b's rows (``b @ rotation_``).
    n_features_in_ : int
        The dimension D seen at fit.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    >>> b = a @ np.array([[0.0, 1.0], [-1.0, 0.0]])          # a rotated by 90 degrees
    >>> a2, b2 = Procrustes().fit_transform(a, b)
    >>> bool(np.allclose(a2, b2))
    True
    """

    def _fit(self, a: np.ndarray, b: np.ndarray) -> None:
        u, _, vt = np.linalg.svd(b.T @ a)
        self.rotation_ = u @ vt

    def _transform(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return a, b @ self.rotation_


class LinearAdapter(_Corrector):
    """One linear map per modality, trained with the symmetric InfoNCE (CLIP) loss on the training pairs.

    Each modality gets a bias-free ``torch.nn.Linear(D, dim)`` (no bias: a per-modality offset would only
    re-learn a gap shift). When ``dim == D`` both start at the identity, so training departs from the pretrained
    alignment; otherwise both start at the same seeded random semi-orthogonal matrix (which preserves all
    cosines when ``dim >= D``). The loss is the CLIP loss on L2-normalised outputs: cross-entropy of
    ``a @ b.T / temperature`` against the matching pairs, averaged over both directions, minimised with AdamW on
    shuffled mini-batches of at most ``batch_size`` pairs (the epoch is split into equal batches). The learned
    weights are kept as numpy arrays, so ``transform`` needs no torch; torch is imported by ``fit`` only.

    Fitting is deterministic for a given ``seed`` on CPU: the start matrix and the shuffling use their own seeded
    generators, and torch's global random state is left untouched. On CPU, training runs on one thread (the
    previous ``torch.get_num_threads()`` is restored afterwards): the steps are tiny matrix products. With the
    defaults, 250 pairs of 512-d embeddings train in about 0.2 s.

    Parameters
    ----------
    dim : int, optional
        Output dimension; None keeps the input dimension D.
    epochs : int, default 10
        Passes over the training pairs (0 keeps the start matrices).
    lr : float, default 1e-4
        AdamW learning rate. With few pairs, more epochs or a larger rate overfit: the training loss keeps
        falling while the held-out loss rises again.
    batch_size : int, default 64
        Largest number of pairs per step (each pair's negatives are the other pairs of its batch).
    temperature : float, default 0.01
        The loss's fixed temperature (logit scale ``1 / temperature``). The default matches the logit scale 100
        that CLIP learns; CLIP's *initial* 0.07 rewards mere sharpening of similarities, which lowers the loss at
        that temperature while retrieval gets worse.
    weight_decay : float, default 0.0
        AdamW's decoupled weight decay.
    seed : int, default 0
        Seeds the start matrix (when ``dim != D``) and the shuffling.
    device : str or torch.device, optional
        Where to train; None means ``"cpu"``.

    Attributes
    ----------
    weight_a_, weight_b_ : ndarray of shape (dim, D)
        The learned maps (float64); ``transform`` computes ``normalize(a @ weight_a_.T)``.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    n_features_in_ : int
        The input dimension D seen at fit.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(64, 8))
    >>> b = a + rng.normal(size=(64, 8)) + 2                  # noisy copies, shifted
    >>> adapter = LinearAdapter(dim=4, epochs=20, lr=1e-2, temperature=0.1).fit(a, b)
    >>> adapter.weight_a_.shape, bool(adapter.loss_curve_[-1] < adapter.loss_curve_[0])
    ((4, 8), True)
    >>> a2, b2 = adapter.transform(a[:5], b)
    >>> a2.shape, b2.shape, a2.dtype
    ((5, 4), (64, 4), dtype('float32'))
    """

    def __init__(
        self,
        dim: int | None = None,
        epochs: int = 10,
        lr: float = 1e-4,
        batch_size: int = 64,
        temperature: float = 0.01,
        weight_decay: float = 0.0,
        seed: int = 0,
        device: Any = None,
    ) -> None:
        self.dim = dim
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.temperature = temperature
        self.weight_decay = weight_decay
        self.seed = seed
        self.device = device

    def _start_matrix(self, dim_in: int, dim_out: int, seed: int) -> np.ndarray:
        if dim_out == dim_in:
            return np.eye(dim_in)
        q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(max(dim_in, dim_out), min(dim_in, dim_out))))
        return q.T if dim_out < dim_in else q  # orthonormal rows (dim_out < D) or columns (dim_out > D)

    def _fit(self, a: np.ndarray, b: np.ndarray) -> None:
        dim_in = a.shape[1]
        dim_out = dim_in if self.dim is None else _integer(self.dim, "dim", low=1)
        epochs = _integer(self.epochs, "epochs", low=0)
        lr = _real(self.lr, "lr", low=0.0, inclusive=False)
        batch_size = _integer(self.batch_size, "batch_size", low=2)
        temperature = _real(self.temperature, "temperature", low=0.0, inclusive=False)
        weight_decay = _real(self.weight_decay, "weight_decay", low=0.0)
        seed = _integer(self.seed, "seed", low=0)

        import torch
        import torch.nn.functional as F

        try:
            device = torch.device("cpu" if self.device is None else self.device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device {self.device!r} is not a torch device: {exc}") from None
        start = torch.as_tensor(self._start_matrix(dim_in, dim_out, seed), dtype=torch.float32)
        layers = []
        for _ in range(2):
            layer = torch.nn.utils.skip_init(torch.nn.Linear, dim_in, dim_out, bias=False, device=device)
            with torch.no_grad():
                layer.weight.copy_(start)
            layers.append(layer)
        layer_a, layer_b = layers
        xa = torch.as_tensor(a, dtype=torch.float32, device=device)
        xb = torch.as_tensor(b, dtype=torch.float32, device=device)
        logit_scale = 1.0 / temperature
        optimizer = torch.optim.AdamW([layer_a.weight, layer_b.weight], lr=lr, weight_decay=weight_decay)
        shuffle = torch.Generator().manual_seed(seed)
        n_batches = math.ceil(len(a) / batch_size)
        curve = []
        threads = torch.get_num_threads()
        if device.type == "cpu":
            # Steps are tiny matrix products: extra threads gain nothing and, on a busy machine, their
            # spin-waiting slows training a hundredfold. Restored below.
            torch.set_num_threads(1)
        try:
            for _ in range(epochs):
                order = torch.randperm(len(a), generator=shuffle).to(device)
                total = 0.0
                for rows in torch.tensor_split(order, n_batches):
                    za = F.normalize(layer_a(xa[rows]), dim=1)
                    zb = F.normalize(layer_b(xb[rows]), dim=1)
                    loss = _symmetric_info_nce(za, zb, logit_scale)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach()) * len(rows)
                curve.append(total / len(a))
        finally:
            torch.set_num_threads(threads)
        self.weight_a_ = layer_a.weight.detach().cpu().double().numpy()
        self.weight_b_ = layer_b.weight.detach().cpu().double().numpy()
        self.loss_curve_ = curve

    def _transform(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return a @ self.weight_a_.T, b @ self.weight_b_.T


def _symmetric_info_nce(za: Any, zb: Any, logit_scale: float) -> Any:
    """CLIP's loss on unit rows: cross-entropy of ``logit_scale * za @ zb.T`` against the diagonal, both ways."""
    import torch
    import torch.nn.functional as F

    logits = logit_scale * za @ zb.T
    target = torch.arange(len(za), device=za.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


class ProjectOutGap(_Corrector):
    """Remove every vector's component along the training gap direction, then renormalise.

    With ``u = g / ||g||`` for the training gap ``g = mean(a) - mean(b)``, each row of a and b becomes
    ``normalize(x - (x . u) u)``: the one direction in which the modalities' means differ is projected out of
    both. Fitting raises a ValueError when the training means coincide (no gap direction).

    Attributes
    ----------
    gap_ : ndarray of shape (D,)
        The training gap vector ``mean(a) - mean(b)``.
    direction_ : ndarray of shape (D,)
        The unit gap direction ``gap_ / ||gap_||``.
    n_features_in_ : int
        The dimension D seen at fit.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.array([[1.0, 1.0], [-1.0, 1.0]]), np.array([[1.0, -1.0], [-1.0, -1.0]])
    >>> corrector = ProjectOutGap().fit(a, b)
    >>> corrector.direction_.tolist()
    [0.0, 1.0]
    >>> corrector.transform(a, b)[0].tolist()
    [[1.0, 0.0], [-1.0, 0.0]]
    """

    def _fit(self, a: np.ndarray, b: np.ndarray) -> None:
        g = a.mean(axis=0) - b.mean(axis=0)
        norm = float(np.linalg.norm(g))
        if not norm > _COLLAPSE_NORM:
            raise ValueError(
                f"the two modalities' training means coincide (gap norm {norm:.3g}): there is no gap direction "
                "to project out"
            )
        self.gap_ = g
        self.direction_ = g / norm

    def _transform(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = self.direction_
        return a - np.outer(a @ u, u), b - np.outer(b @ u, u)


class AblateGapDimensions(_Corrector):
    """Zero the ``k`` coordinates that carry the most gap, then renormalise (Schrodi et al., ICLR 2025).

    Schrodi et al., "Two Effects, One Trigger: On the Modality Gap, Object Bias, and Information Imbalance in
    Contrastive Vision-Language Models", ICLR 2025, trace the CLIP gap to a few embedding dimensions with large
    mean differences between the modalities. With the training gap ``g = mean(a) - mean(b)``, the ``k``
    dimensions with the largest ``|g_j|`` are set to zero in both modalities' rows. The default ``k=2`` matches
    CLIP ViT-B/16 on ``liang2022/clip``, where two dimensions hold most of ``||g||^2``.

    Parameters
    ----------
    k : int, default 2
        How many dimensions to ablate; must be between 1 and D - 1 (checked at fit).

    Attributes
    ----------
    gap_ : ndarray of shape (D,)
        The training gap vector ``mean(a) - mean(b)``.
    dimensions_ : ndarray of shape (k,)
        The ablated dimensions, largest ``|gap_|`` first (ties broken by lower index).
    n_features_in_ : int
        The dimension D seen at fit.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[3.0, 1.0, 0.0, 1.0], [3.0, 0.0, 1.0, 1.0]])
    >>> b = np.array([[0.0, 1.0, 0.0, 3.0], [0.0, 0.0, 1.0, 3.0]])
    >>> ablate = AblateGapDimensions(k=2).fit(a, b)
    >>> ablate.dimensions_.tolist()
    [0, 3]
    >>> ablate.transform(a, b)[0].tolist()
    [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]
    """

    def __init__(self, k: int = 2) -> None:
        self.k = k

    def _fit(self, a: np.ndarray, b: np.ndarray) -> None:
        dim = a.shape[1]
        k = _integer(self.k, "k")
        if not 1 <= k <= dim - 1:
            raise ValueError(f"k must be between 1 and D - 1 = {dim - 1} (ablating all dimensions leaves nothing), "
                             f"got k={k}")
        self.gap_ = a.mean(axis=0) - b.mean(axis=0)
        self.dimensions_ = np.argsort(-np.abs(self.gap_), kind="stable")[:k]

    def _transform(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a, b = a.copy(), b.copy()
        a[:, self.dimensions_] = 0.0
        b[:, self.dimensions_] = 0.0
        return a, b


#: Every corrector class, in the order of the module documentation.
ALL_CORRECTORS: tuple[type[_Corrector], ...] = (
    GapShift,
    MeanCenter,
    Standardize,
    Procrustes,
    LinearAdapter,
    ProjectOutGap,
    AblateGapDimensions,
)
