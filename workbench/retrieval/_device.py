"""The ranking engine's torch side: score blocks and the tie rule's counts kept on a device (a GPU; CPU in tests).

:func:`workbench.retrieval._ranking.rank_streamed` drives an *engine*: the CPU engine (numba kernels, counts in
numpy) or :class:`_TorchEngine` here. On a device everything the loop accumulates stays there until the end:

- the inputs go over once: the resident rows, and an in-memory streamed side as a whole when it fits in a quarter of
  the free device memory (a store, or a larger array, goes over chunk by chunk, each row once per pass);
- the relevant scores are gathered and the thresholds (each query's relevant scores in ascending order, padded with
  ``+inf``) are built on the device, and the counts are added up there: no block waits for the host. Index arrays
  go host -> device without waiting (``non_blocking``); the only device -> host copies are the setup's duplicate
  check and the final counts and relevant scores;
- the default block is sized to the device: a quarter of the free memory, at most :data:`DEVICE_BLOCK_BYTES`.

Ties and cuBLAS. The tie rule needs identical vectors to score bit-identically. MKL does (measured, see
``_blocks``); cuBLAS does not promise it: on Hopper GPUs it may split the inner dimension of some output tiles
across thread blocks (split-K / stream-K), so two identical caption rows in different tiles can be summed in a
different order and differ in the last bit. A tie between a relevant and an irrelevant duplicate then falls either
way. That is the likely cause of the 4e-5 drift of mAP and the mean rank against the CPU path with 2,000 duplicate
captions on an H200 (recall equal): the engine's logic equals the CPU path's exactly on CPU tensors, so what
differed was the GPU's scores (not verified on a GPU: none was lent to the session that wrote this). The engine
therefore makes duplicates score identically by construction: identical rows (found once by a hash of their bits,
then compared exactly) get the score row or column of their first copy, in every block (tested by rounding the
product's rows and columns apart on purpose). Scores of distinct vectors still come from cuBLAS, whose float32
rounding can differ from MKL's by a unit in the last place: two distinct items scoring within one rounding step of
each other can swap (rare on real data; one such pair moves a mean rank over 25,000 queries by 4e-5). TF32 is
switched off for the engine's products (the CPU computes full float32).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from workbench.retrieval._blocks import MIN_BLOCK

#: Largest default score block on a device (bytes).
DEVICE_BLOCK_BYTES = 4 << 30


def is_tensor(x: Any) -> bool:
    """A torch tensor (checked without importing torch)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach") and hasattr(x, "device")


def device_block_bytes(device: Any) -> int:
    """Bytes of scores per block on ``device``: a quarter of the free memory, at most DEVICE_BLOCK_BYTES."""
    import torch

    device = torch.device(device)
    if device.type != "cuda":
        return 256 << 20
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(64 << 20, min(DEVICE_BLOCK_BYTES, free // 4)))


def unit32(x: Any, what: str) -> Any:
    """A tensor's rows as unit float32 on its device, by the rule of ``workbench._validation.unit_matrix32``: float32
    rows whose norms are all within 1e-6 of 1 are kept as they are, otherwise every row is divided by its float64
    norm and rounded to float32. NaN/inf, zero rows and shapes are errors naming ``what``."""
    import torch

    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{what} must be a non-empty 2-D matrix (N x D); got shape {tuple(x.shape)}")
    if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{what} must hold numbers; got dtype {x.dtype}")
    x = x.detach()
    norms = torch.linalg.vector_norm(x.double(), dim=1)
    bad = ~torch.isfinite(norms) | (norms == 0) | (norms < 1e-150) | (norms > 1e150)
    if bool(bad.any()):  # one check per input (a host sync); rare rows go through the host's exact rules
        from workbench._validation import unit_matrix32

        return torch.from_numpy(unit_matrix32(x.cpu().double().numpy(), what)).to(x.device)
    if x.dtype == torch.float32 and bool(((norms - 1.0).abs() < 1e-6).all()):
        return x.contiguous()
    return (x.double() / norms[:, None]).float().contiguous()


def _row_representatives(x: Any) -> np.ndarray:
    """For each row of a device tensor the first row with exactly the same bits (itself when unique), on the host.

    Rows are grouped by a 64-bit hash of their bits on the device; a group is then checked exactly (a collision
    leaves the rows apart). One device -> host copy of an index per row.
    """
    import torch

    x = x.contiguous()
    weights = torch.randint(1, 2**61, (x.shape[1],), generator=torch.Generator().manual_seed(0)).to(x.device)
    step = 65_536  # rows at a time: the int64 view of a chunk is step x D x 8 bytes
    # wraps around int64: a hash, equal for equal rows
    hashed = torch.cat([(x[s : s + step].view(torch.int32).to(torch.int64) * weights).sum(dim=1)
                        for s in range(0, len(x), step)])
    _, inverse = torch.unique(hashed, return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), x.shape[0], dtype=torch.int64, device=x.device)
    first.scatter_reduce_(0, inverse, torch.arange(x.shape[0], device=x.device), reduce="amin")
    rep = first[inverse]
    same = torch.cat([(x[s : s + step] == x[rep[s : s + step]]).all(dim=1) for s in range(0, len(x), step)])
    rep = torch.where(same, rep, torch.arange(x.shape[0], device=x.device))
    return rep.cpu().numpy()


@contextlib.contextmanager
def _full_float32() -> Iterator[None]:
    """No TF32 for the engine's products (restored afterwards)."""
    import warnings

    import torch

    with warnings.catch_warnings():  # newer torch prefers fp32_precision and may warn about the older flag
        warnings.simplefilter("ignore")
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cuda.matmul.allow_tf32 = previous


class _TorchEngine:
    """torch matmul, gathering and counting on ``device``; every accumulator stays there until :meth:`finish`.

    ``resident`` is a unit float32 numpy array or tensor; duplicates among its rows score identically (their
    columns are copied from the first copy's). Streamed rows: see :meth:`stream_rows`.
    """

    def __init__(self, resident: Any, block_rows: int, device: Any) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        res = resident if is_tensor(resident) else torch.from_numpy(np.ascontiguousarray(resident))
        res = res.to(self.device)
        self.n_cols = len(res)
        if len(res) < MIN_BLOCK:
            res = torch.cat([res, res.new_zeros((MIN_BLOCK - len(res), res.shape[1]))])
        self.a_t = res.T.contiguous()
        rep = _row_representatives(res[: self.n_cols])
        dup = np.flatnonzero(rep != np.arange(self.n_cols))
        self.dup_cols = self._index(dup) if len(dup) else None
        self.rep_cols = self._index(rep[dup]) if len(dup) else None
        self.row_rep: np.ndarray | None = None  # set by stream_rows for an in-memory stream
        self.block: Any = None
        self.sides: dict[int, dict[str, Any]] = {}
        self._precision = _full_float32()
        self._precision.__enter__()

    def _index(self, values: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(values, dtype=np.int64)).to(self.device, non_blocking=True)

    def stream_rows(self, array: Any) -> Any:
        """An in-memory streamed side on the device (once, when it fits), with its duplicate rows found; else None."""
        torch = self.torch
        nbytes = array.shape[0] * array.shape[1] * 4
        if self.device.type == "cuda" and nbytes > torch.cuda.mem_get_info(self.device)[0] // 4:
            return None
        rows = (array if is_tensor(array) else torch.from_numpy(np.ascontiguousarray(array))).to(self.device)
        self.row_rep = _row_representatives(rows)
        return rows

    # -- scores ------------------------------------------------------------------------------------------------
    def scores(self, block: Any, n: int, reuse: bool = False, first_row: int | None = None) -> Any:
        """Scores of the first n rows of ``block`` (a padded block, numpy or on the device) against the resident rows.

        Duplicate resident columns, and duplicate rows within this block when ``first_row`` (the block's first
        streamed row) is known, get the bits of their first copy.
        """
        torch = self.torch
        x = block if is_tensor(block) else torch.from_numpy(np.ascontiguousarray(block)).to(self.device,
                                                                                             non_blocking=True)
        scores = self._product(x)[:n, : self.n_cols]
        if self.dup_cols is not None:
            scores.index_copy_(1, self.dup_cols, scores.index_select(1, self.rep_cols))
        if first_row is not None and self.row_rep is not None:
            rep = self.row_rep[first_row : first_row + n] - first_row
            dup = np.flatnonzero((rep >= 0) & (rep != np.arange(n)))
            if len(dup):
                scores.index_copy_(0, self._index(dup), scores.index_select(0, self._index(rep[dup])))
        return scores

    def _product(self, x: Any) -> Any:
        """The block's full product with the resident rows (cuBLAS on a GPU)."""
        return x @ self.a_t

    def padded(self, rows: Any, start: int, size: int) -> Any:
        """Rows ``start:start + size`` of a device tensor, zero-padded to ``size`` rows in one reused buffer."""
        part = rows[start : start + size]
        if len(part) == size:
            return part
        if self.block is None or self.block.shape != (size, rows.shape[1]):
            self.block = rows.new_zeros((size, rows.shape[1]))
        self.block[: len(part)] = part
        self.block[len(part) :] = 0
        return self.block

    # -- per-side accumulators ----------------------------------------------------------------------------------
    def _state(self, side: Any) -> dict[str, Any]:
        key = id(side)
        if key not in self.sides:
            torch = self.torch
            q = side.pairs[:, 0]
            self.sides[key] = {
                "query": self._index(q),
                "position": self._index(np.arange(len(q)) - side.indptr[q]),
                "positive": torch.zeros(len(q), dtype=torch.float32, device=self.device),
                "counts": torch.zeros((side.n_queries, side.width), dtype=torch.int64, device=self.device),
            }
        return self.sides[key]

    def set_positives(self, side: Any, where: Any, scores: Any, rows: np.ndarray, cols: np.ndarray) -> None:
        """``positive[where] = scores[rows, cols]`` on the device (``where`` a slice or an index array)."""
        state = self._state(side)
        index = where if isinstance(where, slice) else self._index(where)
        state["positive"][index] = scores[self._index(rows), self._index(cols)]

    def thresholds(self, side: Any, start: int, stop: int) -> Any:
        """Queries start..stop's relevant scores, ascending, padded with +inf (only the best without AP)."""
        torch = self.torch
        state = self._state(side)
        lo, hi = int(side.indptr[start]), int(side.indptr[stop])
        query = state["query"][lo:hi] - start
        positive = state["positive"][lo:hi]
        if not side.with_ap:
            best = torch.full((stop - start,), -torch.inf, dtype=torch.float32, device=self.device)
            return best.scatter_reduce_(0, query, positive, reduce="amax")[:, None]
        out = torch.full((stop - start, side.width), torch.inf, dtype=torch.float32, device=self.device)
        out[query, state["position"][lo:hi]] = positive
        return out.sort(dim=1).values

    def count_rows(self, side: Any, scores: Any, start: int, stop: int) -> None:
        """Counts of the streamed queries start..stop: their scores >= each of their thresholds, row by row."""
        thr = self.thresholds(side, start, stop)
        counts = self._state(side)["counts"][start:stop]
        for k in range(thr.shape[1]):
            counts[:, k] += (scores >= thr[:, k, None]).sum(dim=1)

    def columns(self, side: Any) -> Any:
        """The resident queries' thresholds, built once before pass 2."""
        return self.thresholds(side, 0, side.n_queries)

    def count_columns(self, side: Any, scores: Any, thr: Any) -> None:
        counts = self._state(side)["counts"]
        for k in range(thr.shape[1]):
            counts[:, k] += (scores >= thr[None, :, k]).sum(dim=0)

    def finish(self, side: Any) -> None:
        """Bring a side's relevant scores and counts to the host (the one device -> host copy of the results)."""
        state = self._state(side)
        side.positive_scores = state["positive"].cpu().numpy()
        side.counts = state["counts"].cpu().numpy()

    def close(self) -> None:
        self._precision.__exit__(None, None, None)
