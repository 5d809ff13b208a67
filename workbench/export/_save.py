"""Writing figures: :func:`save_figure` / :func:`save_figures` in the paper style, with a provenance sidecar.

:func:`save_figure` applies the print style to a *copy* of a plotly figure (:func:`~workbench.export.paper_figure`)
and writes it in several formats through kaleido and a headless Chrome/Chromium, each file atomically, plus a
``<stem>.provenance.json`` sidecar (:func:`provenance`: package versions, UTC time, each file's SHA-256).

PNG files are rendered at ``dpi`` (300 by default: a 3.3 in figure is 990 px wide) and carry that resolution in a
``pHYs`` chunk, so word processors and LaTeX place them at the intended size.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import struct
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from workbench._files import atomic_write
from workbench._params import InvalidParameterError, check_number
from workbench._version import __version__
from workbench.export._browser import ExportError, _current_browser, _render, export_session
from workbench.export._style import FONT_FAMILY, FONT_SIZE, POINTS_PER_INCH, Width, _size, paper_figure

__all__ = ["FORMATS", "PROVENANCE_PACKAGES", "provenance", "save_figure", "save_figures"]

#: Formats :func:`save_figure` can write.
FORMATS = ("pdf", "svg", "png")
#: PNG resolution limits in dots per inch.
MIN_DPI, MAX_DPI = 72, 2400
#: Distributions whose versions every provenance record lists (besides workbench itself).
PROVENANCE_PACKAGES = ("numpy", "polars", "scikit-learn", "plotly", "kaleido", "choreographer", "torch")

_IMAGE_SUFFIXES = {".pdf", ".svg", ".png", ".jpg", ".jpeg", ".webp", ".eps"}


def _dist_version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def provenance(**fields: Any) -> dict[str, Any]:
    """What produced a result: ``fields``, then package versions, Python, platform and the UTC time.

    The one provenance record of the package: reports (``metrics.json``) and figure sidecars
    (``<stem>.provenance.json``) both use it.

    Parameters
    ----------
    **fields
        What the caller knows (a data source, a SHA-256 of the data, seeds, ...); they come first in the record.

    Returns
    -------
    dict
        ``fields`` plus ``packages`` (``workbench`` and :data:`PROVENANCE_PACKAGES`; ``None`` when not installed),
        ``python``, ``platform`` and ``created_utc`` (``YYYY-MM-DDTHH:MM:SSZ``).

    Examples
    --------
    >>> record = provenance(source="liang2022/clip", seed=0)
    >>> record["source"], record["seed"], record["packages"]["workbench"] == __version__
    ('liang2022/clip', 0, True)
    >>> sorted(record)
    ['created_utc', 'packages', 'platform', 'python', 'seed', 'source']
    """
    return {
        **fields,
        "packages": {"workbench": __version__, **{d: _dist_version(d) for d in PROVENANCE_PACKAGES}},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@dataclass
class _Job:
    spec: dict[str, Any]
    targets: dict[str, Path]
    sidecar: Path
    width: str
    width_in: float
    height_in: float
    dpi: float
    caller: dict[str, Any] | None


def _formats(formats: str | Iterable[str]) -> tuple[str, ...]:
    items = [formats] if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for f in items:
        if not isinstance(f, str):
            raise TypeError(f"formats must be strings like 'pdf', got {f!r}")
        key = f.strip().lower().lstrip(".")
        if key not in FORMATS:
            raise ValueError(f"unsupported format {f!r}: choose from {', '.join(FORMATS)}")
        if key not in out:
            out.append(key)
    if not out:
        raise ValueError(f"formats is empty: choose from {', '.join(FORMATS)}")
    return tuple(out)


def _base(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"path {os.fspath(path)!r} is a folder; give a file name such as {str(p / 'figure')!r}")
    if not p.name or p.name in {".", ".."}:
        raise ValueError(f"path {os.fspath(path)!r} does not name a file")
    return p.with_suffix("") if p.suffix.lower() in _IMAGE_SUFFIXES else p


def _targets(path: str | os.PathLike[str], formats: Sequence[str]) -> tuple[dict[str, Path], Path]:
    """Output files: ``path``'s image suffix replaced per format (other suffixes are kept: ``fig.v2.pdf``)."""
    base = _base(path)
    return {f: base.with_name(f"{base.name}.{f}") for f in formats}, base.with_name(f"{base.name}.provenance.json")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy scalars and arrays
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError(f"provenance value {obj!r} ({type(obj).__name__}) is not JSON-serialisable")


def _prepare(fig: Any, path: str | os.PathLike[str], formats: str | Iterable[str], width: Width,
             height: float | None, dpi: Any, provenance: Mapping[str, Any] | None) -> _Job:
    fmts = _formats(formats)
    label, width_in, height_in = _size(width, height)
    dots = check_number(dpi, "dpi", low=MIN_DPI, high=MAX_DPI)
    targets, sidecar = _targets(path, fmts)
    caller = None
    if provenance is not None:
        if not isinstance(provenance, Mapping):
            raise TypeError(f"provenance must be a dict, got {type(provenance).__name__}")
        caller = json.loads(json.dumps(dict(provenance), default=_json_default))  # fail now, not after rendering
    spec = paper_figure(fig, width_in, height_in).to_dict()
    return _Job(spec, targets, sidecar, label, width_in, height_in, dots, caller)


def _sidecar(job: _Job, payloads: dict[str, bytes]) -> dict[str, Any]:
    """The ``<stem>.provenance.json`` record of one figure: its files, size and style, then :func:`provenance`."""
    return provenance(
        figure=job.sidecar.name.removesuffix(".provenance.json"),
        files={
            f: {"name": job.targets[f].name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for f, data in payloads.items()
        },
        formats=list(payloads),
        width=job.width,
        width_in=job.width_in,
        height_in=job.height_in,
        width_pt=round(job.width_in * POINTS_PER_INCH, 6),
        height_pt=round(job.height_in * POINTS_PER_INCH, 6),
        png_dpi=job.dpi if "png" in payloads else None,
        style={"font_family": FONT_FAMILY, "font_size_pt": FONT_SIZE, "palette": "Okabe-Ito"},
        browser=_current_browser(),
        caller=job.caller,
    )


def _svg_in_points(data: bytes, width_pt: float, height_pt: float) -> bytes:
    """Give the root ``<svg>`` its size in points (``237.6pt``), so it is 3.3 in wide, not 3.3 * 72 / 96."""
    match = re.search(rb"<svg\b[^>]*>", data)
    if match is None:
        raise ExportError("kaleido returned SVG data without an <svg> element")
    tag = match.group()
    for name, value in ((b"width", width_pt), (b"height", height_pt)):
        tag = re.sub(rb"\s" + name + rb'="[^"]*"', b" " + name + f'="{value:g}pt"'.encode(), tag, count=1)
    return data[: match.start()] + tag + data[match.end():]


def _png_with_dpi(data: bytes, dpi: float) -> bytes:
    """Insert a ``pHYs`` chunk (pixels per metre) after ``IHDR``, unless the PNG has one."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ExportError("kaleido returned data that is not a PNG")
    pos, ihdr_end = 8, None
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos: pos + 8])
        if kind == b"pHYs":
            return data
        if kind == b"IDAT":
            break
        pos += 12 + length
        if kind == b"IHDR":
            ihdr_end = pos
    if ihdr_end is None:
        raise ExportError("kaleido returned a PNG without an IHDR header")
    ppm = round(dpi / 0.0254)
    body = b"pHYs" + struct.pack(">IIB", ppm, ppm, 1)
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    return data[:ihdr_end] + chunk + data[ihdr_end:]


def _export(job: _Job) -> list[Path]:
    width_pt, height_pt = job.width_in * POINTS_PER_INCH, job.height_in * POINTS_PER_INCH
    payloads: dict[str, bytes] = {}
    for fmt in job.targets:  # render every format first: a failed render writes nothing for this figure
        data = _render(job.spec, fmt, width_pt, height_pt, job.dpi)
        if fmt == "pdf" and not data.startswith(b"%PDF"):
            raise ExportError("kaleido returned data that is not a PDF")
        if fmt == "svg":
            data = _svg_in_points(data, width_pt, height_pt)
        if fmt == "png":
            data = _png_with_dpi(data, job.dpi)
        payloads[fmt] = data
    sidecar = json.dumps(_sidecar(job, payloads), indent=2) + "\n"
    for fmt, data in payloads.items():
        with atomic_write(job.targets[fmt]) as handle:
            handle.write(data)
    with atomic_write(job.sidecar, "w") as handle:
        handle.write(sidecar)
    return list(job.targets.values())


def save_figure(
    fig: Any,
    path: str | os.PathLike[str],
    formats: str | Iterable[str] = FORMATS,
    *,
    width: Width = "single",
    height: float | None = None,
    dpi: float = 300,
    provenance: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write ``fig`` in the paper style (:func:`paper_figure`) as PDF, SVG and/or PNG, plus a provenance sidecar.

    Parameters
    ----------
    fig : plotly Figure, FigureWidget or figure dict
        Left unchanged: the style is applied to a copy.
    path : path
        Where to write; the suffix is replaced per format (``figs/gap.pdf`` -> ``figs/gap.pdf``, ``figs/gap.svg``,
        ...). A path without an image suffix gets one appended (``figs/gap`` or ``figs/gap.v2`` -> ``.pdf``, ...).
    formats : str or sequence of {"pdf", "svg", "png"}, default all three
    width : "single", "double" or float, default "single"
        3.3 in (one column), 6.9 in (full page width) or a width in inches. PDF and SVG pages are exactly this
        wide (PDF within half a point: Chromium rounds page sizes).
    height : float, optional
        Inches; by default ``min(0.75 * width, 3.5)``.
    dpi : float, default 300
        PNG resolution: the PNG is ``width * dpi`` pixels wide (kaleido ``scale = dpi / 72``).
    provenance : dict, optional
        Stored under ``"caller"`` in the sidecar (e.g. the data source, a metrics file, a git hash).

    Returns
    -------
    list of Path
        The image files, in ``formats`` order. The sidecar ``<stem>.provenance.json`` sits beside them: formats,
        size, each file's SHA-256, then :func:`provenance` (package versions, UTC time).

    Raises
    ------
    ExportError
        No Chrome/Chromium (before anything is written), or the browser failed.
    ValueError, TypeError
        Invalid arguments or figure, also before anything is written.

    Notes
    -----
    Every file goes to a temporary file in the target folder and is renamed into place, so an interrupted export
    leaves either the old file or the new one. All formats are rendered before the first is written. One call
    starts one browser for all its formats; use :func:`save_figures` or :func:`export_session` for many figures.

    Examples
    --------
    >>> save_figure(fig, "figures/gap", width="single")  # doctest: +SKIP
    [PosixPath('figures/gap.pdf'), PosixPath('figures/gap.svg'), PosixPath('figures/gap.png')]
    """
    job = _prepare(fig, path, formats, width, height, dpi, provenance)
    with export_session():
        return _export(job)


def save_figures(
    items: Iterable[tuple[Any, str | os.PathLike[str]] | tuple[Any, str | os.PathLike[str], Mapping[str, Any]]],
    formats: str | Iterable[str] = FORMATS,
    *,
    width: Width = "single",
    height: float | None = None,
    dpi: float = 300,
    provenance: Mapping[str, Any] | None = None,
) -> list[list[Path]]:
    """:func:`save_figure` for many figures through ONE browser session (a few seconds saved per figure).

    Parameters
    ----------
    items : iterable of ``(fig, path)`` or ``(fig, path, overrides)``
        ``overrides`` is a dict of this figure's own ``formats``, ``width``, ``height``, ``dpi`` or
        ``provenance``.
    formats, width, height, dpi, provenance
        As in :func:`save_figure`, for every figure without an override.

    Returns
    -------
    list of list of Path
        Each figure's files, in ``items`` order.

    Raises
    ------
    ValueError, TypeError
        A bad figure, argument or override, or two figures writing the same file: raised (naming the item) before
        the browser starts and before anything is written.
    ExportError
        No browser; or a render failed, in which case the figures before it are complete on disk, the failed one
        and those after it are not written, and no temporary files remain.

    Examples
    --------
    >>> save_figures([(fig_a, "figures/a"), (fig_b, "figures/b", {"width": "double"})])  # doctest: +SKIP
    """
    allowed = {"formats", "width", "height", "dpi", "provenance"}
    defaults = {"formats": formats, "width": width, "height": height, "dpi": dpi, "provenance": provenance}
    jobs: list[_Job] = []
    seen: dict[Path, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise TypeError(f"item {i}: expected (figure, path) or (figure, path, overrides), got {item!r:.80}")
        overrides = item[2] if len(item) == 3 else {}
        if not isinstance(overrides, Mapping) or not set(overrides) <= allowed:
            raise TypeError(f"item {i}: overrides must be a dict with keys among {sorted(allowed)}, got {overrides!r}")
        try:
            job = _prepare(item[0], item[1], **{**defaults, **overrides})
        except (ValueError, TypeError) as exc:
            if isinstance(exc, InvalidParameterError):
                kind: type[Exception] = InvalidParameterError
            else:
                kind = TypeError if isinstance(exc, TypeError) else ValueError
            raise kind(f"item {i} ({os.fspath(item[1])!r}): {exc}") from exc
        for target in (*job.targets.values(), job.sidecar):
            key = target.resolve()
            if key in seen:
                raise ValueError(f"items {seen[key]} and {i} would both write {str(target)!r}")
            seen[key] = i
        jobs.append(job)
    if not jobs:
        return []
    with export_session():
        return [_export(job) for job in jobs]
