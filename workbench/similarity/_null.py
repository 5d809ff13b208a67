"""The permutation null of the similarity metrics: scorers that score b's rows permuted, and the exact-where-it-
matters null of :func:`_null_scores`.

CKA's products are the cost (n d_a d_b multiply-adds per permutation). On CPUs with bfloat16 matrix units (Intel AMX
or AVX512-BF16) they run in bfloat16 with float32 accumulation, about 3.5x faster; the error of those null values is
measured on permutations also computed in float32, and every null value that could change the p-value or the
threshold within that error is recomputed in float32 (see :func:`_null_scores`), so the results equal the float32
computation's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from workbench.similarity._metrics import (
    _cka_from,
    _cknna_cross,
    _cknna_norms,
    _hsic_u,
    _hsic_u_parts,
    _null_cknna_cross,
    _null_overlap,
    _overlap,
    _Side,
)

_KNN_METRICS = ("mutual_knn", "cknna")
#: Permutations drawn (and scored) per step; the generator's state is kept per step to redraw any of them.
_CHUNK = 64
#: CKA's null in bfloat16: None = when the CPU has bfloat16 matrix units and the problem is large enough.
_LOW_PRECISION: bool | None = None
#: Permutations also scored in float32 to measure the bfloat16 error, and the safety factor on the largest error.
_ERROR_SAMPLE, _ERROR_FACTOR = 16, 4.0
#: The smallest relative error bound used (float32's own accumulation error is about 1e-6 at these sizes), and the
#: largest for which bfloat16 is kept (beyond it every permutation is scored in float32).
_MIN_RELATIVE_ERROR, _MAX_RELATIVE_ERROR = 1e-5, 1e-3


# -- scorers: the observed value and the value for b's rows permuted ---------------------------------------------
class _Scorer:
    """Scores a metric on two prepared sides, and on a batch of permutations of b's rows."""

    def __init__(self, metric: str, sa: _Side, sb: _Side, device: Any = None) -> None:
        self.metric, self.sa, self.sb, self.device = metric, sa, sb, device
        self._tensors: dict[bool, tuple[Any, Any]] = {}
        #: CKA's relative error bound in bfloat16 once measured (None: float32 throughout), decided on the first call
        self.delta: float | None = None
        self._precision_decided = False
        n = sa.n
        if metric == "mutual_knn":
            self.observed = float(_overlap(sa, sb).mean() / sa.k)
        elif metric == "cknna":
            self.norm = _cknna_norms(sa, sb)
            self.observed = _cknna_cross(sa, sb) / self.norm
        else:
            xa, xb = sa.x, sb.x
            self.observed = float(_cka_from(xa, xb, metric == "unbiased_cka"))
            if metric == "cka":
                xa, xb = xa - xa.mean(axis=0), xb - xb.mean(axis=0)
                self.norm = float(np.sqrt(np.sum((xa.T @ xa) ** 2) * np.sum((xb.T @ xb) ** 2)))
            else:
                self.pa, self.pb = _hsic_u_parts(xa), _hsic_u_parts(xb)
                kk = _hsic_u(float(np.sum((xa.T @ xa) ** 2)), n, self.pa, self.pa)
                ll = _hsic_u(float(np.sum((xb.T @ xb) ** 2)), n, self.pb, self.pb)
                self.norm = float(np.sqrt(kk * ll))
            self.fa, self.fb = _reduced(xa), _reduced(xb)

    def null(self, perms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The null scores of the permutations (rows of ``perms``) and a bound on each one's error (0: exact)."""
        if self.metric == "mutual_knn":
            return _null_overlap(self.sa, self.sb, perms), np.zeros(len(perms))
        if self.metric == "cknna":
            return _null_cknna_cross(self.sa, self.sb, perms) / self.norm, np.zeros(len(perms))
        cross, bound = self._cross(perms)
        return self._from_cross(cross, perms), bound * self._slope()

    def exact(self, perms: np.ndarray) -> np.ndarray:
        """The null scores of these permutations in full (float32) precision."""
        if self.metric in _KNN_METRICS:
            return self.null(perms)[0]
        return self._from_cross(self._norms(perms), perms)

    def _norms(self, perms: np.ndarray, low_precision: bool = False) -> np.ndarray:
        """``_cross_norms`` of the features, kept as torch tensors (on the device) across calls."""
        if low_precision not in self._tensors:
            import torch

            ta, tb = torch.from_numpy(self.fa), torch.from_numpy(self.fb)
            if low_precision:
                ta, tb = ta.to(torch.bfloat16), tb.to(torch.bfloat16)
            if self.device is not None:
                ta, tb = ta.to(self.device), tb.to(self.device)
            self._tensors[low_precision] = (ta.T, tb)
        return _cross_norms(*self._tensors[low_precision], perms)

    def _from_cross(self, cross: np.ndarray, perms: np.ndarray) -> np.ndarray:
        if self.metric == "cka":
            return cross / self.norm
        n = self.sa.n
        return np.array([_hsic_u(c, n, self.pa, self.pb, p) for c, p in zip(cross, perms, strict=True)]) / self.norm

    def _slope(self) -> float:
        """d(score) / d(cross): both CKA scores are affine in ``||fa^T fb[p]||_F^2``."""
        n = self.sa.n
        return 1.0 / self.norm if self.metric == "cka" else 1.0 / (n * (n - 3) * self.norm)

    def _cross(self, perms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``||fa^T fb[p]||_F^2`` per permutation and an error bound: exact (bound 0) in float32, or in bfloat16
        with the bound ``delta * value``, delta measured on the first permutations (also scored in float32)."""
        if not self._precision_decided:
            self._precision_decided = True
            size = self.sa.n * self.fa.shape[1] * self.fb.shape[1]
            automatic = self.device is None and size >= 1 << 26 and _bf16_units()
            wanted = _LOW_PRECISION if _LOW_PRECISION is not None else automatic
            if wanted and len(perms) > _ERROR_SAMPLE:
                head = perms[:_ERROR_SAMPLE]
                exact = self._norms(head)
                approx = self._norms(head, low_precision=True)
                worst = float(np.max(np.abs(approx - exact) / np.maximum(exact, np.finfo(float).tiny)))
                delta = max(_ERROR_FACTOR * worst, _MIN_RELATIVE_ERROR)
                if delta <= _MAX_RELATIVE_ERROR:
                    self.delta = delta
                    rest = self._norms(perms[_ERROR_SAMPLE:], low_precision=True)
                    return (np.concatenate([exact, rest]),
                            np.concatenate([np.zeros(len(head)), delta * rest]))
        if self.delta is None:
            return self._norms(perms), np.zeros(len(perms))
        cross = self._norms(perms, low_precision=True)
        return cross, self.delta * cross


def _reduced(x: np.ndarray) -> np.ndarray:
    """Rows with fewer columns and the same Gram matrix (``U S`` of the thin SVD) when d > n, as float32."""
    if x.shape[1] > x.shape[0]:
        u, s, _ = np.linalg.svd(x, full_matrices=False)
        x = u * s
    return np.ascontiguousarray(x, dtype=np.float32)


def _cross_norms(ta_t: Any, tb: Any, perms: np.ndarray) -> np.ndarray:
    """``||fa^T fb[p]||_F^2`` for every permutation p, from torch tensors ``fa^T`` and ``fb`` (float32, or bfloat16:
    accumulated in float32, the d_a x d_b product then rounded to bfloat16, which the measured bound covers; on any
    device, TF32 off): one (d_a x n)(n x d_b) product each, squares summed in float64."""
    import torch

    out = np.empty(len(perms))
    cuda = tb.device.type == "cuda"
    previous = torch.backends.cuda.matmul.allow_tf32 if cuda else False
    try:
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = False  # TF32 would round the float32 products to 10 bits
        for j, p in enumerate(np.asarray(perms, dtype=np.int64)):
            prod = ta_t @ tb.index_select(0, torch.from_numpy(p).to(tb.device))
            out[j] = float(torch.linalg.vector_norm(prod, dtype=torch.float64)) ** 2
    finally:
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = previous
    return out


def _bf16_units() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (Intel AMX or AVX512-BF16; Linux flags)."""
    global _BF16_UNITS
    if _BF16_UNITS is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
        except OSError:
            flags = []
        _BF16_UNITS = "amx_bf16" in flags or "avx512_bf16" in flags
    return _BF16_UNITS


_BF16_UNITS: bool | None = None


class _CallableScorer:
    def __init__(self, metric: Callable[[Any, Any], float], a: Any, b: Any) -> None:
        self.fn, self.a, self.b = metric, a, np.asarray(b)
        self.observed = float(metric(a, b))

    def null(self, perms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.exact(perms), np.zeros(len(perms))

    def exact(self, perms: np.ndarray) -> np.ndarray:
        return np.array([float(self.fn(self.a, self.b[p])) for p in perms])


# -- the null and the calibration map ----------------------------------------------------------------------------
def _null_scores(scorer: _Scorer | _CallableScorer, rng: np.random.Generator, n: int, n_permutations: int,
                 alpha: float, bar: Any = None) -> np.ndarray:
    """The K null scores, permutation j being the j-th ``rng.permutation(n)``.

    Scores that come with an error bound (CKA in bfloat16) are exact where it matters: with each score known to
    lie in ``[s_j - e_j, s_j + e_j]``, the threshold lies between the same order statistic of the lower and of the
    upper ends, and every score whose interval meets that range or contains the raw score is recomputed exactly;
    every other score is then on the same side of the threshold and of the raw score as its exact value, so the
    threshold and the p-value equal those of the exact scores (the mean moves by at most the mean bound).
    """
    null, bound = np.empty(n_permutations), np.empty(n_permutations)
    states = []
    for s in range(0, n_permutations, _CHUNK):
        e = min(s + _CHUNK, n_permutations)
        states.append(rng.bit_generator.state)
        null[s:e], bound[s:e] = scorer.null(np.stack([rng.permutation(n) for _ in range(e - s)]))
        if bar is not None:
            bar.update(e - s)
    if bound.any():
        observed, index = scorer.observed, _order_index(alpha, n_permutations)
        lo, hi = null - bound, null + bound
        t_lo = np.partition(np.concatenate([[observed], lo]), index)[index]
        t_hi = np.partition(np.concatenate([[observed], hi]), index)[index]
        redo = np.flatnonzero((bound > 0) & (((hi >= t_lo) & (lo <= t_hi)) | ((hi >= observed) & (lo <= observed))))
        for chunk in np.unique(redo // _CHUNK):
            again = np.random.Generator(type(rng.bit_generator)())
            again.bit_generator.state = states[chunk]
            perms = np.stack([again.permutation(n) for _ in range(min(_CHUNK, n_permutations - chunk * _CHUNK))])
            rows = redo[redo // _CHUNK == chunk]
            null[rows] = scorer.exact(perms[rows - chunk * _CHUNK])
    return null


def _order_index(alpha: float, n_permutations: int) -> int:
    return min(max(math.ceil((1.0 - alpha) * (n_permutations + 1)) - 1, 0), n_permutations)
