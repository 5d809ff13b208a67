"""Contrastive alignment training: watch a modality gap form, and change.

:class:`ContrastiveTrainer` trains a dual encoder (two towers from :mod:`workbench.towers`, or any modules with
``prepare``/``forward``) on paired items with the symmetric InfoNCE loss of CLIP (Radford et al., ICML 2021; fixed
or learnable temperature) or the sigmoid loss of SigLIP (Zhai et al., ICCV 2023). Either tower can be frozen, which
gives locked-image tuning (LiT, Zhai et al., CVPR 2022) and progressive, ImageBind-style alignment of a new
modality to a frozen space (Girdhar et al., CVPR 2023). After every epoch it records the training loss, the
temperature, and on held-out pairs the centroid distance (Liang et al., NeurIPS 2022) and R@1 both ways, so a
study can show the gap forming. Training is seeded and deterministic on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import polars as pl

from workbench._contrastive import symmetric_info_nce
from workbench._params import InvalidParameterError, check_choice, check_int, check_number, check_seed
from workbench._threads import torch_threads

__all__ = [
    "ContrastiveTrainer", "TrainedEncoder", "ValidationSet", "learning_curve", "summarise_seeds", "temperature_study",
]


@dataclass
class ValidationSet:
    """Held-out pairs for the per-epoch metrics: items of both sides and their relevance as (a row, b row) pairs.

    With ``relevance=None`` row i of a matches row i of b.
    """

    items_a: Any
    items_b: Any
    relevance: np.ndarray | None = None


#: Training precisions: float32, or autocast to bfloat16 / float16 (open_clip's amp_bf16 / amp).
PRECISIONS = ("fp32", "bf16", "fp16")


def _autocast(device_type: str, precision: str) -> Any:
    """``torch.autocast`` for ``precision`` on ``device_type`` (a no-op context for fp32)."""
    import contextlib

    import torch

    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


#: The range training keeps the temperature in (the logit scale 1 / tau in [1, 100], as CLIP clamps it at 100).
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 1.0


def _check_temperature(value: Any, name: str = "temperature") -> float:
    tau = check_number(value, name)
    if not MIN_TEMPERATURE <= tau <= MAX_TEMPERATURE:
        raise InvalidParameterError(
            f"{name} must lie in [{MIN_TEMPERATURE}, {MAX_TEMPERATURE}], got {value!r}: training keeps the "
            "temperature in that range (logit scale at most 100, as CLIP), so another value would silently train "
            "at a clamped one"
        )
    return tau


class ContrastiveTrainer:
    """Train two towers so that paired items land close together on the unit sphere.

    Parameters
    ----------
    tower_a, tower_b : torch modules with ``prepare(items)`` and ``forward(batch)``
        See :mod:`workbench.towers`. Both must output the same dimension.
    loss : "infonce" or "sigmoid"
        Symmetric InfoNCE (CLIP) or the pairwise sigmoid loss (SigLIP, with a learnable bias).
    temperature : float in [0.01, 1], default 0.07
        Initial (or fixed) temperature tau (logits are ``a @ b.T / tau``); values outside the range training keeps
        tau in raise a ValueError rather than being clamped.
    learn_temperature : bool, default True
        Learn ``log(1 / tau)`` (kept in tau >= 0.01, as CLIP clamps its logit scale at 100, and tau <= 1);
        False keeps tau fixed (temperature studies). Either way ``temperature`` must lie in [0.01, 1].
    train_a, train_b : bool
        False freezes that tower (LiT; progressive alignment to a frozen space).
    epochs, batch_size, lr, weight_decay, seed, device
        AdamW optimisation; the seed fixes batch order; CPU unless a device is given (``"cuda"``, ``"cuda:1"``).
        The prepared items of both towers are copied to the device once; the batch order is drawn on the CPU (the
        same order on every device) and copied once per epoch; the step losses stay on the device and are read
        once per epoch, so a GPU is never stopped to report a step. On CUDA AdamW runs fused.
    precision : {"fp32", "bf16", "fp16"}, default "fp32"
        ``"bf16"`` / ``"fp16"`` run the towers and the loss under ``torch.autocast`` (mixed precision: float32
        weights and optimiser, bfloat16 / float16 matrix products; open_clip's ``amp_bf16`` / ``amp``); ``"fp16"``
        scales the loss with a ``GradScaler`` against underflow. ``"fp32"`` trains exactly as before.
    threads : int, optional
        torch's CPU threads while fitting (restored afterwards); None keeps torch's setting. Small towers train
        3-5x faster on one thread than on two on a 2-core machine, where thread overhead dominates.

    Attributes
    ----------
    history_ : polars.DataFrame
        One row per epoch: ``epoch``, ``loss``, ``temperature``, and with validation pairs ``centroid_distance``,
        ``r1_a_to_b``, ``r1_b_to_a``.
    """

    def __init__(
        self,
        tower_a: Any,
        tower_b: Any,
        *,
        loss: str = "infonce",
        temperature: float = 0.07,
        learn_temperature: bool = True,
        train_a: bool = True,
        train_b: bool = True,
        epochs: int = 10,
        batch_size: int = 128,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        seed: int = 0,
        device: str | None = None,
        threads: int | None = None,
        precision: str = "fp32",
    ) -> None:
        check_int(threads, "threads", allow_none=True)
        check_choice(precision, "precision", PRECISIONS)
        check_choice(loss, "loss", ("infonce", "sigmoid"))
        _check_temperature(temperature)
        if not (train_a or train_b):
            raise ValueError("at least one tower must be trained (train_a or train_b)")
        check_int(batch_size, "batch_size", low=2)  # a contrastive batch needs negatives
        check_int(epochs, "epochs")
        check_number(lr, "lr", low=0.0, inclusive=False)
        check_number(weight_decay, "weight_decay", low=0.0)
        check_seed(seed)
        self.tower_a, self.tower_b = tower_a, tower_b
        self.loss, self.temperature, self.learn_temperature = loss, temperature, learn_temperature
        self.train_a, self.train_b = train_a, train_b
        self.epochs, self.batch_size, self.lr, self.weight_decay = epochs, batch_size, lr, weight_decay
        self.seed, self.device, self.threads = seed, device or "cpu", threads
        self.precision = precision

    # -- training --------------------------------------------------------------------------------------------------
    def fit(self, items_a: Any, items_b: Any, *, validation: ValidationSet | None = None,
            progress: bool = True, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> ContrastiveTrainer:
        """Train on row-paired items (row i of ``items_a`` with row i of ``items_b``); returns ``self``.

        Parameters
        ----------
        items_a, items_b
            Row-paired inputs of the two towers.
        validation : ValidationSet, optional
            Held-out pairs evaluated after every epoch (centroid distance, R@1 both ways).
        progress : bool, default True
            A progress bar over epochs (``tqdm.auto``: a widget in notebooks, text elsewhere).
        on_epoch : callable, optional
            Called after every epoch with that epoch's history row (live monitors use it).

        Examples
        --------
        >>> import numpy as np
        >>> from workbench.towers import FeatureHead
        >>> x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
        >>> trainer = ContrastiveTrainer(FeatureHead(4, 8), FeatureHead(4, 8, seed=1), epochs=2, batch_size=16)
        >>> len(trainer.fit(x, x, progress=False).history_)
        2
        """
        with torch_threads(self.threads):
            return self._fit(items_a, items_b, validation=validation, progress=progress, on_epoch=on_epoch)

    def _fit(self, items_a: Any, items_b: Any, *, validation: ValidationSet | None,
             progress: bool, on_epoch: Callable[[dict[str, Any]], None] | None) -> ContrastiveTrainer:
        import torch
        from tqdm.auto import tqdm

        _check_temperature(self.temperature)  # the clamp below would silently train at another temperature
        xa = self.tower_a.prepare(items_a).to(self.device)
        xb = self.tower_b.prepare(items_b).to(self.device)
        if len(xa) != len(xb):
            raise ValueError(f"items must be row-paired: {len(xa)} a items but {len(xb)} b items")
        if len(xa) < 2:
            raise ValueError(f"training needs at least 2 pairs, got {len(xa)}")
        self.tower_a.to(self.device)
        self.tower_b.to(self.device)
        # a frozen tower gets no gradients; a trained one keeps whatever its parameters say (a tower may have
        # unlocked only its last blocks, as OpenCLIPTower(unlock_last=k) does)
        for tower, on in ((self.tower_a, self.train_a), (self.tower_b, self.train_b)):
            if not on:
                for p in tower.parameters():
                    p.requires_grad_(False)
        # scalars in float64 (a fixed temperature is reported exactly); they do not promote the float32 logits
        log_scale = torch.tensor(math.log(1.0 / self.temperature), dtype=torch.float64, device=self.device,
                                 requires_grad=self.learn_temperature)
        bias = torch.tensor(-10.0 if self.loss == "sigmoid" else 0.0, dtype=torch.float64, device=self.device,
                            requires_grad=self.loss == "sigmoid")
        params = [p for t, on in ((self.tower_a, self.train_a), (self.tower_b, self.train_b)) if on
                  for p in t.parameters() if p.requires_grad]
        if not params:
            raise ValueError("no trainable parameters: every parameter of the trained towers is frozen")
        params += [p for p in (log_scale, bias) if p.requires_grad]
        device_type = torch.device(self.device).type
        # fused AdamW on CUDA: one kernel per step, and it takes the fp16 scaler's inf check without a host sync
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay,
                                      fused=True if device_type == "cuda" else None)
        autocast = _autocast(device_type, self.precision)
        scaler = torch.amp.GradScaler(device_type) if self.precision == "fp16" else None
        generator = torch.Generator().manual_seed(self.seed)
        rows = []
        n = len(xa)
        batch = min(self.batch_size, n)
        for epoch in tqdm(range(1, self.epochs + 1), desc="training", disable=not progress):
            self.tower_a.train(self.train_a)
            self.tower_b.train(self.train_b)
            order = torch.randperm(n, generator=generator).to(self.device)  # drawn on the CPU, copied once
            losses = []  # kept on the device: read once per epoch, never once per step
            for s in range(0, n - batch + 1, batch):  # equal batches (the contrastive loss depends on batch size)
                idx = order[s : s + batch]
                with autocast:
                    za = torch.nn.functional.normalize(self.tower_a(xa[idx]), dim=-1)
                    zb = torch.nn.functional.normalize(self.tower_b(xb[idx]), dim=-1)
                    loss = self._loss(za, zb, log_scale, bias)
                optimizer.zero_grad()
                if scaler is None:
                    loss.backward()
                    optimizer.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                with torch.no_grad():
                    log_scale.clamp_(0.0, math.log(100.0))
                losses.append(loss.detach().float())
            # float32 step losses averaged in float64 on the host, exactly as when each was read per step
            epoch_losses = torch.stack(losses).cpu().numpy().astype(np.float64)
            row: dict[str, Any] = {"epoch": epoch, "loss": float(np.mean(epoch_losses)),
                                   "temperature": float(torch.exp(-log_scale.detach()))}
            if validation is not None:
                row.update(self.evaluate(validation))
            rows.append(row)
            if on_epoch is not None:
                on_epoch(dict(row))
        self.tower_a.eval()
        self.tower_b.eval()
        self.temperature_ = float(torch.exp(-log_scale.detach()))
        self.history_ = pl.DataFrame(rows)
        return self

    def _loss(self, za: Any, zb: Any, log_scale: Any, bias: Any) -> Any:
        import torch

        logits = log_scale.exp() * za @ zb.T
        if self.loss == "infonce":
            return symmetric_info_nce(logits)
        signs = 2 * torch.eye(len(za), device=za.device) - 1  # +1 on the diagonal, -1 elsewhere
        return -torch.nn.functional.logsigmoid(signs * (logits + bias)).sum() / len(za)

    # -- use -------------------------------------------------------------------------------------------------------
    def embed(self, side: str, items: Any, batch_size: int = 256) -> np.ndarray:
        """Unit float32 embeddings of items through tower ``"a"`` or ``"b"``."""
        import torch

        tower = {"a": self.tower_a, "b": self.tower_b}.get(side)
        if tower is None:
            raise ValueError(f"side must be 'a' or 'b', got {side!r}")
        batch_size = check_int(batch_size, "batch_size")
        x = tower.prepare(items)
        tower.eval()
        out = []
        with torch.inference_mode():
            for s in range(0, len(x), batch_size):
                z = tower(x[s : s + batch_size].to(self.device))
                out.append(torch.nn.functional.normalize(z.float(), dim=-1).cpu().numpy())
        return np.concatenate(out).astype(np.float32)

    def evaluate(self, validation: ValidationSet) -> dict[str, float]:
        """Centroid distance and R@1 both ways on held-out pairs."""
        from workbench.retrieval import per_query_ranks

        ea, eb = self.embed("a", validation.items_a), self.embed("b", validation.items_b)
        relevance = validation.relevance
        if relevance is None:
            if len(ea) != len(eb):
                raise ValueError("validation items are not row-paired: pass relevance pairs")
            relevance = np.repeat(np.arange(len(ea))[:, None], 2, axis=1)
        relevance = np.asarray(relevance, dtype=np.int64)
        rows_a, rows_b = np.unique(relevance[:, 0]), np.unique(relevance[:, 1])
        return {
            # each held-out item once (Liang et al.'s centroid distance)
            "centroid_distance": float(np.linalg.norm(ea[rows_a].mean(0, dtype=np.float64)
                                                      - eb[rows_b].mean(0, dtype=np.float64))),
            "r1_a_to_b": per_query_ranks(ea, eb, relevance).recall(1),
            "r1_b_to_a": per_query_ranks(eb, ea, relevance[:, ::-1]).recall(1),
        }

    def as_encoder(self, modalities: tuple[str, str], name: str) -> TrainedEncoder:
        """The trained towers as a :class:`workbench.encoders.Encoder` (for ``workbench.embed`` and the cache)."""
        return TrainedEncoder(self, modalities, name)


class TrainedEncoder:
    """A trained dual encoder behind the :class:`workbench.encoders.Encoder` protocol."""

    def __init__(self, trainer: ContrastiveTrainer, modalities: tuple[str, str], name: str) -> None:
        if len(set(modalities)) != 2:
            raise ValueError(f"two distinct modality names are needed, got {modalities}")
        self.trainer, self.modalities, self.name = trainer, tuple(modalities), name
        self.preprocessing = f"{type(trainer.tower_a).__name__}/{type(trainer.tower_b).__name__}"

    @cached_property
    def fingerprint(self) -> str:
        from workbench.encoders import weights_fingerprint

        return weights_fingerprint(self.trainer.tower_a) + weights_fingerprint(self.trainer.tower_b)

    def encode(self, modality: str, items: Sequence[Any], batch_size: int = 256) -> np.ndarray:
        if modality not in self.modalities:
            raise ValueError(f"{self.name} encodes {self.modalities}, not {modality!r}")
        side = "a" if modality == self.modalities[0] else "b"
        return self.trainer.embed(side, list(items) if side == "b" else items, batch_size)


# -- studies -----------------------------------------------------------------------------------------------------
def _interval(values: Sequence[float]) -> tuple[float, float, float]:
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return float(v.mean()), float("nan"), float("nan")
    from scipy.stats import t  # scipy comes with scikit-learn

    # Student's t, n - 1 degrees of freedom: 4.30 standard errors with 3 seeds (1.96 would cover ~81%)
    half = float(t.ppf(0.975, len(v) - 1)) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(v.mean() - half), float(v.mean() + half)


def summarise_seeds(runs: pl.DataFrame, by: str, metrics: Sequence[str] | None = None) -> pl.DataFrame:
    """Per value of ``by``: the mean of each metric over seeds with a Student-t 95% interval.

    The interval is ``mean +- t(0.975, n - 1) * sd / sqrt(n)`` over the n seeds (n - 1 degrees of freedom: with 3
    seeds the half-width is 4.30 standard errors; 1.96 would cover only about 81% with 3 seeds, 70% with 2). It
    assumes the per-seed values are roughly normal; with one seed the bounds are NaN.

    ``runs`` has one row per (``by``, seed), as :func:`learning_curve` and :func:`temperature_study` return; the
    metrics default to every numeric column but ``by`` and ``seed``. Columns: ``by``, ``seeds`` (how many), then
    ``<metric>``, ``<metric>_lo``, ``<metric>_hi``.

    Examples
    --------
    >>> runs = pl.DataFrame({"temperature": [0.1, 0.1, 1.0], "seed": [0, 1, 0], "loss": [1.0, 3.0, 2.0]})
    >>> summarise_seeds(runs, "temperature").select("temperature", "seeds", "loss").rows()
    [(0.1, 2, 2.0), (1.0, 1, 2.0)]
    """
    if by not in runs.columns:
        raise ValueError(f"runs has no column {by!r}; columns: {runs.columns}")
    if metrics is None:
        metrics = [c for c, t in runs.schema.items() if c not in (by, "seed") and t.is_numeric()]
    missing = [m for m in metrics if m not in runs.columns]
    if missing:
        raise ValueError(f"runs has no columns {missing}")
    rows = []
    for key, group in runs.group_by(by, maintain_order=True):
        row: dict[str, Any] = {by: key[0], "seeds": group.height}
        for m in metrics:
            mean, lo, hi = _interval(group[m].to_list())
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mean, lo, hi
        rows.append(row)
    return pl.DataFrame(rows)


def learning_curve(
    make_trainer: Callable[[int], ContrastiveTrainer],
    items_a: Any,
    items_b: Any,
    validation: ValidationSet,
    sizes: Sequence[int],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    progress: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Train on growing numbers of pairs; held-out R@1 and gap for each size, over several seeds.

    ``make_trainer(seed)`` builds a fresh trainer (towers included). The first ``n`` pairs of a seeded
    permutation are used for size ``n``. Returns ``(runs, summary)``: one row per (size, seed), and per size the
    mean with a Student-t 95% interval over seeds (:func:`summarise_seeds`) -- aligning with too few pairs, made
    visible. Sizes must lie in [2, number of pairs]. ``progress`` (default True) shows one bar over the runs, its
    description naming the size and seed in training (the trainers' own bars stay off).
    """
    n_total = len(items_a)
    if n_total < 2:
        raise ValueError(f"a learning curve needs at least 2 pairs, got {n_total}")
    sizes = [check_int(n, "sizes", low=2, high=n_total) for n in _non_empty(sizes, "sizes")]
    seeds = [check_seed(s, "seeds") for s in _non_empty(seeds, "seeds")]
    rows = []
    with _study_bar(len(seeds) * len(sizes), "learning curve", progress) as bar:
        for seed in seeds:
            order = np.random.default_rng(seed).permutation(n_total)
            for n in sizes:
                bar.set_description_str(f"learning curve: {n} pairs, seed {seed}")
                idx = np.sort(order[:n])
                trainer = make_trainer(seed).fit(_take(items_a, idx), _take(items_b, idx), progress=False)
                rows.append({"n_pairs": n, "seed": seed, **trainer.evaluate(validation)})
                bar.update(1)
    runs = pl.DataFrame(rows)
    return runs, summarise_seeds(runs, "n_pairs", ["r1_a_to_b", "r1_b_to_a", "centroid_distance"])


def temperature_study(
    make_trainer: Callable[[float, int], ContrastiveTrainer],
    items_a: Any,
    items_b: Any,
    validation: ValidationSet,
    *,
    temperatures: Sequence[float] = (0.01, 0.05, 0.2, 1.0),
    seeds: Sequence[int] = (0,),
    progress: bool = True,
) -> pl.DataFrame:
    """Train with fixed temperatures; final centroid distance, held-out R@1 and training loss for each.

    ``make_trainer(tau, seed)`` builds a trainer with that fixed temperature (``temperature=tau``,
    ``learn_temperature=False``; anything else raises a ValueError, so every row reports the temperature it was
    trained at). Temperatures must lie in [0.01, 1], the range training keeps tau in. Liang et al. (NeurIPS 2022)
    report, fine-tuning CLIP, that the gap shrinks as tau rises; whether a small model trained from scratch shows
    the same direction is a finding to report, not a target. One row per (temperature, seed);
    ``summarise_seeds(study, "temperature")`` gives the mean and Student-t 95% interval over seeds. ``progress``
    (default True) shows one bar over the runs, its description naming the temperature and seed in training (the
    trainers' own bars stay off).
    """
    temperatures = [_check_temperature(t, "temperatures") for t in _non_empty(temperatures, "temperatures")]
    seeds = [check_seed(s, "seeds") for s in _non_empty(seeds, "seeds")]
    rows = []
    with _study_bar(len(temperatures) * len(seeds), "temperature study", progress) as bar:
        for tau in temperatures:
            for seed in seeds:
                trainer = make_trainer(tau, seed)
                if trainer.learn_temperature or trainer.temperature != tau:
                    raise ValueError(
                        f"make_trainer({tau}, {seed}) returned a trainer with temperature={trainer.temperature} and "
                        f"learn_temperature={trainer.learn_temperature}; a temperature study needs temperature={tau}"
                        " and learn_temperature=False, or its rows would report a temperature that was not used"
                    )
                bar.set_description_str(f"temperature study: tau={tau:g}, seed {seed}")
                trainer.fit(items_a, items_b, progress=False)
                rows.append({"temperature": tau, "seed": seed, "loss": float(trainer.history_["loss"][-1]),
                             **trainer.evaluate(validation)})
                bar.update(1)
    return pl.DataFrame(rows)


def _study_bar(total: int, description: str, progress: Any) -> Any:
    """One bar over a study's runs (``tqdm.auto``); each run trains without a bar of its own."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="run", disable=not progress)


def _non_empty(values: Any, name: str) -> list[Any]:
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
        raise InvalidParameterError(f"{name} must be a sequence, got {values!r}")
    if len(values) == 0:
        raise InvalidParameterError(f"{name} is empty")
    return list(values)


def _take(items: Any, idx: np.ndarray) -> Any:
    if isinstance(items, np.ndarray) or hasattr(items, "index_select"):  # numpy arrays and torch tensors
        return items[idx]
    return [items[i] for i in idx]
