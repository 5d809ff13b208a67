"""The modality-gap metrics of :mod:`workbench.gap` (numpy only; sums accumulate in float64).

Functions take two row-paired arrays ``(a, b)`` or one :class:`~workbench.data.PairedEmbeddings` (see the package
docstring for how items and pairs are counted).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from workbench._labels import metric_label
from workbench._params import check_int, check_ints, check_number, check_seed
from workbench._validation import unit_rows64
from workbench.data import PairedEmbeddings
from workbench.gap._hubness import hubness

__all__ = [
    "GapReport",
    "alignment",
    "centroid_distance",
    "cosine_histograms",
    "gap_dimensions",
    "gap_report",
    "gap_shares",
    "gap_vector",
    "intra_modality_cosine",
    "mean_matched_cosine",
    "mean_unmatched_cosine",
    "paired_distance",
    "paired_items",
    "relative_modality_gap",
    "rmg_from_cosines",
    "uniformity",
]

#: Above this many rows, the O(N^2) uniformity terms use a seeded subsample of this many rows.
MAX_EXACT_ROWS = 5000
_BLOCK = 1024


# -- input handling ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Views:
    """Unit float64 views of the input: matched rows (one per pair) and each modality's items (each once)."""

    ma: np.ndarray
    mb: np.ndarray
    items_a: np.ndarray
    items_b: np.ndarray
    pairs: np.ndarray  # (P x 2) into items_a / items_b


def paired_items(a: Any, b: Any | None = None, *, min_pairs: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paired items of each modality as float64 unit rows and the pairs between them: ``(items_a, items_b,
    pairs)``, from a :class:`~workbench.data.PairedEmbeddings` (each paired item once, unpaired items left out) or
    two row-paired arrays (pair i is row i of both). Every gap metric reads its input this way.

    Examples
    --------
    >>> import numpy as np
    >>> items_a, items_b, pairs = paired_items(np.eye(2), np.eye(2))
    >>> items_a.shape, pairs.tolist()
    ((2, 2), [[0, 0], [1, 1]])
    """
    views = _views(a, b, min_pairs)
    return views.items_a, views.items_b, views.pairs


def _views(a: Any, b: Any | None, min_pairs: int = 1) -> _Views:
    if isinstance(a, PairedEmbeddings):
        if b is not None:
            raise TypeError("pass either a PairedEmbeddings or two arrays, not both")
        rows_a, rows_b = a.paired_rows()
        items_a = a.a.vectors[rows_a].astype(np.float64)
        items_b = a.b.vectors[rows_b].astype(np.float64)
        pairs = np.stack([np.searchsorted(rows_a, a.pairs[:, 0]), np.searchsorted(rows_b, a.pairs[:, 1])], axis=1)
        views = _Views(items_a[pairs[:, 0]], items_b[pairs[:, 1]], items_a, items_b, pairs)
    else:
        if b is None:
            raise TypeError("two row-paired arrays (a, b) or one PairedEmbeddings are needed")
        ua, ub = unit_rows64(a, "a"), unit_rows64(b, "b")
        if ua.shape[1] != ub.shape[1]:
            raise ValueError(f"a and b must have the same dimension, got {ua.shape[1]} and {ub.shape[1]}")
        if len(ua) != len(ub):
            raise ValueError(
                f"a and b must be row-paired (equal row counts), got {len(ua)} and {len(ub)}; "
                "for many-to-many data pass a PairedEmbeddings"
            )
        idx = np.arange(len(ua))
        views = _Views(ua, ub, ua, ub, np.stack([idx, idx], axis=1))
    if len(views.pairs) < min_pairs:
        raise ValueError(f"a and b: at least {min_pairs} pairs are needed, got {len(views.pairs)}")
    return views


# -- centroid and paired terms --------------------------------------------------------------------------------------
def gap_vector(a: Any, b: Any | None = None) -> np.ndarray:
    """The modality gap vector ``mean(a) - mean(b)`` (Liang et al., NeurIPS 2022, Sec. 4).

    Examples
    --------
    >>> import numpy as np
    >>> gap_vector(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))
    array([ 1., -1.])
    """
    v = _views(a, b)
    return v.items_a.mean(axis=0) - v.items_b.mean(axis=0)


def centroid_distance(a: Any, b: Any | None = None) -> float:
    """Euclidean distance between the two modalities' centroids, ``||mean(a) - mean(b)||`` (Liang et al. 2022).

    Examples
    --------
    >>> import numpy as np
    >>> round(centroid_distance(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])), 4)
    1.4142
    """
    return float(np.linalg.norm(gap_vector(a, b)))


def mean_matched_cosine(a: Any, b: Any | None = None) -> float:
    """Mean cosine similarity of matched pairs, ``mean_i <a_i, b_i>``.

    Examples
    --------
    >>> import numpy as np
    >>> mean_matched_cosine(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    0.5
    """
    v = _views(a, b)
    return float(np.einsum("ij,ij->i", v.ma, v.mb).mean())


def paired_distance(a: Any, b: Any | None = None) -> float:
    """Mean Euclidean distance of matched pairs, ``mean_i ||a_i - b_i||`` (L2I, Schrodi et al., ICLR 2025).

    Examples
    --------
    >>> import numpy as np
    >>> round(paired_distance(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])), 4)
    1.4142
    """
    v = _views(a, b)
    return float(np.linalg.norm(v.ma - v.mb, axis=1).mean())


def alignment(a: Any, b: Any | None = None) -> float:
    """Alignment loss ``mean_i ||a_i - b_i||^2`` (Wang & Isola, ICML 2020); 0 when every pair coincides.

    Examples
    --------
    >>> import numpy as np
    >>> alignment(np.array([[1.0, 0.0]]), np.array([[-1.0, 0.0]]))
    4.0
    """
    v = _views(a, b)
    return float((np.linalg.norm(v.ma - v.mb, axis=1) ** 2).mean())


def _mean_offdiagonal_cosine(x: np.ndarray, what: str) -> float:
    """Mean cosine over pairs i != j of unit rows, exactly, in O(N D): (||sum x||^2 - N) / (N (N - 1))."""
    n = len(x)
    if n < 2:
        raise ValueError(f"{what}: within-modality cosines need at least 2 items, got {n}")
    s = x.sum(axis=0)
    return float((s @ s - np.einsum("ij,ij->", x, x)) / (n * (n - 1)))


def intra_modality_cosine(x: Any) -> float:
    """Mean cosine between distinct items of one modality (the cone effect, Liang et al. 2022).

    Examples
    --------
    >>> import numpy as np
    >>> round(intra_modality_cosine(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])), 6)  # (0 + .7071 + .7071) / 3
    0.471405
    """
    return _mean_offdiagonal_cosine(unit_rows64(x, "x"), "x")


def mean_unmatched_cosine(a: Any, b: Any | None = None) -> float:
    """Mean cosine between a and b items that are not paired, exactly, in O(N D).

    Examples
    --------
    >>> import numpy as np
    >>> mean_unmatched_cosine(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    0.5
    """
    v = _views(a, b)
    total = v.items_a.sum(axis=0) @ v.items_b.sum(axis=0)
    matched = np.einsum("ij,ij->", v.ma, v.mb)
    count = len(v.items_a) * len(v.items_b) - len(v.pairs)
    if count == 0:
        raise ValueError("every (a, b) combination is a pair: there are no unmatched pairs")
    return float((total - matched) / count)


def relative_modality_gap(a: Any, b: Any | None = None) -> float:
    """Relative modality gap (RMG, Schrodi et al., ICLR 2025).

    ``d(m) / (d(m) + (d(s_a) + d(s_b)) / 2)`` with ``d(c) = 1 - (c + 1) / 2`` (a cosine turned into a distance in
    [0, 1]), ``m`` the mean matched cosine and ``s_a``, ``s_b`` the mean cosine between distinct items within a
    and within b. 0 when pairs coincide; near 1 when matched items are far apart compared with the spread within
    each modality.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    >>> round(relative_modality_gap(a, a), 6)
    0.0
    """
    v = _views(a, b, min_pairs=2)
    return rmg_from_cosines(float(np.einsum("ij,ij->i", v.ma, v.mb).mean()),
                _mean_offdiagonal_cosine(v.items_a, "a"), _mean_offdiagonal_cosine(v.items_b, "b"))


#: Cosine distances ``1 - (c + 1) / 2`` below this are rounding (mean cosines of unit rows carry ~1e-16 * D error).
RMG_ROUNDING = 1e-12


def rmg_from_cosines(m: float, s_a: float, s_b: float) -> float:
    """The relative modality gap from its three mean cosines (see :func:`relative_modality_gap`).

    A distance below :data:`RMG_ROUNDING` is float64 rounding of cosines that are exactly 1, so it counts as 0: when
    every item of both modalities is one point, the RMG is 0 (pairs coincide) rather than whatever ratio the
    rounding errors happen to make (it was 0 or 1 depending on a rotation of the data).

    Examples
    --------
    >>> rmg_from_cosines(1.0, 0.0, 0.0)   # pairs coincide
    0.0
    >>> rmg_from_cosines(1.0 - 2e-16, 1.0, 1.0 - 1e-16)   # one point for everything: rounding, not a gap
    0.0
    """
    def d(c: float) -> float:
        distance = 1.0 - (c + 1.0) / 2.0
        return distance if distance >= RMG_ROUNDING else 0.0

    denominator = d(m) + (d(s_a) + d(s_b)) / 2.0
    return float(d(m) / denominator) if denominator > 0 else 0.0


# -- uniformity -----------------------------------------------------------------------------------------------------
def _subsample(x: np.ndarray, max_rows: int, seed: int) -> tuple[np.ndarray, bool]:
    if len(x) <= max_rows:
        return x, False
    rows = np.sort(np.random.default_rng(seed).choice(len(x), size=max_rows, replace=False))
    return x[rows], True


def _squared_distance_blocks(x: np.ndarray) -> Iterator[np.ndarray]:
    """``||x_i - x_j||^2`` for every pair i < j of unit rows, block by block (flat arrays)."""
    n = len(x)
    for s in range(0, n, _BLOCK):
        e = min(s + _BLOCK, n)
        sq = np.maximum(2.0 - 2.0 * (x[s:e] @ x[s:].T), 0.0)  # columns s..n
        yield np.concatenate([sq[:, : e - s][np.triu_indices(e - s, k=1)], sq[:, e - s :].ravel()])


#: Below this the plain sum of exp(-t d^2) has lost digits to underflow (or is 0, whose log is -inf).
_UNDERFLOW_SUM = 1e-280


def _uniformity_exact(x: np.ndarray, what: str, t: float = 2.0) -> float:
    n = len(x)
    if n < 2:
        raise ValueError(f"{what}: uniformity needs at least 2 items, got {n}")
    count = n * (n - 1) / 2
    total = 0.0
    for s in range(0, n, _BLOCK):
        e = min(s + _BLOCK, n)
        sq = np.maximum(2.0 - 2.0 * (x[s:e] @ x[s:].T), 0.0)  # ||x_i - x_j||^2 of unit rows, columns s..n
        kernel = np.exp(-t * sq)
        total += float(np.triu(kernel[:, : e - s], k=1).sum()) + float(kernel[:, e - s :].sum())
    if total >= _UNDERFLOW_SUM:
        return float(np.log(total / count))
    # a large t: every exp(-t d^2) underflows; log-sum-exp around the closest pair keeps the value finite and exact
    closest = min(float(d.min()) for d in _squared_distance_blocks(x))
    shifted = sum(float(np.exp(-t * (d - closest)).sum()) for d in _squared_distance_blocks(x))
    return float(-t * closest + np.log(shifted) - np.log(count))


def uniformity(x: Any, *, t: float = 2.0, max_rows: int = MAX_EXACT_ROWS, seed: int = 0) -> float:
    """Uniformity ``log mean_{i<j} exp(-t ||x_i - x_j||^2)`` with t = 2 (Wang & Isola, ICML 2020).

    Lower is more uniform (the minimum on the sphere approaches -4 for t = 2). Above ``max_rows`` rows a seeded
    subsample of ``max_rows`` rows is used.

    Examples
    --------
    >>> import numpy as np
    >>> round(uniformity(np.array([[1.0, 0.0], [-1.0, 0.0]])), 6)   # opposite points: log(exp(-8))
    -8.0
    """
    t = check_number(t, "t", low=0.0, inclusive=False)
    max_rows, seed = check_int(max_rows, "max_rows", low=2), check_seed(seed)
    sample, _ = _subsample(unit_rows64(x, "x"), max_rows, seed)
    return _uniformity_exact(sample, "x", t)


# -- where the gap lives ----------------------------------------------------------------------------------------------
def gap_shares(a: Any, b: Any | None = None, ks: Sequence[int] = (1, 5, 20)) -> dict[int, float]:
    """Fraction of ``||gap||^2`` carried by the gap vector's k largest coordinates, for each k.

    Schrodi et al. (ICLR 2025) find that a few embedding dimensions carry most of the gap.

    Examples
    --------
    >>> import numpy as np
    >>> gap_shares(np.array([[3.0, 4.0, 0.0]]), np.array([[0.0, 0.0, 1.0]]), ks=(1,))  # gap (.6, .8, -1)
    {1: 0.5}
    """
    ks = check_ints(ks, "ks")
    g2 = np.sort(gap_vector(a, b) ** 2)[::-1]
    total = g2.sum()
    cumulative = np.cumsum(g2)
    return {int(k): float(cumulative[min(k, len(g2)) - 1] / total) if total > 0 else 0.0 for k in ks}


def gap_dimensions(a: Any, b: Any | None = None, k: int = 10) -> pl.DataFrame:
    """The k coordinates that carry most of the gap: ``dimension``, signed ``gap`` value and ``share`` of ||gap||^2.

    Examples
    --------
    >>> import numpy as np
    >>> gap_dimensions(np.array([[3.0, 4.0, 0.0]]), np.array([[0.0, 0.0, 1.0]]), k=2)["dimension"].to_list()
    [2, 1]
    """
    k = check_int(k, "k")
    g = gap_vector(a, b)
    if not 1 <= k <= len(g):
        raise ValueError(f"k must be between 1 and the dimension {len(g)}, got {k}")
    order = np.argsort(-(g**2), kind="stable")[:k]
    total = float(g @ g)
    return pl.DataFrame(
        {"dimension": order.astype(np.int64), "gap": g[order], "share": g[order] ** 2 / total if total else 0.0}
    )


# -- the report -------------------------------------------------------------------------------------------------------
class GapReport(dict):  # type: ignore[type-arg]
    """A ``dict[str, float | None]`` of gap metrics, with ``notes`` saying what was subsampled or skipped.

    ``modalities`` names ``a`` and ``b`` (from a PairedEmbeddings; else ``("a", "b")``) in the HTML table a
    notebook shows, whose rows carry the human labels of :func:`workbench.export.metric_label`.
    """

    notes: dict[str, str]

    def __init__(self, values: dict[str, float | None], notes: dict[str, str],
                 modalities: tuple[str, str] = ("a", "b")) -> None:
        super().__init__(values)
        self.notes = notes
        self.modalities = (str(modalities[0]), str(modalities[1]))

    def _repr_html_(self) -> str:
        """A table of the metrics with human labels and notes (what a notebook shows).

        Examples
        --------
        >>> html = GapReport({"intra_cosine_a": 0.5, "modality_probe_accuracy": None},
        ...                  {"modality_probe_accuracy": "fewer than 10 pairs"}, ("image", "text"))._repr_html_()
        >>> "mean cosine within image" in html and "<td>0.5000</td>" in html and "fewer than 10 pairs" in html
        True
        """
        import html

        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(metric_label(k, self.modalities))}</th>"
            f"<td>{'–' if v is None else f'{v:.4f}'}</td><td>{html.escape(self.notes.get(k, ''))}</td></tr>"
            for k, v in self.items())
        return ("<table class='wb-gap-report'><thead><tr><th>metric</th><th>value</th><th>note</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>")

    def to_frame(self, wide: bool = False) -> pl.DataFrame:
        """The metrics as a polars DataFrame: one row per metric (``metric``, ``value``, ``note``), or with
        ``wide=True`` one row with a column per metric (``vstack`` several reports into a table for a paper).

        Examples
        --------
        >>> GapReport({"centroid_distance": 0.85, "modality_probe_accuracy": None},
        ...           {"modality_probe_accuracy": "fewer than 10 pairs"}).to_frame().rows()
        [('centroid_distance', 0.85, None), ('modality_probe_accuracy', None, 'fewer than 10 pairs')]
        """
        if wide:
            return pl.DataFrame({k: [v] for k, v in self.items()}, schema={k: pl.Float64 for k in self})
        return pl.DataFrame(
            {"metric": list(self), "value": list(self.values()), "note": [self.notes.get(k) for k in self]},
            schema={"metric": pl.String, "value": pl.Float64, "note": pl.String},
        )


def gap_report(
    a: Any,
    b: Any | None = None,
    *,
    probe: bool = True,
    max_rows: int = MAX_EXACT_ROWS,
    seed: int = 0,
    device: Any = None,
    hubness_k: int | None = None,
) -> GapReport:
    """Every gap metric of a paired set, in one dict.

    Parameters
    ----------
    a, b : row-paired arrays (N x D), or one PairedEmbeddings as ``a``
        Rows are L2-normalised first; with a ``PairedEmbeddings`` per-modality terms use each item once.
    probe : bool, default True
        Include ``modality_probe_accuracy`` (5-fold seeded logistic regression; the slowest term).
    max_rows : int, default 5000
        Above this many items per modality the O(N^2) uniformity terms use a seeded subsample (said in ``notes``).
    seed : int
        Seed of the subsample and the probe's folds.
    device : None, "cpu", "cuda" or a torch.device, default None
        None computes in numpy; a device computes the sums (the O(N^2) uniformity above all) in torch float64 there,
        equal to numpy to float64 rounding; the probe fits scikit-learn's objective with torch there (see
        :func:`workbench.probes.linear_probe`).
    hubness_k : int, optional
        Also report cross-modal hubness at this k (:func:`workbench.gap.hubness`: ``k_skewness_a``/``_b``,
        ``hubs_*``, ``hub_occurrence_*``, ``antihubs_*``, ``antihub_occurrence_*``, ``robinhood_*``).

    Returns
    -------
    GapReport
        ``centroid_distance``, ``paired_distance``, ``relative_modality_gap``, ``alignment``, ``uniformity_a``,
        ``uniformity_b``, ``mean_matched_cosine``, ``mean_unmatched_cosine``, ``intra_cosine_a``,
        ``intra_cosine_b``, ``modality_probe_accuracy`` (None with a reason in ``notes`` below 10 pairs),
        ``gap_top1_share``, ``gap_top5_share``, ``gap_top20_share``. Each is defined (with its source) by the
        function of the same name in this module.

    Examples
    --------
    >>> import workbench
    >>> report = gap_report(workbench.datasets.load("liang2022/clip"), probe=False)
    >>> round(report["centroid_distance"], 3), round(report["mean_matched_cosine"], 3)
    (0.851, 0.31)
    """
    max_rows, seed = check_int(max_rows, "max_rows", low=2), check_seed(seed)
    v = _views(a, b, min_pairs=2)
    notes: dict[str, str] = {}
    samples = {side: _subsample(items, max_rows, seed) for side, items in (("a", v.items_a), ("b", v.items_b))}
    if device is None:
        m = float(np.einsum("ij,ij->i", v.ma, v.mb).mean())
        s_a, s_b = _mean_offdiagonal_cosine(v.items_a, "a"), _mean_offdiagonal_cosine(v.items_b, "b")
        pair_dist = np.linalg.norm(v.ma - v.mb, axis=1)
        paired, align = float(pair_dist.mean()), float((pair_dist**2).mean())
        g = v.items_a.mean(axis=0) - v.items_b.mean(axis=0)
        cross = float(v.items_a.sum(axis=0) @ v.items_b.sum(axis=0))
        unif = {side: _uniformity_exact(sample, side) for side, (sample, _) in samples.items()}
    else:  # the same sums in torch on the device (workbench._gram)
        from workbench._gram import gap_terms

        for side, items in (("a", v.items_a), ("b", v.items_b)):
            if len(items) < 2:  # the numpy path's error
                raise ValueError(f"{side}: within-modality cosines need at least 2 items, got {len(items)}")
        t = gap_terms(v.ma, v.mb, v.items_a, v.items_b, samples["a"][0], samples["b"][0], device)
        m, s_a, s_b, g, cross = t["matched_cosine"], t["intra_a"], t["intra_b"], t["gap"], t["cross_sum"]
        paired, align = t["paired_distance"], t["alignment"]
        unif = {side: t[f"uniformity_{side}"] if t[f"uniformity_{side}"] is not None
                else _uniformity_exact(sample, side) for side, (sample, _) in samples.items()}
    g2 = np.sort(g**2)[::-1]
    cumulative = np.cumsum(g2) / g2.sum() if g2.sum() > 0 else np.zeros_like(g2)
    unmatched_count = len(v.items_a) * len(v.items_b) - len(v.pairs)

    values: dict[str, float | None] = {
        "centroid_distance": float(np.linalg.norm(g)),
        "paired_distance": paired,
        "relative_modality_gap": rmg_from_cosines(m, s_a, s_b),
        "alignment": align,
    }
    for side, items in (("a", v.items_a), ("b", v.items_b)):
        values[f"uniformity_{side}"] = unif[side]
        if samples[side][1]:
            notes[f"uniformity_{side}"] = f"seeded subsample of {max_rows} of {len(items)} items (seed {seed})"
    values["mean_matched_cosine"] = m
    values["mean_unmatched_cosine"] = float((cross - m * len(v.pairs)) / unmatched_count) if unmatched_count else None
    values["intra_cosine_a"] = s_a
    values["intra_cosine_b"] = s_b
    values["modality_probe_accuracy"] = None
    if not probe:
        notes["modality_probe_accuracy"] = "not computed (probe=False)"
    else:
        from workbench.probes import modality_probe_accuracy

        result = modality_probe_accuracy(v.items_a, v.items_b, seed=seed, device=device)
        values["modality_probe_accuracy"] = result.accuracy
        if result.accuracy is None:
            notes["modality_probe_accuracy"] = str(result.reason)
    for k in (1, 5, 20):
        values[f"gap_top{k}_share"] = float(cumulative[min(k, len(cumulative)) - 1])
    if hubness_k is not None:
        values.update(hubness(v.items_a, v.items_b, k=hubness_k))
    return GapReport(values, notes, a.modalities if isinstance(a, PairedEmbeddings) else ("a", "b"))


# -- distributions for plots -------------------------------------------------------------------------------------------
def cosine_histograms(a: Any, b: Any | None = None, *, bins: int = 50) -> pl.DataFrame:
    """Histograms of matched, unmatched and within-modality cosines over exact counts (chunked, O(N^2) time).

    Returns a long polars frame: ``kind`` (``matched``, ``unmatched``, ``intra_a``, ``intra_b``), ``bin_left``,
    ``bin_right``, ``count`` and ``density`` (count / total count of that kind), on shared edges over [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> h = cosine_histograms(np.eye(3), np.eye(3), bins=4)
    >>> h.filter(h["kind"] == "matched")["count"].to_list()   # three cosines of 1
    [0, 0, 0, 3]
    """
    bins = check_int(bins, "bins")
    v = _views(a, b, min_pairs=2)
    edges = np.linspace(-1.0, 1.0, bins + 1)

    def hist(values: np.ndarray) -> np.ndarray:
        return np.histogram(np.clip(values, -1.0, 1.0), bins=edges)[0]

    counts = {"matched": hist(np.einsum("ij,ij->i", v.ma, v.mb)), "unmatched": np.zeros(bins, dtype=np.int64),
              "intra_a": np.zeros(bins, dtype=np.int64), "intra_b": np.zeros(bins, dtype=np.int64)}
    order = np.argsort(v.pairs[:, 0], kind="stable")
    pairs = v.pairs[order]
    n_a = len(v.items_a)
    starts = np.searchsorted(pairs[:, 0], np.arange(n_a + 1))
    for s in range(0, n_a, _BLOCK):
        e = min(s + _BLOCK, n_a)
        sims = v.items_a[s:e] @ v.items_b.T
        keep = np.ones_like(sims, dtype=bool)
        block = pairs[starts[s] : starts[e]]
        keep[block[:, 0] - s, block[:, 1]] = False
        counts["unmatched"] += hist(sims[keep])
    for kind, items in (("intra_a", v.items_a), ("intra_b", v.items_b)):
        for s in range(0, len(items), _BLOCK):
            e = min(s + _BLOCK, len(items))
            sims = items[s:e] @ items[s + 1 :].T
            upper = np.arange(s + 1, len(items))[None, :] > np.arange(s, e)[:, None]
            counts[kind] += hist(sims[upper])
    frames = []
    for kind, c in counts.items():
        total = c.sum()
        frames.append(pl.DataFrame({
            "kind": [kind] * bins, "bin_left": edges[:-1], "bin_right": edges[1:], "count": c.astype(np.int64),
            "density": c / total if total else np.zeros(bins),
        }))
    return pl.concat(frames)
