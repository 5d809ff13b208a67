"""The study report: one folder per paired set with metrics, tables, figures and their provenance.

For each input, :func:`write_report` writes

- ``metrics.json``: every :func:`~workbench.gap.gap_report` metric, retrieval both ways (R@1/5/10, ranks, mAP),
  the corrector comparison (held-out, with 95% intervals), and provenance (package versions, a SHA-256 of the data,
  the encoder fingerprint when there is one, seeds, the correctors' parameters);
- ``metrics.tex`` (booktabs tables) and ``metrics.md``;
- ``figures/*.pdf|svg|png`` in a paper style (with provenance sidecars), when Chromium is available;
- ``report.html``: the same figures, interactive, in one self-contained page.

:func:`write_index` adds, for several inputs, one summary table across them (the domain check: the same metrics for
each model and dataset side by side) as ``summary.json``, ``summary.tex``, ``summary.md`` and ``index.html``.
Every file is written atomically.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
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
from workbench.data import PairedEmbeddings
from workbench.export import (
    ExportError,
    latex_escape,
    markdown_escape,
    provenance,
    save_figures,
    to_latex,
    to_markdown,
)
from workbench.figures import cosine_histogram_figure, gap_dimensions_figure, loss_landscape_figure, pca_figure

__all__ = [
    "DEFAULT_CORRECTORS",
    "INDEX_COLUMNS",
    "ReportFiles",
    "data_sha256",
    "retrieval_metrics",
    "summary_table",
    "write_index",
    "write_report",
]

#: The metrics shown side by side in the summary table (every metric is in each report and its metrics.json).
INDEX_COLUMNS = ("centroid_distance", "relative_modality_gap", "mean_matched_cosine", "intra_cosine_a",
                 "intra_cosine_b", "modality_probe_accuracy", "gap_top5_share", "a_to_b_recall@1", "b_to_a_recall@1")
#: Correctors compared in every report (names of :mod:`workbench.correct` classes with their parameters).
DEFAULT_CORRECTORS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("GapShift", {"delta": 1.0}), ("MeanCenter", {}), ("Standardize", {}), ("Procrustes", {}),
)


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


def _correctors(spec: Sequence[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    from workbench import correct

    return {f"{name}({', '.join(f'{k}={v!r}' for k, v in params.items())})": getattr(correct, name)(**params)
            for name, params in spec}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 90em; color: #222; padding: 0 1em; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border-bottom: 1px solid #ddd; padding: .3em .8em; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }} .prov {{ color: #666; font-size: .85em; }}
</style></head><body>
<h1>{title}</h1>
<p>{summary}</p>
{body}
<h2>Provenance</h2>
<pre class="prov">{provenance}</pre>
</body></html>
"""


def _table_html(table: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    rows = []
    for row in table.rows():
        cells = []
        for v in row:
            if isinstance(v, float) or v is None:
                cells.append(f"<td class='num'>{_fmt(v)}</td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


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

    Examples
    --------
    >>> import tempfile, workbench
    >>> files = write_report(workbench.datasets.load("liang2022/clip"), tempfile.mkdtemp(), name="liang2022/clip",
    ...                      figures=False, correctors=())
    >>> round(files.metrics["metrics"]["centroid_distance"], 4)
    0.8514
    """
    from workbench.compare import compare_correctors

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = gap.gap_report(paired, seed=seed)
    retrieval = retrieval_metrics(paired)
    notes = dict(metrics.notes)
    comparison = None
    corrector_objects = _correctors(correctors)
    if corrector_objects and min(len(np.unique(paired.pairs[:, 0])), paired.n_pairs) >= 8:
        comparison = compare_correctors(paired, corrector_objects, n_resamples=n_resamples, seed=seed, probe=False)
    dupes = {side: len(e) - e.n_unique for side, e in (("a", paired.a), ("b", paired.b))}
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
    md = [f"# {markdown_escape(name)}\n", to_markdown(gap_table), "", to_markdown(retrieval_table)]
    if comparison is not None:
        shown = ["centroid_distance", "relative_modality_gap",
                 *[c for c in comparison.columns if c.endswith("R@1")]]
        keep = ["corrector", *[c + suffix for c in shown for suffix in ("", "_lo", "_hi")]]
        tex.append(to_latex(comparison.select(keep), caption=f"Gap correctors on held-out pairs: {tex_name}",
                            label=f"tab:correctors-{slug}"))
        md += ["", to_markdown(comparison.select(keep))]

    # figures
    landscape = gap.gap_loss_landscape(paired) if paired.is_one_to_one else None
    figs = {"pca": pca_figure(paired), "cosines": cosine_histogram_figure(paired),
            "gap_dimensions": gap_dimensions_figure(paired)}
    if landscape is not None:
        figs["loss_landscape"] = loss_landscape_figure(landscape)
    if figures:
        try:
            save_figures([(fig, out / "figures" / key) for key, fig in figs.items()], formats=formats,
                         provenance=record["provenance"])
        except ExportError as exc:
            notes["figures"] = f"static figures not written: {exc}"
            warnings.warn(notes["figures"], stacklevel=2)
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

    body = ["<h2>Gap metrics</h2>", _table_html(gap_table.with_columns(
        pl.Series("note", [notes.get(k, "") for k in metrics]))), "<h2>Retrieval</h2>", _table_html(retrieval_table)]
    if comparison is not None:
        body += ["<h2>Gap correctors (held-out pairs, 95% intervals)</h2>", _table_html(comparison.select(keep))]
    for i, (key, fig) in enumerate(figs.items()):
        body.append(f"<h2>{html.escape(key.replace('_', ' '))}</h2>")
        body.append(fig.to_html(full_html=False, include_plotlyjs=i == 0))
    summary = (
        f"{html.escape(paired.model)} &middot; {html.escape(paired.a.modality)} ({len(paired.a)}) and "
        f"{html.escape(paired.b.modality)} ({len(paired.b)}) &middot; {paired.n_pairs} pairs &middot; "
        f"{paired.dim} dimensions"
    )
    page = _PAGE.format(title=html.escape(f"workbench report: {name}"), summary=summary, body="\n".join(body),
                        provenance=html.escape(json.dumps(record["provenance"], indent=2, default=str)))
    with atomic_write(out / "report.html", "w") as handle:
        handle.write(page)
    return ReportFiles(out, out / "metrics.json", out / "report.html", record)


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
    page = _PAGE.format(title="workbench reports", summary=f"{len(reports)} reports",
                        body=f"<h2>Side by side</h2>{_table_html(table)}<h2>Reports</h2><ul>{links}</ul>",
                        provenance=html.escape(json.dumps(provenance(source="several"), indent=2)))
    with atomic_write(out / "index.html", "w") as handle:
        handle.write(page)
    return out / "index.html"
