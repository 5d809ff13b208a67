"""In-memory cross-modal retrieval metrics: exact, rank-based, chunked, and fast (one score matmul for both directions).

A query's rank is 1 + the number of irrelevant gallery items that score at least as high as its best relevant
item. Ties between a relevant and an irrelevant item therefore count against the relevant one (pessimistic), so no
input can overstate recall; recall@k is the fraction of queries of rank <= k. Every score a rank is computed from
is read from the same score matrix (a relevant item's score is never recomputed by a separate dot product, which
rounds differently). Nothing builds a one-hot top-k tensor: counting "how many items score above the best
positive" needs one pass over each row of scores, fused in a numba kernel.

The protocol follows the CLIP paper (Radford et al., ICML 2021) as CLIP_benchmark implements it
(``clip_benchmark.metrics.zeroshot_retrieval``), with the same key names:

- ``image_retrieval_recall@k``: a caption queries the images; a hit if its image is in the top k.
- ``text_retrieval_recall@k``: an image queries the captions; a hit if ANY of its captions is in the top k.

plus ``*_mean_rank`` and ``*_median_rank`` (1-based rank of the first relevant item) and ``*_mAP`` (mean average
precision over all relevant items: with five captions per image, all five count).

Average precision follows the same pessimistic tie rule: for the k-th best relevant item the precision is
``k / (k + irrelevant items scoring at least as high)``. Without ties this is scikit-learn's
``average_precision_score``; when relevant items of a query tie with each other and an irrelevant item scores at
least as high, it is lower than scikit-learn's (which gives each item of a tied group the precision of the whole
group: 0.478 against 0.533 for the gallery scores irrelevant 0.9, relevant 0.8, relevant 0.8, irrelevant 0.8,
relevant 0.5). The full rule is in ``workbench.retrieval._ranking``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench._params import check_ints
from workbench._validation import relevance_pairs as _relevance
from workbench.retrieval._device import is_tensor
from workbench.retrieval._ranking import (
    _DEFAULT_CHUNK_BYTES,
    MAX_SCORE_BYTES,
    RankResult,
    _summary,
    rank_streamed,
    resolve_device,
)
from workbench.retrieval._rows import _expand_identical, _is_store, _Rows, _unit32
from workbench.retrieval._stream import evaluate_retrieval_streamed


def _rank_both_ways(
    a: np.ndarray,
    b: np.ndarray,
    pairs: np.ndarray,
    *,
    with_ap: bool,
    chunk_size: int | None,
    max_score_bytes: int,
    a_queries: bool = True,
    b_pairs: np.ndarray | None = None,
) -> tuple[RankResult | None, RankResult]:
    """Ranks of a queries over gallery b and of b queries over gallery a, from one score matrix S = b @ a.T.

    The in-memory arrays go through the one rank loop, :func:`~workbench.retrieval._ranking.rank_streamed`: a is the
    resident side, b a stream of ``chunk_size`` rows (default: all of b when the S matrix fits in
    ``max_score_bytes``, then kept for the second sweep; else blocks of about 256 MB, scored once per direction).
    With ``a_queries=False`` only the b queries are ranked (a is just a gallery). ``b_pairs`` (as (a, b) pairs)
    gives the b queries their own relevance (default: ``pairs``).
    """
    n_a, n_b = len(a), len(b)
    if chunk_size is None:
        chunk_size = n_b if n_a * n_b * 4 <= max_score_bytes else max(1, _DEFAULT_CHUNK_BYTES // (4 * n_a))
    a_side, b_side = rank_streamed(a, _Rows.of_unit(b, "b"), pairs if a_queries else None,
                                   pairs if b_pairs is None else b_pairs, with_ap=with_ap, chunk_size=chunk_size,
                                   device="cpu", keep_bytes=max_score_bytes)
    assert b_side is not None
    return a_side, b_side


# -- public API ----------------------------------------------------------------------------------------------------
def per_query_ranks(
    queries: Any,
    gallery: Any,
    relevance: Any,
    *,
    with_ap: bool = False,
    identical_is_relevant: bool = False,
    chunk_size: int | None = None,
) -> RankResult:
    """Rank of the first relevant gallery item (and average precision) for every query, for failure browsing.

    Parameters
    ----------
    queries : (Q x D) array, gallery : (G x D) array
        Rows are L2-normalised; scores are cosines.
    relevance : (P x 2) integer array
        ``(query row, gallery row)`` pairs; every query needs at least one.
    with_ap : bool
        Also compute each query's average precision over all its relevant items, with the pessimistic tie rule
        (``k / (k + irrelevant items scoring >= the k-th relevant item)``; equal to scikit-learn's
        ``average_precision_score`` without ties, lower when relevant items tie with each other).
    identical_is_relevant : bool
        Gallery rows with exactly the same embedding as a relevant row are relevant too (duplicate captions).
    chunk_size : int, optional
        Queries scored at a time (memory ~ chunk_size x G x 4 bytes).

    Examples
    --------
    >>> import numpy as np
    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> g = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    >>> per_query_ranks(q, g, [(0, 2), (1, 1)]).ranks.tolist()   # 0.6 beaten by 1.0; 0.0 by 1.0 and 0.8
    [2, 3]
    """
    qa, ga = _unit32(queries, "queries"), _unit32(gallery, "gallery")
    if qa.shape[1] != ga.shape[1]:
        raise ValueError(f"queries have {qa.shape[1]} dimensions but the gallery has {ga.shape[1]}")
    pairs = _relevance(relevance, len(qa), len(ga), "relevance")
    if identical_is_relevant:
        pairs = _expand_identical(pairs, ga)
    # S = queries @ gallery.T: the b side of _rank_both_ways, with a = gallery
    _, result = _rank_both_ways(ga, qa, pairs[:, ::-1].copy(), with_ap=with_ap, chunk_size=chunk_size,
                                max_score_bytes=0, a_queries=False)
    return result


def first_relevant_ranks(queries: Any, gallery: Any, pairs: Any, *, chunk_size: int | None = None) -> np.ndarray:
    """1-based rank of the best relevant gallery item for every query (see :func:`per_query_ranks`).

    Examples
    --------
    >>> import numpy as np
    >>> first_relevant_ranks(np.eye(2), np.eye(2), [(0, 0), (1, 1)]).tolist()
    [1, 1]
    """
    return per_query_ranks(queries, gallery, pairs, chunk_size=chunk_size).ranks


def matched_ranks(a: Any, b: Any, *, chunk_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ranks for row-paired data (row i of a matches row i of b): ``(a queries b, b queries a)``, one matmul."""
    ua, ub = _unit32(a, "a"), _unit32(b, "b")
    if len(ua) != len(ub):
        raise ValueError(f"row-paired data needs equal row counts in a and b, got {len(ua)} and {len(ub)}")
    if ua.shape[1] != ub.shape[1]:
        raise ValueError(f"a has {ua.shape[1]} dimensions but b has {ub.shape[1]}")
    diag = np.repeat(np.arange(len(ua), dtype=np.int64)[:, None], 2, axis=1)
    ra, rb = _rank_both_ways(ua, ub, diag, with_ap=False, chunk_size=chunk_size, max_score_bytes=MAX_SCORE_BYTES)
    assert ra is not None
    return ra.ranks, rb.ranks


def evaluate_retrieval(
    images: Any,
    texts: Any,
    text_to_image: Any = None,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int | None = None,
    *,
    identical_is_relevant: bool = False,
    with_map: bool = True,
    pairs: Any = None,
    directions: Sequence[str] | str = ("image_retrieval", "text_retrieval"),
    device: str = "auto",
) -> dict[str, float]:
    """Image-text retrieval both ways, the CLIP-paper protocol with CLIP_benchmark's key names.

    Parameters
    ----------
    images : (N_img x D) array, texts : (N_txt x D) array; or either an embedding store (or its folder)
        Embeddings (rows L2-normalised here; scores are cosines). A store is streamed in chunks, never loaded
        whole (see ``workbench.retrieval._stream``).
    text_to_image : (N_txt,) integer array, optional
        ``text_to_image[j]`` is the row of the image that caption j describes (several captions per image).
    ks : R@K cut-offs.
    chunk_size : int, optional
        Captions (or streamed rows) scored at a time. Default: the whole score matrix when it fits in 1 GiB (COCO-5k:
        500 MB), else chunks of about 256 MB (scores are then computed twice: once per direction).
    identical_is_relevant : bool, default False
        Count gallery items whose embedding equals a relevant one as relevant too (duplicate captions, which no
        ranking can separate; CLIP_benchmark counts them against the query).
    with_map : bool, default True
        Also compute mean average precision over all relevant items (a little slower with many per query). Ties
        are pessimistic: the k-th best relevant item has precision ``k / (k + irrelevant items scoring >= it)``,
        which equals scikit-learn's ``average_precision_score`` without ties and can be below it when relevant
        items of a query tie with each other (scikit-learn gives a tied group its group precision; see the
        module docstring).
    pairs : (P x 2) array-like of ``(image id, text id)``, optional
        Many-to-many relevance by id instead of ``text_to_image`` (store ids; row positions for arrays). Two stores
        given neither are paired by equal ids.
    directions : subset of ``("image_retrieval", "text_retrieval")``
        Which directions to compute; a gallery of distractor images (no caption) takes ``("image_retrieval",)``.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where scores are computed: "auto" uses a GPU through torch when ``torch.cuda.is_available()`` and the job is
        large (see :func:`workbench.retrieval.resolve_device`), or when ``images`` / ``texts`` are torch tensors on a
        GPU (they are read there, never copied to the host). On a GPU the counting stays on the device and every
        key equals the CPU path's, duplicates included (``workbench.retrieval._device``).

    Returns
    -------
    dict
        ``image_retrieval_recall@k`` (captions query images), ``text_retrieval_recall@k`` (images query captions),
        ``*_mean_rank``, ``*_median_rank`` and ``*_mAP`` (all with the pessimistic tie rule).

    Examples
    --------
    >>> import workbench
    >>> a, b = workbench.datasets.load("liang2022/clip").matched()
    >>> m = evaluate_retrieval(a, b, np.arange(500))
    >>> m["text_retrieval_recall@1"], m["image_retrieval_recall@1"]
    (0.552, 0.506)
    """
    ks = check_ints(ks, "ks")
    options = {"identical_is_relevant": identical_is_relevant, "with_map": with_map, "pairs": pairs,
               "directions": directions, "device": device}
    both = {"image_retrieval", "text_retrieval"} == ({directions} if isinstance(directions, str) else set(directions))
    on_device = device != "cpu" and any(is_tensor(x) for x in (images, texts))  # tensors stay where they are
    if (text_to_image is None or pairs is not None or not both or on_device
            or any(_is_store(x) for x in (images, texts))):
        return evaluate_retrieval_streamed(images, texts, text_to_image, ks, chunk_size, **options)
    ia, ta = _unit32(images, "images"), _unit32(texts, "texts")
    if ia.shape[1] != ta.shape[1]:
        raise ValueError(f"images have {ia.shape[1]} dimensions but texts have {ta.shape[1]}")
    if device != "cpu":
        torch_engine = isinstance(device, str) and device.startswith("torch:")  # the torch engine on CPU tensors
        if torch_engine or resolve_device(device, float(len(ia)) * len(ta) * ia.shape[1]) == "cuda":
            return evaluate_retrieval_streamed(ia, ta, text_to_image, ks, chunk_size, **options)
    t2i = np.asarray(text_to_image)
    if t2i.ndim != 1 or len(t2i) != len(ta):
        raise ValueError(f"text_to_image must have one entry per text ({len(ta)}), got shape {t2i.shape}")
    if t2i.dtype.kind not in "iu":
        raise TypeError(f"text_to_image must hold integer image rows, got dtype {t2i.dtype}")
    pairs = _relevance(np.stack([t2i, np.arange(len(ta))], axis=1), len(ia), len(ta), "text_to_image")
    text_pairs = None
    if identical_is_relevant:
        text_pairs = _expand_identical(pairs[:, ::-1].copy(), ia)[:, ::-1].copy()  # captions query images
        pairs = _expand_identical(pairs, ta)  # images query captions
    image_side, text_side = _rank_both_ways(ia, ta, pairs, with_ap=with_map, chunk_size=chunk_size,
                                            max_score_bytes=0 if chunk_size else MAX_SCORE_BYTES, b_pairs=text_pairs)
    assert image_side is not None
    return {**_summary("image_retrieval_", text_side, ks), **_summary("text_retrieval_", image_side, ks)}


def evaluate_queries(
    queries: Any,
    gallery: Any,
    relevance: Any,
    ks: Sequence[int] = (1, 5, 10),
    *,
    identical_is_relevant: bool = False,
    chunk_size: int | None = None,
) -> dict[str, float]:
    """The general form for any two modalities: ``recall@k``, ``mean_rank``, ``median_rank`` and ``mAP``.

    Ties are pessimistic for every value: a query's rank is 1 + the irrelevant gallery items scoring at least as
    high as its best relevant item, and in its average precision the k-th best relevant item has precision
    ``k / (k + irrelevant items scoring >= it)``. ``mAP`` equals the mean of scikit-learn's
    ``average_precision_score`` per query when no scores tie; when relevant items of a query tie with each other
    and an irrelevant item scores at least as high, it is lower (scikit-learn gives each item of a tied group the
    group's precision; see ``workbench.retrieval._ranking`` for the rule and an example).

    Examples
    --------
    >>> import numpy as np
    >>> evaluate_queries(np.eye(3), np.eye(3), [(0, 0), (1, 1), (2, 2)], ks=(1,))["recall@1"]
    1.0
    """
    ks = check_ints(ks, "ks")
    result = per_query_ranks(queries, gallery, relevance, with_ap=True, identical_is_relevant=identical_is_relevant,
                             chunk_size=chunk_size)
    return _summary("", result, ks)
