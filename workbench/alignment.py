"""Align two frozen pretrained encoders with projection heads, and measure what that did: a held-out study.

Two single-modality encoders that were never trained together (an ImageNet CNN, a sentence encoder) put their items
into unrelated spaces, even of different widths. Projection heads trained with a contrastive loss on paired items
map both into one shared space -- the "projection layers" of CLIP (Radford et al., ICML 2021), or LiT's head over a
locked image tower (Zhai et al., CVPR 2022). :func:`align_pretrained` trains such heads on PRECOMPUTED frozen
features (seconds on a CPU) with :class:`workbench.train.ContrastiveTrainer` (InfoNCE or the SigLIP sigmoid loss,
Zhai et al., ICCV 2023) and reports, on held-out pairs:

- R@K both ways with a 95% percentile-bootstrap interval over the queries (the gallery stays fixed) and the
  exact chance level;
- the modality gap (:func:`workbench.gap.gap_report`: centroid distance, Liang et al., NeurIPS 2022, and the rest)
  BEFORE training -- the heads at their random initialisation, since the raw frozen features live in different
  spaces and have no gap to measure -- and after;
- the learning curve over the number of training pairs (:func:`workbench.train.learning_curve`).

:func:`align_towers` runs the same study on any towers, e.g. :class:`workbench.towers.PretrainedTower` with the
last ``k`` encoder blocks unfrozen (domain fine-tuning). The split is fixed by the seed (by items of the first
modality: an image and all its captions land on the same side) and training is deterministic on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from workbench._labels import chance_recall
from workbench._params import InvalidParameterError, check_choice, check_int, check_ints, check_number, check_seed
from workbench.data import Embeddings, MultimodalEmbeddings, PairedEmbeddings
from workbench.gap import GapReport, gap_report
from workbench.retrieval import bootstrap_ci, per_query_ranks
from workbench.train import ContrastiveTrainer, ValidationSet, learning_curve

__all__ = ["AlignmentResult", "align_pretrained", "align_towers", "split_by_items"]

LOSSES = {"infonce": "infonce", "siglip": "sigmoid", "sigmoid": "sigmoid"}


@dataclass
class AlignmentResult:
    """What :func:`align_pretrained` / :func:`align_towers` measured on the held-out pairs.

    Attributes
    ----------
    retrieval : polars.DataFrame
        One row per (``stage``, ``direction``, ``k``): ``stage`` is ``"before"`` (heads at initialisation) or
        ``"after"`` (trained); ``direction`` e.g. ``"image → text"`` (items of the first modality query the
        second); ``recall``, ``lo``, ``hi`` (95% bootstrap interval over queries), ``chance`` (the exact expected
        recall of a random ranking), ``queries`` and ``gallery`` sizes.
    gap_before, gap_after : GapReport
        :func:`workbench.gap.gap_report` of the held-out embeddings through the heads at initialisation and after
        training (the raw frozen features have no shared space, so "before" means the untrained heads).
    learning_curve : polars.DataFrame or None
        Per training-set size: held-out R@1 both ways and the centroid distance, mean and Student-t 95% interval
        over ``curve_seeds`` (:func:`workbench.train.summarise_seeds`); None when no sizes were asked for.
    learning_curve_runs : polars.DataFrame or None
        One row per (size, seed).
    history : polars.DataFrame
        The trainer's per-epoch history (loss, temperature, held-out centroid distance and R@1 both ways).
    trainer : ContrastiveTrainer
        The trained towers (``trainer.embed("a", features)``; ``trainer.as_encoder(...)``).
    modalities : (str, str)
    split : dict
        ``train_pairs`` and ``test_pairs``: (P x 2) rows of (a row, b row) of the input; ``test_a``, ``test_b``: the
        held-out rows of each modality.
    test_embeddings : PairedEmbeddings
        The held-out items through the trained heads, with the input's metadata (for the panels).
    """

    retrieval: pl.DataFrame
    gap_before: GapReport
    gap_after: GapReport
    learning_curve: pl.DataFrame | None
    learning_curve_runs: pl.DataFrame | None
    history: pl.DataFrame
    trainer: ContrastiveTrainer
    modalities: tuple[str, str]
    split: dict[str, np.ndarray] = field(repr=False)
    test_embeddings: PairedEmbeddings = field(repr=False)

    def recall(self, k: int = 1, direction: str | None = None, stage: str = "after") -> tuple[float, float, float]:
        """``(recall, lo, hi)`` at ``k`` for a direction (default: the first modality queries the second)."""
        direction = direction or f"{self.modalities[0]} → {self.modalities[1]}"
        row = self.retrieval.filter((pl.col("stage") == stage) & (pl.col("direction") == direction)
                                    & (pl.col("k") == k))
        if row.height != 1:
            raise ValueError(f"no retrieval row for stage={stage!r}, direction={direction!r}, k={k}; "
                             f"directions: {self.retrieval['direction'].unique(maintain_order=True).to_list()}")
        return float(row["recall"][0]), float(row["lo"][0]), float(row["hi"][0])

    def chance(self, k: int = 1, direction: str | None = None) -> float:
        """The expected R@k of a random ranking for a direction (default: the first modality queries the second)."""
        direction = direction or f"{self.modalities[0]} → {self.modalities[1]}"
        row = self.retrieval.filter((pl.col("direction") == direction) & (pl.col("k") == k))
        if row.height == 0:
            raise ValueError(f"no retrieval row for direction={direction!r}, k={k}")
        return float(row["chance"][0])

    def summary(self) -> str:
        """Sentences stating the findings, computed from this run's numbers."""
        lines = []
        k = int(self.retrieval["k"].to_numpy().min())
        for direction in self.retrieval["direction"].unique(maintain_order=True):
            after = self.retrieval.filter((pl.col("stage") == "after") & (pl.col("direction") == direction)
                                          & (pl.col("k") == k)).row(0, named=True)
            before = self.retrieval.filter((pl.col("stage") == "before") & (pl.col("direction") == direction)
                                           & (pl.col("k") == k)).row(0, named=True)
            verdict = ("above chance (the interval excludes it)" if after["lo"] > after["chance"] else
                       "NOT distinguishable from chance (the interval includes it)")
            lines.append(
                f"Held-out {direction} R@{k}: {before['recall']:.3f} with the heads at initialisation, "
                f"{after['recall']:.3f} [95% CI {after['lo']:.3f}, {after['hi']:.3f}] after training, over "
                f"{after['queries']} queries against {after['gallery']} items; chance is {after['chance']:.4f}, so "
                f"this is {verdict}, {after['recall'] / max(after['chance'], 1e-12):.0f}x chance."
            )
        b, a = self.gap_before["centroid_distance"], self.gap_after["centroid_distance"]
        assert b is not None and a is not None
        lines.append(
            f"The held-out centroid distance (the gap) went from {b:.3f} through the untrained heads to {a:.3f} after "
            f"training ({'smaller' if a < b else 'larger'}); the mean matched cosine went from "
            f"{self.gap_before['mean_matched_cosine']:.3f} to {self.gap_after['mean_matched_cosine']:.3f}."
        )
        probe = self.gap_after.get("modality_probe_accuracy")
        if probe is not None:
            reading = ("a linear map still separates them: the gap did not close" if probe >= 0.75 else
                       "a linear map barely separates them" if probe > 0.6 else "a linear map cannot separate them")
            lines.append(f"After training, a linear probe tells the two modalities apart with cross-validated "
                         f"accuracy {probe:.3f} (0.5 is chance): {reading}.")
        if self.learning_curve is not None and self.learning_curve.height > 1:
            first, last = self.learning_curve.row(0, named=True), self.learning_curve.row(-1, named=True)
            lines.append(
                f"Learning curve: R@1 {self.modalities[0]} → {self.modalities[1]} rose from {first['r1_a_to_b']:.3f} "
                f"with {first['n_pairs']} training pairs to {last['r1_a_to_b']:.3f} with {last['n_pairs']}."
            )
        return "\n".join(lines)


def _checked_pairs(pairs: Any, n_a: int, n_b: int) -> np.ndarray:
    """(P x 2) int64 pairs of (a row, b row) in range; None pairs row i with row i (the caller checked n_a == n_b)."""
    if pairs is None:
        return np.repeat(np.arange(n_a)[:, None], 2, axis=1)
    pairs = np.asarray(pairs, dtype=np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.min(initial=0) < 0 or (
            len(pairs) and (pairs[:, 0].max() >= n_a or pairs[:, 1].max() >= n_b)):
        raise ValueError(f"pairs must be (P x 2) rows of (a row < {n_a}, b row < {n_b})")
    return pairs


def split_by_items(pairs: Any, test_fraction: float = 0.2, seed: int = 0, *, test_rows: Any = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Split (a row, b row) pairs into (train, test) by the rows of ``a``, fixed by the seed; both sorted.

    Every paired ``a`` item and all its pairs land on one side (an image and all its captions). A pair whose ``b``
    item also belongs to a test pair is dropped from training, so no held-out item is ever trained on. Same rule
    as :func:`workbench.compare.split_pairs`, for modalities of different widths. ``test_rows`` (rows of ``a``)
    gives a fixed held-out set instead of the seeded draw (a published split; ``test_fraction`` is then unused).

    Examples
    --------
    >>> train, test = split_by_items([(0, 0), (0, 1), (1, 2), (2, 3), (3, 4)], 0.5, seed=0)
    >>> len(train) + len(test), sorted(set(train[:, 0]) & set(test[:, 0]))
    (5, [])
    """
    pairs = np.asarray(pairs, dtype=np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must be (P x 2) rows of (a row, b row), got shape {pairs.shape}")
    pairs = np.unique(pairs, axis=0)  # sorted (and each pair once): the split never depends on the pairs' order
    test_fraction = check_number(test_fraction, "test_fraction", low=0.0, high=1.0, inclusive=False)
    rows_a = np.unique(pairs[:, 0])
    if len(rows_a) < 4:
        raise ValueError(f"splitting needs at least 4 paired items of the first modality, got {len(rows_a)}")
    if test_rows is None:
        n_test = min(max(2, round(len(rows_a) * test_fraction)), len(rows_a) - 2)
        test_rows = np.random.default_rng(check_seed(seed)).choice(rows_a, size=n_test, replace=False)
    else:
        test_rows = np.intersect1d(np.asarray(test_rows, dtype=np.int64), rows_a)
        if not 2 <= len(test_rows) <= len(rows_a) - 2:
            raise ValueError(f"test_rows must hold at least 2 paired items and leave 2 for training; {len(test_rows)} "
                             f"of the {len(rows_a)} paired items are held out")
    is_test = np.isin(pairs[:, 0], test_rows)
    leaks = np.isin(pairs[:, 1], pairs[is_test, 1])
    return pairs[~is_test & ~leaks], pairs[is_test]


def _features(x: Any, what: str) -> tuple[np.ndarray, str | None, pl.DataFrame | None]:
    if isinstance(x, Embeddings):
        return x.vectors, x.modality, x.metadata
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.dtype.kind not in "fiu" or not np.isfinite(arr).all():
        raise TypeError(f"{what} must be an (N x D) array of finite numbers or an Embeddings, got "
                        f"{type(x).__name__} of shape {getattr(arr, 'shape', None)}")
    return arr.astype(np.float32), None, None


def _read_inputs(a: Any, b: Any, pairs: Any, modalities: Sequence[str] | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[str, str], Any, Any]:
    """(features a, features b, pairs, modality names, metadata a, metadata b) from any supported input."""
    if isinstance(a, MultimodalEmbeddings):
        if b is not None or pairs is not None:
            raise TypeError("with a MultimodalEmbeddings pass modalities=(a, b), not b or pairs")
        names = tuple(modalities) if modalities is not None else a.modalities[:2]
        if len(names) != 2:
            raise ValueError(f"modalities must name two of {a.modalities}, got {modalities!r}")
        ea, eb = a[names[0]], a[names[1]]
        ka, kb = ea.metadata[a.key].to_list(), eb.metadata[a.key].to_list()
        rows_b: dict[Any, list[int]] = {}
        for j, key in enumerate(kb):
            rows_b.setdefault(key, []).append(j)
        found = [(i, j) for i, key in enumerate(ka) for j in rows_b.get(key, [])]
        if not found:
            raise ValueError(f"no {names[0]} and {names[1]} rows share a {a.key!r} value: nothing is paired")
        return ea.vectors, eb.vectors, np.array(found, dtype=np.int64), names, ea.metadata, eb.metadata
    if isinstance(a, PairedEmbeddings):
        if b is not None or pairs is not None:
            raise TypeError("with a PairedEmbeddings pass neither b nor pairs (it carries its pairs)")
        return (a.a.vectors, a.b.vectors, a.pairs, (a.a.modality, a.b.modality), a.a.metadata, a.b.metadata)
    if b is None:
        raise TypeError("pass a MultimodalEmbeddings, a PairedEmbeddings, or two feature matrices a and b")
    fa, ma, meta_a = _features(a, "a")
    fb, mb, meta_b = _features(b, "b")
    if pairs is None and len(fa) != len(fb):
        raise ValueError(f"without pairs, rows are paired by position, but a has {len(fa)} rows and b "
                         f"{len(fb)}; pass pairs=[(a row, b row), ...]")
    pairs = _checked_pairs(pairs, len(fa), len(fb))
    names = tuple(modalities) if modalities is not None else (ma or "a", mb or "b")
    if len(names) != 2 or names[0] == names[1]:
        raise ValueError(f"modalities must be two distinct names, got {modalities!r}")
    return fa, fb, pairs, (str(names[0]), str(names[1])), meta_a, meta_b


def _check_common(loss: Any, ks: Any, n_resamples: Any, curve_seeds: Any) -> tuple[str, tuple[int, ...], int]:
    check_choice(loss, "loss", tuple(LOSSES))
    ks = check_ints(ks, "ks")
    n_resamples = check_int(n_resamples, "n_resamples", low=100)
    if isinstance(curve_seeds, str | bytes) or not isinstance(curve_seeds, Sequence) or not curve_seeds:
        raise InvalidParameterError(f"curve_seeds must be a non-empty sequence of seeds, got {curve_seeds!r}")
    return LOSSES[loss], ks, n_resamples


def align_pretrained(
    a: Any,
    b: Any = None,
    *,
    pairs: Any = None,
    modalities: Sequence[str] | None = None,
    heads: str = "linear",
    dim: int = 128,
    hidden: int | None = None,
    loss: str = "infonce",
    temperature: float = 0.07,
    epochs: int = 30,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    test_fraction: float = 0.2,
    held_out: Any = None,
    seed: int = 0,
    ks: Sequence[int] = (1, 5, 10),
    n_resamples: int = 1000,
    curve_sizes: Sequence[int] | str | None = "auto",
    curve_seeds: Sequence[int] = (0,),
    probe: bool = True,
    threads: int | None = 1,
    progress: bool = True,
) -> AlignmentResult:
    """Train projection heads on frozen pretrained features of paired items; held-out R@K, gap before/after, curve.

    Parameters
    ----------
    a, b
        The frozen features: a :class:`~workbench.data.MultimodalEmbeddings` (rows paired by its key column; pick
        the two with ``modalities``), a :class:`~workbench.data.PairedEmbeddings`, or two (N x D) arrays /
        :class:`~workbench.data.Embeddings` of any two widths (row-paired, or paired by ``pairs``).
    pairs : (P x 2) array-like, optional
        ``(a row, b row)`` pairs for two arrays (several captions per image: one pair each).
    modalities : (str, str), optional
        Names of the two modalities (defaults: the inputs' own, or ``("a", "b")``).
    heads : {"linear", "mlp"}
        :class:`workbench.towers.ProjectionHead` kind; inputs are standardised with the training items' mean and
        standard deviation.
    dim, hidden
        Width of the shared space; hidden width of an MLP head.
    loss : {"infonce", "siglip"}
        Symmetric InfoNCE (CLIP) or the pairwise sigmoid loss (SigLIP; ``"sigmoid"`` is accepted too).
    temperature, epochs, batch_size, lr, weight_decay, threads
        Passed to :class:`~workbench.train.ContrastiveTrainer` (learnable temperature starting at ``temperature``).
    test_fraction, seed
        The held-out share of first-modality items (:func:`split_by_items`, fixed by ``seed``); the seed also fixes
        the heads' initialisation, the batch order and the bootstrap.
    held_out : str or array-like, optional
        A fixed held-out set instead of the seeded draw: the name of a metadata column of the first modality whose
        value ``"test"`` marks held-out items (the media sets' ``split``), a boolean mask over its rows, or row
        indices.
    ks, n_resamples
        R@K cut-offs; bootstrap resamples of the queries for the 95% intervals.
    curve_sizes : sequence of int, "auto" or None
        Training-set sizes (pairs) of the learning curve; ``"auto"``: 1/8, 1/4, 1/2 and all of the training pairs;
        None: no curve. Each size trains the same number of epochs on the first n pairs of a seeded permutation.
    curve_seeds : sequence of int
        Seeds of the learning-curve runs (intervals over seeds need at least 2).
    probe : bool, default True
        Include the linear modality probe in the gap reports.
    progress : bool, default True
        A progress bar over training epochs and the learning-curve runs.

    Returns
    -------
    AlignmentResult

    Examples
    --------
    Two "encoders" that see one hidden variable through different random maps (widths 24 and 16):

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(400, 8))
    >>> image = np.tanh(z @ rng.normal(size=(8, 24))) + 0.1 * rng.normal(size=(400, 24))
    >>> text = z @ rng.normal(size=(8, 16))
    >>> result = align_pretrained(image, text, modalities=("image", "text"), dim=16, epochs=10, batch_size=64,
    ...                           n_resamples=200, curve_sizes=None, probe=False, progress=False)
    >>> r1, lo, hi = result.recall(1, "image → text")
    >>> bool(lo > 10 * result.retrieval["chance"][0])
    True
    """
    from workbench.towers import HEAD_KINDS, ProjectionHead

    check_choice(heads, "heads", HEAD_KINDS)
    check_int(dim, "dim")
    check_int(hidden, "hidden", allow_none=True)
    fa, fb, all_pairs, names, meta_a, meta_b = _read_inputs(a, b, pairs, modalities)
    train_pairs, test_pairs = split_by_items(all_pairs, test_fraction, seed,  # pairs in sorted order
                                             test_rows=_held_out_rows(held_out, meta_a, len(fa)))
    ta, tb = np.unique(train_pairs[:, 0]), np.unique(train_pairs[:, 1])
    mean_a, std_a = fa[ta].mean(0), fa[ta].std(0)
    mean_b, std_b = fb[tb].mean(0), fb[tb].std(0)
    kind_hidden = hidden if heads == "mlp" else None

    def make_towers(s: int) -> tuple[Any, Any]:
        return (ProjectionHead(fa.shape[1], dim, heads, kind_hidden, mean_a, std_a, seed=s),
                ProjectionHead(fb.shape[1], dim, heads, kind_hidden, mean_b, std_b, seed=s + 1))

    return _study(make_towers, fa, fb, train_pairs, test_pairs, names, meta_a, meta_b,
                  dict(loss=loss, temperature=temperature, epochs=epochs, batch_size=batch_size, lr=lr,
                       weight_decay=weight_decay, threads=threads),
                  seed=seed, ks=ks, n_resamples=n_resamples, curve_sizes=curve_sizes, curve_seeds=curve_seeds,
                  probe=probe, progress=progress)


def align_towers(
    make_towers: Callable[[int], tuple[Any, Any]],
    items_a: Any,
    items_b: Any,
    *,
    pairs: Any = None,
    modalities: Sequence[str] = ("a", "b"),
    loss: str = "infonce",
    temperature: float = 0.07,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    test_fraction: float = 0.2,
    seed: int = 0,
    ks: Sequence[int] = (1, 5, 10),
    n_resamples: int = 1000,
    curve_sizes: Sequence[int] | str | None = None,
    curve_seeds: Sequence[int] = (0,),
    probe: bool = True,
    threads: int | None = None,
    progress: bool = True,
) -> AlignmentResult:
    """The study of :func:`align_pretrained` for any towers: e.g. pretrained encoders with some blocks unfrozen.

    ``make_towers(seed)`` returns fresh ``(tower_a, tower_b)`` (see :mod:`workbench.towers`), e.g. two
    :class:`~workbench.towers.PretrainedTower` with ``unfreeze_last=k`` (domain fine-tuning). Each tower's
    ``prepare`` runs ONCE on all items (for a PretrainedTower that is the frozen part of the encoder); training,
    evaluation and every learning-curve run reuse the prepared tensors, so ``prepare`` must give the same result
    for every tower ``make_towers`` builds. Items are raw inputs (images, captions) in rows paired by ``pairs``
    (default: row i with row i). The other parameters are those of :func:`align_pretrained`; ``curve_sizes``
    defaults to None (no curve) here, since fine-tuning runs cost more.

    Examples
    --------
    >>> import numpy as np
    >>> from workbench.towers import ProjectionHead
    >>> x = np.random.default_rng(0).normal(size=(200, 6))
    >>> result = align_towers(lambda s: (ProjectionHead(6, 4, seed=s), ProjectionHead(6, 4, seed=s + 1)), x, x,
    ...                       epochs=5, batch_size=32, probe=False, progress=False)
    >>> result.retrieval.columns[:4]
    ['stage', 'direction', 'k', 'recall']
    """
    import torch

    if not callable(make_towers):
        raise TypeError(f"make_towers must be a function seed -> (tower_a, tower_b), got {type(make_towers).__name__}")
    check_seed(seed)
    first = make_towers(seed)
    xa, xb = first[0].prepare(items_a), first[1].prepare(items_b)
    if pairs is None and len(xa) != len(xb):
        raise ValueError(f"without pairs, items are paired by position, but there are {len(xa)} a items and "
                         f"{len(xb)} b items; pass pairs=[(a row, b row), ...]")
    pairs = _checked_pairs(pairs, len(xa), len(xb))
    if len(modalities) != 2 or modalities[0] == modalities[1]:
        raise ValueError(f"modalities must be two distinct names, got {modalities!r}")
    train_pairs, test_pairs = split_by_items(pairs, test_fraction, seed)
    xa, xb = torch.as_tensor(xa), torch.as_tensor(xb)
    return _study(make_towers, xa, xb, train_pairs, test_pairs, (str(modalities[0]), str(modalities[1])), None,
                  None, dict(loss=loss, temperature=temperature, epochs=epochs, batch_size=batch_size, lr=lr,
                             weight_decay=weight_decay, threads=threads),
                  seed=seed, ks=ks, n_resamples=n_resamples, curve_sizes=curve_sizes, curve_seeds=curve_seeds,
                  probe=probe, progress=progress, first=first)


def _study(make_towers: Callable[[int], tuple[Any, Any]], xa: Any, xb: Any, train_pairs: np.ndarray,
           test_pairs: np.ndarray, names: tuple[str, str], meta_a: Any, meta_b: Any, options: dict[str, Any], *,
           seed: int, ks: Any, n_resamples: Any, curve_sizes: Any, curve_seeds: Any, probe: bool, progress: bool,
           first: tuple[Any, Any] | None = None) -> AlignmentResult:
    options["loss"], ks, n_resamples = _check_common(options["loss"], ks, n_resamples, curve_seeds)
    seed = check_seed(seed)
    test_a, test_b = np.unique(test_pairs[:, 0]), np.unique(test_pairs[:, 1])
    relevance = np.stack([np.searchsorted(test_a, test_pairs[:, 0]), np.searchsorted(test_b, test_pairs[:, 1])], 1)
    validation = ValidationSet(xa[test_a], xb[test_b], relevance)

    def make_trainer(s: int, towers: tuple[Any, Any] | None = None) -> ContrastiveTrainer:
        tower_a, tower_b = towers if towers is not None else make_towers(s)
        return ContrastiveTrainer(tower_a, tower_b, seed=s, **options)

    trainer = make_trainer(seed, first)
    embedded = {"before": (trainer.embed("a", validation.items_a), trainer.embed("b", validation.items_b))}
    trainer.fit(xa[train_pairs[:, 0]], xb[train_pairs[:, 1]], validation=validation, progress=progress)
    embedded["after"] = (trainer.embed("a", validation.items_a), trainer.embed("b", validation.items_b))

    rows = []
    for stage, (ea, eb) in embedded.items():
        for direction, q, g, rel in ((f"{names[0]} → {names[1]}", ea, eb, relevance),
                                     (f"{names[1]} → {names[0]}", eb, ea, relevance[:, ::-1])):
            ranks = per_query_ranks(q, g, rel).ranks
            n_relevant = np.bincount(rel[:, 0], minlength=len(q))
            for k in ks:
                mean, lo, hi = bootstrap_ci(ranks <= k, n_resamples=n_resamples, seed=seed)
                rows.append({"stage": stage, "direction": direction, "k": k, "recall": mean, "lo": lo, "hi": hi,
                             "chance": chance_recall(k, len(g), n_relevant), "queries": len(q), "gallery": len(g)})
    gaps = {stage: gap_report(_paired(ea, eb, relevance, names, meta_a, meta_b, test_a, test_b), probe=probe,
                              seed=seed) for stage, (ea, eb) in embedded.items()}
    runs = summary = None
    sizes = _curve_sizes(curve_sizes, len(train_pairs))
    if sizes:
        runs, summary = learning_curve(make_trainer, xa[train_pairs[:, 0]], xb[train_pairs[:, 1]], validation,
                                       sizes, seeds=list(curve_seeds), progress=progress)
    split = {"train_pairs": train_pairs, "test_pairs": test_pairs, "test_a": test_a, "test_b": test_b}
    return AlignmentResult(pl.DataFrame(rows), gaps["before"], gaps["after"], summary, runs, trainer.history_,
                           trainer, names, split, _paired(*embedded["after"], relevance, names, meta_a, meta_b,
                                                          test_a, test_b))


def _paired(ea: np.ndarray, eb: np.ndarray, relevance: np.ndarray, names: tuple[str, str], meta_a: Any, meta_b: Any,
            test_a: np.ndarray, test_b: np.ndarray) -> PairedEmbeddings:
    return PairedEmbeddings.from_arrays(
        ea, eb, modalities=names, model="projection heads", pairs=relevance,
        metadata_a=None if meta_a is None else meta_a[test_a], metadata_b=None if meta_b is None else meta_b[test_b])


def _curve_sizes(curve_sizes: Any, n_train: int) -> list[int]:
    if curve_sizes is None:
        return []
    if isinstance(curve_sizes, str):
        if curve_sizes != "auto":
            raise InvalidParameterError(f"curve_sizes must be 'auto', None or a sequence of ints, got {curve_sizes!r}")
        return sorted({max(2, n_train // d) for d in (8, 4, 2, 1)})
    return [check_int(n, "curve_sizes", low=2, high=n_train) for n in curve_sizes]


def _held_out_rows(held_out: Any, metadata: pl.DataFrame | None, n: int) -> np.ndarray | None:
    if held_out is None:
        return None
    if isinstance(held_out, str):
        if metadata is None or held_out not in metadata.columns:
            columns = None if metadata is None else metadata.columns
            raise ValueError(f"held_out={held_out!r} names no metadata column of the first modality (columns: "
                             f"{columns}); pass a column whose value 'test' marks held-out items, a mask or rows")
        return np.flatnonzero((metadata[held_out] == "test").to_numpy())
    arr = np.asarray(held_out)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"a held_out mask needs one entry per row of the first modality ({n}), got {arr.shape}")
        return np.flatnonzero(arr)
    if arr.ndim != 1 or arr.dtype.kind not in "iu" or (arr.size and (arr.min() < 0 or arr.max() >= n)):
        raise ValueError(f"held_out must be a column name, a boolean mask or row indices in [0, {n}), got {held_out!r}")
    return arr
