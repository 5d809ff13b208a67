"""Hubness-reducing re-rankers: correctors that change the query-gallery *scores* instead of the embeddings.

A few gallery items (hubs) sit close to very many queries -- across a modality gap, the items nearest the other
modality's centroid -- and crowd out the right answers. These methods learn, from a reference bank of training
embeddings, how much each gallery item is favoured by queries in general, and discount it:

- :class:`NNN` -- Nearest Neighbor Normalization (Chowdhury et al., EMNLP 2024; the ``nnn-retrieval`` package);
- :class:`QBNorm` -- querybank normalisation with the dynamic inverted softmax (Bogolin et al., CVPR 2022), whose
  inverted softmax is that of Smith et al. (ICLR 2017);
- :class:`DBNorm` -- dual-bank normalisation with a query bank and a gallery bank (Wang, Jian, Xue, EMNLP 2023).

Import them from here: ``from workbench.correct.rerankers import NNN`` (:data:`workbench.correct.ALL_CORRECTORS`
holds the embedding maps only). Interface. ``fit(a, b)`` stores the banks: the unit training embeddings of modality
a and of modality b (one PairedEmbeddings: each item once; two arrays of any row counts). ``scores(queries, gallery,
query_modality="a")`` returns the (Q x G) re-ranked scores of queries of that modality against a gallery of the
other; the query bank is the training embeddings of the queries' modality, the gallery bank those of the gallery's.
Only the order within a query's row matters (QBNorm and DBNorm return log-scores; QBNorm leaves rows it does not
normalise as cosines). Fit on training pairs and score held-out ones, as
:func:`workbench.compare.compare_correctors` does, so no test query is in a bank.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from workbench._params import check_choice, check_int, check_number
from workbench._validation import as_matrix, unit_rows64
from workbench.data import modality_matrices

__all__ = ["ALL_RERANKERS", "NNN", "DBNorm", "QBNorm", "ReRanker"]


def _logsumexp0(x: np.ndarray) -> np.ndarray:
    """``log(sum(exp(x), axis=0))`` without overflow."""
    top = x.max(axis=0)
    return np.asarray(top + np.log(np.exp(x - top).sum(axis=0)))


class ReRanker(BaseEstimator):
    """Base of the score correctors: the reference banks and the checks (see :mod:`workbench.correct`).

    Subclasses implement ``_rescore(raw, queries, gallery, query_bank, gallery_bank)`` on float64 unit rows.
    """

    def fit(self, a: Any, b: Any = None) -> ReRanker:
        """Store the reference banks: the training embeddings of modality a and of modality b.

        One PairedEmbeddings (each item of each modality once) or two arrays of one dimension (row counts may
        differ: the banks need no pairing). Returns ``self``.
        """
        ma, mb = modality_matrices(a, b, caller="fit")
        ua, ub = unit_rows64(ma, "a"), unit_rows64(mb, "b")
        self._check_bank(min(len(ua), len(ub)))
        self.bank_a_, self.bank_b_ = ua, ub
        self.n_features_in_ = ua.shape[1]
        return self

    def scores(self, queries: Any, gallery: Any, *, query_modality: str = "a") -> np.ndarray:
        """Re-ranked (Q x G) scores of ``queries`` (of modality ``query_modality``) against ``gallery`` (the other).

        Rows are L2-normalised first; the raw score is the cosine. Rank each row by descending score.
        """
        check_is_fitted(self)
        side = check_choice(query_modality, "query_modality", ("a", "b"))
        q = unit_rows64(as_matrix(queries, "queries"), "queries")
        g = unit_rows64(as_matrix(gallery, "gallery"), "gallery")
        for what, m in (("queries", q), ("gallery", g)):
            if m.shape[1] != self.n_features_in_:
                raise ValueError(f"{what} have {m.shape[1]} dimensions but this {type(self).__name__} was fitted on "
                                 f"{self.n_features_in_}")
        query_bank, gallery_bank = (self.bank_a_, self.bank_b_) if side == "a" else (self.bank_b_, self.bank_a_)
        return self._rescore(q @ g.T, q, g, query_bank, gallery_bank)

    def _check_bank(self, size: int) -> None:
        """Refuse parameters the bank cannot serve (e.g. more neighbours than bank items)."""

    def _rescore(self, raw: np.ndarray, q: np.ndarray, g: np.ndarray, query_bank: np.ndarray,
                 gallery_bank: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class NNN(ReRanker):
    """Nearest Neighbor Normalization (Chowdhury, Wang, Shenoy, Kiela, Schwettmann, Thrush, EMNLP 2024).

    Each gallery item g gets a bias: the mean score of its k most similar reference queries; the score is
    discounted by it,

    ``s'(q, g) = s(q, g) - alpha * mean_{r in top-k_R(g)} s(r, g)``

    with R the query bank (training queries of the queries' modality). A hub scores high against many reference
    queries and loses most. The ``nnn-retrieval`` package's ``NNNRanker`` (``alternate_ks=k``,
    ``alternate_weight=alpha``; its README recommends 128 and 0.75) computes the same scores.

    Parameters
    ----------
    k : int, default 128
        Reference queries averaged per gallery item (at most the bank size).
    alpha : float, default 0.75
        Weight of the bias.

    Examples
    --------
    >>> import numpy as np
    >>> bank = np.array([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2]])   # reference queries all point one way
    >>> nnn = NNN(k=2, alpha=1.0).fit(bank, bank)
    >>> gallery = np.array([[1.0, 0.0], [0.0, 1.0]])            # item 0 is a hub for such queries
    >>> nnn.scores(np.array([[0.7, 0.7]]), gallery).round(3)   # 0.707 - mean(1, 0.994); 0.707 - mean(0.243, 0.110)
    array([[-0.29 ,  0.531]])
    """

    def __init__(self, k: int = 128, alpha: float = 0.75) -> None:
        self.k = k
        self.alpha = alpha

    def _check_bank(self, size: int) -> None:
        check_int(self.k, "k", high=size)
        check_number(self.alpha, "alpha")

    def _rescore(self, raw: np.ndarray, q: np.ndarray, g: np.ndarray, query_bank: np.ndarray,
                 gallery_bank: np.ndarray) -> np.ndarray:
        k = check_int(self.k, "k", high=len(query_bank))
        ref = query_bank @ g.T  # R x G
        top = -np.partition(-ref, k - 1, axis=0)[:k] if k < len(ref) else ref
        return raw - float(self.alpha) * top.mean(axis=0)[None, :]


class QBNorm(ReRanker):
    """Querybank normalisation with the dynamic inverted softmax (Bogolin, Croitoru, Jin, Liu, Albanie, CVPR 2022).

    The inverted softmax (Smith, Turban, Hamblin, Hammerla, ICLR 2017) divides each gallery item's exponentiated
    score by its total over a query bank R (training queries of the queries' modality):

    ``IS(q, g) = exp(beta s(q, g)) / sum_{r in R} exp(beta s(r, g))``

    The dynamic variant (DIS) applies it only to queries whose top-1 gallery item is in the activation set: the
    gallery items that are among the top ``k`` of some bank query (the hubs the bank can see); other queries keep
    their cosines (ranking within a row is all that matters). Returned as ``log IS`` for normalised rows.

    Parameters
    ----------
    beta : float, default 20
        Inverse temperature (the paper's default).
    k : int, default 1
        Top-k of each bank query that forms the activation set.
    dynamic : bool, default True
        False normalises every query (the plain inverted softmax).

    Examples
    --------
    >>> import numpy as np
    >>> bank = np.array([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2]])
    >>> qb = QBNorm(beta=5.0).fit(bank, bank)
    >>> s = qb.scores(np.array([[0.75, 0.66]]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    >>> int(s.argmax())   # the raw cosine prefers item 0; the bank shows item 0 answers every such query
    1
    """

    def __init__(self, beta: float = 20.0, k: int = 1, dynamic: bool = True) -> None:
        self.beta = beta
        self.k = k
        self.dynamic = dynamic

    def _check_bank(self, size: int) -> None:
        check_number(self.beta, "beta", low=0, inclusive=False)
        check_int(self.k, "k")

    def _rescore(self, raw: np.ndarray, q: np.ndarray, g: np.ndarray, query_bank: np.ndarray,
                 gallery_bank: np.ndarray) -> np.ndarray:
        beta = float(self.beta)
        ref = query_bank @ g.T
        normalised = beta * raw - _logsumexp0(beta * ref)[None, :]
        if not self.dynamic:
            return normalised
        k = min(check_int(self.k, "k"), g.shape[0])
        active = np.zeros(len(g), dtype=bool)
        active[np.argpartition(-ref, k - 1, axis=1)[:, :k].ravel()] = True
        rows = active[raw.argmax(axis=1)]
        return np.where(rows[:, None], normalised, raw)


class DBNorm(ReRanker):
    """Dual-bank normalisation (Wang, Jian, Xue, "Balance Act: Mitigating Hubness in Cross-Modal Retrieval with
    Query and Gallery Banks", EMNLP 2023).

    Two inverted softmaxes, one over a query bank R_q (training queries of the queries' modality) and one over a
    gallery bank R_g (training items of the gallery's modality, compared within that modality), multiplied:

    ``DB(q, g) = exp(b1 s(q, g)) / sum_{r in R_q} exp(b1 s(r, g)) * exp(b2 s(q, g)) / sum_{h in R_g} exp(b2 s(h, g))``

    returned as ``log DB``. The gallery bank catches hubs that no query bank shows: items in dense regions of their
    own modality. (The authors' ``dbnorm.py`` passes the gallery-bank similarities where the test similarities
    belong in its first call; the formula here is the paper's.) The authors tune ``b1``, ``b2`` per dataset. Across a
    wide modality gap the gallery bank can hurt: on ``liang2022/clip`` (250 held-out pairs) image -> text R@1 is
    0.62 raw, 0.61 with ``beta_gallery=1`` and 0.40 with the defaults, while :class:`NNN` gives 0.63.

    Parameters
    ----------
    beta_query, beta_gallery : float, default 20
        Inverse temperatures of the query-bank and gallery-bank softmaxes.

    Examples
    --------
    >>> import numpy as np
    >>> bank = np.array([[1.0, 0.0], [0.9, 0.1], [0.8, 0.2]])
    >>> db = DBNorm(beta_query=5.0, beta_gallery=5.0).fit(bank, bank)
    >>> int(db.scores(np.array([[0.75, 0.66]]), np.array([[1.0, 0.0], [0.0, 1.0]])).argmax())
    1
    """

    def __init__(self, beta_query: float = 20.0, beta_gallery: float = 20.0) -> None:
        self.beta_query = beta_query
        self.beta_gallery = beta_gallery

    def _check_bank(self, size: int) -> None:
        check_number(self.beta_query, "beta_query", low=0, inclusive=False)
        check_number(self.beta_gallery, "beta_gallery", low=0, inclusive=False)

    def _rescore(self, raw: np.ndarray, q: np.ndarray, g: np.ndarray, query_bank: np.ndarray,
                 gallery_bank: np.ndarray) -> np.ndarray:
        b1, b2 = float(self.beta_query), float(self.beta_gallery)
        by_queries = _logsumexp0(b1 * (query_bank @ g.T))
        by_gallery = _logsumexp0(b2 * (gallery_bank @ g.T))
        return (b1 + b2) * raw - (by_queries + by_gallery)[None, :]


#: Every re-ranker class, in the order of the module documentation.
ALL_RERANKERS: tuple[type[ReRanker], ...] = (NNN, QBNorm, DBNorm)
