"""Correctors learned from the pairs: a cross-modal map that fits which row goes with which.

:class:`Procrustes` solves for the orthogonal map of b onto a in closed form (one SVD); :class:`LinearAdapter`
trains one linear map per modality with the symmetric InfoNCE loss. Unlike the maps of ``_moments``, shuffling the
training pairs changes what they learn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from workbench._contrastive import symmetric_info_nce
from workbench._params import check_number, check_seed
from workbench._threads import torch_threads
from workbench.correct._base import _Corrector, _integer

__all__ = ["LinearAdapter", "Procrustes"]

#: LinearAdapter trains in float32: a learning rate or weight decay above float32's largest value cannot be used.
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Procrustes takes its SVD on one BLAS thread up to this dimension.
_ONE_THREAD_SVD_DIM = 1024


def _epoch_mean(losses: list[Any], sizes: list[int], n: int) -> float:
    total = 0.0
    for loss, size in zip(losses, sizes, strict=True):
        total += float(loss) * size
    return total / n


def _adamw(params: list[Any], *, lr: float, weight_decay: float, device: Any) -> Any:
    """A function applying one AdamW step (``torch.optim.AdamW``'s defaults) to ``params`` given their gradients.

    On the CPU it is torch's single-tensor AdamW update written out, operation for operation (bit-identical to
    ``torch.optim.AdamW``, tested): constructing a ``torch.optim`` optimizer imports ``torch._dynamo``, several
    seconds on the first fit of a process. Elsewhere it is ``torch.optim.AdamW`` itself (its multi-tensor path).
    """
    import torch

    if device.type != "cpu":
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

        def optim_step(grads: tuple[Any, ...]) -> None:
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            optimizer.step()

        return optim_step
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    exp_avgs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
    exp_avg_sqs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in params]
    count = [0]

    def step(grads: tuple[Any, ...]) -> None:
        count[0] += 1
        t = float(count[0])
        with torch.no_grad():
            for p, grad, exp_avg, exp_avg_sq in zip(params, grads, exp_avgs, exp_avg_sqs, strict=True):
                if weight_decay != 0:
                    p.mul_(1 - lr * weight_decay)
                exp_avg.lerp_(grad, 1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                step_size = lr / (1 - beta1**t)
                denom = (exp_avg_sq.sqrt() / (1 - beta2**t) ** 0.5).add_(eps)
                p.addcdiv_(exp_avg, denom, value=-step_size)

    return step


class Procrustes(_Corrector):
    """Rotate b onto a with the orthogonal map that best fits the training pairs (orthogonal Procrustes).

    ``rotation_`` is the orthogonal R minimising ``||b R - a||_F`` over the training pairs: with the SVD
    ``b^T a = U S V^T``, ``R = U V^T`` (Schönemann 1966; equal to ``scipy.linalg.orthogonal_procrustes(b, a)``).
    ``transform`` returns ``(a, normalize(b @ R))``: a is only normalised. Being orthogonal, R keeps all
    similarities within b and rotates its whole cloud, gap included, onto a.

    With fewer independent training pairs than dimensions (rank r of ``b^T a`` below D) the fit fixes R on an
    r-dimensional subspace only; any orthogonal map between the remaining directions ``U_perp`` and ``V_perp``
    fits as well, and an SVD routine returns one of them at random (it changed with the BLAS thread count). Here R
    is the minimiser closest to the identity (largest trace): ``R = U_r V_r^T + U_perp Q V_perp^T`` with Q the
    orthogonal polar factor of ``(V_perp^T U_perp)^T`` -- the fitted rotation moves held-out items off the training
    span as little as possible, and the result no longer depends on the SVD routine. For one pair it is the plane
    rotation taking b's item onto a's.

    Attributes
    ----------
    rotation_ : ndarray of shape (D, D)
        The orthogonal map applied to b's rows (``b @ rotation_``).
    n_features_in_ : int
        The dimension D seen at fit.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    >>> b = a @ np.array([[0.0, 1.0], [-1.0, 0.0]])          # a rotated by 90 degrees
    >>> a2, b2 = Procrustes().fit_transform(a, b)
    >>> bool(np.allclose(a2, b2))
    True
    """

    def _fit(self, a: np.ndarray, b: np.ndarray) -> None:
        import contextlib

        from threadpoolctl import threadpool_limits

        # Up to D = 1024 the SVD runs on one BLAS thread: a 512 x 512 SVD takes 0.07 s of CPU there and 0.3-0.9 s on
        # two threads of a busy 2-core machine (which spin-wait); the rotation agrees to about 1e-16.
        small = a.shape[1] <= _ONE_THREAD_SVD_DIM
        with threadpool_limits(limits=1, user_api="blas") if small else contextlib.nullcontext():
            self.rotation_ = _closest_procrustes_rotation(b.T @ a)

    def _transform(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return a, b @ self.rotation_


def _closest_procrustes_rotation(m: np.ndarray) -> np.ndarray:
    """The orthogonal R maximising ``tr(R^T m)`` (the Procrustes rotation), closest to the identity where m's rank
    leaves it free (see :class:`Procrustes`)."""
    u, s, vt = np.linalg.svd(m)
    rank = int(np.sum(s > s[0] * max(m.shape) * np.finfo(float).eps)) if s.size and s[0] > 0 else 0
    rotation = u[:, :rank] @ vt[:rank]
    if rank < len(s):
        u_perp, v_perp = u[:, rank:], vt[rank:].T
        p, _, wt = np.linalg.svd(v_perp.T @ u_perp)  # maximise tr(U_perp Q V_perp^T) = tr(Q V_perp^T U_perp)
        rotation += u_perp @ (wt.T @ p.T) @ v_perp.T
    return rotation


class LinearAdapter(_Corrector):
    """One linear map per modality, trained with the symmetric InfoNCE (CLIP) loss on the training pairs.

    Each modality gets a bias-free ``torch.nn.Linear(D, dim)`` (no bias: a per-modality offset would only
    re-learn a gap shift). When ``dim == D`` both start at the identity, so training departs from the pretrained
    alignment; otherwise both start at the same seeded random semi-orthogonal matrix (which preserves all
    cosines when ``dim >= D``). The loss is the CLIP loss on L2-normalised outputs: cross-entropy of
    ``a @ b.T / temperature`` against the matching pairs, averaged over both directions, minimised with AdamW on
    shuffled mini-batches of at most ``batch_size`` pairs (the epoch is split into equal batches). The learned
    weights are kept as numpy arrays, so ``transform`` needs no torch; torch is imported by ``fit`` only.

    Fitting is deterministic for a given ``seed`` on CPU: the start matrix and the shuffling use their own seeded
    generators, and torch's global random state is left untouched. On CPU, training runs on one thread (the
    previous ``torch.get_num_threads()`` is restored afterwards): the steps are tiny matrix products. With the
    defaults, 250 pairs of 512-d embeddings train in about 0.2 s.

    Parameters
    ----------
    dim : int, optional
        Output dimension; None keeps the input dimension D.
    epochs : int, default 10
        Passes over the training pairs (0 keeps the start matrices).
    lr : float, default 1e-4
        AdamW learning rate. With few pairs, more epochs or a larger rate overfit: the training loss keeps
        falling while the held-out loss rises again.
    batch_size : int, default 64
        Largest number of pairs per step (each pair's negatives are the other pairs of its batch).
    temperature : float, default 0.01
        The loss's fixed temperature (logit scale ``1 / temperature``). The default matches the logit scale 100
        that CLIP learns; CLIP's *initial* 0.07 rewards mere sharpening of similarities, which lowers the loss at
        that temperature while retrieval gets worse.
    weight_decay : float, default 0.0
        AdamW's decoupled weight decay.
    seed : int, default 0
        Seeds the start matrix (when ``dim != D``) and the shuffling.
    device : str or torch.device, optional
        Where to train; None means ``"cpu"``.

    Attributes
    ----------
    weight_a_, weight_b_ : ndarray of shape (dim, D)
        The learned maps (float64); ``transform`` computes ``normalize(a @ weight_a_.T)``.
    loss_curve_ : list of float
        Mean training loss of each epoch.
    n_features_in_ : int
        The input dimension D seen at fit.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(64, 8))
    >>> b = a + rng.normal(size=(64, 8)) + 2                  # noisy copies, shifted
    >>> adapter = LinearAdapter(dim=4, epochs=20, lr=1e-2, temperature=0.1).fit(a, b)
    >>> adapter.weight_a_.shape, bool(adapter.loss_curve_[-1] < adapter.loss_curve_[0])
    ((4, 8), True)
    >>> a2, b2 = adapter.transform(a[:5], b)
    >>> a2.shape, b2.shape, a2.dtype
    ((5, 4), (64, 4), dtype('float32'))
    """

    def __init__(
        self,
        dim: int | None = None,
        epochs: int = 10,
        lr: float = 1e-4,
        batch_size: int = 64,
        temperature: float = 0.01,
        weight_decay: float = 0.0,
        seed: int = 0,
        device: Any = None,
    ) -> None:
        self.dim = dim
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.temperature = temperature
        self.weight_decay = weight_decay
        self.seed = seed
        self.device = device

    def _start_matrix(self, dim_in: int, dim_out: int, seed: int) -> np.ndarray:
        if dim_out == dim_in:
            return np.eye(dim_in)
        q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(max(dim_in, dim_out), min(dim_in, dim_out))))
        return q.T if dim_out < dim_in else q  # orthonormal rows (dim_out < D) or columns (dim_out > D)

    def _fit(self, a: np.ndarray, b: np.ndarray) -> None:
        dim_in = a.shape[1]
        dim_out = dim_in if self.dim is None else _integer(self.dim, "dim", low=1)
        epochs = _integer(self.epochs, "epochs", low=0)
        lr = check_number(self.lr, "lr", low=0.0, high=_FLOAT32_MAX, inclusive=False)  # torch trains in float32
        batch_size = _integer(self.batch_size, "batch_size", low=2)
        temperature = check_number(self.temperature, "temperature", low=0.0, inclusive=False)
        weight_decay = check_number(self.weight_decay, "weight_decay", low=0.0, high=_FLOAT32_MAX)
        seed = check_seed(self.seed)

        import torch
        import torch.nn.functional as F

        try:
            device = torch.device("cpu" if self.device is None else self.device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device {self.device!r} is not a torch device: {exc}") from None
        start = torch.as_tensor(self._start_matrix(dim_in, dim_out, seed), dtype=torch.float32)
        # Two bias-free linear maps as bare tensors (what torch.nn.Linear(bias=False) computes: F.linear(x, W));
        # no nn.Module, so the first fit does not import sympy (skip_init) and torch._dynamo (torch.optim).
        weights = [start.clone().to(device).requires_grad_(True) for _ in range(2)]
        xa = torch.as_tensor(a, dtype=torch.float32, device=device)
        xb = torch.as_tensor(b, dtype=torch.float32, device=device)
        logit_scale = 1.0 / temperature
        step = _adamw(weights, lr=lr, weight_decay=weight_decay, device=device)
        shuffle = torch.Generator().manual_seed(seed)
        n_batches = math.ceil(len(a) / batch_size)
        sizes = [len(rows) for rows in torch.tensor_split(torch.arange(len(a)), n_batches)]  # the same every epoch
        epoch_losses: list[list[Any]] = []
        # Steps are tiny matrix products: extra threads gain nothing and, on a busy machine, their spin-waiting
        # slows training a hundredfold (one CPU thread while fitting; the previous count is restored).
        with torch_threads(1 if device.type == "cpu" else None):
            for _ in range(epochs):
                order = torch.randperm(len(a), generator=shuffle).to(device)
                losses = []
                for rows in torch.tensor_split(order, n_batches):
                    za = F.normalize(F.linear(xa[rows], weights[0]), dim=1)
                    zb = F.normalize(F.linear(xb[rows], weights[1]), dim=1)
                    loss = symmetric_info_nce(logit_scale * za @ zb.T)
                    step(torch.autograd.grad(loss, weights))
                    losses.append(loss.detach())
                epoch_losses.append(losses)
        # the batch losses come to the host once, at the end (no sync per step); the epoch mean as before: the
        # float64 sum of loss * batch size in batch order, over the pairs
        curve = [_epoch_mean(losses, sizes, len(a)) for losses in epoch_losses]
        layer_a, layer_b = weights
        weight_a = layer_a.detach().cpu().double().numpy()
        weight_b = layer_b.detach().cpu().double().numpy()
        if not (np.isfinite(weight_a).all() and np.isfinite(weight_b).all() and np.isfinite(curve).all()):
            raise ValueError(
                f"LinearAdapter training diverged (the loss or the weights became inf or NaN) with lr={lr:g}, "
                f"temperature={temperature:g} and weight_decay={weight_decay:g}: lower lr or weight_decay, or raise "
                "temperature"
            )
        self.weight_a_, self.weight_b_ = weight_a, weight_b
        self.loss_curve_ = curve

    def _transform(self, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return a @ self.weight_a_.T, b @ self.weight_b_.T
