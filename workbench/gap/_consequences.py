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
from workbench.gap._mixed import Relevance, argmax_both, side_search
from workbench.gap._shift import ShiftedGap

__all__ = ["clustering_scores", "consequences", "consequences_trace"]

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
        if n_a * n_b * 4 > 1 << 30:
            raise ValueError(f"{n_a} x {n_b} paired items need score matrices over 1 GiB each; pass paired.sample(n) "
                             "(intervals come from the bootstrap, so a sample of 10,000 pairs is plenty)")
        from scipy import sparse

        self.incidence = sparse.csr_matrix((np.ones(len(self.pairs)), (self.pairs[:, 0], self.pairs[:, 1])),
                                           shape=(n_a, n_b))
        self.labels_a = self.labels_b = None
        if labels is not None:
            self.labels_a, self.labels_b = self._item_labels(labels)
        self.relevance = Relevance(self.pairs, n_a, n_b, self.labels_a, self.labels_b)
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


def _int8(x: np.ndarray) -> np.ndarray:
    scale = np.float32(np.abs(x).max() / 127.0)
    return np.clip(np.rint(x / scale), -127, 127).astype(np.float32) * scale


def _top1_both(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 of every a row among b's rows and of every b row among a's (ties: the first), from one matmul."""
    return argmax_both(a @ b.T)


def _hits_at_1(s: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """R@1 hits both ways with the pessimistic tie rule of :mod:`workbench.retrieval`: a query's rank is 1 + the
    irrelevant items scoring at least its best relevant score."""
    ia, jb = pairs[:, 0], pairs[:, 1]
    rel = s[ia, jb]
    out = []
    for axis, q, n in ((1, ia, s.shape[0]), (0, jb, s.shape[1])):
        best = np.full(n, -np.inf, dtype=np.float32)
        np.maximum.at(best, q, rel)
        reach = (s >= (best[:, None] if axis == 1 else best[None, :])).sum(axis=axis)
        reach -= np.bincount(q, weights=rel >= best[q], minlength=n).astype(np.int64)
        out.append((reach == 0).astype(np.float64))
    return out[0], out[1]


def _evaluate(setup: _Setup, a_all: np.ndarray, b_all: np.ndarray) -> list[tuple[str, str, Any, Any]]:
    """(metric, description, per-unit values or a clustering, resample kind) for one corrected set."""
    from sklearn.cluster import KMeans

    s, k, p = setup, setup.k, setup.paired
    ma, mb = p.modalities
    a, b = _unit32(np.asarray(a_all)[s.rows_a]), _unit32(np.asarray(b_all)[s.rows_b])
    rows: list[tuple[str, str, Any, Any]] = []
    s_ab = a @ b.T
    hits_a, hits_b = _hits_at_1(s_ab, s.pairs)
    rows += [("a_to_b_R@1", f"R@1 {ma}->{mb}", hits_a, "a"), ("b_to_a_R@1", f"R@1 {mb}->{ma}", hits_b, "b")]
    # joint clustering of the pooled items (float64: scikit-learn's float32 path upcasts block by block)
    pooled = np.concatenate([a, b]).astype(np.float64)
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
    top_ab, top_ba = argmax_both(s_ab)
    for key, (pa, pb) in (("noise", (_unit32(a + s.noise_a), _unit32(b + s.noise_b))), ("int8", (_int8(a), _int8(b)))):
        moved_ab, moved_ba = _top1_both(pa, pb)
        rows.append((f"flip_{key}_a_to_b", f"top-1 flips {ma}->{mb} under {key}", (moved_ab != top_ab) * 1.0, "a"))
        rows.append((f"flip_{key}_b_to_a", f"top-1 flips {mb}->{ma} under {key}", (moved_ba != top_ba) * 1.0, "b"))
    # mixed-collection and intra-modal search (direct, and through the partner in the other modality)
    intra_defined = s.labels_a is not None or not p.is_one_to_one
    inc = s.incidence
    via_a = _unit32(inc @ b.astype(np.float64)) if intra_defined else None  # each a item's partner: mean b row
    via_b = _unit32(inc.T @ a.astype(np.float64)) if intra_defined else None
    for side, other_side, own, s_other, via, m, om in (("a", "b", a, s_ab, via_a, ma, mb),
                                                       ("b", "a", b, np.ascontiguousarray(s_ab.T), via_b, mb, ma)):
        found = side_search(own, s_other, s.relevance, side, other_side, k, via=via)
        rows.append((f"mixed_ndcg@{k}_{side}", f"NDCG@{k} of {m} queries over {ma}+{mb}", found["mixed_ndcg"], side))
        rows.append((f"mixed_own_share_{side}", f"share of {m} in the top {k} of {m} queries over {ma}+{mb}",
                     found["own_share"], side))
        rows.append((f"intra_direct_ndcg@{k}_{side}", f"NDCG@{k} {m}->{m} direct",
                     found["direct_ndcg"] if intra_defined else None, side))
        rows.append((f"intra_via_{other_side}_ndcg@{k}_{side}", f"NDCG@{k} {m}->{m} through {om}",
                     found.get("via_ndcg"), side))
    return rows


def _cluster_boots(setup: _Setup, clusters: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Every clustering score of every resample, one contingency table per resample."""
    s = setup
    c, n_c = _codes(clusters, "clusters")
    lab, n_l = _codes(labels, "labels")
    code = c * n_l + lab
    n_a = len(s.rows_a)
    out: dict[str, list[float]] = {}
    for i in range(s.n_boot):
        weights = np.concatenate([np.bincount(s.boot_a[i], minlength=n_a), np.bincount(s.boot_b[i],
                                                                                      minlength=len(c) - n_a)])
        table = np.bincount(code, weights=weights, minlength=n_c * n_l).reshape(n_c, n_l)
        for key, value in _table_scores(table).items():
            out.setdefault(key, []).append(value)
    return {key: np.array(values) for key, values in out.items()}


def _summarise(setup: _Setup, rows: list[tuple[str, str, Any, Any]]) -> pl.DataFrame:
    s = setup
    out: dict[str, list[Any]] = {"metric": [], "value": [], "low": [], "high": [], "description": []}
    cache: dict[str, tuple[dict[str, float], dict[str, np.ndarray]]] = {}
    for metric, description, values, kind in rows:
        value = low = high = None
        if values is not None and kind == "cluster":
            ca, cb, key = values
            against = "modality" if key == "modality" else "labels"
            if against not in cache:
                lab = (np.concatenate([np.zeros(len(ca), np.int64), np.ones(len(cb), np.int64)])
                       if against == "modality" else np.concatenate([s.labels_a, s.labels_b]))
                clusters = np.concatenate([ca, cb])
                cache[against] = (clustering_scores(clusters, lab), _cluster_boots(s, clusters, lab))
            score = "homogeneity" if key == "modality" else key
            value = cache[against][0][score]
            low, high = np.percentile(cache[against][1][score], [2.5, 97.5])
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
        One row per metric: ``metric``, ``value``, 95% ``low`` and ``high``, ``description`` (null values where
        undefined). The metrics (formulas in full in ``workbench.gap._consequences``' module docstring):

        - ``a_to_b_R@1``, ``b_to_a_R@1``: share of queries whose rank is 1 (1 + irrelevant items scoring at least
          the best relevant one);
        - ``cluster_v_measure`` ``2hc/(h+c)`` (Rosenberg & Hirschberg 2007), ``cluster_ari`` (Hubert & Arabie 1985),
          ``cluster_nmi`` ``I/((H(L)+H(C))/2)`` of k-means on the pooled items vs labels (Grassucci et al., ICLR
          2026); ``cluster_modality_homogeneity`` ``I(M;C)/H(M)`` vs modality; ``pair_co_clustered``;
        - ``flip_noise_*``, ``flip_int8_*``: share of queries whose top-1 item changes (Chowers et al., CVPR 2026);
        - ``mixed_ndcg@k_*`` ``DCG@k / IDCG@k`` and ``mixed_own_share_*`` over a gallery of both modalities
          (GR-CLIP, 2025);
        - ``intra_direct_ndcg@k_*``, ``intra_via_*_ndcg@k_*``: within-modality search by the query or by its
          partner in the other modality (Mistretta et al., ICLR 2025).

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
