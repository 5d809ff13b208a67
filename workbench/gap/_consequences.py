"""What the gap changes, beside R@K: clustering, stability, mixed-collection search and intra-modal retrieval.

:func:`consequences` measures, for the embeddings as they are or after a corrector, four consequences of the
modality gap, each with a percentile bootstrap interval, next to R@1 of both directions:

- **joint cross-modal clustering** (Grassucci et al., ICLR 2026): k-means on the pooled image + text items, scored
  against class labels with V-measure, ARI and NMI (``cluster_*``), plus two label-free readings of the same
  clusters: ``cluster_modality_homogeneity`` (the homogeneity of the clusters with respect to the *modality*: 1 when
  every cluster holds one modality -- the gap splits the data by modality --, 0 when every cluster mixes them in
  the population ratio) and ``pair_co_clustered`` (the share of pairs whose two sides fall in one cluster);
- **prediction stability** (Chowers et al., CVPR 2026): ``flip_noise_*`` and ``flip_int8_*``, the share of queries
  whose top-1 retrieved item changes when every embedding gets Gaussian noise of expected norm ``noise`` (then
  renormalised) or is stored as symmetric int8 (one scale per matrix, ``max|x| / 127``);
- **mixed-collection search** (GR-CLIP, 2025): every item of both modalities in one gallery, the query itself left
  out; ``mixed_ndcg@k_a`` is the NDCG@k of a's items as queries and ``mixed_own_share_a`` the share of their top k
  that is of their own modality (the query-modality bias; a balanced collection without bias gives about the share
  of that modality in the gallery);
- **intra-modal retrieval direct vs through the other modality** (the modality-inversion reading of Mistretta et
  al., ICLR 2025): ``intra_direct_ndcg@k_a`` ranks a's items by their cosine to an a query, ``intra_via_b_ndcg@k_a``
  by their cosine to the query's partner in b (the normalised mean of its paired b rows), the query left out.

Relevance: with ``labels`` an item is relevant to a query when it carries the query's label; without labels the
mixed search counts the query's partners as relevant and the intra-modal search the items that share a partner
with the query (captions of one image), and the label-based metrics are null.

Definitions, for a contingency table ``n_cl`` of clusters (c) against labels (l), ``N`` items, ``H`` the entropy and
``I`` the mutual information: homogeneity ``h = I / H(L)``, completeness ``c = I / H(C)``, V-measure
``2 h c / (h + c)`` (Rosenberg & Hirschberg 2007), NMI ``I / ((H(L) + H(C)) / 2)`` (scikit-learn's arithmetic
mean), ARI ``(sum C(n_cl, 2) - E) / ((sum C(a_c, 2) + sum C(b_l, 2)) / 2 - E)`` with ``E = sum C(a_c, 2) sum C(b_l,
2) / C(N, 2)`` (Hubert & Arabie 1985); NDCG@k ``= sum_{r<=k} rel_r / log2(r + 1)`` over the ideal value
``sum_{r<=min(k, R)} 1 / log2(r + 1)`` with ``R`` the relevant items (binary relevance, Jarvelin & Kekalainen 2002).

Intervals: each modality's items are resampled with replacement (independently), every per-query mean is taken
over the resample, and the clustering scores are recomputed on the same clusters with the resample's counts
(k-means is not refitted: the interval is over the evaluation sample given the clusters).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from workbench._params import check_int, check_number, check_seed
from workbench._validation import unit_rows64
from workbench.data import PairedEmbeddings
from workbench.gap._metrics import paired_items
from workbench.gap._shift import ShiftedGap

__all__ = ["clustering_scores", "consequences", "consequences_trace", "ndcg_at_k"]

_BLOCK = 2048


# -- scores from a contingency table ------------------------------------------------------------------------------
def _entropy(counts: np.ndarray, total: float) -> float:
    p = counts[counts > 0] / total
    return float(-(p * np.log(p)).sum())


def _comb2(x: np.ndarray) -> float:
    return float((x * (x - 1.0) / 2.0).sum())


def _table_scores(table: np.ndarray) -> dict[str, float]:
    """V-measure, ARI, NMI and homogeneity of a (clusters x labels) table of (possibly weighted) counts."""
    n = float(table.sum())
    a, b = table.sum(axis=1), table.sum(axis=0)
    h_c, h_l = _entropy(a, n), _entropy(b, n)
    nz = table > 0
    outer = np.outer(a, b)[nz]
    mi = float((table[nz] / n * np.log(table[nz] * n / outer)).sum()) if nz.any() else 0.0
    mi = max(mi, 0.0)
    homogeneity = 1.0 if h_l == 0 else mi / h_l
    completeness = 1.0 if h_c == 0 else mi / h_c
    v = 0.0 if homogeneity + completeness == 0 else 2 * homogeneity * completeness / (homogeneity + completeness)
    nmi = 1.0 if (h_c == 0 and h_l == 0) else (0.0 if mi == 0 else mi / ((h_c + h_l) / 2))
    sum_ab, sum_a, sum_b = _comb2(table), _comb2(a), _comb2(b)
    expected = sum_a * sum_b / (n * (n - 1) / 2) if n > 1 else 0.0
    top = (sum_a + sum_b) / 2
    ari = 1.0 if top == expected else (sum_ab - expected) / (top - expected)
    return {"v_measure": v, "ari": ari, "nmi": nmi, "homogeneity": homogeneity}


def _codes(values: Any, what: str) -> tuple[np.ndarray, int]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    uniques, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.int64), len(uniques)


def clustering_scores(clusters: Any, labels: Any, weights: Any = None) -> dict[str, float]:
    """V-measure, ARI, NMI and homogeneity of a clustering against labels, from their contingency table.

    ``weights`` are per-item counts (a bootstrap resample: weight 2 counts an item twice). Formulas in the module
    docstring; equal to scikit-learn's ``v_measure_score``, ``adjusted_rand_score``,
    ``normalized_mutual_info_score`` and ``homogeneity_score`` (the tests check it).

    Examples
    --------
    >>> scores = clustering_scores([0, 0, 1, 1], ["x", "x", "y", "y"])
    >>> scores["v_measure"], scores["ari"]
    (1.0, 1.0)
    """
    c, n_c = _codes(clusters, "clusters")
    lab, n_l = _codes(labels, "labels")
    if len(c) != len(lab):
        raise ValueError(f"clusters and labels must have one entry per item, got {len(c)} and {len(lab)}")
    w = np.ones(len(c)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != c.shape or (w < 0).any():
        raise ValueError("weights must be one non-negative count per item")
    table = np.bincount(c * n_l + lab, weights=w, minlength=n_c * n_l).reshape(n_c, n_l)
    return _table_scores(table)


# -- NDCG@k -------------------------------------------------------------------------------------------------------
def ndcg_at_k(scores: np.ndarray, relevant: np.ndarray, k: int = 10) -> np.ndarray:
    """Per-query NDCG@k with binary relevance (NaN for a query with no relevant item).

    ``scores`` and ``relevant`` are (Q x G); an entry of ``-inf`` in ``scores`` leaves that item out (the query
    itself). Items are taken by decreasing score (ties by position). Equal to scikit-learn's ``ndcg_score`` on
    untied scores (the tests check it).

    Examples
    --------
    >>> import numpy as np
    >>> ndcg_at_k(np.array([[0.9, 0.5, 0.1]]), np.array([[False, True, False]]), k=2).round(4).tolist()
    [0.6309]
    """
    k = check_int(k, "k")
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool) & np.isfinite(scores)
    kk = min(k, scores.shape[1])
    top = _top_k(scores, kk)
    discounts = 1.0 / np.log2(np.arange(2, kk + 2))
    dcg = (np.take_along_axis(relevant, top, axis=1) * discounts).sum(axis=1)
    n_rel = relevant.sum(axis=1)
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(n_rel, kk)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, dcg / ideal, np.nan)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k highest scores, best first (ties by position)."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else \
        np.tile(np.arange(scores.shape[1]), (len(scores), 1))
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=1)
    return np.take_along_axis(part, order, axis=1)


# -- the embeddings after a corrector -----------------------------------------------------------------------------
def _corrected(paired: PairedEmbeddings, corrector: Any) -> tuple[np.ndarray, np.ndarray]:
    if corrector is None:
        return paired.a.vectors, paired.b.vectors
    if not hasattr(corrector, "transform"):
        raise TypeError(f"corrector must be a workbench.correct corrector (or None), got {type(corrector).__name__}")
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(corrector)
        fitted = corrector
    except NotFittedError:
        fitted = clone(corrector).fit(paired)
    return fitted.transform(paired.a.vectors, paired.b.vectors)


class _Setup:
    """What every evaluation of one paired set shares: items, pairs, relevance, labels, the perturbation draws."""

    def __init__(self, paired: PairedEmbeddings, labels: Any, n_clusters: int | None, k: int, noise: float,
                 n_boot: int, seed: int) -> None:
        if not isinstance(paired, PairedEmbeddings):
            raise TypeError(f"paired must be a PairedEmbeddings (e.g. PairedEmbeddings.from_arrays(a, b)), got "
                            f"{type(paired).__name__}")
        self.paired = paired
        self.k, self.n_boot, self.seed = check_int(k, "k"), check_int(n_boot, "n_boot"), check_seed(seed)
        self.noise = check_number(noise, "noise", low=0.0)
        self.rows_a, self.rows_b = paired.paired_rows()
        _, _, self.pairs = paired_items(paired, min_pairs=2)
        n_a, n_b = len(self.rows_a), len(self.rows_b)
        if n_a < 2 or n_b < 2:
            raise ValueError(f"paired needs at least 2 paired items per modality, got {n_a} and {n_b}")
        self.partner = np.zeros((n_a, n_b), dtype=bool)
        self.partner[self.pairs[:, 0], self.pairs[:, 1]] = True
        self.labels_a = self.labels_b = None
        if labels is not None:
            self.labels_a, self.labels_b = self._item_labels(labels)
        n_classes = None if self.labels_a is None else len(np.unique(np.concatenate([self.labels_a, self.labels_b])))
        if n_clusters is None:
            n_clusters = n_classes if n_classes is not None and n_classes >= 2 else 10
        self.n_clusters = check_int(n_clusters, "n_clusters", low=2)
        if self.n_clusters > n_a + n_b:
            raise ValueError(f"n_clusters ({self.n_clusters}) exceeds the {n_a + n_b} pooled items")
        boot_seed, noise_seed = np.random.SeedSequence(self.seed).spawn(2)  # the noise does not depend on n_boot
        rng = np.random.default_rng(boot_seed)
        self.boot_a = rng.integers(0, n_a, size=(self.n_boot, n_a))
        self.boot_b = rng.integers(0, n_b, size=(self.n_boot, n_b))
        self.boot_p = rng.integers(0, len(self.pairs), size=(self.n_boot, len(self.pairs)))
        dim, rng = paired.dim, np.random.default_rng(noise_seed)
        self.noise_a = rng.standard_normal((n_a, dim)).astype(np.float32) * np.float32(self.noise / np.sqrt(dim))
        self.noise_b = rng.standard_normal((n_b, dim)).astype(np.float32) * np.float32(self.noise / np.sqrt(dim))

    def _item_labels(self, labels: Any) -> tuple[np.ndarray, np.ndarray]:
        lab = np.asarray(labels)
        if lab.ndim != 1 or len(lab) != len(self.pairs):
            raise ValueError(f"labels must hold one label per pair ({len(self.pairs)} pairs, in paired.pairs order), "
                             f"got shape {lab.shape}")
        _, codes = np.unique(lab, return_inverse=True)
        out = []
        for side, n in ((0, len(self.rows_a)), (1, len(self.rows_b))):
            item = np.full(n, -1, dtype=np.int64)
            item[self.pairs[:, side]] = codes
            if not np.array_equal(item[self.pairs[:, side]], codes):
                raise ValueError("labels disagree for an item that has several pairs: give every pair of an item "
                                 "the item's label")
            out.append(item)
        return out[0], out[1]


def _unit32(x: np.ndarray) -> np.ndarray:
    return unit_rows64(x, "embeddings").astype(np.float32)


def _top1(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.concatenate([np.argmax(q[s:s + _BLOCK] @ g.T, axis=1) for s in range(0, len(q), _BLOCK)])


def _int8(x: np.ndarray) -> np.ndarray:
    scale = np.float32(np.abs(x).max() / 127.0)
    return np.clip(np.rint(x / scale), -127, 127).astype(np.float32) * scale


def _search(q: np.ndarray, own: np.ndarray, other: np.ndarray, rel_own: np.ndarray, rel_other: np.ndarray,
            k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mixed search: per-query NDCG@k and own-modality share of the top k (the query is row i of ``own``)."""
    ndcg, own_share = np.empty(len(q)), np.empty(len(q))
    for s in range(0, len(q), _BLOCK):
        e = min(s + _BLOCK, len(q))
        scores = np.concatenate([q[s:e] @ own.T, q[s:e] @ other.T], axis=1).astype(np.float64)
        scores[np.arange(e - s), np.arange(s, e)] = -np.inf
        rel = np.concatenate([rel_own[s:e], rel_other[s:e]], axis=1)
        ndcg[s:e] = ndcg_at_k(scores, rel, k)
        top = _top_k(scores, min(k, scores.shape[1] - 1))
        own_share[s:e] = (top < len(own)).mean(axis=1)
    return ndcg, own_share


def _intra(q: np.ndarray, gallery: np.ndarray, rel: np.ndarray, k: int) -> np.ndarray:
    out = np.empty(len(q))
    for s in range(0, len(q), _BLOCK):
        e = min(s + _BLOCK, len(q))
        scores = (q[s:e] @ gallery.T).astype(np.float64)
        scores[np.arange(e - s), np.arange(s, e)] = -np.inf
        out[s:e] = ndcg_at_k(scores, rel[s:e], k)
    return out


def _evaluate(setup: _Setup, a_all: np.ndarray, b_all: np.ndarray) -> list[tuple[str, str, Any, Any]]:
    """(metric, description, per-unit values or a clustering, resample kind) for one corrected set."""
    from sklearn.cluster import KMeans

    from workbench.retrieval import per_query_ranks

    s, k, p = setup, setup.k, setup.paired
    ma, mb = p.modalities
    a, b = _unit32(np.asarray(a_all)[s.rows_a]), _unit32(np.asarray(b_all)[s.rows_b])
    rows: list[tuple[str, str, Any, Any]] = []
    ranks_a = per_query_ranks(a, b, s.pairs).ranks
    ranks_b = per_query_ranks(b, a, s.pairs[:, ::-1]).ranks
    rows += [("a_to_b_R@1", f"R@1 {ma}->{mb}", (ranks_a <= 1).astype(float), "a"),
             ("b_to_a_R@1", f"R@1 {mb}->{ma}", (ranks_b <= 1).astype(float), "b")]
    # joint clustering of the pooled items
    pooled = np.concatenate([a, b])
    clusters = KMeans(s.n_clusters, n_init=1, random_state=s.seed).fit_predict(pooled)
    ca, cb = clusters[: len(a)], clusters[len(a):]
    for key, what in (("v_measure", "V-measure"), ("ari", "ARI"), ("nmi", "NMI")):
        value = None if s.labels_a is None else (ca, cb, key)
        rows.append((f"cluster_{key}", f"{what} of k-means on pooled {ma}+{mb} vs labels", value, "cluster"))
    rows.append(("cluster_modality_homogeneity", f"homogeneity of the clusters w.r.t. modality ({ma} vs {mb})",
                 (ca, cb, "modality"), "cluster"))
    rows.append(("pair_co_clustered", f"share of pairs whose {ma} and {mb} share a cluster",
                 (ca[s.pairs[:, 0]] == cb[s.pairs[:, 1]]).astype(float), "pairs"))
    # stability of top-1 retrieval
    top_ab, top_ba = _top1(a, b), _top1(b, a)
    na, nb = _unit32(a + s.noise_a), _unit32(b + s.noise_b)
    qa, qb = _int8(a), _int8(b)
    for key, (pa, pb) in (("noise", (na, nb)), ("int8", (qa, qb))):
        rows.append((f"flip_{key}_a_to_b", f"top-1 flips {ma}->{mb} under {key}",
                     (_top1(pa, pb) != top_ab).astype(float), "a"))
        rows.append((f"flip_{key}_b_to_a", f"top-1 flips {mb}->{ma} under {key}",
                     (_top1(pb, pa) != top_ba).astype(float), "b"))
    # relevance
    if s.labels_a is not None:
        rel_aa = s.labels_a[:, None] == s.labels_a[None, :]
        rel_bb = s.labels_b[:, None] == s.labels_b[None, :]
        rel_ab = s.labels_a[:, None] == s.labels_b[None, :]
    else:
        pm = s.partner.astype(np.float32)
        rel_aa, rel_bb, rel_ab = (pm @ pm.T) > 0, (pm.T @ pm) > 0, s.partner
    for side, q, own, other, r_own, r_other, m in (("a", a, a, b, rel_aa, rel_ab, ma),
                                                    ("b", b, b, a, rel_bb, rel_ab.T, mb)):
        ndcg, share = _search(q, own, other, r_own, r_other, k)
        rows.append((f"mixed_ndcg@{k}_{side}", f"NDCG@{k} of {m} queries over {ma}+{mb}", ndcg, side))
        rows.append((f"mixed_own_share_{side}", f"share of {m} in the top {k} of {m} queries over {ma}+{mb}",
                     share, side))
    # intra-modal, direct and through the partner in the other modality
    inc = s.partner.astype(np.float64)
    via_a = _unit32(inc @ b.astype(np.float64))  # each a item's partner: the mean of its b rows
    via_b = _unit32(inc.T @ a.astype(np.float64))
    intra_defined = s.labels_a is not None or not p.is_one_to_one
    for side, other_side, q_direct, q_via, gallery, rel, m, om in (("a", "b", a, via_a, a, rel_aa, ma, mb),
                                                                  ("b", "a", b, via_b, b, rel_bb, mb, ma)):
        direct = _intra(q_direct, gallery, rel, k) if intra_defined else None
        via = _intra(q_via, gallery, rel, k) if intra_defined else None
        rows.append((f"intra_direct_ndcg@{k}_{side}", f"NDCG@{k} {m}->{m} direct", direct, side))
        rows.append((f"intra_via_{other_side}_ndcg@{k}_{side}", f"NDCG@{k} {m}->{m} through {om}", via, side))
    return rows


def _summarise(setup: _Setup, rows: list[tuple[str, str, Any, Any]]) -> pl.DataFrame:
    s = setup
    out: dict[str, list[Any]] = {"metric": [], "value": [], "low": [], "high": [], "description": []}
    for metric, description, values, kind in rows:
        value = low = high = None
        if values is not None and kind == "cluster":
            ca, cb, key = values
            score = "homogeneity" if key == "modality" else key
            lab = (np.concatenate([np.zeros(len(ca), np.int64), np.ones(len(cb), np.int64)]) if key == "modality"
                   else np.concatenate([s.labels_a, s.labels_b]))
            clusters = np.concatenate([ca, cb])
            value = clustering_scores(clusters, lab)[score]
            boots = np.array([clustering_scores(clusters, lab, np.concatenate([
                np.bincount(s.boot_a[i], minlength=len(ca)), np.bincount(s.boot_b[i], minlength=len(cb))]))[score]
                for i in range(s.n_boot)])
            low, high = np.percentile(boots, [2.5, 97.5])
        elif values is not None:
            v = np.asarray(values, dtype=np.float64)
            idx = {"a": s.boot_a, "b": s.boot_b, "pairs": s.boot_p}[kind]
            if np.isfinite(v).any():
                value = float(np.nanmean(v))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a resample without a defined query
                    boots = np.nanmean(v[idx], axis=1)
                boots = boots[np.isfinite(boots)]
                low, high = np.percentile(boots, [2.5, 97.5]) if len(boots) else (None, None)
        out["metric"].append(metric)
        out["value"].append(None if value is None else float(value))
        out["low"].append(None if low is None else float(low))
        out["high"].append(None if high is None else float(high))
        out["description"].append(description if values is not None else description + " (undefined: "
                                  "needs labels, or several rows per item)")
    return pl.DataFrame(out, schema={"metric": pl.String, "value": pl.Float64, "low": pl.Float64,
                                     "high": pl.Float64, "description": pl.String})


def consequences(
    paired: PairedEmbeddings,
    *,
    labels: Any = None,
    corrector: Any = None,
    n_clusters: int | None = None,
    k: int = 10,
    noise: float = 0.1,
    n_boot: int = 200,
    seed: int = 0,
) -> pl.DataFrame:
    """What the gap changes beside R@1: clustering, stability, mixed search, intra-modal search, with intervals.

    Parameters
    ----------
    paired : PairedEmbeddings
        Its paired items are evaluated (each once); at least 2 per modality.
    labels : array-like, optional
        One class label per pair, in ``paired.pairs`` order (the items inherit them; an item with several pairs
        needs one label). Without labels the label-based clustering scores are null and relevance follows the
        pairing (module docstring).
    corrector : corrector, optional
        A :mod:`workbench.correct` corrector: used as is when fitted (fit it on training pairs for held-out
        numbers), else cloned and fitted on ``paired`` (in-sample, as the GapExplorer does). None: as embedded.
    n_clusters : int, optional
        k-means clusters (default: the number of labels, else 10). ``k``: the cut-off of NDCG@k and the own share.
    noise : float
        Expected norm of the Gaussian noise added to each unit embedding in the stability test.
    n_boot, seed : bootstrap resamples; the seed of k-means, the noise and the resamples.

    Returns
    -------
    polars.DataFrame
        One row per metric (names in the module docstring): ``metric``, ``value``, 95% ``low`` and ``high``,
        ``description`` (null values where undefined).

    Examples
    --------
    >>> import workbench
    >>> out = consequences(workbench.datasets.load("liang2022/clip"), n_boot=50)
    >>> row = dict(zip(out["metric"], out["value"]))
    >>> round(row["a_to_b_R@1"], 3), row["mixed_own_share_a"] > 0.9   # image queries find images first
    (0.552, True)
    """
    setup = _Setup(paired, labels, n_clusters, k, noise, n_boot, seed)
    a2, b2 = _corrected(paired, corrector)
    return _summarise(setup, _evaluate(setup, a2, b2))


def consequences_trace(
    paired: PairedEmbeddings,
    deltas: Sequence[float] = (-0.5, 0.0, 0.5, 1.0),
    *,
    correctors: Mapping[str, Any] | None = None,
    labels: Any = None,
    n_clusters: int | None = None,
    k: int = 10,
    noise: float = 0.1,
    n_boot: int = 200,
    seed: int = 0,
) -> pl.DataFrame:
    """:func:`consequences` along GapShift's ``delta`` (and for named correctors): one long polars frame.

    Each delta moves every row by ``GapShift(delta)`` fitted on ``paired``'s matched rows (through
    :class:`~workbench.gap.ShiftedGap`, the GapExplorer's engine); ``correctors`` maps names to correctors (None:
    as embedded) evaluated as in :func:`consequences`. The same k-means seed, noise draw and resamples serve every
    setting, so differences between rows are differences of the embeddings.

    Returns
    -------
    polars.DataFrame
        ``setting`` (``"GapShift(delta=+0.50)"`` or the corrector's name), ``delta`` (null for correctors), then the
        columns of :func:`consequences`.

    Examples
    --------
    >>> import workbench
    >>> trace = consequences_trace(workbench.datasets.load("liang2022/clip"), deltas=(0.0, 1.0), n_boot=20)
    >>> share = trace.filter(trace["metric"] == "mixed_own_share_a")["value"].to_list()
    >>> share[1] < share[0]   # closing the gap lets texts into an image query's top 10
    True
    """
    setup = _Setup(paired, labels, n_clusters, k, noise, n_boot, seed)
    frames = []
    if len(deltas):
        shifted = ShiftedGap(paired, ks=(1,), seed=setup.seed)
        for delta in deltas:
            d = check_number(delta, "deltas")
            frame = _summarise(setup, _evaluate(setup, *shifted.moved(d)))
            frames.append(frame.select(pl.lit(f"GapShift(delta={d:+.2f})").alias("setting"),
                                       pl.lit(d, dtype=pl.Float64).alias("delta"), pl.all()))
    for name, corrector in (correctors or {}).items():
        frame = _summarise(setup, _evaluate(setup, *_corrected(paired, corrector)))
        frames.append(frame.select(pl.lit(str(name)).alias("setting"), pl.lit(None, dtype=pl.Float64).alias("delta"),
                                   pl.all()))
    if not frames:
        raise ValueError("nothing to trace: give deltas or correctors")
    return pl.concat(frames)
