"""The study report: ``metrics.json`` and a self-contained interactive ``report.html`` per paired set.

Later issues grow the metrics and figures; the shape stays: one folder per input, every file written atomically,
every file carrying its provenance (package versions, data source, time).
"""

from __future__ import annotations

import html
import json
import os
import platform
import time
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from workbench import gap
from workbench.data import PairedEmbeddings
from workbench.io import atomic_write

__all__ = ["ReportFiles", "compute_metrics", "pca_figure", "provenance", "write_index", "write_report"]

#: Okabe & Ito's colour-blind-safe palette (blue, vermillion, bluish green, orange, ...).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
#: Above this many points the figure uses WebGL (Scattergl).
WEBGL_ABOVE = 5000
#: The metrics shown side by side in ``index.html`` (every metric is in each report and its metrics.json).
INDEX_COLUMNS = ("centroid_distance", "relative_modality_gap", "mean_matched_cosine", "intra_cosine_a",
                 "intra_cosine_b", "modality_probe_accuracy", "gap_top5_share")
#: Lines joining matched pairs are drawn for at most this many pairs.
MAX_PAIR_LINES = 2000


@dataclass(frozen=True)
class ReportFiles:
    """Where one report's files were written, and its metrics."""

    directory: Path
    metrics_json: Path
    report_html: Path
    metrics: dict[str, Any]


def _version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def provenance(source: str) -> dict[str, Any]:
    """What produced a result: the data source, package versions, platform and UTC time."""
    from workbench import __version__

    return {
        "source": source,
        "workbench": __version__,
        "python": platform.python_version(),
        "packages": {d: _version(d) for d in ("numpy", "polars", "scikit-learn", "plotly")},
        "platform": platform.platform(),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def compute_metrics(paired: PairedEmbeddings) -> dict[str, float | None]:
    """The report's gap metrics: every key of :func:`workbench.gap.gap_report` (each defined and cited there)."""
    return dict(gap.gap_report(paired))


def _hover_text(paired: PairedEmbeddings) -> list[str]:
    texts = []
    for e in (paired.a, paired.b):
        columns = [c for c in ("id", "caption", "label", "path") if c in e.metadata.columns]
        rows = e.metadata.select(columns).rows()
        texts.extend(
            "<br>".join(
                [f"<b>{html.escape(e.modality)}</b>"]
                + [f"{c}: {html.escape(str(v))[:120]}" for c, v in zip(columns, row, strict=True)]
            )
            for row in rows
        )
    return texts


def pca_figure(paired: PairedEmbeddings, title: str = "", seed: int = 0) -> Any:
    """Both modalities in one PCA projection (fitted on all their rows), coloured by modality.

    Matched pairs can be joined by lines (legend entry "pairs", hidden at first).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    from workbench.projection import pca_2d

    n_a = len(paired.a)
    coords, ratio = pca_2d(np.concatenate([paired.a.vectors, paired.b.vectors]), seed=seed)
    hover = _hover_text(paired)
    scatter = go.Scattergl if len(coords) > WEBGL_ABOVE else go.Scatter
    fig = go.Figure()
    if paired.n_pairs <= MAX_PAIR_LINES:
        ia, ib = paired.pairs[:, 0], paired.pairs[:, 1] + n_a
        xs = np.column_stack([coords[ia, 0], coords[ib, 0], np.full(len(ia), np.nan)]).ravel()
        ys = np.column_stack([coords[ia, 1], coords[ib, 1], np.full(len(ia), np.nan)]).ravel()
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", name="pairs", visible="legendonly", hoverinfo="skip",
                       line={"color": "rgba(120,120,120,0.35)", "width": 1})
        )
    for k, (e, part) in enumerate(((paired.a, slice(0, n_a)), (paired.b, slice(n_a, None)))):
        fig.add_trace(
            scatter(
                x=coords[part, 0], y=coords[part, 1], mode="markers", name=f"{e.modality} ({len(e)})",
                marker={"color": PALETTE[k], "size": 5, "opacity": 0.75},
                text=hover[part], hovertemplate="%{text}<extra></extra>",
            )
        )
    fig.update_layout(
        title=title or f"{paired.model}: {paired.a.modality} and {paired.b.modality} (PCA)",
        xaxis_title=f"PC 1 ({ratio[0]:.1%} of variance)",
        yaxis_title=f"PC 2 ({ratio[1]:.1%} of variance)",
        template="simple_white",
        legend={"itemsizing": "constant"},
        width=760,
        height=600,
    )
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 90em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border-bottom: 1px solid #ddd; padding: .3em .8em; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }} .prov {{ color: #666; font-size: .85em; }}
</style></head><body>
<h1>{title}</h1>
<p>{summary}</p>
<h2>Metrics</h2>
<table><tr><th>metric</th><th>value</th></tr>{rows}</table>
<h2>Both modalities in one projection</h2>
{figure}
<h2>Provenance</h2>
<pre class="prov">{provenance}</pre>
</body></html>
"""


def write_report(
    paired: PairedEmbeddings, out_dir: str | os.PathLike[str], *, name: str, source: str | None = None
) -> ReportFiles:
    """Write ``metrics.json`` and ``report.html`` for one paired set into ``out_dir``.

    Examples
    --------
    >>> import tempfile, workbench
    >>> files = write_report(workbench.datasets.load("liang2022/clip"), tempfile.mkdtemp(), name="liang2022/clip")
    >>> round(files.metrics["metrics"]["centroid_distance"], 4)
    0.8514
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = gap.gap_report(paired)
    dupes = {e.modality if paired.a.modality != paired.b.modality else side: len(e) - e.n_unique
             for side, e in (("a", paired.a), ("b", paired.b))}
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
        "notes": metrics.notes,
        "provenance": provenance(source or name),
    }
    metrics_path = out / "metrics.json"
    with atomic_write(metrics_path, "w") as handle:
        json.dump(record, handle, indent=2)
        handle.write("\n")

    fig = pca_figure(paired)
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td class='num'>{_fmt(v)}</td>"
        f"<td class='prov'>{html.escape(metrics.notes.get(k, ''))}</td></tr>"
        for k, v in record["metrics"].items()
    )
    summary = (
        f"{html.escape(paired.model)} &middot; {html.escape(paired.a.modality)} ({len(paired.a)}) and "
        f"{html.escape(paired.b.modality)} ({len(paired.b)}) &middot; {paired.n_pairs} pairs &middot; "
        f"{paired.dim} dimensions"
    )
    page = _PAGE.format(
        title=html.escape(f"workbench report: {name}"),
        summary=summary,
        rows=rows,
        figure=fig.to_html(full_html=False, include_plotlyjs=True),
        provenance=html.escape(json.dumps(record["provenance"], indent=2)),
    )
    report_path = out / "report.html"
    with atomic_write(report_path, "w") as handle:
        handle.write(page)
    return ReportFiles(out, metrics_path, report_path, record)


def write_index(reports: list[ReportFiles], out_dir: str | os.PathLike[str]) -> Path:
    """An ``index.html`` with one row per report (its metrics, and a link to it)."""
    out = Path(out_dir)
    names = [n for n in INDEX_COLUMNS if any(n in r.metrics["metrics"] for r in reports)]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = "".join(
        f"<tr><td><a href='{html.escape(r.report_html.relative_to(out).as_posix())}'>"
        f"{html.escape(r.metrics['name'])}</a></td><td>{html.escape(r.metrics['model'])}</td>"
        + "".join(f"<td class='num'>{_fmt(r.metrics['metrics'].get(n))}</td>" for n in names)
        + "</tr>"
        for r in reports
    )
    page = _PAGE.format(
        title="workbench reports",
        summary=f"{len(reports)} reports",
        rows=f"<tr><th>set</th><th>model</th>{head}</tr>{body}",
        figure="",
        provenance=html.escape(json.dumps(provenance("several"), indent=2)),
    ).replace("<h2>Both modalities in one projection</h2>\n", "").replace("<tr><th>metric</th><th>value</th></tr>", "")
    path = out / "index.html"
    with atomic_write(path, "w") as handle:
        handle.write(page)
    return path
