"""Nearest-neighbour search over embeddings with FAISS: exact by default, approximate (HNSW, IVF) on request.

``Index`` wraps a FAISS index over L2-normalised rows (``metric="cosine"``: inner product on unit rows) and maps
FAISS's row positions back to your ids (integers, or strings such as an ``Embeddings``' ``id`` column).

- ``kind="exact"`` (default): ``IndexFlatIP``, brute force, the same top-k as sorting all cosines.
- ``kind="hnsw"``: ``IndexHNSWFlat(d, M, METRIC_INNER_PRODUCT)``; ``ef_search`` trades speed for recall.
- ``kind="ivf"``: ``IndexIVFFlat`` trained (k-means) on a seeded sample; ``nprobe`` trades speed for recall.

Approximate indexes measure what they trade: after every build, ``add`` or parameter change they compute
recall@10 against exact search on a seeded sample of the indexed rows (``measured_recall_``, shown in ``repr``).

``recall_at_k_faiss`` computes R@K through the exact index; on data without ties it equals
``workbench.retrieval.evaluate_queries``. With ties the two can differ: FAISS orders tied scores arbitrarily,
whereas ``workbench.retrieval`` is pessimistic (an irrelevant item scoring the same as the relevant one ranks
above it), so ``workbench.retrieval`` never reports more recall.

FAISS is an optional dependency: ``pip install "alignment-workbench[scale]"`` (or ``pip install faiss-cpu``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench._params import check_choice, check_int, check_ints, check_seed
from workbench._threads import available_cores, faiss_threads
from workbench._validation import as_matrix, describe_rows, relevance_pairs, unit_matrix32

__all__ = ["Index", "recall_at_k_faiss"]

_KINDS = ("exact", "hnsw", "ivf")
_METRICS = ("cosine", "ip")
_PARAMS: dict[str, dict[str, Any]] = {
    "exact": {},
    "hnsw": {"M": 32, "ef_construction": 40, "ef_search": 128},
    "ivf": {"nlist": None, "nprobe": 16, "train_size": None},
}
_MISSING = (
    'workbench.search needs FAISS: pip install "alignment-workbench[scale]" (or pip install faiss-cpu)'
)


def _faiss() -> Any:
    """The faiss module, imported on first use, or an ImportError saying what to install."""
    try:
        import faiss
    except ImportError as exc:
        raise ImportError(_MISSING) from exc
    return faiss


def _rows(values: Any, what: str, metric: str, dim: int | None = None) -> np.ndarray:
    """Contiguous float32 rows (unit rows for cosine); ValueError for NaN/inf, zero rows or a wrong dimension."""
    if hasattr(values, "vectors") and hasattr(values, "metadata"):  # an Embeddings
        values = values.vectors
    if (isinstance(values, np.ndarray) or hasattr(values, "detach")) and values.ndim == 1:  # numpy or torch (D,)
        values = values.reshape(1, -1)
    arr = as_matrix(values, what)
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{what} have {arr.shape[1]} dimensions but the index has {dim}")
    if metric == "cosine":
        return unit_matrix32(arr, what)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{what}: {int((~np.isfinite(arr).all(axis=1)).sum())} rows contain NaN or inf")
    return _float32_rows(arr, what)


def _float32_rows(arr: np.ndarray, what: str) -> np.ndarray:
    """``arr`` as contiguous float32 (FAISS's type) for ``metric="ip"``; a ValueError for values that float32
    cannot hold: above its largest (~3.4e38, they would become inf) or rows whose largest value is below its smallest
    normal (~1.2e-38, they would become zero or lose their digits), where inner products would be silently wrong."""
    peak = np.abs(arr).max(axis=1).astype(np.float64)
    limits = np.finfo(np.float32)
    for rows, problem in ((np.flatnonzero(peak > limits.max), f"values above float32's largest ({limits.max:.3g})"),
                          (np.flatnonzero((peak > 0) & (peak < limits.tiny)),
                           f"only values below float32's smallest normal ({limits.tiny:.3g})")):
        if len(rows):
            raise ValueError(
                f"{what}: {len(rows)} of {len(arr)} rows hold {problem} ({describe_rows(rows)}); FAISS scores in "
                "float32: rescale the rows, or use metric='cosine' (rows are normalised first)"
            )
    return np.ascontiguousarray(arr, dtype=np.float32)


def _as_ids(ids: Any, n: int, what: str) -> np.ndarray:
    """ids as an int64 array (non-negative) or an object array; ValueError for a wrong length or repeats."""
    if hasattr(ids, "to_numpy"):  # polars / pandas series
        ids = ids.to_numpy()
    arr = np.asarray(ids)
    if arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"{what}: need one id per row ({n}), got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        arr = arr.astype(np.int64)
        if (arr < 0).any():
            raise ValueError(f"{what}: integer ids must be >= 0 (-1 marks a missing result)")
        return arr
    out = np.empty(n, dtype=object)
    for i, value in enumerate(arr.tolist()):  # plain Python objects (str, not np.str_)
        out[i] = value
    missing = [i for i, v in enumerate(out) if v is None or (isinstance(v, float) and v != v)]
    if missing:  # None marks a missing result; NaN is not equal to itself, so no search result could be matched
        raise ValueError(f"{what}: {len(missing)} ids are missing (None or NaN), e.g. row {missing[0]}")
    return out


class Index:
    """A FAISS nearest-neighbour index over embedding rows, returning your ids.

    Parameters
    ----------
    vectors : (N x D) numpy array, torch tensor, ``workbench.Embeddings`` or an embedding store
        The rows to index. An ``Embeddings`` brings its ``ids`` (the metadata ``id`` column); so does an
        :class:`~workbench.store.EmbeddingStore` or the path of a store folder, read batch by batch into the float32
        rows FAISS keeps in memory anyway.
    ids : sequence of length N, optional
        One id per row: non-negative integers or any hashable objects (e.g. strings); unique. Default: the
        ``Embeddings``' or store's ids, else ``0..N-1``.
    kind : {"exact", "hnsw", "ivf"}, default "exact"
        ``IndexFlatIP`` (brute force), ``IndexHNSWFlat`` or ``IndexIVFFlat``. The approximate kinds keep a float32
        copy of the rows (N x D x 4 bytes) to measure their recall against exact search.
    metric : {"cosine", "ip"}, default "cosine"
        ``"cosine"`` L2-normalises rows and queries (inner product on unit rows); ``"ip"`` uses them as given.
    threads : int, optional
        OpenMP threads FAISS uses for building and searching (``faiss.omp_set_num_threads``; restored after each
        call). Default: all cores available to this process.
    measure_recall : bool, default True
        For approximate kinds, measure recall@10 on 1,000 sampled rows after each build, ``add`` or parameter
        change (``measured_recall_``). Costs about one exact search of 1,000 queries.
    seed : int, default 0
        Seeds the IVF training sample and the recall sample.
    **params
        ``kind="hnsw"``: ``M`` (32), ``ef_construction`` (40), ``ef_search`` (128).
        ``kind="ivf"``: ``nlist`` (default ``4 sqrt(N)``, at most N / 39), ``nprobe`` (16), ``train_size``
        (rows sampled for k-means; default ``min(N, 64 nlist)``).

    Attributes
    ----------
    measured_recall_ : float or None
        Recall@10 of the approximate index against exact search (1.0 for ``kind="exact"``; None if not measured).
    build_seconds_ : float
        Wall time of the last build (training and adding).

    Raises
    ------
    ValueError
        For NaN or inf values, zero rows (cosine), repeated or mismatched ids, an unknown kind or metric.
    ImportError
        When FAISS is not installed, naming ``pip install "alignment-workbench[scale]"``.

    Examples
    --------
    >>> import numpy as np
    >>> index = Index(np.eye(3, 4), ids=["a", "b", "c"])
    >>> scores, ids = index.search(np.array([[1.0, 0.1, 0.0, 0.0]]), k=2)
    >>> ids.tolist(), [round(float(s), 3) for s in scores[0]]
    ([['a', 'b']], [0.995, 0.1])
    """

    def __init__(
        self,
        vectors: Any,
        ids: Any = None,
        *,
        kind: str = "exact",
        metric: str = "cosine",
        threads: int | None = None,
        measure_recall: bool = True,
        seed: int = 0,
        **params: Any,
    ) -> None:
        import time

        check_choice(kind, "kind", _KINDS)
        check_choice(metric, "metric", _METRICS)
        unknown = sorted(set(params) - set(_PARAMS[kind]))
        if unknown:
            raise TypeError(f"kind={kind!r} takes parameters {sorted(_PARAMS[kind])}, got unexpected {unknown}")
        threads = check_int(threads, "threads", allow_none=True)
        seed = check_seed(seed)
        for name, value in params.items():  # M, ef_construction, ef_search, nprobe; nlist and train_size may be None
            params[name] = check_int(value, name, allow_none=_PARAMS[kind][name] is None)
        faiss = _faiss()
        self.kind, self.metric, self.seed = kind, metric, seed
        self.threads = threads or available_cores()
        self.measure_recall = measure_recall
        self.params: dict[str, Any] = {**_PARAMS[kind], **params}
        from workbench.store import as_store

        store = as_store(vectors, "vectors")
        if store is not None:
            vectors = store.to_embeddings()  # brings the store's ids
        if ids is None and hasattr(vectors, "ids") and hasattr(vectors, "metadata"):
            ids = vectors.ids
        x = _rows(vectors, "vectors", metric)
        n, d = x.shape
        self.dim = d
        self._default_ids = ids is None
        self._ids = np.arange(n, dtype=np.int64) if ids is None else _as_ids(ids, n, "ids")
        self._check_unique(self._ids)
        self._vectors: list[np.ndarray] = [] if kind == "exact" else [x]
        self.measured_recall_: float | None = 1.0 if kind == "exact" else None
        start = time.perf_counter()
        with faiss_threads(self.threads):
            if kind == "exact":
                self._index = faiss.IndexFlatIP(d)
            elif kind == "hnsw":
                self._index = faiss.IndexHNSWFlat(d, int(self.params["M"]), faiss.METRIC_INNER_PRODUCT)
                self._index.hnsw.efConstruction = int(self.params["ef_construction"])
                self._index.hnsw.efSearch = int(self.params["ef_search"])
            else:
                nlist = self.params["nlist"] or int(np.clip(4 * np.sqrt(n), 1, max(1, n // 39)))
                if nlist > n:
                    raise ValueError(f"nlist={nlist} clusters need at least as many vectors, got {n}")
                self.params["nlist"] = int(nlist)
                size = min(n, int(self.params["train_size"] or 64 * nlist))
                self.params["train_size"] = size
                self._quantizer = faiss.IndexFlatIP(d)
                self._index = faiss.IndexIVFFlat(self._quantizer, d, int(nlist), faiss.METRIC_INNER_PRODUCT)
                self._index.cp.seed = seed
                sample = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
                self._index.train(x[sample])
                self._index.nprobe = min(int(self.params["nprobe"]), int(nlist))
            self._index.add(x)
        self.build_seconds_ = time.perf_counter() - start
        self._remeasure()

    # -- bookkeeping -------------------------------------------------------------------------------------------------
    def _check_unique(self, ids: np.ndarray) -> None:
        n_unique = len(np.unique(ids)) if ids.dtype != object else len(set(ids.tolist()))
        if n_unique != len(ids):
            raise ValueError(f"ids must be unique: {len(ids) - n_unique} repeated")

    def _remeasure(self) -> None:
        if self.kind != "exact" and self.measure_recall:
            self.measured_recall_ = self.recall_at(k=min(10, len(self)))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def ids(self) -> np.ndarray:
        """The ids of the indexed rows, in insertion order."""
        return self._ids

    @property
    def vectors(self) -> np.ndarray:
        """The indexed rows as FAISS stores them (unit rows for cosine), float32 (N x D)."""
        if self.kind == "exact":
            return self._index.reconstruct_n(0, len(self))
        if len(self._vectors) > 1:
            self._vectors = [np.concatenate(self._vectors)]
        return self._vectors[0]

    def __repr__(self) -> str:
        params = "".join(f", {k}={v}" for k, v in self.params.items() if k != "train_size")
        recall = ""
        if self.kind != "exact":
            r = self.measured_recall_
            recall = ", measured recall@10=" + ("not measured" if r is None else f"{r:.3f}")
        return f"Index(kind={self.kind!r}, metric={self.metric!r}, n={len(self)}, dim={self.dim}{params}{recall})"

    def set_params(self, **params: Any) -> Index:
        """Change search-time parameters (``ef_search`` for HNSW, ``nprobe`` for IVF) and re-measure recall.

        Examples
        --------
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(2000, 16))
        >>> index = Index(x, kind="ivf", nlist=16, nprobe=1)
        >>> index.set_params(nprobe=16).measured_recall_   # all lists probed: exact
        1.0
        """
        allowed = {"hnsw": {"ef_search"}, "ivf": {"nprobe"}}.get(self.kind, set())
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise TypeError(f"kind={self.kind!r} can change {sorted(allowed)} after building, got {unknown}")
        for name, value in params.items():
            self.params[name] = check_int(value, name)
        if "ef_search" in params:
            self._index.hnsw.efSearch = self.params["ef_search"]
        if "nprobe" in params:
            self._index.nprobe = min(self.params["nprobe"], self.params["nlist"])
        self._remeasure()
        return self

    # -- building and searching ------------------------------------------------------------------------------------
    def add(self, vectors: Any, ids: Any = None) -> Index:
        """Append rows (and their ids) to the index; approximate kinds re-measure their recall.

        ``ids`` may be omitted only when the index was built without ids (they continue ``N, N+1, ...``).

        Examples
        --------
        >>> import numpy as np
        >>> index = Index(np.eye(4)[:2], ids=["x", "y"]).add(np.eye(4)[2:], ids=["z", "w"])
        >>> len(index), index.search(np.eye(4)[3], k=1)[1].tolist()
        (4, [['w']])
        """
        if ids is None and hasattr(vectors, "ids") and hasattr(vectors, "metadata"):
            ids = vectors.ids
        x = _rows(vectors, "vectors", self.metric, self.dim)
        if ids is None:
            if not self._default_ids:
                raise ValueError("this index has custom ids: pass ids for the added rows")
            new = np.arange(len(self), len(self) + len(x), dtype=np.int64)
        else:
            new = _as_ids(ids, len(x), "ids")
            if (new.dtype == object) != (self._ids.dtype == object):
                raise ValueError(f"ids must be of the same kind as the index's ({self._ids.dtype}), got {new.dtype}")
            self._default_ids = False
        merged = np.concatenate([self._ids, new])
        self._check_unique(merged)
        with faiss_threads(self.threads):
            self._index.add(x)
        self._ids = merged
        if self.kind != "exact":
            self._vectors.append(x)
        self._remeasure()
        return self

    def _search_positions(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = check_int(k, "k")
        if self.kind == "exact" and k > len(self):
            raise ValueError(f"k={k} is more than the {len(self)} indexed rows")
        q = _rows(queries, "queries", self.metric, self.dim)
        with faiss_threads(self.threads):
            scores, positions = self._index.search(q, int(k))
        return scores, positions

    def search(self, queries: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The k best-scoring rows for each query: ``(scores, ids)``, best first.

        Parameters
        ----------
        queries : (Q x D) or (D,) array, torch tensor or ``Embeddings``
            L2-normalised here for ``metric="cosine"``.
        k : int
            Neighbours per query (at most N for ``kind="exact"``).

        Returns
        -------
        scores : float32 array (Q x k)
            Inner products (cosines), as FAISS returns them.
        ids : array (Q x k)
            The rows' ids: int64 with -1, or object with None, where FAISS found fewer than k neighbours.

        Raises
        ------
        ValueError
            For k < 1, k > N (exact), NaN/inf or zero queries (cosine), or queries of another dimension.
        """
        scores, positions = self._search_positions(queries, k)
        missing = positions < 0
        ids = self._ids[np.where(missing, 0, positions)]
        if missing.any():
            if ids.dtype == object:
                ids[missing] = None  # type: ignore[call-overload]  # numpy's stubs omit None, valid in object arrays
            else:
                ids[missing] = -1
        return scores, ids

    def recall_at(self, k: int = 10, sample: int = 1000, seed: int | None = None, queries: Any = None) -> float:
        """Measured recall@k of this index against exact search: mean |approximate top-k & exact top-k| / k.

        Parameters
        ----------
        k : int, default 10
        sample : int, default 1000
            Without ``queries``: the indexed rows ``np.sort(np.random.default_rng(seed).choice(N, min(sample, N),
            replace=False))`` are the queries (each finds itself, as in the usual self-query benchmark).
        seed : int, optional
            Default: the index's seed.
        queries : array, optional
            Queries to measure with instead of sampled rows.

        Examples
        --------
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(500, 8))
        >>> Index(x).recall_at(k=5)
        1.0
        """
        faiss = _faiss()
        k = check_int(k, "k", high=len(self))
        sample = check_int(sample, "sample")
        seed = None if seed is None else check_seed(seed)
        if self.kind == "exact":
            return 1.0
        base = self.vectors
        if queries is None:
            rng = np.random.default_rng(self.seed if seed is None else seed)
            q = base[np.sort(rng.choice(len(base), size=min(sample, len(base)), replace=False))]
        else:
            q = _rows(queries, "queries", self.metric, self.dim)
        with faiss_threads(self.threads):
            _, exact = faiss.knn(q, base, int(k), metric=faiss.METRIC_INNER_PRODUCT)
            _, approx = self._index.search(q, int(k))
        hits = sum(len(np.intersect1d(a[a >= 0], e)) for a, e in zip(approx, exact, strict=True))
        return float(hits / (len(q) * k))


def recall_at_k_faiss(
    queries: Any,
    gallery: Any,
    relevance: Any,
    ks: Sequence[int] = (1, 5, 10),
    *,
    threads: int | None = None,
) -> dict[str, float]:
    """R@K through an exact FAISS index: the share of queries with a relevant gallery item in their top k.

    Same inputs and ``recall@k`` keys as ``workbench.retrieval.evaluate_queries``, and the same values on data
    without ties. Ties differ: FAISS orders tied scores arbitrarily, ``workbench.retrieval`` ranks a relevant item
    below every irrelevant one with the same score (pessimistic).

    Parameters
    ----------
    queries, gallery, relevance
        As in ``workbench.retrieval.per_query_ranks`` (relevance checked by the same
        ``workbench._validation.relevance_pairs``: every query needs a relevant gallery row).
    ks : R@K cut-offs (searched up to ``min(max(ks), G)``).

    Examples
    --------
    >>> import numpy as np
    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> g = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    >>> recall_at_k_faiss(q, g, [(0, 2), (1, 1)], ks=(1, 2, 3))
    {'recall@1': 0.0, 'recall@2': 0.5, 'recall@3': 1.0}
    """
    ks = check_ints(ks, "ks")
    index = Index(gallery, kind="exact", threads=threads)
    q = _rows(queries, "queries", "cosine", index.dim)
    pairs = relevance_pairs(relevance, len(q), len(index), "relevance")
    depth = min(max(ks), len(index))
    _, top = index._search_positions(q, depth)
    # 1-based position of each relevant pair in its query's top list (depth + 1 when absent)
    match = top[pairs[:, 0]] == pairs[:, 1][:, None]
    position = np.where(match.any(axis=1), match.argmax(axis=1) + 1, depth + 1)
    rank = np.full(len(q), depth + 1, dtype=np.int64)
    np.minimum.at(rank, pairs[:, 0], position)
    return {f"recall@{k}": float(np.mean(rank <= k)) for k in ks}
