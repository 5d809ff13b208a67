"""The two sides of a cross-modal input given either as one PairedEmbeddings or as two arrays (a, b)."""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench._validation import as_matrix
from workbench.data._paired import PairedEmbeddings

__all__ = ["modality_matrices"]


def modality_matrices(a: Any, b: Any = None, *, caller: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The embedding matrices of two modalities of one space, from one PairedEmbeddings or from two arrays.

    A :class:`PairedEmbeddings` gives each modality's rows once (``p.a.vectors``, ``p.b.vectors``; not the
    row-paired :meth:`~PairedEmbeddings.matched`), so the two matrices may have different row counts. Anything
    :class:`Embeddings`-like, numpy, torch or a frame is accepted as an array; rows are returned as given (not
    normalised).

    Parameters
    ----------
    a : PairedEmbeddings or array-like of shape (N, D)
    b : array-like of shape (M, D), optional
        Required with an array ``a``; must be omitted with a PairedEmbeddings.
    caller : str, optional
        Prefixes the TypeErrors (``"fit"`` gives ``"fit: two arrays (a, b) ..."``).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The two 2-D numeric matrices, of one dimension D.

    Raises
    ------
    TypeError
        Both a PairedEmbeddings and ``b``, an array without ``b``, or a non-numeric input.
    ValueError
        A matrix that is not 2-D or is empty, or dimensions that differ.

    Examples
    --------
    >>> import numpy as np
    >>> from workbench.data import PairedEmbeddings, modality_matrices
    >>> texts = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]])
    >>> p = PairedEmbeddings.from_arrays(np.eye(3), texts, pairs=[[0, 0], [1, 1], [2, 2], [0, 3]])
    >>> [m.shape for m in modality_matrices(p)]
    [(3, 3), (4, 3)]
    >>> modality_matrices(np.eye(2), None, caller="fit")
    Traceback (most recent call last):
        ...
    TypeError: fit: two arrays (a, b) or one PairedEmbeddings are needed
    """
    prefix = f"{caller}: " if caller else ""
    if isinstance(a, PairedEmbeddings):
        if b is not None:
            raise TypeError(f"{prefix}pass either a PairedEmbeddings or two arrays (a, b), not both")
        a, b = a.a.vectors, a.b.vectors
    elif b is None:
        raise TypeError(f"{prefix}two arrays (a, b) or one PairedEmbeddings are needed")
    ma, mb = as_matrix(a, "a"), as_matrix(b, "b")
    if ma.shape[1] != mb.shape[1]:
        raise ValueError(f"dimensions differ: a has {ma.shape[1]}, b has {mb.shape[1]}; both must share one space")
    return ma, mb
