"""Side-by-side evaluation of gap correctors, with confidence intervals, and the mixed-modality index report.

:func:`compare_correctors` fits each corrector on one part of the pairs and evaluates it on the held-out part:
every :func:`~workbench.gap.gap_report` key and R@1/5/10 in both directions, each with a 95% interval.

How the intervals are made (and why):

- Retrieval (R@K): the per-query hits are resampled with replacement against the FIXED held-out gallery. Resampling
  pairs instead would put duplicate items into the gallery, and a duplicate of the right answer ranks above it
  (recall 0.27 or 0.74 instead of 0.66 on one resample of CLIP pairs).
- Set-level metrics (centroid distance, uniformity, ...): half-samples drawn without replacement. For a mean-like
  statistic, a half-sample without replacement has the same variance as the full-sample estimate
  (``sigma^2 / m * (1 - m / n) = sigma^2 / n`` for ``m = n / 2``), so the spread of the half-sample values gives
  the interval's width. It is centred on the full-sample estimate (the half-samples' percentiles minus their
  mean, plus the estimate): a norm of a mean, such as the centroid distance, is biased upward in a smaller
  sample, and a near-zero gap would otherwise get an interval that excludes its own estimate.
- The size of the gap itself: ``centroid_distance`` is the plug-in ``||mean(a) - mean(b)||`` of the held-out
  items (the :func:`~workbench.gap.gap_report` value), and its interval describes how that number varies, NOT
  where the true gap lies: its square is biased upward by the sampling noise of the two means (on CLIP's 250
  held-out pairs by about 0.06 in the distance), so its interval misses small true gaps (a true gap of 0 is never
  covered). The columns ``centroid_gap``, ``centroid_gap_lo`` / ``_hi``, ``centroid_gap_noise_floor`` and
  ``centroid_gap_above_noise`` answer that question with a bias-corrected estimate, a bootstrap interval that
  covers the true gap, and a sign-flip null; see :func:`centroid_gap`.
- The modality probe gets no interval (it is already cross-validated, and refitting it 1,000 times is slow).

Many systems at once (``significance=True``): every corrector's held-out hits are compared with ``none``'s by the
exact McNemar test, Holm-adjusted over the correctors (``<metric>_p``, ``<metric>_p_holm``); every pair of rows is
compared for the ranx-style letters (``system``, ``<metric>_sig``: :func:`workbench.retrieval.significance_letters`,
shown as superscripts by :func:`workbench.export.to_latex`); and ``<metric>_mde`` is the power note, the smallest
change a paired test on this many held-out queries detects at 80% power
(:func:`workbench.retrieval.detectable_difference`). Re-rankers (:class:`workbench.correct.rerankers.ReRanker`:
NNN, QBNorm, DBNorm) are evaluated the same way: their banks are fitted on the training pairs, their scores rank the
held-out queries, and the embeddings (so the gap metrics) are those of ``none``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from workbench._params import InvalidParameterError, check_int, check_ints, check_seed
from workbench._validation import unit_rows64
from workbench.correct.rerankers import ReRanker
from workbench.data import PairedEmbeddings
from workbench.gap import gap_report, paired_items
from workbench.retrieval import (
    count_at_least,
    detectable_difference,
    first_relevant_ranks,
    holm,
    mcnemar_exact,
    ranks_from_scores,
    significance_letters,
)

__all__ = ["centroid_gap", "compare_correctors", "mixed_index_report", "split_pairs"]


def _as_paired(paired: Any, b: Any | None = None) -> PairedEmbeddings:
    if isinstance(paired, PairedEmbeddings):
        if b is not None:
            raise TypeError("pass either a PairedEmbeddings or two arrays, not both")
        return paired
    if b is None:
        raise TypeError("two row-paired arrays (a, b) or one PairedEmbeddings are needed")
    return PairedEmbeddings.from_arrays(paired, b)


def split_pairs(paired: PairedEmbeddings, test_fraction: float = 0.5, seed: int = 0
                ) -> tuple[PairedEmbeddings, PairedEmbeddings]:
    """Split into (train, test) by the rows of ``a``: an image and all its captions land on the same side.

    Examples
    --------
    >>> import workbench
    >>> train, test = split_pairs(workbench.datasets.load("liang2022/clip"), 0.5, seed=0)
    >>> train.n_pairs, test.n_pairs
    (250, 250)
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    rows_a, _ = paired.paired_rows()
    if len(rows_a) < 4:
        raise ValueError(f"splitting needs at least 4 paired items of {paired.a.modality}, got {len(rows_a)}")
    n_test = min(max(2, round(len(rows_a) * test_fraction)), len(rows_a) - 2)
    test_rows = np.random.default_rng(seed).choice(rows_a, size=n_test, replace=False)
    is_test = np.isin(paired.pairs[:, 0], test_rows)
    return paired.subset(~is_test), paired.subset(is_test)


def _name(corrector: Any) -> str:
    return " ".join(repr(corrector).split())


def _transformed(corrector: Any | None, train: PairedEmbeddings, test: PairedEmbeddings
                 ) -> tuple[PairedEmbeddings, Any]:
    """The held-out pairs as the corrector leaves them, and the fitted corrector (None for none)."""
    if corrector is None:
        return test, None
    from sklearn.base import clone

    if isinstance(corrector, ReRanker):  # it changes the scores, not the embeddings; its banks: training items
        return test, clone(corrector).fit(train)
    fitted = clone(corrector).fit(*train.matched())
    a2, b2 = fitted.transform(test.a.vectors, test.b.vectors)
    return PairedEmbeddings.from_arrays(a2, b2, modalities=test.modalities, pairs=test.pairs), fitted


def _ranks(fitted: Any, moved: PairedEmbeddings) -> tuple[np.ndarray, np.ndarray]:
    """Held-out ranks both ways: the engine's on the embeddings, or from a re-ranker's scores (same tie rule)."""
    if isinstance(fitted, ReRanker):
        return (ranks_from_scores(fitted.scores(moved.a.vectors, moved.b.vectors, query_modality="a"), moved.pairs),
                ranks_from_scores(fitted.scores(moved.b.vectors, moved.a.vectors, query_modality="b"),
                                  moved.pairs[:, ::-1]))
    return (first_relevant_ranks(moved.a.vectors, moved.b.vectors, moved.pairs),
            first_relevant_ranks(moved.b.vectors, moved.a.vectors, moved.pairs[:, ::-1]))


def _significance(rows: list[dict[str, Any]], hits: dict[str, list[np.ndarray]]) -> None:
    """Add the McNemar p-values against none (raw and Holm-adjusted), the letters and the power note to rows."""
    for i, row in enumerate(rows):
        row["system"] = chr(ord("a") + i)
    for metric, per_system in hits.items():
        base = per_system[0]
        p = [np.nan] + [mcnemar_exact(int(np.sum(h & ~base)), int(np.sum(base & ~h))) for h in per_system[1:]]
        adjusted = holm(p)
        letters = significance_letters(np.stack(per_system))
        for i, (row, h) in enumerate(zip(rows, per_system, strict=True)):
            discordance = float(np.mean(h != base))
            row[f"{metric}_p"] = None if i == 0 else p[i]
            row[f"{metric}_p_holm"] = None if i == 0 else float(adjusted[i])
            row[f"{metric}_sig"] = letters[i]
            row[f"{metric}_mde"] = (detectable_difference(len(base), discordance) if i and discordance > 0
                                    else None)


def _percentiles(samples: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return float(lo), float(hi)


# -- the centroid gap, bias-corrected ------------------------------------------------------------------------------
#: Resamples are drawn in blocks of this many, so memory stays (block x groups) whatever ``n_resamples`` is.
_RESAMPLE_BLOCK = 128


def _gap_groups(a: Any, b: Any | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per independent group: the sums of its a items and of its b items (float64) and their counts.

    A group is a connected component of the pairs (an image with all its captions, a caption with all its images);
    each paired item is counted once, as :func:`workbench.gap.centroid_distance` counts it. Two row-paired arrays
    are one pair per row.
    """
    items_a, items_b, pairs = paired_items(a, b)
    ia, ib = pairs[:, 0], pairs[:, 1]
    if len(pairs) == len(items_a) == len(items_b):  # one-to-one (pairs are distinct and every item is paired)
        ones = np.ones(len(pairs))
        return items_a[ia], items_b[ib], ones, ones
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(items_a) + len(items_b)
    graph = coo_matrix((np.ones(len(ia)), (ia, len(items_a) + ib)), shape=(n, n))
    n_groups, label = connected_components(graph, directed=False)
    group_a, group_b = label[: len(items_a)], label[len(items_a):]
    sums_a, sums_b = np.zeros((n_groups, items_a.shape[1])), np.zeros((n_groups, items_a.shape[1]))
    np.add.at(sums_a, group_a, items_a)
    np.add.at(sums_b, group_b, items_b)
    return (sums_a, sums_b, np.bincount(group_a, minlength=n_groups).astype(np.float64),
            np.bincount(group_b, minlength=n_groups).astype(np.float64))


def _gap_u(weights: np.ndarray, sums_a: np.ndarray, sums_b: np.ndarray, n_a: np.ndarray, n_b: np.ndarray,
           sq: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """U for each row of ``weights`` (multiplicities of the groups): ``C / (C - 1) (||sum z||^2 - sum ||z||^2)``."""
    total_a, total_b = weights @ n_a, weights @ n_b
    gap = (weights @ sums_a) / total_a[:, None] - (weights @ sums_b) / total_b[:, None]
    own = (weights @ sq[0]) / total_a**2 - 2 * (weights @ sq[1]) / (total_a * total_b) + (weights @ sq[2]) / total_b**2
    c = weights.shape[1]
    return np.asarray(c / (c - 1) * (np.einsum("ij,ij->i", gap, gap) - own))


def centroid_gap(a: Any, b: Any | None = None, *, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The centroid gap ``||E a - E b||`` without the small-sample bias, with a 95% interval and a noise floor.

    The plug-in :func:`workbench.gap.centroid_distance` is biased upward: for one-to-one pairs with differences
    ``d_i = a_i - b_i`` (n pairs, mean ``mu``, covariance ``S``), ``E ||mean d||^2 = ||mu||^2 + tr(S) / n``, so a
    true gap of 0 measures about ``sqrt(tr(S) / n)`` (0.06 on CLIP's 250 held-out pairs).

    **Estimate.** The paired rows are NOT independent samples of the two modalities (an image and its caption
    move together), so the correction uses the paired form, not ``tr(S_a) / n_a + tr(S_b) / n_b`` (which ignores
    the pairs' covariance and over-corrects aligned data):

        ``U = ||mean d||^2 - tr(S) / n = 1 / (n (n - 1)) sum_{i != j} <d_i, d_j>``

    with ``S`` the sample covariance of the ``d_i`` (divisor ``n - 1``). Since ``E <d_i, d_j> = ||mu||^2`` for
    ``i != j`` (independent pairs), ``E U = ||mu||^2`` exactly: U is the unbiased U-statistic of the squared gap
    (it can be negative when the gap is small). For many-to-many pairs the independent units are the groups of
    items joined by pairs (an image and all its captions): with group sums ``A_c``, ``B_c`` and item totals
    ``N_a``, ``N_b``, ``z_c = A_c / N_a - B_c / N_b`` and ``U = C / (C - 1) (||sum_c z_c||^2 - sum_c ||z_c||^2)``
    over the ``C`` groups; this is the formula above for one-to-one pairs, unbiased when every group has the same
    numbers of items (five captions per image), and unbiased up to O(1/C) of the squared gap otherwise.
    The distance reported is ``sqrt(max(U, 0))``.

    **Interval.** The groups are resampled with replacement ``n_resamples`` times and U recomputed; the interval for
    U is the resampled values' 2.5 and 97.5 percentiles, minus their mean, plus U (a bootstrap U is centred on the
    plug-in square, not on U), and the distance interval is its square root (0 where negative). On simulated unit
    vectors with a known answer (250 pairs, 16 dimensions) it covers true gaps of 0.1 and 0.45 about 95% of the
    time (``tests/test_trust_science.py``), where the plug-in's interval covered 0.45 91%, 0.11 71% and 0 never.

    **Noise floor.** Under no gap each group's ``z_c`` is as likely to be ``-z_c`` (for one-to-one pairs: swapping
    the two modalities within a pair); U is recomputed under ``n_resamples`` random sign flips, and the noise
    floor is ``sqrt`` of their 95th percentile: the largest distance that 0 gap produces 19 times in 20.
    ``above_noise`` is ``U`` above that percentile (a one-sided sign-flip test at the 5% level).

    Parameters
    ----------
    a, b
        One :class:`~workbench.data.PairedEmbeddings`, or two row-paired arrays (rows are L2-normalised, as every
        gap metric normalises them).
    n_resamples : int, default 1000
        Bootstrap resamples and sign flips (at least 10).
    seed : int, default 0
        Seeds the resamples and the sign flips.

    Returns
    -------
    dict
        ``centroid_gap`` (``sqrt(max(U, 0))``), ``centroid_gap_lo``, ``centroid_gap_hi`` (95% interval),
        ``centroid_gap_noise_floor``, ``centroid_gap_above_noise`` (bool), ``centroid_gap_squared`` (``U`` itself)
        and ``centroid_gap_groups`` (the number of independent groups ``C``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(250, 16)), rng.normal(size=(250, 16))   # no gap at all
    >>> gap = centroid_gap(a, b)
    >>> bool(gap["centroid_gap_above_noise"]), bool(gap["centroid_gap"] < 0.1)
    (False, True)
    """
    if check_int(n_resamples, "n_resamples") < 10:
        raise InvalidParameterError(f"n_resamples must be at least 10 for a 95% interval, got {n_resamples}")
    groups = _gap_groups(a, b)
    if len(groups[0]) < 2:
        raise ValueError(f"the bias-corrected gap needs at least 2 independent groups of pairs, got {len(groups[0])} "
                         "(every item is connected to every other through the pairs)")
    return _gap_estimate(groups, n_resamples, check_seed(seed))


_GAP_COLUMNS = ("centroid_gap", "centroid_gap_lo", "centroid_gap_hi", "centroid_gap_noise_floor",
               "centroid_gap_above_noise", "centroid_gap_squared", "centroid_gap_groups")


def _gap_estimate(groups: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], n_resamples: int,
                  seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    sums_a, sums_b, n_a, n_b = groups
    c = len(sums_a)
    sq = (np.einsum("ij,ij->i", sums_a, sums_a), np.einsum("ij,ij->i", sums_a, sums_b),
          np.einsum("ij,ij->i", sums_b, sums_b))
    u = float(_gap_u(np.ones((1, c)), sums_a, sums_b, n_a, n_b, sq)[0])
    boot, null = [], []
    # the null: the same scatter around no gap (each group's share of the gap removed), signs flipped at random
    z = sums_a / n_a.sum() - sums_b / n_b.sum()
    z = z - z.mean(axis=0)
    own = float(np.einsum("ij,ij->", z, z))
    for start in range(0, n_resamples, _RESAMPLE_BLOCK):
        size = min(_RESAMPLE_BLOCK, n_resamples - start)
        weights = rng.multinomial(c, np.full(c, 1.0 / c), size=size).astype(np.float64)
        boot.append(_gap_u(weights, sums_a, sums_b, n_a, n_b, sq))
        flipped = rng.choice(np.array([-1.0, 1.0]), size=(size, c)) @ z
        null.append(c / (c - 1) * (np.einsum("ij,ij->i", flipped, flipped) - own))
    resampled, flips = np.concatenate(boot), np.concatenate(null)
    lo, hi = np.percentile(resampled, [2.5, 97.5]) - resampled.mean() + u
    floor = float(np.percentile(flips, 95))
    return dict(zip(_GAP_COLUMNS, (
        float(np.sqrt(max(u, 0.0))), float(np.sqrt(max(lo, 0.0))), float(np.sqrt(max(hi, 0.0))),
        float(np.sqrt(max(floor, 0.0))), bool(u > floor), u, c,
    ), strict=True))


def compare_correctors(
    paired: PairedEmbeddings,
    correctors: Sequence[Any] | Mapping[str, Any],
    *,
    test_fraction: float = 0.5,
    seed: int = 0,
    ks: Sequence[int] = (1, 5, 10),
    n_resamples: int = 1000,
    probe: bool = True,
    progress: bool = True,
    device: Any = None,
    significance: bool = False,
) -> pl.DataFrame:
    """Fit each corrector on training pairs and evaluate it on held-out pairs, with 95% intervals.

    Parameters
    ----------
    paired : PairedEmbeddings
        Split by :func:`split_pairs` (by items of ``a``, so no image is on both sides).
    correctors : sequence of estimators, or a mapping of name to estimator
        Objects with ``fit(a, b)`` and ``transform(a, b)`` (see :mod:`workbench.correct`), or re-rankers
        (:class:`~workbench.correct.rerankers.ReRanker`: NNN, QBNorm, DBNorm; fitted on the training pairs' items,
        scoring the held-out queries); each is cloned before fitting. Unnamed ones are named by their repr, e.g.
        ``GapShift(delta=0.5)``.
    test_fraction, seed
        The split (seeded), also the seed of the resamples.
    ks : R@K cut-offs.
    n_resamples : int, default 1000
        Bootstrap resamples of per-query hits (retrieval) and half-samples (set-level metrics).
    probe : bool, default True
        Include the modality probe (no interval).
    progress : bool, default True
        One progress bar over the correctors (``tqdm.auto``: a widget in notebooks), naming the one in work.
    device : None, "cpu", "cuda" or a torch.device, default None
        Where the half-samples' metrics are computed: None in numpy, else in torch float64 on that device. Either
        way every half-sample reads its metrics off one set of Gram matrices of the held-out items (computed once
        per corrector, see ``workbench._gram``) instead of a fresh ``gap_report`` per half-sample; the values equal
        per-half-sample reports to float64 rounding (tested), the resamples are the same for a seed.
    significance : bool, default False
        Add the paired tests for many systems at once (module docstring): ``system`` (a letter per row) and for each
        retrieval metric ``m``: ``m_p`` (exact McNemar p-value against ``none`` on the held-out queries),
        ``m_p_holm`` (Holm-adjusted over the correctors), ``m_sig`` (the letters of the rows this row beats,
        Holm over all pairs of rows, two-sided 5%) and ``m_mde`` (the smallest change of ``m`` detectable at 80%
        power by that test with this many queries and this row's share of queries that disagree with ``none``;
        Connor 1987). None for the ``none`` row.

    Returns
    -------
    polars.DataFrame
        One row per corrector plus ``none`` (first). Columns: ``corrector``, ``n_train``, ``n_test``, then for each
        metric its value and ``<metric>_lo`` / ``<metric>_hi``. Retrieval metrics are named like
        ``image_to_text_R@1`` (an image queries the texts). ``centroid_distance`` is the plug-in distance of the
        held-out centroids (biased upward by sampling noise; its interval is the plug-in's spread, not a range for
        the true gap); the bias-corrected gap with an interval that covers the true gap, the noise floor and
        whether the gap stands above it are ``centroid_gap``, ``centroid_gap_lo`` / ``_hi``,
        ``centroid_gap_noise_floor`` and ``centroid_gap_above_noise`` (see :func:`centroid_gap`; also
        ``centroid_gap_squared`` and ``centroid_gap_groups``; all None when the held-out pairs form one group).

    Examples
    --------
    >>> import workbench
    >>> from workbench.correct import GapShift
    >>> table = compare_correctors(workbench.datasets.load("liang2022/clip"), [GapShift(1.0)], n_resamples=50,
    ...                            probe=False, progress=False)
    >>> table["corrector"].to_list()
    ['none', 'GapShift()']
    >>> bool(table["centroid_distance"][1] < 0.1 < table["centroid_distance"][0])
    True
    >>> [round(g, 3) for g in table["centroid_gap"]]   # bias-corrected; the plug-in distances are 0.860, 0.082
    [0.859, 0.06]
    """
    ks = check_ints(ks, "ks")
    if check_int(n_resamples, "n_resamples") < 10:
        raise InvalidParameterError(f"n_resamples must be at least 10 for a 95% interval, got {n_resamples}")
    named: list[tuple[str, Any]] = [("none", None)]
    items = correctors.items() if isinstance(correctors, Mapping) else ((_name(c), c) for c in correctors)
    named += [(str(k), v) for k, v in items]
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError(f"corrector names must be distinct, got {names}; pass a dict of name -> corrector")
    if significance and len(named) > 26:
        raise ValueError(f"significance letters name at most 26 rows (none and 25 correctors), got {len(named)}; pass "
                         "significance=False")
    train, test = split_pairs(paired, test_fraction, seed)
    ma, mb = test.modalities if test.modalities[0] != test.modalities[1] else ("a", "b")

    # the resampling plan is shared by every corrector (paired comparisons across rows)
    rng = np.random.default_rng(seed)
    n_a, n_b = len(test.a), len(test.b)
    boot_a = rng.integers(0, n_a, size=(n_resamples, n_a))
    boot_b = rng.integers(0, n_b, size=(n_resamples, n_b))
    half = max(2, test.n_pairs // 2)
    halves = [np.sort(rng.choice(test.n_pairs, size=half, replace=False)) for _ in range(n_resamples)]

    from tqdm.auto import tqdm

    rows: list[dict[str, Any]] = []
    all_hits: dict[str, list[np.ndarray]] = {}
    with tqdm(total=len(named), desc="compare correctors", unit="corrector", disable=not progress) as bar:
        for name, corrector in named:
            bar.set_description_str(f"compare correctors: {name}")
            with _blas_for(test):  # the fit, the reports and the resampling of a small set: one thread
                moved, fitted = _transformed(corrector, train, test)
                row: dict[str, Any] = {"corrector": name, "n_train": train.n_pairs, "n_test": test.n_pairs}
                point = gap_report(moved, probe=probe, seed=seed)
                samples = _half_sample_reports(moved, halves, seed, device)
                for key, value in point.items():
                    row[key] = value
                    values = samples.get(key, np.empty(0))
                    if value is None or key == "modality_probe_accuracy" or len(values) < len(halves):
                        row[f"{key}_lo"], row[f"{key}_hi"] = None, None
                    else:
                        lo, hi = _percentiles(np.asarray(values))
                        shift = value - float(np.mean(values))
                        row[f"{key}_lo"], row[f"{key}_hi"] = lo + shift, hi + shift
                groups = _gap_groups(moved, None)
                if len(groups[0]) >= 2:  # the same seed for every corrector: the same groups resampled and flipped
                    with _one_blas_thread():
                        row.update(_gap_estimate(groups, n_resamples, seed))
                else:  # one group: nothing independent to compare (every item is joined to every other by pairs)
                    row.update(dict.fromkeys(_GAP_COLUMNS[:-1]), centroid_gap_groups=len(groups[0]))
                a_ranks, b_ranks = _ranks(fitted, moved)
                for label, ranks, boot in ((f"{ma}_to_{mb}", a_ranks, boot_a), (f"{mb}_to_{ma}", b_ranks, boot_b)):
                    for k in ks:
                        all_hits.setdefault(f"{label}_R@{k}", []).append(ranks <= k)
                        hits = (ranks <= k).astype(np.float64)
                        row[f"{label}_R@{k}"] = float(hits.mean())
                        row[f"{label}_R@{k}_lo"], row[f"{label}_R@{k}_hi"] = _percentiles(hits[boot].mean(axis=1))
            rows.append(row)
            bar.update(1)
    if significance:
        _significance(rows, all_hits)
    return pl.DataFrame(rows)


#: Up to this many held-out items of a modality and this dimension, a corrector's whole evaluation (its fit, the
#: point report, the probe, the resampling) runs on one BLAS thread: small products, which a multi-threaded BLAS
#: spends synchronising its threads on (Procrustes' 512 x 512 SVD: 0.07 s of CPU on one thread, 0.3 s on 2 busy
#: threads; values equal to the last bit or two, e.g. 3e-17 in the rotation).
_ONE_THREAD_ITEMS, _ONE_THREAD_DIM = 5000, 1024
_BLAS_CONTROLLER: Any = None


def _one_blas_thread() -> Any:
    """BLAS on one thread: the resampling engines are many small products, which a multi-threaded BLAS spends
    synchronising its threads on (4-5x slower on 2 busy cores, the same values). One threadpoolctl controller per
    process (finding the loaded libraries costs about 5 ms a time)."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        import scipy.linalg  # noqa: F401  (scipy's BLAS is loaded before the controller lists the libraries)
        from threadpoolctl import ThreadpoolController

        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def _blas_for(test: PairedEmbeddings) -> Any:
    """One BLAS thread for a small evaluation (see ``_ONE_THREAD_ITEMS``), the caller's setting for a large one."""
    small = max(len(test.a), len(test.b)) <= _ONE_THREAD_ITEMS and test.a.vectors.shape[1] <= _ONE_THREAD_DIM
    return _one_blas_thread() if small else contextlib.nullcontext()


def _half_sample_reports(moved: PairedEmbeddings, halves: list[np.ndarray], seed: int, device: Any
                         ) -> dict[str, np.ndarray]:
    """Every ``gap_report`` key (the probe aside) of each half-sample of the pairs, as arrays over the half-samples.

    One set of Gram matrices for all half-samples (:class:`workbench._gram.SubsetGap`); a key some half-sample has
    no value for (NaN: every combination a pair) is left out. Above ``MAX_GRAM_ITEMS`` items a report per
    half-sample (the same values, slower).
    """
    from workbench._gram import MAX_GRAM_ITEMS, SubsetGap
    from workbench.gap import rmg_from_cosines

    if moved.is_one_to_one:  # arrays skip building a PairedEmbeddings per half-sample (same values)
        xa, xb = moved.matched()
        items_a, items_b = unit_rows64(xa, "a"), unit_rows64(xb, "b")
        pairs = np.repeat(np.arange(len(items_a))[:, None], 2, axis=1)
    else:
        items_a, items_b, pairs = paired_items(moved)
    if max(len(items_a), len(items_b)) > MAX_GRAM_ITEMS:
        if moved.is_one_to_one:
            reports = [gap_report(xa[h], xb[h], probe=False, seed=seed) for h in halves]
        else:
            reports = [gap_report(moved.subset(h), probe=False, seed=seed) for h in halves]
        return {key: np.array([r[key] for r in reports if r[key] is not None]) for key in reports[0]}
    masks = np.zeros((len(halves), len(pairs)), dtype=bool)
    for i, h in enumerate(halves):
        masks[i, h] = True
    with _one_blas_thread():
        terms = SubsetGap(items_a, items_b, pairs, device=device).terms(masks)
    terms["relative_modality_gap"] = np.array([rmg_from_cosines(m, s_a, s_b) for m, s_a, s_b in zip(
        terms["mean_matched_cosine"], terms["intra_cosine_a"], terms["intra_cosine_b"], strict=True)])
    return {key: values[~np.isnan(values)] for key, values in terms.items()}


def mixed_index_report(
    a: Any,
    b: Any | None = None,
    *,
    k: int = 10,
    correctors: Sequence[Any] | Mapping[str, Any] = (),
    chunk_size: int = 1024,
) -> pl.DataFrame:
    """Both modalities in ONE index, queried with every item: how much does the gap bias what comes back?

    Each item queries the union of a and b (itself excluded). With a modality gap a text query returns texts
    first. Reported per query modality: the mean fraction of same-modality items among the top ``k``
    (``same_modality_at_k``; with no gap and equal counts about one half), and the rank of the query's own pair
    among everything (``pair_mean_rank``, ``pair_median_rank``, ``pair_recall_at_k``). Each corrector is fitted on
    the same pairs and applied before indexing (an in-sample view; pass held-out pairs for a fair test).

    Returns
    -------
    polars.DataFrame
        One row per (corrector, query modality); ``none`` first.

    Examples
    --------
    >>> import workbench
    >>> from workbench.correct import MeanCenter
    >>> r = mixed_index_report(workbench.datasets.load("liang2022/clip"), correctors=[MeanCenter()])
    >>> r.select("corrector", "query_modality").rows()
    [('none', 'image'), ('none', 'text'), ('MeanCenter()', 'image'), ('MeanCenter()', 'text')]
    """
    paired = _as_paired(a, b)
    # more than the other items would count the query itself (scored -inf) among its own top k
    k = check_int(k, "k", high=len(paired.a) + len(paired.b) - 1)
    chunk_size = check_int(chunk_size, "chunk_size")
    named: list[tuple[str, Any]] = [("none", None)]
    items = correctors.items() if isinstance(correctors, Mapping) else ((_name(c), c) for c in correctors)
    named += [(str(n), c) for n, c in items]
    n_a = len(paired.a)
    rows = []
    for name, corrector in named:
        if corrector is None:
            xa, xb = paired.a.vectors, paired.b.vectors
        else:
            from sklearn.base import clone

            xa, xb = clone(corrector).fit(*paired.matched()).transform(paired.a.vectors, paired.b.vectors)
        index = np.concatenate([np.asarray(xa, np.float32), np.asarray(xb, np.float32)])
        is_b = np.arange(len(index)) >= n_a
        # partners in the joint index: a row i pairs with index row n_a + j, and back
        partners = np.concatenate([
            np.stack([paired.pairs[:, 0], paired.pairs[:, 1] + n_a], axis=1),
            np.stack([paired.pairs[:, 1] + n_a, paired.pairs[:, 0]], axis=1),
        ])
        queries = np.unique(partners[:, 0])
        same = np.empty(len(index))
        for s in range(0, len(index), chunk_size):
            e = min(s + chunk_size, len(index))
            scores = index[s:e] @ index.T
            scores[np.arange(e - s), np.arange(s, e)] = -np.inf  # a query never retrieves itself
            top = np.argpartition(-scores, kth=min(k, len(index) - 2), axis=1)[:, :k]
            same[s:e] = (is_b[top] == is_b[s:e, None]).mean(axis=1)
        ranks = _partner_ranks(index, queries, partners, chunk_size)
        for modality, mask in ((paired.a.modality, ~is_b), (paired.b.modality, is_b)):
            q_mask = mask[queries]
            rows.append({
                "corrector": name,
                "query_modality": modality,
                "k": k,
                "same_modality_at_k": float(same[mask].mean()),
                "pair_mean_rank": float(ranks[q_mask].mean()),
                "pair_median_rank": float(np.median(ranks[q_mask])),
                "pair_recall_at_k": float(np.mean(ranks[q_mask] <= k)),
            })
    return pl.DataFrame(rows)


def _partner_ranks(index: np.ndarray, queries: np.ndarray, partners: np.ndarray, chunk_size: int) -> np.ndarray:
    """1 + the number of other items (self and partners excluded) scoring at least the best partner's score."""
    order = np.argsort(partners[:, 0], kind="stable")
    partners = partners[order]
    starts = np.searchsorted(partners[:, 0], queries)
    ends = np.searchsorted(partners[:, 0], queries, side="right")
    ranks = np.empty(len(queries), dtype=np.int64)
    for s in range(0, len(queries), chunk_size):
        e = min(s + chunk_size, len(queries))
        q = queries[s:e]
        scores = index[q] @ index.T
        excluded = np.zeros_like(scores, dtype=bool)
        excluded[np.arange(e - s), q] = True
        best = np.empty(e - s, dtype=scores.dtype)
        for r in range(e - s):
            cols = partners[starts[s + r] : ends[s + r], 1]
            excluded[r, cols] = True
            best[r] = scores[r, cols].max()
        scores[excluded] = -np.inf  # self and partners never count against the best partner
        ranks[s:e] = 1 + count_at_least(scores, best[:, None])[:, 0]
    return ranks
