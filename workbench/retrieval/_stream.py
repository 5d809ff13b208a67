"""Exact image-text retrieval with one side streamed from an embedding store in chunks, on the CPU or a GPU.

:func:`workbench.retrieval.evaluate_retrieval` lands here when an input is an embedding store (or a store folder),
relevance is given by id (``pairs``), one direction is asked for (``directions``) or a GPU is used. The metrics
and the rank rule are those of :mod:`workbench.retrieval` (pessimistic ties: an irrelevant item scoring exactly
as high as the best relevant one ranks above it); only the order of work changes.

One side stays in memory (the *resident* side: the smaller store, or the array), the other is read chunk by chunk
(the *streamed* side) by the one rank loop, :func:`workbench.retrieval._ranking.rank_streamed` (which also says how
the passes go); memory is O(resident rows x chunk) whatever the streamed side's size.

Which directions are feasible at scale: captions (queries, resident) against a 1M-image gallery (streamed) is
``directions=("image_retrieval",)``: about 1 + R/S score passes over the gallery. The reverse direction asks every
gallery image to have a caption (a query needs a relevant item), so it is meaningful only for a paired set such as
Karpathy's 5k images x 25k captions, where both directions run as in memory.

Results equal the in-memory path's: bit for bit when the streamed side is the captions and ``chunk_size`` is the
same (the same score blocks are computed), and otherwise equal whenever no two distinct items score within one
float32 rounding step of each other (different block shapes can round a score differently in the last bit).
On ``device="cuda"`` see :mod:`workbench.retrieval._ranking`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench._params import check_ints
from workbench._validation import relevance_pairs
from workbench.retrieval._device import is_tensor
from workbench.retrieval._ranking import DIRECTIONS, MAX_SCORE_BYTES, _summary, rank_streamed, resolve_device
from workbench.retrieval._rows import _expand_identical, _Rows


# -- relevance by row or by id -----------------------------------------------------------------------------------------
def _rows_of(ids: Any, wanted: Any, what: str, where: str) -> np.ndarray:
    """Row position of every wanted id in ``ids``; ValueError naming unknown ids, TypeError for another id type."""
    import polars as pl

    ids = ids if isinstance(ids, pl.Series) else pl.Series("id", np.asarray(ids))
    wanted = wanted if isinstance(wanted, pl.Series) else pl.Series("id", wanted)
    if ids.dtype.is_integer() and wanted.dtype.is_integer():
        ids, wanted = ids.cast(pl.Int64), wanted.cast(pl.Int64)
    elif ids.dtype != wanted.dtype:
        raise TypeError(f"{what} are {wanted.dtype} but the ids of {where} are {ids.dtype}")
    lookup = pl.DataFrame({"id": ids.rename("id"), "row": np.arange(len(ids), dtype=np.int64)})
    found = pl.DataFrame({"id": wanted.rename("id")}).join(lookup, on="id", how="left", maintain_order="left")
    missing = found.filter(pl.col("row").is_null())
    if missing.height:
        raise ValueError(f"{what}: {missing.height} of {len(wanted)} are not ids of {where} "
                         f"(e.g. {missing['id'][0]!r})")
    return found["row"].to_numpy().astype(np.int64)


def _id_columns(pairs: Any) -> tuple[Any, Any]:
    """(image ids, text ids) from a (P x 2) array, a sequence of pairs, or a frame with image_id/text_id columns."""
    if hasattr(pairs, "columns") and hasattr(pairs, "get_column"):  # polars
        names = ["image_id", "text_id"] if {"image_id", "text_id"} <= set(pairs.columns) else list(pairs.columns)
        if len(names) != 2:
            raise ValueError(f"pairs: a frame needs columns image_id and text_id (or exactly two), got {pairs.columns}")
        return pairs.get_column(names[0]), pairs.get_column(names[1])
    if isinstance(pairs, np.ndarray):
        if pairs.ndim != 2 or pairs.shape[1] != 2:
            raise ValueError(f"pairs must have shape (P, 2) of (image id, text id); got {pairs.shape}")
        return pairs[:, 0], pairs[:, 1]
    items = list(pairs)
    if any(len(p) != 2 for p in items):
        raise ValueError("pairs must be (image id, text id) pairs")
    return [p[0] for p in items], [p[1] for p in items]


def _image_text_pairs(images: _Rows, texts: _Rows, text_to_image: Any, pairs: Any) -> np.ndarray:
    """Relevance as (image row, text row) pairs, unique and sorted."""
    if text_to_image is not None and pairs is not None:
        raise ValueError("pass text_to_image (the image row of every text) or pairs (image id, text id), not both")
    if text_to_image is not None:
        t2i = np.asarray(text_to_image)
        if t2i.ndim != 1 or len(t2i) != texts.n:
            raise ValueError(f"text_to_image must have one entry per text ({texts.n}), got shape {t2i.shape}")
        if t2i.dtype.kind not in "iu":
            raise TypeError(f"text_to_image must hold integer image rows, got dtype {t2i.dtype}")
        p = np.stack([t2i.astype(np.int64), np.arange(texts.n)], axis=1)
        return relevance_pairs(p, images.n, texts.n, "text_to_image", every_query=False)
    if pairs is not None:
        image_ids, text_ids = _id_columns(pairs)
        p = np.stack([_rows_of(images.ids(), image_ids, "pairs: image ids", "the images"),
                      _rows_of(texts.ids(), text_ids, "pairs: text ids", "the texts")], axis=1)
        return relevance_pairs(p, images.n, texts.n, "pairs", every_query=False)
    if images.store is None or texts.store is None:
        raise ValueError("pass text_to_image (the image row of every text) or pairs (image id, text id); relevance "
                         "by equal ids needs both sides to be stores")
    image_rows = _rows_of(images.ids(), texts.ids(), "text ids (relevance by equal ids)", "the image store")
    return relevance_pairs(np.stack([image_rows, np.arange(texts.n)], axis=1), images.n, texts.n, "ids",
                           every_query=False)


def _require_relevant(counted: np.ndarray, n: int, what: str, hint: str) -> None:
    missing = np.flatnonzero(np.bincount(counted, minlength=n) == 0)
    if len(missing):
        raise ValueError(f"{len(missing)} of {n} {what} (e.g. row {missing[0]}){hint}")


def _directions(directions: Any) -> tuple[str, ...]:
    chosen = (directions,) if isinstance(directions, str) else tuple(directions)
    unknown = [d for d in chosen if d not in DIRECTIONS]
    if not chosen or unknown:
        raise ValueError(f"directions must be a non-empty subset of {DIRECTIONS}, got {directions!r}")
    return chosen


def _place(img: _Rows, txt: _Rows, device: str) -> str:
    """The engine's device for these rows, with tensor rows moved where it reads them (once).

    Tensors on a GPU with ``device="auto"`` choose that GPU; the CPU engine reads tensors as numpy arrays (normalised
    on their device by the rule of the numpy path), the torch engine reads them on its device.
    """
    tensors = [r.array for r in (img, txt) if is_tensor(r.array)]
    if device == "auto" and any(t.device.type == "cuda" for t in tensors):
        device = "cuda"
    # "torch:<device>" runs the torch engine on any device (CPU tensors in tests)
    torch_engine = isinstance(device, str) and device.startswith("torch:")
    chosen = device if torch_engine else resolve_device(device, float(img.n) * txt.n * img.dim)
    for rows in (img, txt):
        if is_tensor(rows.array):
            rows.array = rows.array.cpu().numpy() if chosen == "cpu" else rows.array.to(chosen.removeprefix("torch:"))
    return chosen


# -- public API ------------------------------------------------------------------------------------------------------
def evaluate_retrieval_streamed(
    images: Any,
    texts: Any,
    text_to_image: Any = None,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int | None = None,
    *,
    identical_is_relevant: bool = False,
    with_map: bool = True,
    pairs: Any = None,
    directions: Sequence[str] | str = DIRECTIONS,
    device: str = "auto",
) -> dict[str, float]:
    """:func:`workbench.retrieval.evaluate_retrieval` with stores, relevance by id, one direction or a GPU.

    Usually reached through ``evaluate_retrieval`` (same arguments), which sends these cases here.

    Parameters
    ----------
    images, texts : array, :class:`~workbench.store.EmbeddingStore` or path of a store folder
        A store is streamed (``chunk_size`` rows at a time) when the other side is an array, or when it is the
        larger of two stores; the other side is held in memory. With two arrays the texts are streamed.
    text_to_image : (N_txt,) integer array, optional
        The image row (position in the store) of every text.
    ks, chunk_size, identical_is_relevant, with_map
        As in ``evaluate_retrieval``; ``chunk_size`` counts rows of the streamed side (memory about chunk_size x
        resident rows x 4 bytes; default: the whole matrix up to 1 GiB, else blocks of about 256 MB).
    pairs : (P x 2) array-like of ``(image id, text id)``, or a polars frame with ``image_id`` / ``text_id``
        Many-to-many relevance by id (store ids; row positions for arrays). Without ``text_to_image`` and ``pairs``
        two stores are paired by equal ids (every text id must be an image id).
    directions : subset of ``("image_retrieval", "text_retrieval")``
        ``image_retrieval``: captions query images; ``text_retrieval``: images query captions (every image then
        needs a caption). A gallery of distractor images takes ``("image_retrieval",)``.
    device : {"auto", "cpu", "cuda"}
        See :func:`resolve_device`.

    Returns
    -------
    dict
        The ``evaluate_retrieval`` keys of the chosen directions.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from workbench.store import write
    >>> class Enc:
    ...     name, modalities, fingerprint = "toy", ("image", "text"), "f0"
    ...     def encode(self, modality, items, batch_size=32):
    ...         return np.asarray(items, dtype=np.float32)
    >>> images = write(Enc(), [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], "image", tempfile.mkdtemp(), shard_size=2,
    ...                ids=["a", "b", "c"], progress=False)
    >>> texts = write(Enc(), [[0.9, 0.1], [0.7, 0.7]], "text", tempfile.mkdtemp(), ids=["a", "c"], progress=False)
    >>> out = evaluate_retrieval_streamed(images, texts, ks=(1,), directions=("image_retrieval",), chunk_size=2)
    >>> out["image_retrieval_recall@1"]
    1.0
    """
    ks, chosen = check_ints(ks, "ks"), _directions(directions)
    img, txt = _Rows(images, "images"), _Rows(texts, "texts")
    if img.dim != txt.dim:
        raise ValueError(f"images have {img.dim} dimensions but texts have {txt.dim}")
    device = _place(img, txt, device)
    pairs_it = _image_text_pairs(img, txt, text_to_image, pairs)  # (image row, text row)
    if "image_retrieval" in chosen:
        _require_relevant(pairs_it[:, 1], txt.n, "texts have no relevant image", "")
    if "text_retrieval" in chosen:
        _require_relevant(pairs_it[:, 0], img.n, "images have no caption",
                          ": text retrieval (images query captions) needs one per image; rank captions against a "
                          "gallery with distractors with directions=('image_retrieval',)")
    stream_images = img.store is not None and (txt.store is None or img.n > txt.n)
    resident_side, stream_side = (txt, img) if stream_images else (img, txt)
    resident = resident_side.load()
    # captions query images (relevance over duplicate images when asked), images query captions (duplicate captions)
    by_text, by_image = pairs_it[:, ::-1].copy(), pairs_it
    if identical_is_relevant:
        if "image_retrieval" in chosen:
            by_text = _expand_identical(by_text, img.row_keys())
        if "text_retrieval" in chosen:
            by_image = _expand_identical(by_image, txt.row_keys())
    text_queries = by_text if "image_retrieval" in chosen else None  # (text row, image row)
    image_queries = by_image if "text_retrieval" in chosen else None  # (image row, text row)
    if stream_images:  # resident texts (rows of pairs: text, image), streamed images
        resident_pairs, stream_pairs = text_queries, None if image_queries is None else image_queries[:, ::-1]
    else:  # resident images, streamed texts
        resident_pairs, stream_pairs = image_queries, None if text_queries is None else text_queries[:, ::-1]
    fits = float(resident_side.n) * stream_side.n * 4 <= MAX_SCORE_BYTES
    if chunk_size is None and stream_pairs is not None and fits:
        chunk_size, keep_bytes = stream_side.n, MAX_SCORE_BYTES  # as in memory: one block, scored once
    else:
        keep_bytes = 0
    resident_result, stream_result = rank_streamed(resident, stream_side, resident_pairs, stream_pairs,
                                                   with_ap=with_map, chunk_size=chunk_size, device=device,
                                                   keep_bytes=keep_bytes)
    text_result, image_result = (resident_result, stream_result) if stream_images else (stream_result,
                                                                                          resident_result)
    out: dict[str, float] = {}
    if text_result is not None:
        out.update(_summary("image_retrieval_", text_result, ks))
    if image_result is not None:
        out.update(_summary("text_retrieval_", image_result, ks))
    return out
