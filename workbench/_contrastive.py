"""The symmetric InfoNCE (CLIP) loss, once, for torch tensors and numpy arrays of logits (a private leaf module).

Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021: for a batch of
``n`` pairs with logits ``L = scale * a @ b.T`` (row i of a belongs with row i of b), the loss is the mean of the
cross-entropy of each row of ``L`` against its diagonal entry and of each column against its diagonal entry, as
``open_clip.ClipLoss``. Used by :mod:`workbench.correct` (LinearAdapter), :mod:`workbench.train` and
:mod:`workbench.gap` (``clip_loss``, the gap-shift engine). torch is imported only for torch logits.

Examples
--------
>>> import numpy as np
>>> round(float(symmetric_info_nce(np.eye(4))), 4)   # -log(e / (e + 3))
0.7437
>>> import torch
>>> round(float(symmetric_info_nce(torch.eye(4, dtype=torch.float64))), 4)
0.7437
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["symmetric_info_nce"]


def symmetric_info_nce(logits: Any) -> Any:
    """The symmetric InfoNCE loss of square ``logits`` (pairs on the diagonal).

    Parameters
    ----------
    logits : torch.Tensor of shape (n, n), or numpy array of shape (..., n, n)
        A torch tensor gives a differentiable scalar tensor (``torch.nn.functional.cross_entropy`` both ways).
        A numpy array is computed in float64 with a stable log-sum-exp; leading axes are batches, and the result
        has their shape (a float64 scalar array for one batch).
    """
    if isinstance(logits, np.ndarray):
        x = np.asarray(logits, dtype=np.float64)
        diag = np.diagonal(x, axis1=-2, axis2=-1)
        loss_a = (_logsumexp(x, axis=-1) - diag).mean(axis=-1)
        loss_b = (_logsumexp(x, axis=-2) - diag).mean(axis=-1)
        return (loss_a + loss_b) / 2
    import torch
    import torch.nn.functional as F

    target = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))).squeeze(axis)
