"""Representational similarity of two embedding sets of the same items: mutual kNN, linear CKA (biased and
unbiased) and CKNNA, with the structures their permutation nulls reuse.

Every metric compares two row-aligned sets ``a`` (n x d_a) and ``b`` (n x d_b): row i of both describes item i.
Rows are L2-normalised first, so every kernel is a cosine kernel ``K = A A^T`` (as Huh et al. measure alignment),
and every metric is invariant to a rotation of either space. Nearest neighbours exclude the item itself; ties at the
k-th place (duplicate rows) are broken by ``numpy.argpartition``.

Each metric is computed from a *prepared side* (:class:`_Side`: unit rows, the k nearest neighbours with their
cosines, and where each neighbour lists the item back), so a permutation of b's rows -- the null of
:func:`workbench.similarity.calibrated` -- re-indexes these structures instead of recomputing neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench._params import check_int
from workbench._validation import as_matrix, check_spread, unit_rows64

__all__ = ["cka", "cknna", "mutual_knn", "neighbourhood_agreement"]

#: Rows of the cosine matrix scored at a time when looking for neighbours (memory ~ block x n x 8 bytes).
_BLOCK = 1024


@dataclass
class _Side:
    """One embedding set prepared for the metrics: unit rows, and (for the kNN metrics) its neighbour lists."""

    x: np.ndarray  # (n, d) float64 unit rows
    idx: np.ndarray | None = None  # (n, k) the k nearest other items, best first
    val: np.ndarray | None = None  # (n, k) their cosines
    rev: np.ndarray | None = None  # (n, k) slot of i in idx[idx[i, s]], or -1 when j does not list i
    cand: tuple[np.ndarray, np.ndarray] | None = None  # a longer neighbour list (indices, cosines), when asked for

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def k(self) -> int:
        return 0 if self.idx is None else self.idx.shape[1]


def _unit(x: Any, what: str) -> np.ndarray:
    unit = unit_rows64(as_matrix(x, what), what)
    check_spread(unit, what)
    return unit


def _knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest other rows of every row by cosine (self excluded), best first, and their cosines."""
    n = len(x)
    idx = np.empty((n, k), dtype=np.int64)
    val = np.empty((n, k))
    for s in range(0, n, _BLOCK):
        e = min(s + _BLOCK, n)
        scores = x[s:e] @ x.T
        scores[np.arange(e - s), np.arange(s, e)] = -np.inf
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        idx[s:e] = np.take_along_axis(part, order, axis=1)
        val[s:e] = np.take_along_axis(top, order, axis=1)
    return idx, val


def _slots(rows: np.ndarray, cand: np.ndarray, block: int = 4096) -> np.ndarray:
    """For each ``cand[i, s]``: its position in ``rows[i]`` (k entries), or -1 when absent."""
    out = np.empty(cand.shape, dtype=np.int64)
    for s in range(0, len(cand), block):
        eq = cand[s:s + block, :, None] == rows[s:s + block, None, :]
        out[s:s + block] = np.where(eq.any(axis=2), eq.argmax(axis=2), -1)
    return out


def _reverse_slots(idx: np.ndarray, block: int = 4096) -> np.ndarray:
    """``rev[i, s]``: the slot of i in the neighbour list of ``j = idx[i, s]``, or -1 when j does not list i."""
    rev = np.empty(idx.shape, dtype=np.int64)
    for s in range(0, len(idx), block):
        e = min(s + block, len(idx))
        eq = idx[idx[s:e]] == np.arange(s, e)[:, None, None]
        rev[s:e] = np.where(eq.any(axis=2), eq.argmax(axis=2), -1)
    return rev


def _prepare(ux: np.ndarray, k: int | None, width: int | None = None) -> _Side:
    """A side from unit rows; with k (already checked to be in [1, n - 1]) its neighbour lists too, and with
    ``width`` > k a longer list of ``min(width, n - 1)`` neighbours from the same pass (``cand``)."""
    if k is None:
        return _Side(ux)
    wide = max(k, min(width or 0, len(ux) - 1))
    cidx, cval = _knn(ux, wide)
    idx, val = np.ascontiguousarray(cidx[:, :k]), np.ascontiguousarray(cval[:, :k])
    return _Side(ux, idx, val, _reverse_slots(idx), (cidx, cval) if wide > k else None)


def _pair(a: Any, b: Any, k: int | None, *, min_rows: int = 2, width: int | None = None) -> tuple[_Side, _Side]:
    if hasattr(a, "pairs") and hasattr(a, "matched"):
        raise TypeError("a must be one embedding set (N x D); for the two modalities of a PairedEmbeddings pass "
                        "p.matched() as a, b")
    sa, sb = _unit(a, "a"), _unit(b, "b")
    if len(sa) != len(sb):
        raise ValueError(f"a has {len(sa)} rows but b has {len(sb)}; the metrics compare two sets of the same items "
                         "(row i of a and row i of b describe item i)")
    if len(sa) < min_rows:
        raise ValueError(f"a and b need at least {min_rows} items, got {len(sa)}")
    if k is not None:
        k = check_int(k, "k", high=len(sa) - 1)
    return _prepare(sa, k, width), _prepare(sb, k, width)


# -- mutual kNN --------------------------------------------------------------------------------------------------
def _overlap(sa: _Side, sb: _Side, perm: np.ndarray | None = None) -> np.ndarray:
    """Per item, how many of its k neighbours in a are among its k neighbours in b (b's rows permuted by perm)."""
    assert sa.idx is not None and sb.idx is not None
    if perm is None:
        return (_slots(sb.idx, sa.idx) >= 0).sum(axis=1)
    # row i of b[perm] is b[perm[i]]: j neighbours i there when perm[j] neighbours perm[i] in b
    return (_slots(sb.idx[perm], perm[sa.idx]) >= 0).sum(axis=1)


def neighbourhood_agreement(a: Any, b: Any, k: int = 10) -> np.ndarray:
    """Per item, the share of its k nearest neighbours that the two embedding sets agree on: where they agree.

    ``agreement[i] = |N_a(i) & N_b(i)| / k`` with ``N_x(i)`` the k nearest other items of item i by cosine in set x.
    Its mean is :func:`mutual_knn`; colour an embedding map by it to see where two models (or two modalities, or
    two checkpoints) see the same neighbourhoods (Huh et al., ICML 2024, Sec. 2).

    Parameters
    ----------
    a, b : (n x d_a), (n x d_b) arrays or Embeddings of the same n items (row i of both is item i)
    k : int, default 10
        Neighbourhood size, at most n - 1.

    Returns
    -------
    ndarray of shape (n,), float64 in [0, 1]

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> b = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])   # items 1 and 2 swap neighbourhoods
    >>> neighbourhood_agreement(a, b, k=1).tolist()
    [0.0, 0.0, 0.0, 0.0]
    >>> neighbourhood_agreement(a, a, k=1).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    sa, sb = _pair(a, b, k)
    return _overlap(sa, sb) / sa.k


def mutual_knn(a: Any, b: Any, k: int = 10) -> float:
    """Mutual k-nearest-neighbour alignment of two embedding sets of the same items (Huh et al., ICML 2024).

    ``m_kNN = 1/n sum_i |N_a(i) & N_b(i)| / k``, with ``N_x(i)`` the k nearest other items of item i by cosine in
    set x ("The Platonic Representation Hypothesis", Huh, Cheung, Wang, Isola, ICML 2024, Sec. 2 and Appendix A;
    their ``AlignmentMetrics.mutual_knn``). 1 for identical neighbourhoods, about ``k / (n - 1)`` for independent
    sets: that baseline depends on n and k, which is why :func:`~workbench.similarity.calibrated` calibrates it.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(200, 16))
    >>> mutual_knn(a, a, k=10)
    1.0
    >>> q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    >>> mutual_knn(a, a @ q, k=10)   # a rotation keeps every neighbourhood
    1.0
    >>> abs(mutual_knn(a, rng.normal(size=(200, 16)), k=10) - 10 / 199) < 0.02   # independent: about k / (n - 1)
    True
    """
    sa, sb = _pair(a, b, k)
    return float(_overlap(sa, sb).mean() / sa.k)


# -- CKA -----------------------------------------------------------------------------------------------------------
def _hsic_u_parts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """For the unbiased HSIC of the cosine kernel: the diagonal of K, the row sums of K with its diagonal removed,
    and the sum of all off-diagonal entries of K."""
    diag = np.einsum("ij,ij->i", x, x)
    rows = x @ x.sum(axis=0) - diag
    return diag, rows, float(rows.sum())


def _hsic_u(cross: float, n: int, pa: tuple[np.ndarray, np.ndarray, float], pb: tuple[np.ndarray, np.ndarray, float],
            perm: np.ndarray | None = None) -> float:
    """Unbiased HSIC (Song et al., JMLR 2012, eq. 5) of the cosine kernels of a and b[perm], given
    ``cross = ||A^T B[perm]||_F^2`` (= the sum of K_ij L_ij over all i, j)."""
    diag_a, rows_a, sum_a = pa
    diag_b, rows_b, sum_b = pb
    if perm is not None:
        diag_b, rows_b = diag_b[perm], rows_b[perm]
    trace = cross - float(diag_a @ diag_b)  # sum over i != j of K_ij L_ij
    return (trace + sum_a * sum_b / ((n - 1) * (n - 2)) - 2 * float(rows_a @ rows_b) / (n - 2)) / (n * (n - 3))


def _cka_from(xa: np.ndarray, xb: np.ndarray, unbiased: bool) -> float:
    n = len(xa)
    check_spread(xa, "a")
    check_spread(xb, "b")
    if unbiased:
        pa, pb = _hsic_u_parts(xa), _hsic_u_parts(xb)
        kl = _hsic_u(float(np.sum((xa.T @ xb) ** 2)), n, pa, pb)
        kk = _hsic_u(float(np.sum((xa.T @ xa) ** 2)), n, pa, pa)
        ll = _hsic_u(float(np.sum((xb.T @ xb) ** 2)), n, pb, pb)
    else:
        ca, cb = xa - xa.mean(axis=0), xb - xb.mean(axis=0)
        kl, kk, ll = (float(np.sum((u.T @ v) ** 2)) for u, v in ((ca, cb), (ca, ca), (cb, cb)))
    if not (kk > 0 and ll > 0):
        raise ValueError("CKA is undefined here: one set has no spread around its mean (all rows equal, or too few "
                         "items for the unbiased estimator)")
    return kl / np.sqrt(kk * ll)


def cka(a: Any, b: Any, unbiased: bool = False) -> float:
    """Linear centered kernel alignment of two embedding sets of the same items (Kornblith et al., ICML 2019).

    With the cosine kernels ``K = A A^T``, ``L = B B^T`` (rows L2-normalised) and ``H = I - 11^T / n``:

    ``CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))``, ``HSIC(K, L) = tr(K H L H)`` (biased; Gretton et al., 2005)

    computed as ``||A_c^T B_c||_F^2`` with column-centred ``A_c``, ``B_c``. With ``unbiased=True`` HSIC is the
    unbiased estimator of Song et al. (JMLR 2012, eq. 5), with ``K~``, ``L~`` the kernels with zero diagonals:

    ``HSIC_u = [tr(K~ L~) + 1^T K~ 1 1^T L~ 1 / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1] / (n (n-3))``

    (as in Huh et al., ICML 2024, ``AlignmentMetrics.cka(unbiased=True)``, without their ``1e-6`` in the
    denominator), which needs n >= 4 and removes the small-sample upward bias of the biased estimator.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(300, 32))
    >>> round(cka(a, a), 6), round(cka(a, a, unbiased=True), 6)
    (1.0, 1.0)
    >>> b = rng.normal(size=(300, 32))
    >>> bool(cka(a, b) > 0.05 > abs(cka(a, b, unbiased=True)))   # the biased estimator is inflated at small n
    True
    """
    sa, sb = _pair(a, b, None, min_rows=4 if unbiased else 2)
    return float(_cka_from(sa.x, sb.x, bool(unbiased)))


# -- CKNNA ---------------------------------------------------------------------------------------------------------
def _hsic_u_sparse(idx: np.ndarray, rev: np.ndarray, keep: np.ndarray, kv: np.ndarray, lv: np.ndarray) -> float:
    """Unbiased HSIC (Song et al. 2012, eq. 5) of two sparse kernels supported on the kNN slots ``keep``.

    ``K~[i, idx[i, s]] = kv[i, s]`` and ``L~[i, idx[i, s]] = lv[i, s]`` where ``keep[i, s]``, zero elsewhere; ``rev``
    gives the slot of i in the list of ``idx[i, s]`` (-1 if absent), for the ``tr(K~ L~)`` term (``L`` is symmetric,
    so ``L~_ji = L_ij`` when both (i, j) and (j, i) are kept).
    """
    n = len(idx)
    kv, lv = np.where(keep, kv, 0.0), np.where(keep, lv, 0.0)
    back = np.zeros_like(keep)
    has = rev >= 0
    back[has] = keep[idx[has], rev[has]]
    trace = float(np.sum(kv * lv * back))
    col_k = np.bincount(idx.ravel(), weights=kv.ravel(), minlength=n)
    row_l = lv.sum(axis=1)
    total = trace + kv.sum() * lv.sum() / ((n - 1) * (n - 2)) - 2 * float(col_k @ row_l) / (n - 2)
    return total / (n * (n - 3))


def _cknna_norms(sa: _Side, sb: _Side) -> float:
    assert sa.idx is not None and sb.idx is not None and sa.val is not None and sb.val is not None
    assert sa.rev is not None and sb.rev is not None
    full_a, full_b = np.ones(sa.idx.shape, dtype=bool), np.ones(sb.idx.shape, dtype=bool)
    kk = _hsic_u_sparse(sa.idx, sa.rev, full_a, sa.val, sa.val)
    ll = _hsic_u_sparse(sb.idx, sb.rev, full_b, sb.val, sb.val)
    if not (kk > 0 and ll > 0):
        raise ValueError("CKNNA is undefined here: the kNN kernel of one set has no positive unbiased HSIC with "
                         "itself (too few items, or neighbourhoods with non-positive cosines); try a larger k")
    return float(np.sqrt(kk * ll))


def _cknna_cross(sa: _Side, sb: _Side, perm: np.ndarray | None = None) -> float:
    """The numerator of CKNNA for a against b[perm]: HSIC_u of both kernels masked to the mutual kNN pairs."""
    assert sa.idx is not None and sb.idx is not None and sa.val is not None and sb.val is not None
    assert sa.rev is not None
    if perm is None:
        slots = _slots(sb.idx, sa.idx)
        rows = sb.val
    else:
        slots = _slots(sb.idx[perm], perm[sa.idx])
        rows = sb.val[perm]
    keep = slots >= 0
    lv = np.take_along_axis(rows, np.maximum(slots, 0), axis=1)
    return _hsic_u_sparse(sa.idx, sa.rev, keep, sa.val, lv)


def cknna(a: Any, b: Any, k: int = 10) -> float:
    """Centered kernel nearest-neighbour alignment (CKNNA; Huh et al., ICML 2024, Appendix A).

    CKA restricted to the pairs that are neighbours in both sets: with the cosine kernels K, L and the mask
    ``M_ij = 1[j in N_a(i)] 1[j in N_b(i)]`` (k nearest other items in each set),

    ``CKNNA = HSIC_u(M * K, M * L) / sqrt(HSIC_u(M_a * K, M_a * K) HSIC_u(M_b * L, M_b * L))``

    with ``M_a``, ``M_b`` each set's own kNN mask and ``HSIC_u`` the unbiased estimator (Song et al., JMLR 2012,
    eq. 5): the platonic-rep ``AlignmentMetrics.cknna(topk=k, unbiased=True)``, without their ``1e-6`` in the
    denominator. It weighs local agreement by how similar the shared neighbours are (mutual kNN only counts them).
    It needs n >= 4.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(200, 16))
    >>> round(cknna(a, a, k=10), 6)
    1.0
    >>> abs(cknna(a, rng.normal(size=(200, 16)), k=10)) < 0.1
    True
    """
    sa, sb = _pair(a, b, k, min_rows=4)
    return float(_cknna_cross(sa, sb) / _cknna_norms(sa, sb))


# -- the permutation null, compiled: every permutation in one pass over the neighbour lists -----------------------
def _null_overlap_kernel(idx_a, idx_b, perms, out):  # pragma: no cover - compiled by numba
    # out[p] = sum_i #{s : perm[idx_a[i, s]] in idx_b[perm[i]]} for b's rows permuted by perm = perms[p]
    n_perms, n = perms.shape
    k = idx_a.shape[1]
    for p in _prange(n_perms):
        perm = perms[p]
        total = 0
        for i in range(n):
            row = idx_b[perm[i]]
            for s in range(k):
                c = perm[idx_a[i, s]]
                for t in range(k):
                    if row[t] == c:
                        total += 1
                        break
        out[p] = total


def _null_cknna_kernel(idx_a, val_a, rev_a, idx_b, val_b, perms, out):  # pragma: no cover - compiled by numba
    # out[p] = the unbiased HSIC of K and L[perm, perm], both masked to the mutual kNN pairs (see _hsic_u_sparse)
    n_perms, n = perms.shape
    k = idx_a.shape[1]
    for p in _prange(n_perms):
        perm = perms[p]
        keep = np.zeros((n, k), dtype=np.bool_)
        lv = np.zeros((n, k))
        for i in range(n):
            row = perm[i]
            for s in range(k):
                c = perm[idx_a[i, s]]
                for t in range(k):
                    if idx_b[row, t] == c:
                        keep[i, s] = True
                        lv[i, s] = val_b[row, t]
                        break
        col_k = np.zeros(n)
        row_l = np.zeros(n)
        trace = 0.0
        sum_k = 0.0
        sum_l = 0.0
        for i in range(n):
            for s in range(k):
                if keep[i, s]:
                    j = idx_a[i, s]
                    kv = val_a[i, s]
                    sum_k += kv
                    sum_l += lv[i, s]
                    col_k[j] += kv
                    row_l[i] += lv[i, s]
                    r = rev_a[i, s]
                    if r >= 0 and keep[j, r]:
                        trace += kv * lv[i, s]
        cross = 0.0
        for j in range(n):
            cross += col_k[j] * row_l[j]
        out[p] = (trace + sum_k * sum_l / ((n - 1) * (n - 2)) - 2.0 * cross / (n - 2)) / (n * (n - 3))


def _prange(n):  # pragma: no cover - replaced by numba.prange when compiled
    return range(n)


_KERNELS: dict[str, Any] = {}


def _kernel(name: str) -> Any:
    """A null kernel, compiled once per process (cached on disk), parallel over permutations."""
    if name not in _KERNELS:
        import numba

        globals()["_prange"] = numba.prange
        jit = numba.njit(parallel=True, cache=True, fastmath=False)
        _KERNELS["overlap"] = jit(_null_overlap_kernel)
        _KERNELS["cknna"] = jit(_null_cknna_kernel)
    return _KERNELS[name]


def _null_overlap(sa: _Side, sb: _Side, perms: np.ndarray) -> np.ndarray:
    """Mutual kNN of a against b[perm] for every row of ``perms``."""
    assert sa.idx is not None and sb.idx is not None
    out = np.zeros(len(perms), dtype=np.int64)
    _kernel("overlap")(sa.idx, sb.idx, np.ascontiguousarray(perms, dtype=np.int64), out)
    return out / (sa.n * sa.k)


def _null_cknna_cross(sa: _Side, sb: _Side, perms: np.ndarray) -> np.ndarray:
    """The CKNNA numerator of a against b[perm] for every row of ``perms``."""
    assert sa.idx is not None and sb.idx is not None and sa.val is not None and sb.val is not None
    assert sa.rev is not None
    out = np.zeros(len(perms))
    _kernel("cknna")(sa.idx, sa.val, sa.rev, sb.idx, sb.val, np.ascontiguousarray(perms, dtype=np.int64), out)
    return out
