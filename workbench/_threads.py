"""Thread limits for torch, numba and FAISS, each restored afterwards (one place for every limit the package sets).

Examples
--------
>>> import torch
>>> before = torch.get_num_threads()
>>> with torch_threads(1):
...     torch.get_num_threads()
1
>>> torch.get_num_threads() == before
True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["available_cores", "faiss_threads", "numba_threads", "torch_threads"]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), not every core of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block on ``n`` torch CPU threads (``None``: leave the setting alone); restore it afterwards."""
    import torch

    previous = torch.get_num_threads()
    if n is not None and n != previous:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


@contextlib.contextmanager
def numba_threads(n: int | None = None) -> Iterator[None]:
    """Run the block on ``n`` numba threads (``None``: leave it); restore the count afterwards.

    umap-learn sets numba's thread count to its ``n_jobs`` while fitting; this undoes that too.
    """
    import numba

    previous = numba.get_num_threads()
    if n is not None:
        numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


@contextlib.contextmanager
def faiss_threads(n: int | None) -> Iterator[None]:
    """Run FAISS with ``n`` OpenMP threads (``None``: leave it); restore the previous setting afterwards."""
    import faiss

    previous = faiss.omp_get_max_threads()
    if n is not None:
        faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)
