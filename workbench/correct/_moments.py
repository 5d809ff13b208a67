"""Correctors built from each modality's own statistics: means, per-dimension spreads, the gap vector.

Their fit reads each modality's training rows on their own -- which row pairs with which does not matter (any
shuffle of the pairs fits the same map) -- and has a closed form: translate along the gap (:class:`GapShift`),
subtract each modality's mean (:class:`MeanCenter`: the post-hoc step of C3 and of I0T), z-score each dimension
(:class:`Standardize`: a standard baseline), project out the gap direction (:class:`ProjectOutGap`) or zero the
dimensions that carry the gap (:class:`AblateGapDimensions`).
"""

from __future__ import annotations

import numpy as np

from workbench._params import check_number
from workbench.correct._base import _COLLAPSE_NORM, _Corrector, _integer

__all__ = ["AblateGapDimensions", "GapShift", "MeanCenter", "ProjectOutGap", "Standardize"]


class GapShift(_Corrector):
    """Translate both modalities along the gap vector, then renormalise (Liang et al., NeurIPS 2022, Sec. 4.3).

    With the training gap ``g = mean(a) - mean(b)`` (of unit rows), ``a2 = normalize(a - delta * g / 2)`` and
    ``b2 = normalize(b + delta * g / 2)``. Liang et al. shift along the *unit* gap direction; here ``delta`` is in
    units of the gap itself, so ``delta=1`` meets the centroids halfway (the gap closes up to the effect of
    renormalisation), ``delta=0`` is the identity and a negative ``delta`` widens the gap. Closing the gap this
    way is not free, for two reasons. The shift moves the queries too: with ``s = delta * g / 2`` an image query
    scores caption j by ``<a - s, b_j + s>``, whose caption-dependent part ``<a, b_j> - <s, b_j>`` penalises the
    captions lying further along the gap (adding one vector to every caption alone would reorder nothing). Then
    renormalising divides each row by its own norm, which reorders the similarities further. On
    ``liang2022/clip`` (500-way image -> caption R@1 0.55) the shift alone already drops R@1 to 0.45 at
    ``delta=1``, and the renormalised shift to 0.36 (notebook 04; Liang et al. report task-dependent effects of
    such shifts).

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
        delta = check_number(self.delta, "delta")
        self.gap_ = a.mean(axis=0) - b.mean(axis=0)
        self.shift_ = delta * self.gap_ / 2

    def _transform(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return a - self.shift_, b + self.shift_


class MeanCenter(_Corrector):
    """Subtract each modality's own training mean, then renormalise (C3's "collapse" step; I0T's post-hoc step).

    ``a2 = normalize(a - mean_a_)``, ``b2 = normalize(b - mean_b_)``, with the means of the unit training rows of
    each modality: removing each modality's mean removes the constant offset that makes up the gap. The same step
    appears in two papers:

    - Zhang et al., "Connect, Collapse, Corrupt: Learning Cross-Modal Tasks with Uni-Modal Data", ICLR 2024 (C3):
      the "collapse" step removes each modality's mean and renormalises.
    - An, Kim, Thorne and Shim, "I0T: Embedding Standardization Method Towards Zero Modality Gap", ACL 2025
      (arXiv:2412.14384, 2024): the post-hoc method I0T_post. The paper calls it embedding standardization, but
      its released code (github.com/xfactlab/I0T, ``src/features.py``, ``remove_artifact_features``) subtracts
      each modality's mean embedding and renormalises each row, with no per-dimension division by a standard
      deviation: that is this corrector, not :class:`Standardize`.

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
    """Z-score every dimension within each modality, then renormalise (a standard baseline, not a published method).

    Each modality's per-dimension mean is subtracted and each dimension divided by that modality's per-dimension
    (population) standard deviation, both learned on the modality's unit training rows; then every row is
    L2-normalised: ``a2 = normalize((a - mean_a_) / scale_a_)``, and the same for b. The result equals
    :class:`sklearn.preprocessing.StandardScaler` fitted on each modality, followed by row renormalisation.
    Dimensions that are constant in the training rows are only centred (scale 1), as StandardScaler does.

    This is ordinary per-feature standardisation (z-scoring), included as a baseline next to mean centring. The
    centring alone removes the gap; the division also equalises the dimensions' spread, which changes the cosine
    geometry within each modality. It is NOT the post-hoc method of I0T (An et al., ACL 2025): I0T's released code
    subtracts each modality's mean and renormalises, with no division by a standard deviation, which is
    :class:`MeanCenter`.

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
