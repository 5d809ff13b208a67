"""Exact image-text retrieval with one side streamed from an embedding store in chunks, on the CPU or a GPU.

:func:`workbench.retrieval.evaluate_retrieval` lands here when an input is an embedding store (or a store folder),
relevance is given by id (``pairs``), one direction is asked for (``directions``) or a GPU is used. The metrics
and the rank rule are those of :mod:`workbench.retrieval` (pessimistic ties: an irrelevant item scoring exactly
as high as the best relevant one ranks above it); only the order of work changes.

How it streams
--------------
One side stays in memory (the *resident* side, R rows: the smaller store, or the array), the other is read chunk
by chunk (the *streamed* side, S rows). Every score block is ``chunk @ resident.T`` (chunk x R), so memory is
O(R x chunk) whatever S is, and every block has one shape (the last chunk is padded with zero rows, and blocks are at
least :data:`~workbench._blocks.MIN_BLOCK` x MIN_BLOCK): the matmul (torch) runs one kernel for all blocks, so
identical vectors score bit-identically in every block and ties stay ties.

- Streamed items as queries (their row of scores is whole in one block) are ranked in a single pass.
- Resident items as queries need their relevant items' scores before counting who beats them: pass 1 scores only
  the streamed rows that are relevant to some query (packed into blocks of the same shape, so with one positive
  per query and S >> R it costs about R/S of a full pass), pass 2 counts over every block. When both directions
  are asked for, pass 1 is a full pass anyway (it ranks the streamed queries) and its blocks are kept for pass 2
  when the whole score matrix fits in :data:`~workbench.retrieval.MAX_SCORE_BYTES`.

Which directions are feasible at scale: captions (queries, resident) against a 1M-image gallery (streamed) is
``directions=("image_retrieval",)``: about 1 + R/S score passes over the gallery. The reverse direction asks every
gallery image to have a caption (a query needs a relevant item), so it is meaningful only for a paired set such as
Karpathy's 5k images x 25k captions, where both directions run as in memory.

Results equal the in-memory path's: bit for bit when the streamed side is the captions and ``chunk_size`` is the
same (the same score blocks are computed), and otherwise equal whenever no two distinct items score within one
float32 rounding step of each other (different block shapes can round a score differently in the last bit).
On ``device="cuda"`` scores come from cuBLAS in float32 (at the precision torch is set to: TF32 only if you
enabled it) and are counted with torch on the GPU; the counting code is tested on CPU tensors, but this project has
no GPU, so whether cuBLAS scores identical vectors bit-identically (which the tie rule needs) is not verified.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from workbench._blocks import MIN_BLOCK, columns, matmul
from workbench._validation import relevance_pairs
from workbench.retrieval import (
    _DEFAULT_CHUNK_BYTES,
    MAX_SCORE_BYTES,
    PARALLEL_ABOVE,
    RankResult,
    _expand_identical,
    _is_store,
    _kernels,
    _Side,
    _summary,
    _unit32,
)

__all__ = ["DEVICES", "DIRECTIONS", "evaluate_retrieval_streamed", "rank_streamed", "resolve_device"]

#: ``image_retrieval``: captions query the images; ``text_retrieval``: images query the captions.
DIRECTIONS = ("image_retrieval", "text_retrieval")
DEVICES = ("auto", "cpu", "cuda")
#: ``device="auto"`` uses a GPU only for jobs with more multiply-adds than this (1000 x 400 x 512).
CUDA_ABOVE = 2e8
#: With only the resident side as queries, default blocks are at most max(this, relevant streamed rows) rows.
PASS1_MIN_ROWS = 1024
_READ_ROWS = 65_536


# -- device --------------------------------------------------------------------------------------------------------
def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def resolve_device(device: str = "auto", multiply_adds: float | None = None) -> str:
    """``"cpu"`` or ``"cuda"`` for a ``device`` argument.

    ``"auto"`` picks CUDA when ``torch.cuda.is_available()`` and the job has more than :data:`CUDA_ABOVE`
    multiply-adds (smaller ones finish on the CPU before a GPU would have started); ``"cuda"`` without a GPU is a
    ValueError, not a silent fallback.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("auto", multiply_adds=1e6)   # too small to be worth a GPU
    'cpu'
    """
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cpu":
        return "cpu"
    if device == "auto" and multiply_adds is not None and multiply_adds <= CUDA_ABOVE:
        return "cpu"
    available = _cuda_available()
    if device == "cuda" and not available:
        raise ValueError("device='cuda' but torch.cuda.is_available() is False (no GPU, or a CPU-only torch build); "
                         "use device='auto' or 'cpu'")
    return "cuda" if available else "cpu"


# -- the two sides ---------------------------------------------------------------------------------------------------
class _Rows:
    """One side of the evaluation: unit float32 rows in memory, or a store read chunk by chunk."""

    def __init__(self, values: Any, what: str) -> None:
        self.what = what
        self.store: Any = None
        self.array: np.ndarray | None = None
        from workbench.store import as_store

        store = as_store(values, what)  # a path or an EmbeddingStore: opened, checked complete
        values = values if store is None else store
        if _is_store(values):
            if not getattr(values, "complete", True):  # a store-like object of another kind
                where = os.fspath(getattr(values, "path", "?"))
                raise ValueError(f"{what}: the store at {where!r} is incomplete ({len(values)} rows in verified "
                                 "shards); finish or repair it (workbench.embed resumes) before evaluating")
            self.store, self.n, self.dim = values, len(values), int(values.dim)
        else:
            self.array = _unit32(values, what)
            self.n, self.dim = self.array.shape

    def ids(self) -> Any:
        """The ids of the rows in order (a store's ``id`` column; row positions for an array)."""
        import polars as pl

        if self.store is None:
            return pl.Series("id", np.arange(self.n, dtype=np.int64))
        return self.store.ids()

    def _batches(self, rows: int) -> Iterator[np.ndarray]:
        if self.array is not None:
            for s in range(0, self.n, rows):
                yield self.array[s : s + rows]
            return
        seen = 0
        for _, vectors in self.store.iter_batches(rows):
            if vectors.ndim != 2 or vectors.shape[1] != self.dim:
                raise ValueError(f"{self.what}: a store batch has shape {vectors.shape}, expected (rows, {self.dim})")
            yield _unit32(vectors, f"{self.what} rows {seen}..{seen + len(vectors) - 1}")
            seen += len(vectors)
        if seen != self.n:
            raise ValueError(f"{self.what}: the store yielded {seen} rows but reports {self.n}")

    def chunks(self, size: int, wanted: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(row positions, rows)`` in order, exactly ``size`` rows each but the last; only ``wanted`` rows if given
        (a boolean mask over all rows), packed the same way."""
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        have = start = 0
        for vectors in self._batches(min(max(size, 16_384), _READ_ROWS)):
            idx = np.arange(start, start + len(vectors))
            start += len(vectors)
            if wanted is not None:
                take = wanted[idx]
                idx, vectors = idx[take], vectors[take]
                if not len(idx):
                    continue
            parts.append((idx, vectors))
            have += len(idx)
            while have >= size:
                idx = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
                vectors = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
                yield idx[:size], vectors[:size]
                parts = [(idx[size:], vectors[size:])] if len(idx) > size else []
                have = len(idx) - size
        if have:
            yield np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def load(self) -> np.ndarray:
        """Every row in memory (unit float32)."""
        if self.array is not None:
            return self.array
        return np.concatenate([vectors for _, vectors in self.chunks(_READ_ROWS)])

    def row_keys(self) -> np.ndarray:
        """Rows whose bytes are equal exactly when two vectors are: the array itself, or for a store a 128-bit
        BLAKE2 digest per row (one reading pass; nothing of size S x D is kept)."""
        if self.array is not None:
            return self.array
        keys = np.empty((self.n, 16), dtype=np.uint8)
        for idx, vectors in self.chunks(_READ_ROWS):
            for i, row in zip(idx, vectors, strict=True):
                keys[i] = np.frombuffer(hashlib.blake2b(row.tobytes(), digest_size=16).digest(), dtype=np.uint8)
        return keys


# -- engines: where scores are computed and counted ------------------------------------------------------------------
class _CpuEngine:
    """The in-memory path's matmul (torch on the CPU) and numba counting kernels."""

    def __init__(self, resident: np.ndarray, block_rows: int) -> None:
        self.a_t = columns(resident)  # the same layout as the in-memory path: the same bits
        self.n_cols = len(resident)
        self.out: np.ndarray | None = None
        parallel = block_rows * len(resident) > PARALLEL_ABOVE
        self.count_rows_kernel, self.count_columns_kernel = _kernels(parallel=parallel)

    def scores(self, block: np.ndarray, n: int, reuse: bool = False) -> np.ndarray:
        """Scores of the first n rows of ``block``; with ``reuse`` into one buffer, valid until the next call."""
        if not reuse:
            return matmul(block, self.a_t, n, self.n_cols)
        if self.out is None:
            self.out = np.empty((len(block), self.a_t.shape[1]), dtype=np.float32)
        return matmul(block, self.a_t, n, self.n_cols, out=self.out)

    def gather(self, scores: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return scores[rows, cols]

    def count_rows(self, scores: np.ndarray, thresholds: np.ndarray, counts: np.ndarray) -> None:
        self.count_rows_kernel(scores, thresholds, counts)

    def columns(self, thresholds: np.ndarray, counts: np.ndarray) -> Any:
        return thresholds, counts

    def count_columns(self, scores: np.ndarray, state: Any) -> None:
        self.count_columns_kernel(scores, *state)

    def finish_columns(self, state: Any, counts: np.ndarray) -> None:
        """The kernel counted into ``counts`` in place."""


class _TorchEngine:
    """torch matmul and counting on ``device`` (CUDA in use; runs on "cpu" too, which is how it is tested)."""

    def __init__(self, resident: np.ndarray, block_rows: int, device: str) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.a_t = torch.from_numpy(columns(resident)).to(self.device)
        self.n_cols = len(resident)

    def _tensor(self, values: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(values)).to(self.device)

    def scores(self, block: np.ndarray, n: int, reuse: bool = False) -> Any:
        return (self._tensor(block) @ self.a_t)[:n, : self.n_cols]  # torch's caching allocator reuses memory

    def gather(self, scores: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return scores[self._tensor(rows), self._tensor(cols)].cpu().numpy()

    def count_rows(self, scores: Any, thresholds: np.ndarray, counts: np.ndarray) -> None:
        thr = self._tensor(thresholds)  # ascending per row, padded with +inf (which nothing reaches)
        counted = self.torch.stack([(scores >= thr[:, k, None]).sum(dim=1) for k in range(thr.shape[1])], dim=1)
        counts += counted.cpu().numpy()

    def columns(self, thresholds: np.ndarray, counts: np.ndarray) -> Any:
        return self._tensor(thresholds), self.torch.zeros(counts.shape, dtype=self.torch.int64, device=self.device)

    def count_columns(self, scores: Any, state: Any) -> None:
        thr, acc = state
        for k in range(thr.shape[1]):
            acc[:, k] += (scores >= thr[None, :, k]).sum(dim=0)

    def finish_columns(self, state: Any, counts: np.ndarray) -> None:
        counts += state[1].cpu().numpy()


def _engine(resident: np.ndarray, block_rows: int, device: str) -> Any:
    return _CpuEngine(resident, block_rows) if device == "cpu" else _TorchEngine(resident, block_rows, device)


# -- ranking -----------------------------------------------------------------------------------------------------------
def rank_streamed(
    resident: np.ndarray,
    stream: Any,
    resident_pairs: np.ndarray | None,
    stream_pairs: np.ndarray | None,
    *,
    with_ap: bool = False,
    chunk_size: int | None = None,
    device: str = "cpu",
    keep_bytes: int = 0,
) -> tuple[RankResult | None, RankResult | None]:
    """Ranks of the resident rows as queries over the streamed rows, and of the streamed rows over the resident ones.

    Parameters
    ----------
    resident : (R x D) unit float32 array
        The side kept in memory.
    stream : (S x D) array or embedding store
        The side read ``chunk_size`` rows at a time (unit rows; a store's rows are checked chunk by chunk).
    resident_pairs, stream_pairs : (P x 2) integer arrays of ``(resident row, streamed row)``, or None
        Relevance for the resident queries and for the streamed queries (None: that side is not ranked).
    with_ap : bool
        Also average precision over all relevant items.
    chunk_size : int, optional
        Streamed rows per score block (memory ~ chunk_size x R x 4 bytes; default about 256 MB of scores, and with
        only resident queries at most max(PASS1_MIN_ROWS, relevant streamed rows) rows).
    device : {"cpu", "cuda"}
        Where scores are computed and counted (see :func:`resolve_device`).
    keep_bytes : int
        Keep pass 1's score blocks for pass 2 when the whole S x R matrix is at most this many bytes.

    Returns
    -------
    (RankResult or None, RankResult or None)
        The resident queries' and the streamed queries' results.

    Examples
    --------
    >>> import numpy as np
    >>> gallery = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    >>> queries = np.array([[0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
    >>> mine, _ = rank_streamed(queries, gallery, np.array([[0, 2], [1, 1]]), None, chunk_size=1)
    >>> mine.ranks.tolist()   # query 0: 0.6 is beaten by 0.96 and 0.8; query 1: 0.8 by 1.0
    [3, 2]
    """
    rows = stream if isinstance(stream, _Rows) else _Rows(stream, "streamed rows")
    resident = _unit32(resident, "resident rows")  # unchanged when already unit float32 rows
    if resident_pairs is None and stream_pairs is None:
        raise ValueError("nothing to rank: pass resident_pairs, stream_pairs or both")
    if resident.shape[1] != rows.dim:
        raise ValueError(f"the resident rows have {resident.shape[1]} dimensions but the streamed rows have {rows.dim}")
    n_a, n_b = len(resident), rows.n
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    a_side = None if resident_pairs is None else _Side(
        relevance_pairs(resident_pairs, n_a, n_b, "resident queries"), n_a, with_ap)
    b_side = None if stream_pairs is None else _Side(
        relevance_pairs(np.asarray(stream_pairs)[:, ::-1], n_b, n_a, "streamed queries"), n_b, with_ap)
    if chunk_size is None:
        chunk_size = max(1, _DEFAULT_CHUNK_BYTES // (4 * n_a))
        if b_side is None:  # pass 1 pads the relevant rows to whole blocks: keep blocks near their number
            chunk_size = min(chunk_size, max(PASS1_MIN_ROWS, len(np.unique(a_side.pairs[:, 1]))))
    chunk = min(int(chunk_size), n_b)
    engine = _engine(resident, chunk, device)
    buffer = np.zeros((max(chunk, MIN_BLOCK), rows.dim), dtype=np.float32)  # one block shape for every block

    def scores_of(vectors: np.ndarray, reuse: bool = True) -> Any:
        buffer[: len(vectors)] = vectors
        buffer[len(vectors) :] = 0.0
        return engine.scores(buffer, len(vectors), reuse)

    if a_side is not None:  # the resident queries' relevant pairs in streamed-row order
        by_row = np.argsort(a_side.pairs[:, 1], kind="stable")
        row_of = a_side.pairs[by_row, 1]

    def gather_resident(idx: np.ndarray, scores: Any) -> None:
        lo, hi = np.searchsorted(row_of, [idx[0], idx[-1] + 1])
        sel = by_row[lo:hi]  # every streamed row of these pairs is in idx (idx holds all wanted rows in its range)
        pos = np.searchsorted(idx, a_side.pairs[sel, 1])
        a_side.positive_scores[sel] = engine.gather(scores, pos, a_side.pairs[sel, 0])

    keep = a_side is not None and b_side is not None and n_a * n_b * 4 <= keep_bytes
    kept: list[Any] = []
    # pass 1: the streamed queries (whole rows), and the relevant scores of the resident queries
    if b_side is not None:
        for idx, vectors in rows.chunks(chunk):
            s, e = int(idx[0]), int(idx[-1]) + 1
            scores = scores_of(vectors, reuse=not keep)
            lo, hi = b_side.indptr[s], b_side.indptr[e]
            b_side.positive_scores[lo:hi] = engine.gather(scores, b_side.pairs[lo:hi, 0] - s, b_side.pairs[lo:hi, 1])
            engine.count_rows(scores, b_side.thresholds(slice(s, e)), b_side.counts[s:e])
            if a_side is not None:
                gather_resident(idx, scores)
            if keep:
                kept.append(scores)
    elif a_side is not None:  # only the streamed rows some resident query needs, packed into full blocks
        wanted = np.zeros(n_b, dtype=bool)
        wanted[a_side.pairs[:, 1]] = True
        for idx, vectors in rows.chunks(chunk, wanted):
            gather_resident(idx, scores_of(vectors))
    # pass 2: every streamed row against the resident queries' thresholds
    if a_side is not None:
        state = engine.columns(a_side.thresholds(slice(0, n_a)), a_side.counts)
        blocks = iter(kept) if keep else (scores_of(vectors) for _, vectors in rows.chunks(chunk))
        for scores in blocks:
            engine.count_columns(scores, state)
        engine.finish_columns(state, a_side.counts)
    return (None if a_side is None else a_side.result()), (None if b_side is None else b_side.result())


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
    chosen = _directions(directions)
    img, txt = _Rows(images, "images"), _Rows(texts, "texts")
    if img.dim != txt.dim:
        raise ValueError(f"images have {img.dim} dimensions but texts have {txt.dim}")
    pairs_it = _image_text_pairs(img, txt, text_to_image, pairs)  # (image row, text row)
    if "image_retrieval" in chosen:
        _require_relevant(pairs_it[:, 1], txt.n, "texts have no relevant image", "")
    if "text_retrieval" in chosen:
        _require_relevant(pairs_it[:, 0], img.n, "images have no caption",
                          ": text retrieval (images query captions) needs one per image; rank captions against a "
                          "gallery with distractors with directions=('image_retrieval',)")
    device = resolve_device(device, float(img.n) * txt.n * img.dim)
    stream_images = img.store is not None and (txt.store is None or img.n > txt.n)
    resident_side, stream_side = (txt, img) if stream_images else (img, txt)
    resident = resident_side.load()
    # captions query images (relevance over duplicate images when asked), images query captions (duplicate captions)
    by_text, by_image = pairs_it[:, ::-1].copy(), pairs_it
    if identical_is_relevant:
        if "image_retrieval" in chosen:
            by_text = _expand_identical(by_text, resident if resident_side is img else img.row_keys())
        if "text_retrieval" in chosen:
            by_image = _expand_identical(by_image, resident if resident_side is txt else txt.row_keys())
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
