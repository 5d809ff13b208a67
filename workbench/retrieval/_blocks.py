"""Score blocks for exact retrieval: ``rows @ columns`` in float32 such that identical vectors score identically.

The pessimistic tie rule of :mod:`workbench.retrieval._ranking` (an irrelevant item scoring exactly as high as the
relevant one ranks above it) needs identical vectors to get bit-identical scores, within one block and across the
blocks of a chunked or streamed evaluation. BLAS does not promise that: a product's rounding can depend on the shape
and on a row's position in the kernel's tiling. Measured here (float32, D in 12..512, shapes up to 25,000 x 100,000):

- torch's CPU matmul (MKL) scores identical rows and columns bit-identically whenever both sides of the block have at
  least 12 rows, and gives the same bits for the same shape on 1 or 2 threads;
- numpy's OpenBLAS rounds identical rows apart at many shapes (e.g. 12 x 17 at D=64), and a 1-row product is a
  matrix-vector kernel in both.

So every block goes through torch, at least :data:`MIN_BLOCK` x MIN_BLOCK (zero-padded), and every block of one sweep
has the same shape (the last one padded).
"""

from __future__ import annotations

import numpy as np

from workbench._threads import torch_threads

__all__ = ["MIN_BLOCK", "SERIAL_MATMUL_BELOW", "columns", "matmul", "padded_rows"]


#: Every score block is at least this many rows by columns (zero-padded); see the module docstring.
MIN_BLOCK = 16


#: Products with at most this many multiply-adds run on one thread: waking a second OpenMP thread costs more, and
#: milliseconds per call when another process holds a core.
SERIAL_MATMUL_BELOW = 1e7


def padded_rows(x: np.ndarray, rows: slice, size: int) -> np.ndarray:
    """``x[rows]`` padded with zero rows to ``size`` rows, so every score block of a sweep has one shape."""
    block = x[rows]
    if len(block) == size:
        return block
    return np.concatenate([block, np.zeros((size - len(block), x.shape[1]), dtype=x.dtype)])


def columns(a: np.ndarray) -> np.ndarray:
    """``a.T`` contiguous, padded with zero columns to at least MIN_BLOCK."""
    if len(a) >= MIN_BLOCK:
        return np.ascontiguousarray(a.T)
    return np.ascontiguousarray(np.concatenate([a, np.zeros((MIN_BLOCK - len(a), a.shape[1]), dtype=a.dtype)]).T)


def matmul(
    x: np.ndarray, y: np.ndarray, n_rows: int | None = None, n_cols: int | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """``(x @ y)[:n_rows, :n_cols]`` for float32 arrays through torch (MKL on x86; also faster than numpy's OpenBLAS
    here, 0.82 s vs 1.10 s for COCO-5k), contiguous. ``out`` (float32, ``(len(x), y.shape[1])``) is reused for the
    product instead of a fresh array (same bits; saves page faults on large blocks).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.tile(np.float32([[0.6, 0.8]]), (20, 1))            # 20 identical gallery rows
    >>> q = np.float32([[0.28, 0.96], [1.0, 0.0]])
    >>> s = matmul(padded_rows(q, slice(0, 2), MIN_BLOCK), columns(g), 2, 20)
    >>> s.shape, len(np.unique(s[0])), len(np.unique(s[1]))     # identical rows, identical scores
    ((2, 20), 1, 1)
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but keep numpy as the fallback
        scores = np.matmul(x, y, out=out)
    else:
        # torch wants writable arrays (store rows are read-only); it never writes to these
        x, y = (np.require(v, requirements=["C", "W"]) for v in (x, y))
        serial = x.shape[0] * x.shape[1] * y.shape[1] <= SERIAL_MATMUL_BELOW
        with torch_threads(1 if serial else None):  # the same bits on any number of threads; small ones run on one
            if out is None:
                scores = (torch.from_numpy(x) @ torch.from_numpy(y)).numpy()
            else:
                torch.matmul(torch.from_numpy(x), torch.from_numpy(y), out=torch.from_numpy(out))
                scores = out
    scores = scores[:n_rows]
    return scores if n_cols is None or n_cols == y.shape[1] else np.ascontiguousarray(scores[:, :n_cols])
