"""The bad-input matrix (issue 13): public entry points x hostile inputs, one visible test id per case.

Every row of the table is ``(entry point, argument, bad input, expected outcome)``. The outcome is one of

- ``raises(pattern)``: a ``ValueError``/``TypeError`` whose message names the argument (``pattern``, by default the
  argument's name as a word);
- ``same(reference)``: the call returns what an independent computation returns -- the same call on a clean float64
  numpy copy (torch, polars, pandas, lists, integer and boolean matrices), the same call on the unscaled rows (huge
  finite values: every entry point here L2-normalises or is scale-equivariant), or a value worked out by hand.

Nothing may return a wrong result silently: a case that neither raises the named error nor matches its reference
fails. Entry points: the data model's constructors (Embeddings, PairedEmbeddings, MultimodalEmbeddings), every gap
metric of ``workbench.gap`` (with the CLIP loss, its landscape, core_metrics and ShiftedGap), every corrector's
fit/transform, retrieval (evaluate_retrieval, evaluate_queries, per_query_ranks, matched_ranks), zero-shot, probes,
``search.Index``, ``projection.project`` (and pca_2d/PCA2D) and the export tables. The generic rows come from
:data:`MATRIX_BAD` applied to every matrix argument; hand-written rows (:data:`SPECIAL`) cover indices, k above the
gallery, ties, one row, scalar parameters and tables (:data:`FIXED_LATER`: four cases fixed after the matrix was
first built). Properties (rotation, permutation, swap; ranks by brute force) are in
``test_properties.py``.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

from workbench import gap
from workbench.correct import ALL_CORRECTORS, AblateGapDimensions, LinearAdapter
from workbench.data import Embeddings, MultimodalEmbeddings, PairedEmbeddings
from workbench.export import to_latex, to_markdown
from workbench.probes import cross_modal_transfer, fusion_probe, linear_probe, modality_probe_accuracy
from workbench.projection import project
from workbench.retrieval import evaluate_queries, evaluate_retrieval, matched_ranks, per_query_ranks
from workbench.zeroshot import build_classifier, classify, zero_shot_classify

HAVE_PANDAS = importlib.util.find_spec("pandas") is not None
HAVE_FAISS = importlib.util.find_spec("faiss") is not None

N, D = 12, 6
_rng = np.random.default_rng(13)
A = _rng.normal(size=(N, D))
B = A + 0.6 * _rng.normal(size=(N, D))
LABELS = np.arange(N) % 2
DIAG = np.stack([np.arange(N), np.arange(N)], axis=1)
CLASSES = ["cat", "dog", "owl"]
CLASSIFIER = _rng.normal(size=(3, D))
ZS_LABELS = np.arange(N) % 3


# -- expected outcomes --
@dataclass(frozen=True)
class Raises:
    pattern: str | None  # None: the argument's name as a word


@dataclass(frozen=True)
class Same:
    reference: Callable[[], Any]
    rtol: float = 1e-6


def raises(pattern: str | None = None) -> Raises:
    return Raises(pattern)


def same(reference: Callable[[], Any], rtol: float = 1e-6) -> Same:
    return Same(reference, rtol)


def value(v: Any) -> Same:
    return Same(lambda: v)


@dataclass(frozen=True)
class Case:
    entry: str
    arg: str
    bad: str
    call: Callable[[], Any]
    expect: Raises | Same
    needs: str | None = None  # "pandas" or "faiss"

    @property
    def id(self) -> str:
        return f"{self.entry}[{self.arg}={self.bad}]"


# -- comparing results --
def _plain(x: Any) -> Any:
    """A result as nested Python/numpy values that :func:`_assert_close` compares."""
    if isinstance(x, Embeddings):
        return {"vectors": x.vectors, "ids": x.ids.to_list(), "modality": x.modality}
    if isinstance(x, PairedEmbeddings):
        return {"a": _plain(x.a), "b": _plain(x.b), "pairs": x.pairs}
    if isinstance(x, pl.DataFrame):
        return {c: x.get_column(c).to_list() for c in x.columns}
    if type(x).__name__ == "RankResult":
        return {"ranks": x.ranks, "average_precision": x.average_precision}
    if type(x).__name__ == "ZeroShotResult":
        return {"predictions": x.predictions, "ranks": x.ranks, "accuracy": x.accuracy, "scores": x.scores}
    if type(x).__name__ in ("ProbeResult", "TransferResult"):
        return {k: getattr(x, k) for k in x.__dataclass_fields__}
    if type(x).__name__ == "Index":
        return {"vectors": x.vectors, "ids": x.ids}
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, tuple | list):
        return [_plain(v) for v in x]
    return x


def _assert_close(got: Any, want: Any, rtol: float, where: str = "result") -> None:
    got, want = _plain(got), _plain(want)
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{where}: keys {got!r} vs {want!r}"
        for k in want:
            _assert_close(got[k], want[k], rtol, f"{where}[{k!r}]")
    elif isinstance(want, list) and not all(isinstance(v, int | float | type(None)) for v in want):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} vs {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_close(g, w, rtol, f"{where}[{i}]")
    elif isinstance(want, str | type(None) | bool):
        assert got == want, f"{where}: {got!r} != {want!r}"
    else:
        g, w = np.asarray(got), np.asarray(want)
        assert g.shape == w.shape, f"{where}: shape {g.shape} != {w.shape}"
        if w.dtype.kind in "fc" or g.dtype.kind in "fc":
            np.testing.assert_allclose(g.astype(float), w.astype(float), rtol=rtol, atol=rtol, equal_nan=True,
                                       err_msg=where)
        else:
            assert np.array_equal(g, w), f"{where}: {g!r} != {w!r}"


# -- bad values of a matrix argument --
def _with(x: np.ndarray, row: int, col: int, v: float) -> np.ndarray:
    out = np.array(x, dtype=np.float64)
    out[min(row, len(out) - 1), col] = v
    return out


def _bool_matrix(x: np.ndarray) -> np.ndarray:
    out = x > 0
    out[:, 0] = True  # no all-False row: every row has a direction
    return out


def _int_matrix(x: np.ndarray) -> np.ndarray:
    out = np.round(4 * x).astype(np.int64)
    out[:, 0] = np.where(out[:, 0] == 0, 1, out[:, 0])  # no zero row
    return out


def _pandas(x: np.ndarray) -> Any:
    import pandas as pd

    return pd.DataFrame(x)


#: (name, make the bad value from a clean float64 matrix, the clean float64 matrix the call must equal, or None for
#: "must raise naming the argument")
MATRIX_BAD: list[tuple[str, Callable[[np.ndarray], Any], Callable[[np.ndarray], np.ndarray] | None]] = [
    ("nan", lambda x: _with(x, 3, 2, np.nan), None),
    ("inf", lambda x: _with(x, 3, 2, np.inf), None),
    ("neg_inf", lambda x: _with(x, 0, 0, -np.inf), None),
    ("huge_1e300", lambda x: x * 1e300, lambda x: x),
    ("tiny_1e-300", lambda x: x * 1e-300, lambda x: x),
    ("empty", lambda x: x[:0], None),
    ("zero_dims", lambda x: x[:, :0], None),
    ("1d", lambda x: x[0], None),
    ("3d", lambda x: x[None], None),
    ("strings", lambda x: x.astype(str), None),
    ("object", lambda x: x.astype(object), None),
    ("complex", lambda x: x.astype(np.complex128), None),
    ("bool", _bool_matrix, lambda x: _bool_matrix(x).astype(np.float64)),
    ("int64", _int_matrix, lambda x: _int_matrix(x).astype(np.float64)),
    ("list", lambda x: x.tolist(), lambda x: x),
    ("torch_float32", lambda x: torch.tensor(x, dtype=torch.float32),
     lambda x: x.astype(np.float32).astype(np.float64)),
    ("torch_grad", lambda x: torch.tensor(x, requires_grad=True), lambda x: x),
    ("torch_complex", lambda x: torch.tensor(x.astype(np.complex64)), None),
    ("polars", lambda x: pl.DataFrame(x), lambda x: x),
    ("pandas", _pandas, lambda x: x),
]


def matrix_cases(entry: str, arg: str, call: Callable[[Any], Any], clean: np.ndarray, *,
                 pattern: str | None = None, skip: tuple[str, ...] = (), override: dict[str, Any] | None = None,
                 rtol: float = 1e-6) -> list[Case]:
    """One case per bad matrix value for the argument ``arg`` of ``call`` (the other arguments clean)."""
    out = []
    for bad, make, reference in MATRIX_BAD:
        if bad in skip:
            continue
        if override and bad in override:
            expect = override[bad]
        elif reference is None:
            expect = raises(pattern)
        else:
            expect = same(lambda call=call, reference=reference: call(reference(clean)), rtol)
        out.append(Case(entry, arg, bad, lambda call=call, make=make: call(make(clean)), expect,
                        "pandas" if bad == "pandas" else None))
    return out


# -- the entry points --
#: Pair metrics of workbench.gap: f(a, b) on row-paired arrays.
GAP_PAIR = {
    "gap.gap_vector": gap.gap_vector,
    "gap.centroid_distance": gap.centroid_distance,
    "gap.mean_matched_cosine": gap.mean_matched_cosine,
    "gap.paired_distance": gap.paired_distance,
    "gap.alignment": gap.alignment,
    "gap.mean_unmatched_cosine": gap.mean_unmatched_cosine,
    "gap.relative_modality_gap": gap.relative_modality_gap,
    "gap.gap_shares": gap.gap_shares,
    "gap.gap_dimensions": lambda a, b: gap.gap_dimensions(a, b, k=2),
    "gap.gap_report": lambda a, b: dict(gap.gap_report(a, b, probe=False)),
    "gap.cosine_histograms": lambda a, b: gap.cosine_histograms(a, b, bins=4),
    "gap.clip_loss": gap.clip_loss,
    "gap.gap_loss_landscape": lambda a, b: gap.gap_loss_landscape(a, b, deltas=[0.0, 0.5]),
}
GAP_SINGLE = {
    "gap.intra_modality_cosine": gap.intra_modality_cosine,
    "gap.uniformity": gap.uniformity,
}


def _fitted(cls: type) -> Any:
    return cls().fit(A, B)


PAIR_ENTRIES: dict[str, Callable[[Any, Any], Any]] = {
    **GAP_PAIR,
    **{f"{c.__name__}.fit": (lambda a, b, c=c: c().fit(a, b).transform(A, B)) for c in ALL_CORRECTORS},
    **{f"{c.__name__}.transform": (lambda a, b, c=c: _fitted(c).transform(a, b)) for c in ALL_CORRECTORS},
    "PairedEmbeddings.from_arrays": lambda a, b: PairedEmbeddings.from_arrays(a, b),
    "matched_ranks": matched_ranks,
    "evaluate_retrieval": lambda a, b: evaluate_retrieval(a, b, np.arange(N), ks=(1, 5)),
    "evaluate_queries": lambda a, b: evaluate_queries(a, b, DIAG, ks=(1, 5)),
    "per_query_ranks": lambda a, b: per_query_ranks(a, b, DIAG, with_ap=True),
    "modality_probe_accuracy": lambda a, b: modality_probe_accuracy(a, b, folds=2),
    "cross_modal_transfer": lambda a, b: cross_modal_transfer(a, LABELS, b, LABELS, folds=2),
    "fusion_probe": lambda a, b: fusion_probe(a, b, LABELS, folds=2),
}
#: The names the entry points give their two matrix arguments (evaluate_retrieval: images, texts, ...).
PAIR_NAMES = {
    "evaluate_retrieval": ("images", "texts"),
    "evaluate_queries": ("queries", "gallery"),
    "per_query_ranks": ("queries", "gallery"),
    "PairedEmbeddings.from_arrays": ("a", "b"),  # the default modality names: "b embeddings: ...", "b has 5"
}


def _index(x: Any, **kw: Any) -> Any:
    from workbench.search import Index

    return Index(x, **kw)


def _search(q: Any) -> Any:
    return _index(B).search(q, k=3)


SINGLE_ENTRIES: dict[str, tuple[str, Callable[[Any], Any], np.ndarray]] = {
    **{name: ("x", f, A) for name, f in GAP_SINGLE.items()},
    "Embeddings": ("image embeddings", lambda x: Embeddings(x, "image"), A),
    "linear_probe": ("x", lambda x: linear_probe(x, LABELS, folds=2), A),
    "classify.image_emb": ("image embeddings", lambda x: classify(x, CLASSIFIER, CLASSES, ZS_LABELS, ks=(1, 2)), A),
    "classify.classifier": ("classifier", lambda w: classify(A, w, CLASSES, ZS_LABELS, ks=(1, 2)), CLASSIFIER),
    "project.pca": ("x", lambda x: project(x, "pca", cache=False), A),
    "search.Index": ("vectors", _index, A),
    "search.Index.search": ("queries", _search, A),
}
#: The bad values each single entry point answers differently from the default (raise for bad, equal otherwise).
SINGLE_OVERRIDES: dict[str, dict[str, Any]] = {
    # one (D,) row indexes as one row, as a (D,) query searches as one query
    "search.Index": {"1d": same(lambda: _index(A[:1]))},
    # a (D,) query is one query (documented)
    "search.Index.search": {"1d": same(lambda: _search(A[:1]))},
    # PCA is scale-equivariant, not scale-invariant: 1e300 x projects to 1e300 * project(x)
    "project.pca": {"huge_1e300": same(lambda: 1e300 * project(A, "pca", cache=False)),
                    "tiny_1e-300": same(lambda: 1e-300 * project(A, "pca", cache=False))},
}
SINGLE_SKIPS: dict[str, tuple[str, ...]] = {
    # the classifier has 3 rows (one per class): a 0-dims classifier is refused as for any matrix
}


def _fusion_reference(a: np.ndarray, b: np.ndarray) -> pl.DataFrame:
    """fusion_probe by hand: linear_probe of a, b and [a, b] / sqrt(2) (unit rows) on the same folds; no sum."""
    ua, ub = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (a, b))
    rows = [(name, r.accuracy, r.std, None) for name, r in (
        (name, linear_probe(x, LABELS, folds=2)) for name, x in (("a", ua), ("b", ub),
                                                                ("concat", np.hstack([ua, ub]) / np.sqrt(2))))]
    rows.append(("sum", None, None, "a and b have different dimensions (6 and 5); sum needs equal ones"))
    return pl.DataFrame(rows, schema={"input": pl.String, "accuracy": pl.Float64, "std": pl.Float64,
                                      "reason": pl.String}, orient="row")


#: Pair entry points whose answer to a bad value differs from the default (raise for bad values, equal otherwise).
PAIR_OVERRIDES: dict[tuple[str, str], Any] = {
    # the probe stacks a and b (labels 0 and 1): they need not be row-paired
    ("modality_probe_accuracy", "mismatched_counts"): same(lambda: linear_probe(
        np.vstack([A, B[:-1]]), np.r_[np.zeros(N, int), np.ones(N - 1, int)], folds=2)),
    # fusion of modalities of different dimensions is documented: the sum row is null with its reason
    ("fusion_probe", "wrong_dims"): same(lambda: _fusion_reference(A, B[:, :-1])),
    # cross_modal_transfer's b has its own labels: the count mismatch is named on labels_b
    ("cross_modal_transfer", "mismatched_counts"): raises(r"\blabels_b\b"),
}


def _pair_cases() -> list[Case]:
    cases = []
    for entry, f in PAIR_ENTRIES.items():
        name_a, name_b = PAIR_NAMES.get(entry, ("a", "b"))
        cases += matrix_cases(entry, name_b, lambda b, f=f: f(A, b), B, pattern=rf"\b{name_b}\b")
        for bad, make in (("nan", lambda x: _with(x, 3, 2, np.nan)), ("strings", lambda x: x.astype(str)),
                          ("3d", lambda x: x[None])):
            cases.append(Case(entry, name_a, bad, lambda f=f, make=make: f(make(A), B),
                              raises(rf"\b{name_a}\b")))
        # an Embeddings is its vectors (float32 unit rows: equal to the float64 call to float32 precision)
        cases.append(Case(entry, name_b, "Embeddings", lambda f=f: f(Embeddings(A, "a"), Embeddings(B, "b")),
                          same(lambda f=f: f(A, B), rtol=1e-5)))
        if not entry.startswith(("gap.", "PairedEmbeddings")) and ".fit" not in entry:  # these take a PairedEmbeddings
            cases.append(Case(entry, name_a, "PairedEmbeddings", lambda f=f: f(_pe(None), B), raises(rf"\b{name_a}\b")))
        row_paired = not entry.endswith(".transform") and entry not in ("per_query_ranks", "evaluate_queries")
        cases.append(Case(entry, name_b, "wrong_dims", lambda f=f: f(A, B[:, :-1]),
                          PAIR_OVERRIDES.get((entry, "wrong_dims"), raises(rf"\b{name_b}\b"))))
        if row_paired:
            cases.append(Case(entry, name_b, "mismatched_counts", lambda f=f: f(A, B[:-1]),
                              PAIR_OVERRIDES.get((entry, "mismatched_counts"),
                                                 raises(rf"\b{name_b}\b|\btext_to_image\b"))))
    return cases


def _single_cases() -> list[Case]:
    cases = []
    for entry, (name, f, clean) in SINGLE_ENTRIES.items():
        cases += matrix_cases(entry, name, f, clean, pattern=rf"\b{name}\b", skip=SINGLE_SKIPS.get(entry, ()),
                              override=SINGLE_OVERRIDES.get(entry))
    return cases


# -- hand-written rows: indices, k above the gallery, ties, one row, scalar parameters, tables --
T = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # rows 0 and 1 tie exactly
ONE = (A[:1] / np.linalg.norm(A[:1]), B[:1] / np.linalg.norm(B[:1]))


def _pe(pairs: Any) -> PairedEmbeddings:
    return PairedEmbeddings.from_arrays(A, B, pairs=pairs)


def _er(t2i: Any) -> dict[str, float]:
    return evaluate_retrieval(A, B, t2i, ks=(1, 5))


def _eq(rel: Any) -> dict[str, float]:
    return evaluate_queries(A, B, rel, ks=(1, 5))


def _zs(labels: Any) -> Any:
    return classify(A, CLASSIFIER, CLASSES, labels, ks=(1, 2))


def _pandas_series(x: Any) -> Any:
    import pandas as pd

    return pd.Series(x)


def _search_tie() -> tuple[list[float], list[int]]:
    scores, ids = _index(T).search(np.array([[1.0, 0.0]]), k=2)
    return scores[0].tolist(), sorted(ids[0].tolist())


def _pca_2d(x: Any) -> Any:
    from workbench.projection import pca_2d

    return pca_2d(x)[0]


def _pca_fit_transform(x: Any) -> Any:
    from workbench.projection import PCA2D

    return PCA2D().fit(A).transform(x)


def _md(values: list[Any]) -> list[str]:
    """The cells of a one-column markdown table, below its header."""
    return [line.strip("| ").strip() for line in to_markdown(pl.DataFrame({"m": values})).splitlines()[2:]]


def _encode_classes(prompts: list[str]) -> np.ndarray:
    """A text encoder whose prompt "cat" is CLASSIFIER's row for cat (templates=["{}"])."""
    return CLASSIFIER[[CLASSES.index(p) for p in prompts]]


def _md_rows(table: pl.DataFrame) -> list[str]:
    """The body rows of a markdown table, without the outer bars."""
    return [line.strip("| ").strip() for line in to_markdown(table).splitlines()[2:]]


def _latex(values: list[Any]) -> list[str]:
    lines = to_latex(pl.DataFrame({"m": values})).splitlines()
    return [line.removesuffix(r" \\") for line in lines[lines.index(r"\midrule") + 1 : lines.index(r"\bottomrule")]]


_PAIRS_OK = [(i, i) for i in range(N)]

SPECIAL: list[Case] = [
    # -- row indices: pairs, text_to_image, relevance, labels, subsets, ids --------------------------------------------
    Case("PairedEmbeddings", "pairs", "negative", lambda: _pe([(0, 0), (-1, 1)]), raises()),
    Case("PairedEmbeddings", "pairs", "out_of_range", lambda: _pe([(0, 0), (N, 1)]), raises()),
    Case("PairedEmbeddings", "pairs", "float", lambda: _pe([(0.0, 0.0), (1.0, 1.0)]), raises()),
    Case("PairedEmbeddings", "pairs", "bool", lambda: _pe(np.ones((2, 2), bool)), raises()),
    Case("PairedEmbeddings", "pairs", "1d", lambda: _pe([0, 1]), raises()),
    Case("PairedEmbeddings", "pairs", "3d", lambda: _pe(np.zeros((1, 2, 2), int)), raises()),
    Case("PairedEmbeddings", "pairs", "empty", lambda: _pe(np.zeros((0, 2), int)), raises()),
    Case("PairedEmbeddings", "pairs", "repeated", lambda: _pe([(0, 0), (0, 0)]), raises()),
    Case("PairedEmbeddings", "pairs", "torch", lambda: _pe(torch.tensor(_PAIRS_OK)), same(lambda: _pe(_PAIRS_OK))),
    Case("PairedEmbeddings", "pairs", "polars", lambda: _pe(pl.DataFrame(np.array(_PAIRS_OK))),
         same(lambda: _pe(_PAIRS_OK))),
    Case("PairedEmbeddings", "pairs", "pandas", lambda: _pe(_pandas(np.array(_PAIRS_OK))),
         same(lambda: _pe(_PAIRS_OK)), "pandas"),
    *[Case("PairedEmbeddings.sample", "n", repr(v), lambda v=v: _pe(None).sample(v), raises())
      for v in (0, 2.5, True, "3")],
    *[Case("PairedEmbeddings.sample", "seed", repr(v), lambda v=v: _pe(None).sample(3, seed=v), raises())
      for v in (-1, 1.5)],
    Case("PairedEmbeddings.sample", "n", "above_pairs", lambda: _pe(None).sample(N + 5), same(lambda: _pe(None))),
    *[Case("PairedEmbeddings.from_arrays", "model", repr(v), lambda v=v: PairedEmbeddings.from_arrays(A, B, model=v),
           raises()) for v in (3, ("x", "y", "z"))],
    Case("PairedEmbeddings.subset", "pairs", "out_of_range", lambda: _pe(None).subset([N]), raises()),
    Case("PairedEmbeddings.subset", "pairs", "negative", lambda: _pe(None).subset([-1]),
         same(lambda: _pe(None).subset([N - 1]))),
    Case("Embeddings.subset", "rows", "out_of_range", lambda: Embeddings(A, "image").subset([N]), raises()),
    Case("Embeddings.subset", "rows", "negative_out_of_range", lambda: Embeddings(A, "image").subset([-N - 1]),
         raises()),
    Case("Embeddings.subset", "rows", "negative", lambda: Embeddings(A, "image").subset([-1]),
         same(lambda: Embeddings(A, "image").subset([N - 1]))),
    Case("Embeddings.subset", "rows", "float", lambda: Embeddings(A, "image").subset([1.0]), raises()),
    Case("Embeddings.subset", "rows", "mask_wrong_length", lambda: Embeddings(A, "image").subset(np.ones(3, bool)),
         raises("mask")),
    Case("Embeddings", "metadata", "wrong_length", lambda: Embeddings(A, "image", metadata={"id": [1, 2]}),
         raises("metadata")),
    Case("Embeddings", "metadata", "repeated_ids", lambda: Embeddings(A, "image", metadata={"id": [0] * N}),
         raises("metadata")),
    Case("Embeddings", "modality", "empty", lambda: Embeddings(A, ""), raises()),
    Case("Embeddings", "modality", "not_a_string", lambda: Embeddings(A, 3), raises()),  # type: ignore[arg-type]
    Case("Embeddings", "image embeddings", "one_row", lambda: Embeddings(A[:1], "image").vectors,
         value(ONE[0].astype(np.float32))),
    Case("Embeddings", "image embeddings", "zero_row", lambda: Embeddings(np.zeros((2, 3)), "image"), raises()),
    Case("MultimodalEmbeddings", "embeddings", "empty", lambda: MultimodalEmbeddings([]), raises("modality")),
    Case("MultimodalEmbeddings", "embeddings", "array", lambda: MultimodalEmbeddings([A]), raises("Embeddings")),
    Case("MultimodalEmbeddings", "embeddings", "repeated_modality",
         lambda: MultimodalEmbeddings([Embeddings(A, "image"), Embeddings(B, "image")]), raises("modality")),
    Case("MultimodalEmbeddings", "key", "missing",
         lambda: MultimodalEmbeddings([Embeddings(A, "image"), Embeddings(B, "text")], key="url"), raises("key")),
    Case("evaluate_retrieval", "text_to_image", "negative", lambda: _er(np.r_[-1, np.arange(1, N)]), raises()),
    Case("evaluate_retrieval", "text_to_image", "out_of_range", lambda: _er(np.r_[np.arange(N - 1), N]), raises()),
    Case("evaluate_retrieval", "text_to_image", "float", lambda: _er(np.arange(N) * 1.0), raises()),
    Case("evaluate_retrieval", "text_to_image", "bool", lambda: _er(np.ones(N, bool)), raises()),
    Case("evaluate_retrieval", "text_to_image", "wrong_length", lambda: _er(np.arange(N - 1)), raises()),
    Case("evaluate_retrieval", "text_to_image", "2d", lambda: _er(np.arange(N)[:, None]), raises()),
    Case("evaluate_retrieval", "text_to_image", "torch", lambda: _er(torch.arange(N)), same(lambda: _er(np.arange(N)))),
    Case("evaluate_retrieval", "text_to_image", "polars", lambda: _er(pl.Series(np.arange(N))),
         same(lambda: _er(np.arange(N)))),
    Case("evaluate_retrieval", "text_to_image", "pandas", lambda: _er(_pandas_series(np.arange(N))),
         same(lambda: _er(np.arange(N))), "pandas"),
    Case("evaluate_queries", "relevance", "negative", lambda: _eq(np.r_[DIAG[:-1], [[N - 1, -1]]]), raises()),
    Case("evaluate_queries", "relevance", "out_of_range", lambda: _eq(np.r_[DIAG, [[0, N]]]), raises()),
    Case("evaluate_queries", "relevance", "query_out_of_range", lambda: _eq(np.r_[DIAG, [[N, 0]]]), raises()),
    Case("evaluate_queries", "relevance", "float", lambda: _eq(DIAG * 1.0), raises()),
    Case("evaluate_queries", "relevance", "1d", lambda: _eq(np.arange(N)), raises()),
    Case("evaluate_queries", "relevance", "empty", lambda: _eq(np.zeros((0, 2), int)), raises()),
    Case("evaluate_queries", "relevance", "query_without_relevant", lambda: _eq(DIAG[:-1]), raises()),
    Case("evaluate_queries", "relevance", "torch", lambda: _eq(torch.tensor(DIAG)), same(lambda: _eq(DIAG))),
    Case("evaluate_queries", "relevance", "polars", lambda: _eq(pl.DataFrame(DIAG)), same(lambda: _eq(DIAG))),
    Case("per_query_ranks", "relevance", "negative", lambda: per_query_ranks(A, B, [(0, -1)]), raises()),
    Case("classify", "labels", "negative", lambda: _zs(np.r_[-1, ZS_LABELS[1:]]), raises()),
    Case("classify", "labels", "out_of_range", lambda: _zs(np.r_[3, ZS_LABELS[1:]]), raises()),
    Case("classify", "labels", "float", lambda: _zs(ZS_LABELS * 1.0), raises()),
    Case("classify", "labels", "bool", lambda: _zs(ZS_LABELS > 0), raises()),
    Case("classify", "labels", "2d", lambda: _zs(ZS_LABELS[:, None]), raises()),
    Case("classify", "labels", "wrong_length", lambda: _zs(ZS_LABELS[:-1]), raises()),
    Case("classify", "labels", "unknown_name", lambda: _zs(["cow"] * N), raises()),
    Case("classify", "labels", "names", lambda: _zs([CLASSES[i] for i in ZS_LABELS]), same(lambda: _zs(ZS_LABELS))),
    Case("classify", "labels", "polars", lambda: _zs(pl.Series(ZS_LABELS)), same(lambda: _zs(ZS_LABELS))),
    Case("classify", "labels", "torch", lambda: _zs(torch.tensor(ZS_LABELS)), same(lambda: _zs(ZS_LABELS))),
    Case("classify", "labels", "pandas", lambda: _zs(_pandas_series(ZS_LABELS)), same(lambda: _zs(ZS_LABELS)),
         "pandas"),
    Case("classify", "class_names", "wrong_count", lambda: classify(A, CLASSIFIER, ["a", "b"]), raises("class names")),
    Case("classify", "class_names", "string", lambda: classify(A, CLASSIFIER, "cat"), raises()),
    *matrix_cases("build_classifier", "encode_text", lambda out: build_classifier(
        ["cat", "dog"], lambda prompts: out[: len(prompts)], templates=["a {}", "the {}"]), A[:4]),
    Case("zero_shot_classify", "encode_text", "none", lambda: zero_shot_classify(A, CLASSES, lambda p: None),
         raises()),
    Case("zero_shot_classify", "labels", "out_of_range",
         lambda: zero_shot_classify(A, CLASSES, _encode_classes, templates=["{}"], labels=ZS_LABELS + 1),
         raises("labels")),
    Case("zero_shot_classify", "labels", "polars",
         lambda: zero_shot_classify(A, CLASSES, _encode_classes, templates=["{}"], labels=pl.Series(ZS_LABELS)),
         same(lambda: classify(A, CLASSIFIER, CLASSES, ZS_LABELS))),
    Case("linear_probe", "labels", "wrong_length", lambda: linear_probe(A, LABELS[:-1], folds=2), raises()),
    Case("linear_probe", "labels", "2d", lambda: linear_probe(A, LABELS[:, None], folds=2), raises()),
    Case("linear_probe", "labels", "missing", lambda: linear_probe(A, [None] + [1] * (N - 1), folds=2), raises()),
    Case("linear_probe", "labels", "polars", lambda: linear_probe(A, pl.Series(LABELS), folds=2),
         same(lambda: linear_probe(A, LABELS, folds=2))),
    Case("linear_probe", "labels", "torch", lambda: linear_probe(A, torch.tensor(LABELS), folds=2),
         same(lambda: linear_probe(A, LABELS, folds=2))),
    Case("search.Index", "ids", "negative", lambda: _index(A, ids=np.r_[-1, np.arange(1, N)]), raises()),
    Case("search.Index", "ids", "repeated", lambda: _index(A, ids=np.zeros(N, int)), raises()),
    Case("search.Index", "ids", "wrong_length", lambda: _index(A, ids=np.arange(N - 1)), raises()),
    Case("search.Index", "ids", "nan", lambda: _index(A, ids=[float(i) for i in range(N - 1)] + [np.nan]), raises()),
    Case("search.Index", "ids", "none", lambda: _index(A, ids=[str(i) for i in range(N - 1)] + [None]), raises()),
    Case("PairedEmbeddings.from_frame", "frame", "pandas",
         lambda: PairedEmbeddings.from_frame(_pandas(np.zeros((2, 2))), "a", "b"), raises(), "pandas"),
    Case("PairedEmbeddings.from_frame", "frame", "empty", lambda: PairedEmbeddings.from_frame(
        pl.DataFrame({"a": [], "b": []}, schema={"a": pl.List(pl.Float64), "b": pl.List(pl.Float64)}), "a", "b"),
        raises("column 'a'")),
    Case("PairedEmbeddings.from_frame", "frame", "ragged", lambda: PairedEmbeddings.from_frame(
        pl.DataFrame({"a": [[1.0], [0.0, 1.0]], "b": [[1.0, 0.0], [0.0, 1.0]]}), "a", "b"), raises("column 'a'")),
    Case("PairedEmbeddings.from_frame", "frame", "nan", lambda: PairedEmbeddings.from_frame(
        pl.DataFrame({"a": [[1.0, np.nan], [0.0, 1.0]], "b": [[1.0, 0.0], [0.0, 1.0]]}), "a", "b"), raises(r"\ba\b")),
    Case("PairedEmbeddings.from_frame", "frame", "array_column", lambda: PairedEmbeddings.from_frame(
        pl.DataFrame({"a_emb": A, "b_emb": B}), "a_emb", "b_emb"), same(lambda: _pe(None), rtol=0)),
    Case("search.Index", "ids", "polars", lambda: _index(A, ids=pl.Series([str(i) for i in range(N)])).ids.tolist(),
         value([str(i) for i in range(N)])),
    # -- the gap-shift engine and the core metrics of moved rows -------------------------------------------------------
    Case("gap.core_metrics", "a2", "nan", lambda: gap.core_metrics(_pe(None), _with(A, 0, 0, np.nan), B),
         raises(r"\ba\b")),
    Case("gap.core_metrics", "a2", "strings", lambda: gap.core_metrics(_pe(None), A.astype(str), B),
         raises(r"\ba\b")),
    Case("gap.core_metrics", "ks", "(0,)", lambda: gap.core_metrics(_pe(None), A, B, ks=(0,)), raises()),
    Case("gap.ShiftedGap", "ks", "(0,)", lambda: gap.ShiftedGap(_pe(None), ks=(0,)), raises()),
    Case("gap.clip_loss", "batch_size", "0", lambda: gap.clip_loss(A, B, batch_size=0), raises()),
    Case("gap.clip_loss", "logit_scale", "nan", lambda: gap.clip_loss(A, B, logit_scale=float("nan")), raises()),
    # -- k above the gallery (or the classes, or the dimensions) -------------------------------------------------------
    Case("evaluate_retrieval", "ks", "above_gallery",
         lambda: {k: v for k, v in evaluate_retrieval(A, B, np.arange(N), ks=(N + 5,)).items() if "recall" in k},
         value({f"image_retrieval_recall@{N + 5}": 1.0, f"text_retrieval_recall@{N + 5}": 1.0})),
    Case("evaluate_queries", "ks", "above_gallery", lambda: evaluate_queries(A, B, DIAG, ks=(100,))["recall@100"],
         value(1.0)),
    Case("classify", "ks", "above_classes", lambda: classify(A, CLASSIFIER, CLASSES, ZS_LABELS, ks=(5,)).accuracy,
         value({5: 1.0})),
    Case("search.Index.search", "k", "above_gallery", lambda: _index(A).search(A, k=N + 1), raises()),
    Case("search.Index.search", "k", "zero", lambda: _index(A).search(A, k=0), raises()),
    Case("search.Index.search", "k", "float", lambda: _index(A).search(A, k=2.0), raises()),
    Case("search.Index.recall_at", "k", "above_gallery", lambda: _index(A).recall_at(k=N + 1), raises()),
    Case("gap.gap_shares", "ks", "above_dims", lambda: gap.gap_shares(A, B, ks=(D + 10,)), value({D + 10: 1.0})),
    Case("gap.gap_dimensions", "k", "above_dims", lambda: gap.gap_dimensions(A, B, k=D + 1), raises()),
    Case("AblateGapDimensions", "k", "above_dims", lambda: AblateGapDimensions(k=D + 1).fit(A, B), raises()),
    # -- ties: the pessimistic rule, by hand ---------------------------------------------------------------------------
    Case("per_query_ranks", "gallery", "tie", lambda: per_query_ranks(T[:1], T, [(0, 1)], with_ap=True),
         value({"ranks": np.array([2]), "average_precision": np.array([0.5])})),
    Case("per_query_ranks", "gallery", "tie_both_relevant",
         lambda: per_query_ranks(T[:1], T, [(0, 0), (0, 1)], with_ap=True),
         value({"ranks": np.array([1]), "average_precision": np.array([1.0])})),
    Case("matched_ranks", "b", "tie", lambda: matched_ranks(T, T), value([np.array([2, 2, 1]), np.array([2, 2, 1])])),
    Case("evaluate_queries", "gallery", "tie",
         lambda: {k: v for k, v in evaluate_queries(T, T, [(0, 0), (1, 1), (2, 2)], ks=(1,)).items()
                  if k in ("recall@1", "mean_rank", "mAP")},
         value({"recall@1": 1 / 3, "mean_rank": 5 / 3, "mAP": 2 / 3})),
    Case("evaluate_queries", "identical_is_relevant", "tie",
         lambda: evaluate_queries(T, T, [(0, 0), (1, 1), (2, 2)], ks=(1,), identical_is_relevant=True)["recall@1"],
         value(1.0)),
    Case("evaluate_retrieval", "texts", "tie",
         lambda: {k: v for k, v in evaluate_retrieval(T, T, np.arange(3), ks=(1,)).items() if "recall" in k},
         value({"image_retrieval_recall@1": 1 / 3, "text_retrieval_recall@1": 1 / 3})),
    Case("classify", "image_emb", "tie",
         lambda: classify([[1.0, 0.1], [0.2, 1.0], [1.0, 1.0]], np.eye(2), ["cat", "dog"], [0, 1, 1], ks=[1]).accuracy,
         value({1: 2 / 3})),
    Case("search.Index.search", "queries", "tie", _search_tie, value([[1.0, 1.0], [0, 1]])),
    Case("gap.centroid_distance", "b", "identical", lambda: gap.centroid_distance(A, A), value(0.0)),
    Case("gap.alignment", "b", "identical", lambda: gap.alignment(A, A), value(0.0)),
    Case("gap.mean_matched_cosine", "b", "identical", lambda: gap.mean_matched_cosine(A, A), value(1.0)),
    Case("gap.relative_modality_gap", "b", "identical", lambda: gap.relative_modality_gap(A, A), value(0.0)),
    # -- one row -------------------------------------------------------------------------------------------------------
    Case("gap.gap_vector", "a", "one_row", lambda: gap.gap_vector(A[:1], B[:1]), value(ONE[0][0] - ONE[1][0])),
    Case("gap.paired_distance", "a", "one_row", lambda: gap.paired_distance(A[:1], B[:1]),
         value(float(np.linalg.norm(ONE[0] - ONE[1])))),
    Case("gap.relative_modality_gap", "a", "one_row", lambda: gap.relative_modality_gap(A[:1], B[:1]), raises()),
    Case("gap.gap_report", "a", "one_row", lambda: gap.gap_report(A[:1], B[:1], probe=False), raises()),
    Case("gap.cosine_histograms", "a", "one_row", lambda: gap.cosine_histograms(A[:1], B[:1]), raises()),
    Case("gap.mean_unmatched_cosine", "a", "one_row", lambda: gap.mean_unmatched_cosine(A[:1], B[:1]), raises()),
    Case("gap.intra_modality_cosine", "x", "one_row", lambda: gap.intra_modality_cosine(A[:1]), raises()),
    Case("gap.uniformity", "x", "one_row", lambda: gap.uniformity(A[:1]), raises()),
    *[Case(f"{c.__name__}.fit", "a", "one_row", lambda c=c: c().fit(A[:1], B[:1]), raises()) for c in ALL_CORRECTORS],
    *[Case(f"{c.__name__}.transform", "a", "one_row", lambda c=c: _fitted(c).transform(A[:1], B[:1]),
           same(lambda c=c: [x[:1] for x in _fitted(c).transform(A, B)])) for c in ALL_CORRECTORS],
    Case("matched_ranks", "a", "one_row", lambda: matched_ranks(A[:1], B[:1]), value([np.array([1]), np.array([1])])),
    Case("evaluate_queries", "queries", "one_row", lambda: evaluate_queries(A[:1], B, [(0, 0)], ks=(N,))["recall@12"],
         value(1.0)),
    Case("project.pca", "x", "one_row", lambda: project(A[:1], "pca", cache=False), raises()),
    Case("search.Index", "vectors", "one_row", lambda: _index(A[:1]).search(A[:1], k=1)[1].tolist(), value([[0]])),
    # -- scalar parameters ---------------------------------------------------------------------------------------------
    *[Case("evaluate_retrieval", "chunk_size", repr(v),
           lambda v=v: evaluate_retrieval(A, B, np.arange(N), chunk_size=v), raises()) for v in (0, -1, 1.5, "2")],
    *[Case("evaluate_retrieval", "ks", repr(v), lambda v=v: evaluate_retrieval(A, B, np.arange(N), ks=v), raises())
      for v in ((0,), (-1,), (1.5,), (), "1", (True,))],
    Case("evaluate_retrieval", "chunk_size", "1", lambda: evaluate_retrieval(A, B, np.arange(N), chunk_size=1),
         same(lambda: evaluate_retrieval(A, B, np.arange(N)))),
    Case("per_query_ranks", "chunk_size", "0", lambda: per_query_ranks(A, B, DIAG, chunk_size=0), raises()),
    Case("matched_ranks", "chunk_size", "-1", lambda: matched_ranks(A, B, chunk_size=-1), raises()),
    Case("evaluate_queries", "ks", "(0,)", lambda: evaluate_queries(A, B, DIAG, ks=(0,)), raises()),
    Case("classify", "ks", "(0,)", lambda: classify(A, CLASSIFIER, CLASSES, ZS_LABELS, ks=(0,)), raises()),
    Case("classify", "chunk_size", "0", lambda: classify(A, CLASSIFIER, CLASSES, ZS_LABELS, chunk_size=0), raises()),
    Case("gap.gap_shares", "ks", "(0,)", lambda: gap.gap_shares(A, B, ks=(0,)), raises()),
    Case("gap.uniformity", "t", "nan", lambda: gap.uniformity(A, t=float("nan")), raises()),
    *[Case("gap.uniformity", "t", f"{t:g}_underflow", lambda t=t: gap.uniformity(A, t=t),
           same(lambda t=t: _uniformity_scipy(A, t), rtol=1e-9)) for t in (1e4, 1e6)],
    Case("gap.uniformity", "x", "huge_t_duplicates", lambda: gap.uniformity(np.r_[A[:1], A[:1], A[1:3]], t=1e6),
         same(lambda: _uniformity_scipy(np.r_[A[:1], A[:1], A[1:3]], 1e6))),
    Case("gap.uniformity", "max_rows", "1", lambda: gap.uniformity(A, max_rows=1), raises()),
    Case("gap.cosine_histograms", "bins", "0", lambda: gap.cosine_histograms(A, B, bins=0), raises()),
    Case("gap.gap_report", "seed", "-1", lambda: gap.gap_report(A, B, probe=False, seed=-1), raises()),
    Case("GapShift", "delta", "nan", lambda: ALL_CORRECTORS[0](delta=float("nan")).fit(A, B), raises()),
    Case("GapShift", "delta", "1e300", lambda: ALL_CORRECTORS[0](delta=1e300).fit(A, B).transform(A[:2], B[:2]),
         same(lambda: _far_shift(1e300))),
    Case("GapShift", "delta", "-1e300", lambda: ALL_CORRECTORS[0](delta=-1e300).fit(A, B).transform(A[:2], B[:2]),
         same(lambda: _far_shift(-1e300))),
    *[Case("LinearAdapter", name, f"{v:g}", lambda name=name, v=v: LinearAdapter(**{name: v}).fit(A, B), raises())
      for name, v in (("lr", 1e300), ("temperature", 1e-300), ("weight_decay", 1e300), ("weight_decay", 1e30))],
    Case("linear_probe", "folds", "1", lambda: linear_probe(A, LABELS, folds=1), raises()),
    Case("linear_probe", "C", "0", lambda: linear_probe(A, LABELS, C=0.0), raises()),
    Case("project", "method", "unknown", lambda: project(A, "mds", cache=False), raises()),
    Case("project", "seed", "-1", lambda: project(A, "pca", seed=-1, cache=False), raises()),
    Case("search.Index", "vectors", "ip_huge_1e300", lambda: _index(A * 1e300, metric="ip"), raises()),
    Case("search.Index", "vectors", "ip_tiny_1e-300", lambda: _index(A * 1e-300, metric="ip"), raises()),
    Case("search.Index.search", "queries", "ip_tiny_1e-300",
         lambda: _index(A, metric="ip").search(A[:1] * 1e-300, k=2), raises("queries")),
    Case("search.Index", "vectors", "ip_nan", lambda: _index(_with(A, 0, 0, np.nan), metric="ip"), raises()),
    Case("search.Index", "vectors", "ip_int64",
         lambda: _index(_int_matrix(A), metric="ip").search(_int_matrix(A)[:2], k=3),
         same(lambda: _index(_int_matrix(A).astype(np.float64), metric="ip").search(_int_matrix(A)[:2] * 1.0, k=3))),
    Case("search.Index.search", "queries", "torch_1d", lambda: _search(torch.tensor(A[0])),
         same(lambda: _search(A[:1]))),
    *[Case("search.Index.recall_at", "seed", repr(v), lambda v=v: _index(A, kind="hnsw").recall_at(k=2, seed=v),
           raises()) for v in (-1, 1.5)],
    Case("search.Index.recall_at", "sample", "0", lambda: _index(A).recall_at(k=2, sample=0), raises()),
    Case("search.Index", "kind", "unknown", lambda: _index(A, kind="lsh"), raises()),
    Case("search.Index", "threads", "0", lambda: _index(A, threads=0), raises()),
    # -- projection helpers --------------------------------------------------------------------------------------------
    *matrix_cases("pca_2d", "x", _pca_2d, A, override={
        "huge_1e300": same(lambda: 1e300 * _pca_2d(A)), "tiny_1e-300": same(lambda: 1e-300 * _pca_2d(A))}),
    *matrix_cases("PCA2D.transform", "x", _pca_fit_transform, A[:3], override={
        "huge_1e300": same(lambda: 1e300 * (A[:3] @ _pca_axes().T)),
        "tiny_1e-300": same(lambda: _pca_fit_transform(0 * A[:3]))},
        skip=("bool", "int64")),
    Case("PCA2D.fit", "x", "huge_1e300", lambda: _pca_fit_transform_huge(),
         same(lambda: 1e300 * _pca_fit_transform(A[:3]))),
    # -- export tables -------------------------------------------------------------------------------------------------
    Case("to_markdown", "table", "pandas", lambda: to_markdown(_pandas(A)), raises(), "pandas"),
    Case("to_markdown", "table", "dict", lambda: to_markdown({"m": [1.0]}), raises()),  # type: ignore[arg-type]
    Case("to_markdown", "table", "no_columns", lambda: to_markdown(pl.DataFrame()), raises()),
    Case("to_markdown", "table", "no_rows", lambda: to_markdown(pl.DataFrame({"m": []}, schema={"m": pl.Float64})),
         value("|   m |\n| --: |")),
    Case("to_markdown", "table", "nan_inf", lambda: _md([float("nan"), float("inf"), float("-inf"), None]),
         value(["–", "∞", "-∞", "–"])),
    Case("to_markdown", "table", "huge_1e300", lambda: float(_md([1e300])[0]), value(1e300)),
    Case("to_markdown", "table", "negative_zero", lambda: _md([-0.0001]), value(["0.000"])),
    Case("to_markdown", "table", "interval_lo_above_hi",
         lambda: to_markdown(pl.DataFrame({"m": [0.5, 0.5], "m_lo": [0.4, 0.6], "m_hi": [0.6, 0.4]})), raises("m_lo")),
    Case("to_latex", "table", "interval_lo_above_hi",
         lambda: to_latex(pl.DataFrame({"m": [0.5], "m_lo": [0.6], "m_hi": [0.4]})), raises("m_lo")),
    Case("to_markdown", "table", "interval_nan_bound",
         lambda: _md_rows(pl.DataFrame({"m": [0.5, 0.5], "m_lo": [0.4, np.nan], "m_hi": [0.6, 0.1]})),
         value(["0.500 ± 0.100", "0.500"])),
    Case("to_markdown", "table", "interval_strings",
         lambda: _md_rows(pl.DataFrame({"m": [0.5], "m_lo": ["a"], "m_hi": ["b"]})), value(["0.500 | a    | b"])),
    Case("to_markdown", "digits", "-1", lambda: to_markdown(pl.DataFrame({"m": [1.0]}), digits=-1), raises()),
    Case("to_markdown", "digits", "1.5", lambda: to_markdown(pl.DataFrame({"m": [1.0]}), digits=1.5), raises()),
    Case("to_latex", "table", "nan_inf", lambda: _latex([float("nan"), float("-inf"), 2.5]),
         value(["--", r"$-\infty$", "2.500"])),
    Case("to_latex", "table", "pandas", lambda: to_latex(_pandas(A)), raises(), "pandas"),
    Case("to_latex", "digits", "True", lambda: to_latex(pl.DataFrame({"m": [1.0]}), digits=True), raises()),
]


def _uniformity_scipy(x: np.ndarray, t: float) -> float:
    """Wang & Isola's uniformity by scipy: log of the mean of exp(-t d^2) over pairs, as a log-sum-exp."""
    from scipy.spatial.distance import pdist
    from scipy.special import logsumexp

    d2 = pdist(x / np.linalg.norm(x, axis=1, keepdims=True), "sqeuclidean")
    return float(logsumexp(-t * d2) - np.log(len(d2)))


def _far_shift(delta: float) -> list[np.ndarray]:
    """GapShift by hand for a delta so large that every row points along -/+ the gap: a2 rows are -sign(delta) g/|g|,
    b2 rows +sign(delta) g/|g|, with g the mean of a's unit rows minus the mean of b's."""
    g = (A / np.linalg.norm(A, axis=1, keepdims=True)).mean(0) - (B / np.linalg.norm(B, axis=1, keepdims=True)).mean(0)
    u = np.sign(delta) * g / np.linalg.norm(g)
    return [np.tile(-u, (2, 1)), np.tile(u, (2, 1))]


def _pca_axes() -> np.ndarray:
    from workbench.projection import PCA2D

    return PCA2D().fit(A).components_


def _pca_fit_transform_huge() -> Any:
    from workbench.projection import PCA2D

    return PCA2D().fit(A * 1e300).transform(A[:3] * 1e300)


#: Cases first found wrong while building the matrix in files it could not touch, fixed in a later commit: a bare
#: count mismatch named neither argument, a NaN delta named GapShift instead of ``deltas``, a plain array given to
#: ShiftedGap raised AttributeError.
FIXED_LATER: list[Case] = [
    Case("gap.core_metrics", "a2", "mismatched_counts", lambda: gap.core_metrics(_pe(None), A[:-1], B), raises()),
    Case("gap.core_metrics", "b2", "mismatched_counts", lambda: gap.core_metrics(_pe(None), A, B[1:]), raises()),
    Case("gap.gap_loss_landscape", "deltas", "nan", lambda: gap.gap_loss_landscape(A, B, deltas=[0.0, np.nan]),
         raises()),
    Case("gap.gap_loss_landscape", "deltas", "strings", lambda: gap.gap_loss_landscape(A, B, deltas=["one"]),
         raises()),
    Case("gap.ShiftedGap", "paired", "array", lambda: gap.ShiftedGap(A), raises()),
]
CASES: list[Case] = _pair_cases() + _single_cases() + SPECIAL + FIXED_LATER


def _case_params(cases: list[Case]) -> list[Any]:
    params = []
    for c in cases:
        marks = []
        if c.needs == "pandas" and not HAVE_PANDAS:
            marks.append(pytest.mark.skip(reason="pandas is not installed"))
        if (c.needs == "faiss" or "search" in c.entry) and not HAVE_FAISS:
            marks.append(pytest.mark.skip(reason="faiss is not installed"))
        params.append(pytest.param(c, id=c.id, marks=marks))
    return params


@pytest.mark.parametrize("case", _case_params(CASES))
def test_bad_input(case: Case) -> None:
    if isinstance(case.expect, Raises):
        pattern = case.expect.pattern or rf"\b{re.escape(case.arg)}\b"
        with pytest.raises((ValueError, TypeError), match=pattern):
            case.call()
    else:
        _assert_close(case.call(), case.expect.reference(), case.expect.rtol)
