"""The study report: one folder per paired set with metrics, tables, figures and their provenance.

For each input, :func:`write_report` writes

- ``metrics.json``: every :func:`~workbench.gap.gap_report` metric, retrieval both ways (R@1/5/10, ranks, mAP),
  the corrector comparison (held-out, with 95% intervals), and provenance (package versions, a SHA-256 of the data,
  the encoder fingerprint when there is one, seeds, the correctors' parameters);
- ``metrics.tex`` (booktabs tables) and ``metrics.md``;
- ``figures/*.pdf|svg|png`` in a paper style (with provenance sidecars), when Chromium is available;
- ``report.html``: the same figures, interactive, with human metric names ("R@1 image→text"), each R@K beside its
  chance level, intervals as "0.552 ± 0.021", and a warning at the top when the set is degenerate (a modality
  collapsed to one point), and for a set whose metadata has media (``caption``, ``path`` of an image or sound file,
  or ``image`` bytes) a table of a few failed queries with their thumbnails, players and captions (embedded as data
  URIs: the page stays offline and small). The page loads plotly.js from a file beside it
  (``figures/plotly.min.js``, or with several reports one ``plotly.min.js`` shared by all), so each page stays under
  1 MB and opens offline.

:func:`write_index` adds, for several inputs, one summary table across them (the domain check: the same metrics for
each model and dataset side by side) as ``summary.json``, ``summary.tex``, ``summary.md`` and ``index.html``.
Every file is written atomically.

Speed: the numerical work runs with BLAS on one thread (many small products and decompositions, which a
multi-threaded BLAS slows down several times on a busy machine, with the same values), and the principal-component
check of :func:`degenerate_reasons` uses the eigenvalues of the smaller Gram matrix instead of an SVD of all rows.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import polars as pl

from workbench import gap
from workbench._files import atomic_write
from workbench._media_html import item_html
from workbench.data import PairedEmbeddings
from workbench.export import (
    ExportError,
    chance_recall,
    fold_intervals,
    latex_escape,
    markdown_escape,
    metric_label,
    provenance,
    save_figures,
    to_latex,
    to_markdown,
)
from workbench.figures import cosine_histogram_figure, gap_dimensions_figure, loss_landscape_figure, pca_figure

__all__ = [
    "DEFAULT_CORRECTORS",
    "INDEX_COLUMNS",
    "PLOTLY_JS",
    "ReportFiles",
    "data_sha256",
    "degenerate_reasons",
    "failed_queries",
    "has_media",
    "retrieval_chance",
    "retrieval_metrics",
    "summary_table",
    "write_index",
    "write_plotlyjs",
    "write_report",
]

#: The metrics shown side by side in the summary table (every metric is in each report and its metrics.json).
INDEX_COLUMNS = ("centroid_distance", "relative_modality_gap", "mean_matched_cosine", "intra_cosine_a",
                 "intra_cosine_b", "modality_probe_accuracy", "gap_top5_share", "a_to_b_recall@1", "b_to_a_recall@1")
#: Correctors compared in every report (names of :mod:`workbench.correct` classes with their parameters).
DEFAULT_CORRECTORS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("GapShift", {"delta": 1.0}), ("MeanCenter", {}), ("Standardize", {}), ("Procrustes", {}),
)


#: The file name of the shared plotly.js bundle.
PLOTLY_JS = "plotly.min.js"
#: A modality whose mean within-modality cosine reaches this has (almost) collapsed to one point.
COLLAPSED_COSINE = 0.999
#: Failed queries shown with their media, per direction.
FAILED_SHOWN = 5
#: Bytes of media (base64) one page embeds at most; items past it show their caption only.
MEDIA_BUDGET = 300_000


@dataclass(frozen=True)
class ReportFiles:
    """Where one report's files were written, and its metrics record."""

    directory: Path
    metrics_json: Path
    report_html: Path
    metrics: dict[str, Any]


def data_sha256(paired: PairedEmbeddings) -> str:
    """SHA-256 over both sides' vectors and the pairing: identifies exactly what was analysed."""
    digest = hashlib.sha256()
    for arr in (paired.a.vectors, paired.b.vectors, paired.pairs):
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def retrieval_metrics(paired: PairedEmbeddings, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """R@K, mean/median rank and mAP both ways over the pairs (``a_to_b_*``: an a item queries the b items)."""
    from workbench.retrieval import evaluate_queries

    out = {}
    for label, q, g, rel in (("a_to_b", paired.a, paired.b, paired.pairs), ("b_to_a", paired.b, paired.a,
                                                                             paired.pairs[:, ::-1])):
        rows = np.unique(rel[:, 0])  # only items that have a partner ask a query
        remap = np.full(len(q), -1)
        remap[rows] = np.arange(len(rows))
        queries_rel = np.stack([remap[rel[:, 0]], rel[:, 1]], axis=1)
        for key, value in evaluate_queries(q.vectors[rows], g.vectors, queries_rel, ks).items():
            out[f"{label}_{key}"] = value
    return out


def retrieval_chance(paired: PairedEmbeddings, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """R@K of a random ranking for the queries :func:`retrieval_metrics` asks (``a_to_b_recall@K`` keys): the mean
    over queries of :func:`~workbench.export.chance_recall` with each query's number of partners."""
    out = {}
    for label, rel, n_gallery in (("a_to_b", paired.pairs, len(paired.b)),
                                  ("b_to_a", paired.pairs[:, ::-1], len(paired.a))):
        _, relevant = np.unique(rel[:, 0], return_counts=True)
        for k in ks:
            out[f"{label}_recall@{k}"] = chance_recall(k, n_gallery, relevant)
    return out


def degenerate_reasons(paired: PairedEmbeddings, metrics: dict[str, Any]) -> list[str]:
    """Why a set cannot show a gap study's usual meaning, in words (empty when nothing is wrong): a modality whose
    items all coincide (mean within-modality cosine >= 0.999), or one principal component holding > 99% of the
    variance of all rows.

    Examples
    --------
    >>> import warnings, workbench
    >>> from workbench import gap
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     paired = workbench.datasets.load("liang2022/clasp-random")
    >>> degenerate_reasons(paired, gap.gap_report(paired, probe=False))[0]
    'each protein item is (almost) the same point: mean cosine within protein 1.000'
    """
    reasons = []
    for side, e in (("a", paired.a), ("b", paired.b)):
        value = metrics.get(f"intra_cosine_{side}")
        if e.n_unique == 1 or (value is not None and value >= COLLAPSED_COSINE):
            shown = "1.000" if value is None else f"{value:.3f}"
            reasons.append(f"each {e.modality} item is (almost) the same point: mean cosine within {e.modality} "
                           f"{shown}")
    rows = np.concatenate([paired.a.vectors, paired.b.vectors]).astype(np.float64)
    rows -= rows.mean(axis=0)
    # the largest squared singular value of the rows is the largest eigenvalue of the smaller Gram matrix
    gram = rows.T @ rows if rows.shape[0] >= rows.shape[1] else rows @ rows.T
    total = float(np.trace(gram))
    first = float(np.linalg.eigvalsh(gram)[-1]) if total > 0 else 0.0
    if total > 0 and first / total > 0.99:
        reasons.append(f"the first principal component holds {first / total:.1%} of the variance: the "
                       "modalities differ along one direction only")
    return reasons


def failed_queries(paired: PairedEmbeddings, n: int = FAILED_SHOWN, seed: int = 0) -> pl.DataFrame:
    """A few failed queries each way, to read: for each direction, ``n`` queries (seeded sample) whose partner was
    not ranked first, with the partner ranked best (``match``), its rank and the item ranked first instead.

    Ranks are those of :func:`retrieval_metrics` (cosines; a tie counts against the partner, so ``top`` is the
    best-scoring non-partner). Rows are row numbers of the query side (``query``) and of the gallery side.

    Examples
    --------
    >>> import numpy as np
    >>> from workbench import PairedEmbeddings
    >>> a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> b = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])   # pairs 0 and 1 swapped: each ranks the other first
    >>> failed_queries(PairedEmbeddings.from_arrays(a, b)).rows()   # (direction, query, partner, rank, first)
    [('a_to_b', 0, 0, 3, 1), ('a_to_b', 1, 1, 3, 0), ('b_to_a', 0, 0, 3, 1), ('b_to_a', 1, 1, 3, 0)]
    """
    from workbench.retrieval import per_query_ranks

    rng = np.random.default_rng(seed)
    rows: list[tuple[str, int, int, int, int]] = []
    for label, q, g, rel in (("a_to_b", paired.a, paired.b, paired.pairs),
                             ("b_to_a", paired.b, paired.a, paired.pairs[:, ::-1])):
        asked = np.unique(rel[:, 0])
        remap = np.full(len(q), -1)
        remap[asked] = np.arange(len(asked))
        ranks = per_query_ranks(q.vectors[asked], g.vectors, np.stack([remap[rel[:, 0]], rel[:, 1]], axis=1)).ranks
        failed = np.flatnonzero(ranks > 1)
        chosen = asked[np.sort(rng.choice(failed, size=min(n, len(failed)), replace=False))]
        gallery = _unit(g.vectors)
        for query in chosen:
            scores = gallery @ _unit(q.vectors[query : query + 1])[0]
            partners = rel[rel[:, 0] == query, 1]
            match = int(partners[np.argmax(scores[partners])])
            scores[partners] = -np.inf
            rows.append((label, int(query), match, int(ranks[remap[query]]), int(np.argmax(scores))))
    return pl.DataFrame(rows, schema={"direction": pl.String, "query": pl.Int64, "match": pl.Int64,
                                      "rank": pl.Int64, "top": pl.Int64}, orient="row")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def has_media(paired: PairedEmbeddings) -> bool:
    """Whether either side's metadata has something a reader can see or hear (``caption``, ``path``, ``image``)."""
    return any(c in e.metadata.columns for e in (paired.a, paired.b) for c in ("caption", "path", "image"))


def _failed_record(paired: PairedEmbeddings, failed: pl.DataFrame) -> list[dict[str, Any]]:
    """The failed-queries rows for metrics.json, with the items' ids."""
    out = []
    for row in failed.to_dicts():
        q, g = (paired.a, paired.b) if row["direction"] == "a_to_b" else (paired.b, paired.a)
        out.append({**row, "query_id": str(q.ids[row["query"]]), "match_id": str(g.ids[row["match"]]),
                    "top_id": str(g.ids[row["top"]])})
    return out


def _failures_html(paired: PairedEmbeddings, failed: pl.DataFrame) -> str:
    """The failed-queries table (query, its partner and the rank it got, the item ranked first instead)."""
    budget = [MEDIA_BUDGET, 0]  # bytes left, items left out

    def cell(e: Any, row: int) -> str:
        return item_html(e.metadata.row(row, named=True), e.modality, budget)

    rows = []
    for direction, query, match, rank, top in failed.rows():
        q, g = (paired.a, paired.b) if direction == "a_to_b" else (paired.b, paired.a)
        rows.append(f"<tr><td>{html.escape(q.modality)} → {html.escape(g.modality)}</td>"
                    f"{cell(q, query)}{cell(g, match)}<td class='num'>{rank}</td>{cell(g, top)}</tr>")
    return ("<table class='wb-failures'><tr><th>direction</th><th>query</th><th>its partner</th>"
            "<th>partner's rank</th><th>ranked first instead</th></tr>" + "".join(rows) + "</table>"
            + ("" if not budget[1] else f"<p class='prov'>({budget[1]} media left out to keep the page small)</p>"))


def write_plotlyjs(folder: str | os.PathLike[str]) -> Path:
    """Write plotly.js (the installed plotly's bundle, offline) as ``folder/plotly.min.js`` unless it is there."""
    from plotly.offline import get_plotlyjs

    path = Path(folder) / PLOTLY_JS
    source = get_plotlyjs()
    if not (path.is_file() and path.stat().st_size == len(source.encode())):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "w") as handle:
            handle.write(source)
    return path


def _correctors(spec: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    from workbench import correct

    return {f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())})": getattr(correct, name)(**params)
            for name, params in spec}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>{head}
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 90em; color: #222; padding: 0 1em; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border-bottom: 1px solid #ddd; padding: .3em .8em; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }} .prov {{ color: #666; font-size: .85em; }}
.warning {{ background: #fff4e0; border-left: 4px solid #D55E00; padding: .6em 1em; }} td.chance {{ color: #666; }}
table.wb-failures td {{ vertical-align: top; max-width: 16em; }} .cap {{ font-size: .9em; }}
img.wb-thumb {{ image-rendering: auto; display: block; }} audio.wb-sound {{ width: 14em; display: block; }}
</style></head><body>
<h1>{title}</h1>
<p>{summary}</p>
{warning}
{body}
<h2>Provenance</h2>
<pre class="prov">{provenance}</pre>
</body></html>
"""


_NUMERIC = re.compile(r"^(–$|-?\d)")  # a number, or a folded interval "0.552 ± 0.021", or a missing one


def _table_html(table: pl.DataFrame, labels: dict[str, str] | None = None) -> str:
    """An HTML table; ``labels`` renames headers; strings that are numbers (folded intervals) align right."""
    labels = labels or {}
    head = "".join(f"<th>{html.escape(labels.get(c, c))}</th>" for c in table.columns)
    rows = []
    for row in table.rows():
        cells = []
        for v in row:
            if isinstance(v, float) or v is None:
                cells.append(f"<td class='num'>{_fmt(v)}</td>")
            elif isinstance(v, str) and _NUMERIC.match(v):
                cells.append(f"<td class='num'>{html.escape(str(v))}</td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _metric_rows(values: dict[str, Any], modalities: Sequence[str], notes: dict[str, str] | None = None,
                 chance: dict[str, float] | None = None) -> pl.DataFrame:
    """One row per metric with its human label (and a note or the chance level)."""
    columns: dict[str, Any] = {"metric": [metric_label(k, modalities) for k in values],
                               "value": [values[k] for k in values]}
    schema: dict[str, Any] = {"metric": pl.String, "value": pl.Float64}
    if chance is not None:
        columns["chance"] = [chance.get(k) for k in values]
        schema["chance"] = pl.Float64
    if notes is not None:
        columns["note"] = [notes.get(k, "") for k in values]
        schema["note"] = pl.String
    return pl.DataFrame(columns, schema=schema)


def write_report(
    paired: PairedEmbeddings,
    out_dir: str | os.PathLike[str],
    *,
    name: str,
    source: str | None = None,
    figures: bool = True,
    formats: Sequence[str] = ("pdf", "svg", "png"),
    correctors: Sequence[tuple[str, dict[str, Any]]] = DEFAULT_CORRECTORS,
    n_resamples: int = 200,
    seed: int = 0,
    encoder_fingerprint: str | None = None,
    plotlyjs: str | os.PathLike[str] | None = None,
) -> ReportFiles:
    """Write the study of one paired set into ``out_dir`` (see the module docstring for the files).

    Parameters
    ----------
    figures : bool
        Export static figures (needs Chromium; without it the report notes why and goes on).
    correctors : sequence of (class name, parameters)
        Compared on held-out pairs (half of the items, seeded); empty to skip.
    n_resamples : int
        Resamples for the corrector comparison's intervals.
    plotlyjs : path, optional
        A plotly.js file the page loads (written by :func:`write_plotlyjs`; several reports share one). By
        default ``figures/plotly.min.js`` in ``out_dir``.

    Examples
    --------
    >>> import tempfile, workbench
    >>> files = write_report(workbench.datasets.load("liang2022/clip"), tempfile.mkdtemp(), name="liang2022/clip",
    ...                      figures=False, correctors=())
    >>> round(files.metrics["metrics"]["centroid_distance"], 4)
    0.8514
    """
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    with threadpool_limits(limits=1, user_api="blas"):  # see the module docstring: the same values, faster
        return _write_report(paired, Path(out_dir), name=name, source=source, figures=figures, formats=formats,
                             correctors=correctors, n_resamples=n_resamples, seed=seed,
                             encoder_fingerprint=encoder_fingerprint, plotlyjs=plotlyjs)


def _write_report(paired: PairedEmbeddings, out: Path, *, name: str, source: str | None, figures: bool,
                  formats: Sequence[str], correctors: Sequence[tuple[str, dict[str, Any]]], n_resamples: int,
                  seed: int, encoder_fingerprint: str | None, plotlyjs: str | os.PathLike[str] | None
                  ) -> ReportFiles:
    from workbench.compare import compare_correctors

    out.mkdir(parents=True, exist_ok=True)
    metrics = gap.gap_report(paired, seed=seed)
    retrieval = retrieval_metrics(paired)
    notes = dict(metrics.notes)
    comparison = None
    corrector_objects = _correctors(correctors)
    if corrector_objects and min(len(np.unique(paired.pairs[:, 0])), paired.n_pairs) >= 8:
        comparison = compare_correctors(paired, corrector_objects, n_resamples=n_resamples, seed=seed, probe=False)
    n_train = len(np.unique(paired.pairs[:, 0])) // 2  # compare_correctors fits on half of the items
    if comparison is not None and any(n.startswith("Procrustes") for n in corrector_objects) and n_train < paired.dim:
        notes["Procrustes"] = (f"Procrustes is fitted on about {n_train} pairs in {paired.dim} dimensions: the "
                               "fit fixes the rotation on the span of the training pairs only; elsewhere it is the "
                               "one closest to the identity, and its held-out values reflect that choice")
    dupes = {side: len(e) - e.n_unique for side, e in (("a", paired.a), ("b", paired.b))}
    degenerate = degenerate_reasons(paired, metrics)
    chance = retrieval_chance(paired)
    failed = failed_queries(paired, seed=seed) if has_media(paired) else None
    record: dict[str, Any] = {
        "name": name,
        "model": paired.model,
        "modalities": list(paired.modalities),
        "n_a": len(paired.a),
        "n_b": len(paired.b),
        "n_pairs": paired.n_pairs,
        "dim": paired.dim,
        "duplicate_rows": dupes,
        "metrics": dict(metrics),
        "retrieval": retrieval,
        "correctors": comparison.to_dicts() if comparison is not None else [],
        "notes": notes,
        "degenerate": degenerate,
        "retrieval_chance": chance,
        "failed_queries": [] if failed is None else _failed_record(paired, failed),
        "provenance": provenance(
            source=source or name, data_sha256=data_sha256(paired), encoder_fingerprint=encoder_fingerprint, seed=seed,
            correctors={k: {"class": type(v).__name__, "params": v.get_params()} for k, v in corrector_objects.items()},
            n_resamples=n_resamples,
        ),
    }

    # tables
    gap_table = pl.DataFrame({"metric": list(metrics), "value": [metrics[k] for k in metrics]},
                             schema={"metric": pl.String, "value": pl.Float64})
    retrieval_table = pl.DataFrame({"metric": list(retrieval), "value": list(retrieval.values())})
    # the name is the user's: escaped in captions and headings; labels take an ASCII slug of it
    tex_name, slug = latex_escape(name), _slug(name)
    tex = [to_latex(gap_table, caption=f"Gap metrics: {tex_name}", label=f"tab:gap-{slug}"),
           to_latex(retrieval_table, caption=f"Retrieval: {tex_name}", label=f"tab:retrieval-{slug}")]
    md = [f"# {markdown_escape(name)}\n", to_markdown(_metric_rows(dict(metrics), paired.modalities)), "",
          to_markdown(_metric_rows(retrieval, paired.modalities, chance=chance))]
    if comparison is not None:
        shown = ["centroid_distance", "relative_modality_gap",
                 *[c for c in comparison.columns if c.endswith("R@1")]]
        keep = ["corrector", *[c + suffix for c in shown for suffix in ("", "_lo", "_hi")]]
        tex.append(to_latex(comparison.select(keep), caption=f"Gap correctors on held-out pairs: {tex_name}",
                            label=f"tab:correctors-{slug}"))
        md += ["", to_markdown(comparison.select(keep).rename(
            {c + end: metric_label(c, paired.modalities) + end for c in shown for end in ("", "_lo", "_hi")}))]

    # figures
    landscape = gap.gap_loss_landscape(paired) if paired.is_one_to_one else None
    figs = {"pca": pca_figure(paired), "cosines": cosine_histogram_figure(paired),
            "gap_dimensions": gap_dimensions_figure(paired)}
    if landscape is not None:
        figs["loss_landscape"] = loss_landscape_figure(landscape, paired.modalities)
    if figures:
        try:
            save_figures([(_without_hover(fig), out / "figures" / key) for key, fig in figs.items()],
                         formats=formats, provenance=record["provenance"])
        except ExportError as exc:
            notes["figures"] = f"static figures not written: {exc}"
            warnings.warn(notes["figures"], stacklevel=3)
    else:
        notes["figures"] = "static figures not requested"

    with atomic_write(out / "metrics.json", "w") as handle:
        json.dump(record, handle, indent=2, default=str)
        handle.write("\n")
    with atomic_write(out / "metrics.tex", "w") as handle:
        handle.write(f"% workbench report: {' '.join(name.splitlines())}; provenance in metrics.json\n"
                     + "\n\n".join(tex) + "\n")
    with atomic_write(out / "metrics.md", "w") as handle:
        handle.write("\n".join(md) + "\n")

    modalities = paired.modalities
    script = Path(plotlyjs) if plotlyjs is not None else write_plotlyjs(out / "figures")
    js_src = quote(Path(os.path.relpath(os.path.abspath(script), os.path.abspath(out))).as_posix())
    body = ["<h2>Gap metrics</h2>", _table_html(_metric_rows(dict(metrics), modalities, notes=notes)),
            "<h2>Retrieval</h2>", _table_html(_metric_rows(retrieval, modalities, chance=chance),
                                              {"chance": "chance level"})]
    if failed is not None and failed.height:
        body += ["<h2>Failed queries, with their media</h2>",
                 f"<p>Up to {FAILED_SHOWN} queries each way whose partner was not ranked first (a seeded random "
                 f"sample, seed {seed}), the rank their partner got and the item ranked first instead.</p>",
                 _failures_html(paired, failed)]
    elif failed is None:
        body.append("<p class='prov'>No media to show: the metadata has no <code>caption</code>, <code>path</code> "
                    "(an image or sound file) or <code>image</code> column; with one, this page shows failed queries "
                    "with their thumbnails and captions.</p>")
    if comparison is not None:
        folded = fold_intervals(comparison.select(keep))
        body += [f"<h2>Gap correctors (held-out pairs, 95% intervals from {n_resamples:,} bootstrap resamples)</h2>",
                 _table_html(folded, {c: metric_label(c, modalities) for c in folded.columns})]
        body += [f"<p class='prov'>{html.escape(notes['Procrustes'])}.</p>"] if "Procrustes" in notes else []
    titles = {"pca": "Both modalities in one PCA projection", "cosines": "Cosine similarities",
              "gap_dimensions": "The dimensions that carry most of the gap",
              "loss_landscape": "Loss landscape along the gap (dashed: the model's own gap)"}
    for key, fig in figs.items():
        body.append(f"<h2>{html.escape(titles.get(key, key.replace('_', ' ')))}</h2>")
        shown = _compact_hover(fig, paired) if key == "pca" else fig
        body.append(shown.to_html(full_html=False, include_plotlyjs=False))
    summary = (
        f"{html.escape(paired.model)} &middot; {html.escape(modalities[0])} ({len(paired.a)}) and "
        f"{html.escape(modalities[1])} ({len(paired.b)}) &middot; {paired.n_pairs} pairs &middot; "
        f"{paired.dim} dimensions"
    )
    warning = "" if not degenerate else (
        "<div class='warning wb-degenerate'><b>Degenerate set: the gap metrics below do not mean what they usually "
        "do.</b><ul>" + "".join(f"<li>{html.escape(r)}</li>" for r in degenerate) + "</ul></div>")
    page = _PAGE.format(title=html.escape(f"workbench report: {name}"), summary=summary, body="\n".join(body),
                        head=f'\n<script src="{html.escape(js_src)}" charset="utf-8"></script>', warning=warning,
                        provenance=html.escape(json.dumps(record["provenance"], indent=2, default=str)))
    with atomic_write(out / "report.html", "w") as handle:
        handle.write(page)
    return ReportFiles(out, out / "metrics.json", out / "report.html", record)


def _without_hover(fig: Any) -> Any:
    """A copy of ``fig`` without hover texts (a static image never shows them; thousands make the export slow)."""
    import plotly.graph_objects as go

    copy = go.Figure(fig)
    for trace in copy.data:
        if getattr(trace, "mode", None) == "markers":
            trace.update(text=None, customdata=None, hovertemplate=None)
    return copy


def _compact_hover(fig: Any, paired: PairedEmbeddings) -> Any:
    """The PCA figure for the page: each point's id, caption and label as ``customdata`` under one hover template
    (not a whole HTML string per point, nor the local file path), and float32 coordinates: the same hover, a page
    several times smaller for sets of thousands of points."""
    import plotly.graph_objects as go

    copy = go.Figure(fig)
    for trace in copy.data:
        trace.update(x=np.asarray(trace.x, dtype=np.float32), y=np.asarray(trace.y, dtype=np.float32))
    points = [t for t in copy.data if getattr(t, "mode", None) == "markers"]
    for trace, e in zip(points, (paired.a, paired.b), strict=True):
        columns = [c for c in ("id", "caption", "label") if c in e.metadata.columns]
        custom = [[html.escape(str(v)[:120]) for v in row] for row in e.metadata.select(columns).rows()]
        template = f"<b>{html.escape(e.modality)}</b>" + "".join(
            f"<br>{c}: %{{customdata[{i}]}}" for i, c in enumerate(columns)) + "<extra></extra>"
        trace.update(text=None, customdata=custom, hovertemplate=template)
    return copy


def _slug(name: str) -> str:
    """ASCII letters and digits of ``name``, the rest ``-``: safe in a LaTeX label under any engine."""
    return "".join(c if c.isascii() and c.isalnum() else "-" for c in name).strip("-") or "set"


def summary_table(reports: Sequence[ReportFiles]) -> pl.DataFrame:
    """One row per report: name, model, modalities and the :data:`INDEX_COLUMNS` metrics."""
    rows = []
    for r in reports:
        values = {**r.metrics["metrics"], **r.metrics["retrieval"]}
        rows.append({"set": r.metrics["name"], "model": r.metrics["model"],
                     "modalities": " / ".join(r.metrics["modalities"]),
                     **{k: values.get(k) for k in INDEX_COLUMNS}})
    schema = {"set": pl.String, "model": pl.String, "modalities": pl.String, **dict.fromkeys(INDEX_COLUMNS, pl.Float64)}
    return pl.DataFrame(rows, schema=schema)


def write_index(reports: Sequence[ReportFiles], out_dir: str | os.PathLike[str]) -> Path:
    """The summary across reports: ``summary.json``, ``summary.tex``, ``summary.md`` and a linked ``index.html``."""
    out = Path(out_dir)
    table = summary_table(reports)
    with atomic_write(out / "summary.json", "w") as handle:
        json.dump({"rows": table.to_dicts(), "provenance": provenance(source="several")}, handle, indent=2)
    with atomic_write(out / "summary.tex", "w") as handle:
        handle.write(to_latex(table, caption="The same metrics across models and datasets", label="tab:summary"))
    with atomic_write(out / "summary.md", "w") as handle:
        handle.write(to_markdown(table) + "\n")
    links = "".join(
        f"<li><a href='{html.escape(quote(r.report_html.relative_to(out).as_posix()))}'>"
        f"{html.escape(r.metrics['name'])}</a></li>" for r in reports
    )
    labels = {c: metric_label(c, ("1st", "2nd")) if c in INDEX_COLUMNS else c for c in table.columns}
    flagged = [r.metrics["name"] for r in reports if r.metrics.get("degenerate")]
    warning = "" if not flagged else (
        "<div class='warning wb-degenerate'><b>Degenerate sets</b> (a modality collapsed to one point; see each "
        f"report): {html.escape(', '.join(flagged))}</div>")
    page = _PAGE.format(title="workbench reports", summary=f"{len(reports)} reports", head="", warning=warning,
                        body=f"<h2>Side by side</h2>{_table_html(table, labels)}<h2>Reports</h2><ul>{links}</ul>",
                        provenance=html.escape(json.dumps(provenance(source="several"), indent=2)))
    with atomic_write(out / "index.html", "w") as handle:
        handle.write(page)
    return out / "index.html"
