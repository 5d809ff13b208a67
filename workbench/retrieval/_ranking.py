"""The one ranking engine of :mod:`workbench.retrieval`: the tie rule, the counting kernels and the rank loop.

The rank rule (pessimistic ties)
--------------------------------
A query's rank is 1 + the number of irrelevant gallery items that score at least as high as its best relevant
item: a tie between a relevant and an irrelevant item counts against the relevant one, so no input can overstate
recall. Average precision counts, for the k-th best relevant item, the irrelevant items scoring at least as high.

Average precision and ties
--------------------------
A query with m relevant items gets ``AP = (1/m) sum_{k=1..m} k / rank_k``: the relevant items are taken best score
first, and ``rank_k = k + (irrelevant items scoring >= the k-th relevant item's score)``. Every irrelevant item that
ties a relevant one is thus ranked ahead of it (the same pessimistic rule as the rank); relevant items tied with each
other take the consecutive values of k. Without tied scores this is scikit-learn's
``sklearn.metrics.average_precision_score`` exactly (tested per query to 1e-12). With ties it can be LOWER than
scikit-learn's, which takes a group of tied items at once and gives every relevant item in it the precision
``(relevant scoring >= s) / (all scoring >= s)``; here the j-th relevant item of a tied group gets
``(K + j) / (K + j + N)`` (K relevant items above the group, N irrelevant items at or above it). The two agree
whenever no two relevant items of a query tie with each other while an irrelevant item scores at least as high
(a relevant item tied only with irrelevant items gets the same precision from both). Example, scores of one query's
gallery: irrelevant 0.9, relevant 0.8, relevant 0.8, irrelevant 0.8, relevant 0.5: AP here is
``(1/3 + 2/4 + 3/5) / 3 = 0.478``, scikit-learn's ``(2/4 + 2/4 + 3/5) / 3 = 0.533``. mAP is the mean of the
queries' AP.
The counting is "how many scores in a row (or column) are >= each threshold", fused in the numba kernels
:func:`_count_rows` / :func:`_count_columns` (or torch on a GPU); :meth:`_Side.result` turns counts into ranks.

The rank loop
-------------
:func:`rank_streamed` is the only loop: one side is *resident* (R rows in memory), the other a *stream* of rows
(:class:`~workbench.retrieval._rows._Rows`: an embedding store read chunk by chunk, or an in-memory array, which is
just a stream whose chunks are slices). Every score block is ``chunk @ resident.T``, one shape for all blocks
(:mod:`workbench.retrieval._blocks`), so identical vectors score bit-identically and ties stay ties.

- Streamed items as queries (their row of scores is whole in one block) are ranked in a single pass.
- Resident items as queries need their relevant items' scores before counting who beats them: pass 1 scores only
  the streamed rows that are relevant to some query (packed into blocks of the same shape, so with one positive
  per query and S >> R it costs about R/S of a full pass), pass 2 counts over every block. When both directions
  are asked for, pass 1 is a full pass anyway (it ranks the streamed queries) and its blocks are kept for pass 2
  when the whole score matrix fits in ``keep_bytes`` (the evaluators pass :data:`MAX_SCORE_BYTES`).

On ``device="cuda"`` the torch engine of :mod:`workbench.retrieval._device` runs the same loop: scores from cuBLAS
in full float32 (TF32 off), relevant scores, thresholds and counts kept on the GPU until the end, duplicate rows and
columns made to score identically (cuBLAS does not promise it; see that module). Its code is tested on CPU tensors
(``device="torch:cpu"``, the torch engine on the CPU) against the numba path, ties and duplicates included.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench._params import check_int
from workbench._validation import relevance_pairs
from workbench.retrieval._blocks import MIN_BLOCK, columns, matmul
from workbench.retrieval._device import _TorchEngine, device_block_bytes, is_tensor
from workbench.retrieval._rows import _Rows, _unit32

#: Default cap on the score matrix kept in memory (bytes); above it scores are recomputed per chunk.
MAX_SCORE_BYTES = 1 << 30
_DEFAULT_CHUNK_BYTES = 256 << 20
#: With only the resident side as queries, default blocks are at most max(this, relevant streamed rows) rows.
PASS1_MIN_ROWS = 1024
#: ``image_retrieval``: captions query the images; ``text_retrieval``: images query the captions.
DIRECTIONS = ("image_retrieval", "text_retrieval")
DEVICES = ("auto", "cpu", "cuda")
#: ``device="auto"`` uses a GPU only for jobs with more multiply-adds than this (1000 x 400 x 512).
CUDA_ABOVE = 2e8


# -- numba kernels ------------------------------------------------------------------------------------------------
def _count_rows(scores, thresholds, counts):  # pragma: no cover - compiled by numba
    # counts[r, k] += #{c : scores[r, c] >= thresholds[r, k]}; thresholds ascending, padded with +inf
    n_rows, n_cols = scores.shape
    m = thresholds.shape[1]
    for r in _prange(n_rows):
        lowest = thresholds[r, 0]
        for c in range(n_cols):
            s = scores[r, c]
            if s >= lowest:
                for k in range(m):
                    if s >= thresholds[r, k]:
                        counts[r, k] += 1
                    else:
                        break


def _count_columns(scores, thresholds, counts, parts):  # pragma: no cover - compiled by numba
    # counts[c, k] += #{r : scores[r, c] >= thresholds[c, k]}; parallel over (row part x block of columns) tiles,
    # each part counting into its own slice of ``partial`` (no two threads write one place), summed at the end
    n_rows, n_cols = scores.shape
    m = thresholds.shape[1]
    block = 256
    n_blocks = (n_cols + block - 1) // block
    rows_per_part = (n_rows + parts - 1) // parts
    partial = np.zeros((parts, n_cols, m), dtype=np.int64)
    for t in _prange(parts * n_blocks):
        p = t // n_blocks
        c0 = (t % n_blocks) * block
        c1 = min(n_cols, c0 + block)
        for r in range(p * rows_per_part, min(n_rows, (p + 1) * rows_per_part)):
            for c in range(c0, c1):
                s = scores[r, c]
                if s >= thresholds[c, 0]:
                    for k in range(m):
                        if s >= thresholds[c, k]:
                            partial[p, c, k] += 1
                        else:
                            break
    for p in range(parts):
        for c in range(n_cols):
            for k in range(m):
                counts[c, k] += partial[p, c, k]


def _column_parts(n_rows: int, n_cols: int, parallel: bool) -> int:
    """Row parts for :func:`_count_columns`: enough (row part x 256 columns) tiles for every thread twice over, each
    part at least 1,024 rows; 1 on one thread. Few resident queries (COCO's 5,000 images: 20 column blocks) would
    otherwise keep most of 16 cores idle."""
    if not parallel:
        return 1
    import numba

    n_blocks = -(-n_cols // 256)
    return int(max(1, min(n_rows // 1024, -(-2 * numba.get_num_threads() // n_blocks))))


def _prange(n):  # pragma: no cover - replaced by numba.prange when compiled
    return range(n)


#: Score blocks with more entries than this are counted by all cores; smaller ones on one (numba's threads cost
#: more than they save on small blocks, and far more when another process holds a core).
PARALLEL_ABOVE = 4_000_000
_KERNELS: dict[bool, tuple[Any, Any]] = {}


def _kernels(parallel: bool = True) -> tuple[Any, Any]:
    """The two counting kernels, compiled once per process (and cached on disk) in a parallel or serial variant."""
    if parallel not in _KERNELS:
        import numba

        # the kernels' globals see numba.prange; njit(parallel=False) treats it as range
        globals()["_prange"] = numba.prange
        jit = numba.njit(parallel=parallel, cache=True, fastmath=False)
        _KERNELS[parallel] = (jit(_count_rows), jit(_count_columns))
    return _KERNELS[parallel]


def count_at_least(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """How many entries of each score row are at least each of that row's thresholds: the tie rule's count.

    ``counts[r, k] = #{c : scores[r, c] >= thresholds[r, k]}`` with the engine's numba kernel. A score equal to a
    threshold is counted, so ``1 + count`` of the items other than a relevant one is a pessimistic rank: ties count
    against the relevant item. Every rank in the package that counts "who scores at least as high" goes through
    this rule (zero-shot ranks of the true class, ranks in a mixed-modality index, the retrieval engine itself).

    Parameters
    ----------
    scores : ndarray (R x C), float32 or float64
    thresholds : ndarray (R x m), ascending along each row (pad unused places with ``+inf``)

    Examples
    --------
    >>> import numpy as np
    >>> count_at_least(np.array([[0.5, 0.2, 0.5, 0.7]]), np.array([[0.5, 0.7]]))
    array([[3, 1]])
    """
    scores = np.ascontiguousarray(scores)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    thresholds = np.ascontiguousarray(thresholds, dtype=scores.dtype)
    if scores.ndim != 2 or thresholds.ndim != 2 or len(thresholds) != len(scores):
        raise ValueError(f"count_at_least needs R x C scores and R x m thresholds; got {scores.shape} and "
                         f"{thresholds.shape}")
    counts = np.zeros(thresholds.shape, dtype=np.int64)
    count_rows, _ = _kernels(parallel=scores.size > PARALLEL_ABOVE)
    count_rows(scores, thresholds, counts)
    return counts


# -- the tie rule ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RankResult:
    """Per-query results: ``ranks`` (1-based rank of the first relevant item) and ``average_precision``.

    Both follow the pessimistic tie rule (see the module docstring of ``workbench.retrieval._ranking``: with relevant
    items tied with each other, ``average_precision`` can be below scikit-learn's ``average_precision_score``).
    """

    ranks: np.ndarray
    average_precision: np.ndarray | None

    def recall(self, k: int) -> float:
        return float(np.mean(self.ranks <= check_int(k, "k")))


class _Side:
    """Bookkeeping for one direction: the relevant gallery items of every query and the counts against them."""

    def __init__(self, pairs: np.ndarray, n_queries: int, with_ap: bool) -> None:
        per_query = np.bincount(pairs[:, 0], minlength=n_queries)  # >= 1 each: pairs come from _relevance
        self.pairs = pairs  # sorted by query
        self.indptr = np.concatenate([[0], np.cumsum(per_query)])
        self.sizes = per_query
        self.width = int(per_query.max()) if with_ap else 1
        self.with_ap = with_ap
        self.n_queries = n_queries
        self.positive_scores = np.empty(len(pairs), dtype=np.float32)
        self.counts = np.zeros((n_queries, self.width), dtype=np.int64)

    def _sorted(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs lo:hi (whole queries) sorted by (query, score): query ids, scores, position within the query."""
        q = self.pairs[lo:hi, 0]
        ps = self.positive_scores[lo:hi]
        order = np.lexsort((ps, q))
        q, ps = q[order], ps[order]
        return q, ps, np.arange(lo, hi) - self.indptr[q]

    def thresholds(self, queries: slice) -> np.ndarray:
        """Ascending relevant scores per query (only the best one unless with_ap), padded with +inf."""
        lo, hi = self.indptr[queries.start], self.indptr[queries.stop]
        out = np.full((queries.stop - queries.start, self.width), np.inf, dtype=np.float32)
        if self.with_ap:
            q, ps, pos = self._sorted(lo, hi)
            out[q - queries.start, pos] = ps
        else:
            out[:, 0] = np.maximum.reduceat(self.positive_scores[lo:hi], self.indptr[queries.start : queries.stop] - lo)
        return out

    def result(self) -> RankResult:
        q, ps, pos = self._sorted(0, len(self.pairs))
        m = self.sizes[q]
        # relevant items scoring >= each relevant score: from the start of its run of equal scores to the group end
        new_run = np.ones(len(q), dtype=bool)
        new_run[1:] = (q[1:] != q[:-1]) | (ps[1:] != ps[:-1])
        run_start = np.maximum.accumulate(np.where(new_run, np.arange(len(q)), 0))
        relevant_ge = self.indptr[q + 1] - run_start
        if self.with_ap:
            negatives_ge = self.counts[q, pos] - relevant_ge
        else:  # only the best score was counted: it sits at the last position of each query
            negatives_ge = self.counts[q, 0] - relevant_ge
        last = self.indptr[1:] - 1
        ranks = 1 + negatives_ge[last]
        ap = None
        if self.with_ap:
            k = m - pos  # the k-th best relevant item (ascending order within the query)
            ap = np.add.reduceat(k / (k + negatives_ge), self.indptr[:-1]) / self.sizes
        return RankResult(ranks.astype(np.int64), ap)


def _summary(prefix: str, result: RankResult, ks: Sequence[int]) -> dict[str, float]:
    out = {f"{prefix}recall@{k}": result.recall(k) for k in ks}
    out[f"{prefix}mean_rank"] = float(result.ranks.mean())
    out[f"{prefix}median_rank"] = float(np.median(result.ranks))
    if result.average_precision is not None:
        out[f"{prefix}mAP"] = float(result.average_precision.mean())
    return out


# -- device --------------------------------------------------------------------------------------------------------
def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: str = "auto", multiply_adds: float | None = None) -> str:
    """``"cpu"`` or ``"cuda"`` for a ``device`` argument.

    ``"auto"`` picks CUDA when ``torch.cuda.is_available()`` and the job has more than :data:`CUDA_ABOVE`
    multiply-adds (smaller ones finish on the CPU before a GPU would have started); ``"cuda"`` without a GPU is a
    ValueError, not a silent fallback.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("auto", multiply_adds=1e6)   # too small to be worth a GPU
    'cpu'
    """
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cpu":
        return "cpu"
    if device == "auto" and multiply_adds is not None and multiply_adds <= CUDA_ABOVE:
        return "cpu"
    available = _cuda_available()
    if device == "cuda" and not available:
        raise ValueError("device='cuda' but torch.cuda.is_available() is False (no GPU, or a CPU-only torch build); "
                         "use device='auto' or 'cpu'")
    return "cuda" if available else "cpu"


# -- engines: where scores are computed and counted ------------------------------------------------------------------
class _CpuEngine:
    """The in-memory path's matmul (torch on the CPU) and numba counting kernels, counting into the sides' arrays.

    The interface :func:`rank_streamed` drives (the torch engine of ``_device`` has the same methods).
    """

    def __init__(self, resident: np.ndarray, block_rows: int) -> None:
        self.a_t = columns(resident)  # the same layout as the in-memory path: the same bits
        self.n_cols = len(resident)
        self.out: np.ndarray | None = None
        self.parallel = block_rows * len(resident) > PARALLEL_ABOVE
        self.count_rows_kernel, self.count_columns_kernel = _kernels(parallel=self.parallel)

    def stream_rows(self, array: np.ndarray) -> None:
        """The CPU reads an in-memory streamed side where it is (nothing to copy)."""
        return None

    def scores(self, block: np.ndarray, n: int, reuse: bool = False, first_row: int | None = None) -> np.ndarray:
        """Scores of the first n rows of ``block``; with ``reuse`` into one buffer, valid until the next call."""
        if not reuse:
            return matmul(block, self.a_t, n, self.n_cols)
        if self.out is None:
            self.out = np.empty((len(block), self.a_t.shape[1]), dtype=np.float32)
        return matmul(block, self.a_t, n, self.n_cols, out=self.out)

    def set_positives(self, side: _Side, where: Any, scores: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
        side.positive_scores[where] = scores[rows, cols]

    def count_rows(self, side: _Side, scores: np.ndarray, start: int, stop: int) -> None:
        self.count_rows_kernel(scores, side.thresholds(slice(start, stop)), side.counts[start:stop])

    def columns(self, side: _Side) -> np.ndarray:
        return side.thresholds(slice(0, side.n_queries))

    def count_columns(self, side: _Side, scores: np.ndarray, thresholds: np.ndarray) -> None:
        parts = _column_parts(len(scores), scores.shape[1], self.parallel)
        self.count_columns_kernel(scores, thresholds, side.counts, parts)

    def finish(self, side: _Side) -> None:
        """The kernels counted into the side's arrays in place."""

    def close(self) -> None:
        """Nothing held."""


def _engine(resident: Any, block_rows: int, device: str) -> Any:
    """The CPU engine for ``"cpu"``; else the torch engine on ``device`` (``"torch:cpu"`` runs it on CPU tensors)."""
    if device == "cpu":
        return _CpuEngine(resident, block_rows)
    return _TorchEngine(resident, block_rows, device.removeprefix("torch:"))


# -- ranking -----------------------------------------------------------------------------------------------------------
def rank_streamed(
    resident: np.ndarray,
    stream: Any,
    resident_pairs: np.ndarray | None,
    stream_pairs: np.ndarray | None,
    *,
    with_ap: bool = False,
    chunk_size: int | None = None,
    device: str = "cpu",
    keep_bytes: int = 0,
) -> tuple[RankResult | None, RankResult | None]:
    """Ranks of the resident rows as queries over the streamed rows, and of the streamed rows over the resident ones.

    Parameters
    ----------
    resident : (R x D) unit float32 array
        The side kept in memory.
    stream : (S x D) array or embedding store
        The side read ``chunk_size`` rows at a time (unit rows; a store's rows are checked chunk by chunk).
    resident_pairs, stream_pairs : (P x 2) integer arrays of ``(resident row, streamed row)``, or None
        Relevance for the resident queries and for the streamed queries (None: that side is not ranked).
    with_ap : bool
        Also average precision over all relevant items.
    chunk_size : int, optional
        Streamed rows per score block (memory ~ chunk_size x R x 4 bytes; default about 256 MB of scores, and with
        only resident queries at most max(PASS1_MIN_ROWS, relevant streamed rows) rows).
    device : {"cpu", "cuda"}
        Where scores are computed and counted (see :func:`resolve_device`).
    keep_bytes : int
        Keep pass 1's score blocks for pass 2 when the whole S x R matrix is at most this many bytes.

    Returns
    -------
    (RankResult or None, RankResult or None)
        The resident queries' and the streamed queries' results.

    Examples
    --------
    >>> import numpy as np
    >>> gallery = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    >>> queries = np.array([[0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
    >>> mine, _ = rank_streamed(queries, gallery, np.array([[0, 2], [1, 1]]), None, chunk_size=1)
    >>> mine.ranks.tolist()   # query 0: 0.6 is beaten by 0.96 and 0.8; query 1: 0.8 by 1.0
    [3, 2]
    """
    rows = stream if isinstance(stream, _Rows) else _Rows(stream, "streamed rows")
    if not is_tensor(resident):
        resident = _unit32(resident, "resident rows")  # unchanged when already unit float32 rows
    if resident_pairs is None and stream_pairs is None:
        raise ValueError("nothing to rank: pass resident_pairs, stream_pairs or both")
    if resident.shape[1] != rows.dim:
        raise ValueError(f"the resident rows have {resident.shape[1]} dimensions but the streamed rows have {rows.dim}")
    n_a, n_b = len(resident), rows.n
    chunk_size = check_int(chunk_size, "chunk_size", allow_none=True)
    a_side = None if resident_pairs is None else _Side(
        relevance_pairs(resident_pairs, n_a, n_b, "resident queries"), n_a, with_ap)
    b_side = None if stream_pairs is None else _Side(
        relevance_pairs(np.asarray(stream_pairs)[:, ::-1], n_b, n_a, "streamed queries"), n_b, with_ap)
    if chunk_size is None:
        block_bytes = _DEFAULT_CHUNK_BYTES if device == "cpu" else device_block_bytes(device.removeprefix("torch:"))
        chunk_size = max(1, block_bytes // (4 * n_a))
        if b_side is None:  # pass 1 pads the relevant rows to whole blocks: keep blocks near their number
            assert a_side is not None  # at least one side is ranked (checked above)
            chunk_size = min(chunk_size, max(PASS1_MIN_ROWS, len(np.unique(a_side.pairs[:, 1]))))
    chunk = min(int(chunk_size), n_b)
    size = max(chunk, MIN_BLOCK)  # one block shape for every block
    engine = _engine(resident, chunk, device)
    try:
        return _rank_loop(engine, rows, a_side, b_side, chunk, size, keep_bytes)
    finally:
        engine.close()


def _rank_loop(engine: Any, rows: _Rows, a_side: _Side | None, b_side: _Side | None, chunk: int, size: int,
               keep_bytes: int) -> tuple[RankResult | None, RankResult | None]:
    """The passes of :func:`rank_streamed` over the score blocks (see the module docstring)."""
    n_a, n_b = engine.n_cols, rows.n
    on_device = None if rows.array is None else engine.stream_rows(rows.array)
    buffer = np.zeros((size, rows.dim), dtype=np.float32) if on_device is None else None

    def blocks(wanted: np.ndarray | None = None, reuse: bool = True) -> Iterator[tuple[np.ndarray, Any]]:
        """``(streamed row positions, their scores)`` block by block; only the ``wanted`` rows if given."""
        if on_device is None:
            assert buffer is not None
            for idx, vectors in rows.chunks(chunk, wanted):
                block = vectors  # a full block is scored where it lies: same shape, same bits, no copy
                if len(vectors) != size or not vectors.flags.c_contiguous:
                    buffer[: len(vectors)] = vectors
                    buffer[len(vectors) :] = 0.0
                    block = buffer
                contiguous = wanted is None
                yield idx, engine.scores(block, len(vectors), reuse, int(idx[0]) if contiguous else None)
        elif wanted is None:
            for s in range(0, n_b, chunk):
                idx = np.arange(s, min(s + chunk, n_b))
                yield idx, engine.scores(engine.padded(on_device, s, size), len(idx), reuse, s)
        else:
            chosen = np.flatnonzero(wanted)
            for s in range(0, len(chosen), chunk):
                idx = chosen[s : s + chunk]
                picked = on_device.index_select(0, engine._index(idx))
                yield idx, engine.scores(engine.padded(picked, 0, size), len(idx), reuse)

    if a_side is not None:  # the resident queries' relevant pairs in streamed-row order
        by_row = np.argsort(a_side.pairs[:, 1], kind="stable")
        row_of = a_side.pairs[by_row, 1]

    def gather_resident(idx: np.ndarray, scores: Any) -> None:
        assert a_side is not None  # called only when the resident queries are ranked
        lo, hi = np.searchsorted(row_of, [idx[0], idx[-1] + 1])
        sel = by_row[lo:hi]  # every streamed row of these pairs is in idx (idx holds all wanted rows in its range)
        pos = np.searchsorted(idx, a_side.pairs[sel, 1])
        engine.set_positives(a_side, sel, scores, pos, a_side.pairs[sel, 0])

    keep = a_side is not None and b_side is not None and n_a * n_b * 4 <= keep_bytes
    kept: list[Any] = []
    # pass 1: the streamed queries (whole rows), and the relevant scores of the resident queries
    if b_side is not None:
        for idx, scores in blocks(reuse=not keep):
            s, e = int(idx[0]), int(idx[-1]) + 1
            lo, hi = b_side.indptr[s], b_side.indptr[e]
            engine.set_positives(b_side, slice(lo, hi), scores, b_side.pairs[lo:hi, 0] - s, b_side.pairs[lo:hi, 1])
            engine.count_rows(b_side, scores, s, e)
            if a_side is not None:
                gather_resident(idx, scores)
            if keep:
                kept.append(scores)
    elif a_side is not None:  # only the streamed rows some resident query needs, packed into full blocks
        wanted = np.zeros(n_b, dtype=bool)
        wanted[a_side.pairs[:, 1]] = True
        for idx, scores in blocks(wanted):
            gather_resident(idx, scores)
    # pass 2: every streamed row against the resident queries' thresholds
    if a_side is not None:
        thresholds = engine.columns(a_side)
        for scores in (iter(kept) if keep else (scores for _, scores in blocks())):
            engine.count_columns(a_side, scores, thresholds)
    for side in (a_side, b_side):
        if side is not None:
            engine.finish(side)
    return (None if a_side is None else a_side.result()), (None if b_side is None else b_side.result())
