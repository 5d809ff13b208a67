"""Paper-ready exports: figures as PDF/SVG/PNG at journal column widths, metric tables as LaTeX or Markdown.

Figures
-------
:func:`save_figure` applies a print style to a *copy* of a plotly figure (:func:`paper_figure`) and writes it in
several formats through kaleido and a headless Chrome/Chromium, each file atomically, plus a
``<stem>.provenance.json`` sidecar. The style:

- width 3.3 in (``"single"`` column) or 6.9 in (``"double"``), or any width in inches; one layout unit is one
  PostScript point (72 per inch), so PDF and SVG pages are exactly that wide and font sizes are in points;
- serif text (Times New Roman, falling back to Times, Liberation Serif, Nimbus Roman, serif) at 8 pt, 7 pt tick
  labels and legend, 9 pt title;
- the Okabe-Ito colour-blind-safe palette (:data:`workbench.report.PALETTE`) as colorway, Viridis as colour scale;
- white background, 0.5 pt black axis lines with outside ticks, no grid, tight margins (grown only as far as tick
  labels and axis titles need);
- point clouds sized for print: markers of scatter traces with more than :data:`DENSE_POINTS` points are at most
  :data:`DENSE_MARKER_PT` points across (screen-sized markers of a few pixels become blots at column width);
- no interactive artefacts: dropdowns (``updatemenus``) and sliders are removed, WebGL traces (``scattergl``, used
  above :data:`workbench.report.WEBGL_ABOVE` points) become SVG traces so PDF and SVG stay vector (up to
  :data:`VECTOR_POINTS_MAX` points); static exports carry no modebar.

PNG files are rendered at ``dpi`` (300 by default: a 3.3 in figure is 990 px wide) and carry that resolution in a
``pHYs`` chunk, so word processors and LaTeX place them at the intended size.

Every export runs in a kaleido browser session. Starting the browser takes a few seconds, so a batch should share
one: :func:`save_figures` does, and so does everything inside ``with export_session():``.

Tables
------
:func:`to_latex` (booktabs) and :func:`to_markdown` format metric tables such as the output of
:func:`workbench.compare.compare_correctors`, folding ``m_lo`` / ``m_hi`` columns into ``m`` as
``value ± half-width``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import numbers
import os
import platform
import queue
import re
import shutil
import struct
import sys
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl

from workbench._files import atomic_write

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "COLUMN_WIDTHS",
    "ExportError",
    "export_session",
    "find_browser",
    "latex_escape",
    "paper_figure",
    "save_figure",
    "save_figures",
    "to_latex",
    "to_markdown",
]

#: Column widths in inches (a common two-column journal/conference layout).
COLUMN_WIDTHS = {"single": 3.3, "double": 6.9}
#: Layout units per inch: one unit is one PostScript point.
POINTS_PER_INCH = 72
#: Formats :func:`save_figure` can write.
FORMATS = ("pdf", "svg", "png")
#: The font stack: Times New Roman where installed, a metric-compatible or similar serif elsewhere.
FONT_FAMILY = "Times New Roman, Times, Liberation Serif, Nimbus Roman, serif"
#: Font sizes in points: text and axis titles, tick labels / legend / annotations, figure title.
FONT_SIZE, SMALL_FONT_SIZE, TITLE_FONT_SIZE = 8, 7, 9
#: WebGL traces are converted to SVG traces while a figure's WebGL traces hold at most this many points.
VECTOR_POINTS_MAX = 100_000
#: Scatter traces with more points than this are point clouds: their markers are capped at DENSE_MARKER_PT.
DENSE_POINTS = 100
DENSE_MARKER_PT = 2.5
#: Width, height and resolution limits (inches, dots per inch) -- mostly to catch pixels passed as inches.
MIN_INCHES, MAX_INCHES = 0.5, 20.0
MIN_DPI, MAX_DPI = 72, 2400

_IMAGE_SUFFIXES = {".pdf", ".svg", ".png", ".jpg", ".jpeg", ".webp", ".eps"}
_BROWSER_NAMES = (
    "chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "microsoft-edge", "msedge",
    "brave-browser",
)
# Browsers that are usually not on PATH (app bundles, Program Files); on Linux PATH is authoritative.
_APP_PATHS: dict[str, tuple[str, ...]] = {
    "Darwin": (
        "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
        "/Applications/Chromium.app/Contents/MacOS/Chromium",
        "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
    ),
    "Windows": tuple(
        os.path.join(root, suffix)
        for root in filter(None, (os.environ.get(v) for v in ("PROGRAMFILES", "PROGRAMFILES(X86)", "LOCALAPPDATA")))
        for suffix in (r"Google\Chrome\Application\chrome.exe", r"Chromium\Application\chrome.exe",
                       r"Microsoft\Edge\Application\msedge.exe")
    ),
}
_INSTALL_HINT = (
    "Install one -- on Debian/Ubuntu: `sudo apt-get install chromium` (Fedora: `sudo dnf install chromium`; "
    "macOS/Windows: install Google Chrome) -- or set BROWSER_PATH to a Chrome/Chromium binary, e.g. "
    "`export BROWSER_PATH=/usr/bin/chromium`."
)


class ExportError(RuntimeError):
    """A figure could not be exported: no usable browser, or the browser failed to render it."""


# --------------------------------------------------------------------------------------------------------------
# the browser and the kaleido session


def find_browser() -> str:
    """The Chrome/Chromium binary kaleido will use, or a clear :class:`ExportError` saying how to get one.

    Looked up in order: the ``BROWSER_PATH`` environment variable (which must then name an executable file),
    ``chromium``, ``chromium-browser``, ``google-chrome`` and other Chromium-based browsers on ``PATH``, the usual
    application folders on macOS and Windows, and a copy downloaded earlier by ``plotly_get_chrome`` /
    ``kaleido_get_chrome``. Nothing is downloaded.

    Raises
    ------
    ExportError
        No browser found (or ``BROWSER_PATH`` is not an executable file). Raised before anything is imported
        from kaleido or written.

    Examples
    --------
    >>> find_browser()  # doctest: +SKIP
    '/usr/bin/chromium'
    """
    env = os.environ.get("BROWSER_PATH")
    if env:
        candidate = Path(env).expanduser()
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        raise ExportError(
            f"BROWSER_PATH={env!r} is not an executable file, so figures cannot be exported. Point BROWSER_PATH "
            f"at a Chrome/Chromium binary or unset it to search PATH. {_INSTALL_HINT}"
        )
    for name in _BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    for candidate_path in _APP_PATHS.get(platform.system(), ()):
        if os.path.isfile(candidate_path) and os.access(candidate_path, os.X_OK):
            return candidate_path
    downloaded = _downloaded_browser()
    if downloaded:
        return downloaded
    raise ExportError(
        "Exporting figures to PDF/SVG/PNG needs Chrome or Chromium (kaleido drives it headless), and none was "
        f"found: BROWSER_PATH is not set and none of {', '.join(_BROWSER_NAMES)} is on PATH. {_INSTALL_HINT}"
    )


def _downloaded_browser() -> str | None:
    """A Chrome downloaded earlier by ``plotly_get_chrome`` / ``kaleido_get_chrome`` (looked up, never fetched)."""
    try:
        from choreographer.cli._cli_utils import get_chrome_download_path, get_old_chrome_download_path

        for candidate in (get_chrome_download_path(mkdir=False), get_old_chrome_download_path()):
            if candidate is not None and candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    except Exception:  # a private helper of choreographer: best effort only
        return None
    return None


_session_lock = threading.Lock()
_render_lock = threading.Lock()
_session_depth = 0
_session_owned = False
_session_browser: str | None = None
_previous_excepthook: Any = None
_server_failures: list[BaseException] = []


def _kaleido_server() -> Any:
    kaleido = sys.modules.get("kaleido")
    return None if kaleido is None else getattr(kaleido, "_global_server", None)


def _server_excepthook(args: threading.ExceptHookArgs) -> None:
    # The kaleido server thread dies with a long traceback when the browser cannot start; keep it for our message.
    server = _kaleido_server()
    if server is not None and args.thread is getattr(server, "_thread", None) and args.exc_value is not None:
        _server_failures.append(args.exc_value)
        return
    (_previous_excepthook or threading.__excepthook__)(args)


@contextlib.contextmanager
def export_session(browser: str | os.PathLike[str] | None = None) -> Iterator[str]:
    """One headless browser for every figure exported inside the block.

    Starts kaleido's sync server (``kaleido.start_sync_server``) and stops it on exit. Sessions nest: an inner
    one reuses the outer browser; a kaleido server the caller started is reused and left running.

    Parameters
    ----------
    browser : path, optional
        The Chrome/Chromium binary; by default :func:`find_browser`.

    Yields
    ------
    str
        The browser in use (``"<running kaleido server>"`` when reusing one started elsewhere).

    Raises
    ------
    ExportError
        No browser found: raised on entry, before kaleido is imported.

    Examples
    --------
    >>> with export_session():  # doctest: +SKIP
    ...     for name, fig in figures.items():
    ...         save_figure(fig, f"figures/{name}", width="single")
    """
    global _session_depth, _session_owned, _session_browser, _previous_excepthook
    with _session_lock:
        if _session_depth == 0:
            server = _kaleido_server()
            if server is not None and server.is_running():
                _session_owned, _session_browser = False, "<running kaleido server>"
            else:
                path = find_browser() if browser is None else _check_browser(browser)
                import kaleido

                _server_failures.clear()
                _previous_excepthook, threading.excepthook = threading.excepthook, _server_excepthook
                try:
                    kaleido.start_sync_server(path=path, silence_warnings=True)
                except BaseException:
                    threading.excepthook, _previous_excepthook = _previous_excepthook, None
                    raise
                _session_owned, _session_browser = True, path
        _session_depth += 1
        current = _session_browser
    try:
        yield current or ""
    finally:
        with _session_lock:
            _session_depth -= 1
            if _session_depth == 0:
                if _session_owned:
                    import kaleido

                    try:
                        kaleido.stop_sync_server(silence_warnings=True)
                    finally:
                        if threading.excepthook is _server_excepthook:
                            threading.excepthook = _previous_excepthook
                        _previous_excepthook = None
                _session_owned, _session_browser = False, None


def _check_browser(browser: str | os.PathLike[str]) -> str:
    path = Path(browser).expanduser()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ExportError(f"browser={os.fspath(browser)!r} is not an executable file. {_INSTALL_HINT}")
    return str(path)


def _render(spec: dict[str, Any], fmt: str, width_pt: float, height_pt: float, dpi: float) -> bytes:
    """One image from the running session's browser (which must be running: see :func:`export_session`)."""
    import kaleido

    server = _kaleido_server()
    if server is None or not server.is_running():
        raise RuntimeError("internal error: _render called outside export_session()")
    # plotly.js draws PDFs at 96 px per inch: scale 4/3 makes one layout unit one point on the PDF page.
    scale = {"pdf": 96 / POINTS_PER_INCH, "svg": 1.0, "png": dpi / POINTS_PER_INCH}[fmt]
    opts = {"format": fmt, "width": width_pt, "height": height_pt, "scale": scale}
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def work() -> None:
        try:
            box.put((True, kaleido.calc_fig_sync(spec, opts=opts)))
        except BaseException as exc:
            box.put((False, exc))

    with _render_lock:
        # kaleido's sync call waits forever if the server thread died (e.g. the browser did not start), so wait
        # here instead, watching the server thread.
        threading.Thread(target=work, name="workbench-export-render", daemon=True).start()
        while True:
            try:
                ok, value = box.get(timeout=0.1)
                break
            except queue.Empty:
                thread = getattr(server, "_thread", None)
                if thread is not None and not thread.is_alive() and box.empty():
                    raise ExportError(_browser_failed_message()) from None
    if not ok:
        raise ExportError(f"kaleido could not render the figure as {fmt}: {value}") from value
    if not isinstance(value, bytes) or not value:
        raise ExportError(f"kaleido returned no {fmt} data")
    return value


def _browser_failed_message() -> str:
    browser = _session_browser or "the browser"
    reason = ""
    if _server_failures:
        exc = _server_failures[-1]
        first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
        reason = f" ({type(exc).__name__}: {first})"
    return (
        f"the browser at {browser} stopped or failed to start{reason}. Check that it is a working Chrome/Chromium "
        f"(`{browser} --headless --dump-dom about:blank` should print HTML). {_INSTALL_HINT}"
    )


# --------------------------------------------------------------------------------------------------------------
# the paper style


Width = Literal["single", "double"] | float


def _inches(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of inches, got {type(value).__name__}")
    inches = float(value)
    if not (math.isfinite(inches) and MIN_INCHES <= inches <= MAX_INCHES):
        raise ValueError(
            f"{name} is in inches and must be between {MIN_INCHES} and {MAX_INCHES}, got {value!r} (pixels? a "
            f"single column is {COLUMN_WIDTHS['single']} in, a double column {COLUMN_WIDTHS['double']} in)"
        )
    return inches


def _size(width: Width, height: float | None) -> tuple[str, float, float]:
    """``(label, width_in, height_in)``; the default height is ``min(0.75 * width, 3.5)`` inches."""
    if isinstance(width, str):
        key = width.strip().lower()
        if key not in COLUMN_WIDTHS:
            raise ValueError(
                f"width must be 'single' ({COLUMN_WIDTHS['single']} in), 'double' ({COLUMN_WIDTHS['double']} in) "
                f"or a number of inches, got {width!r}"
            )
        label, width_in = key, COLUMN_WIDTHS[key]
    else:
        label, width_in = "custom", _inches("width", width)
    height_in = round(min(0.75 * width_in, 3.5), 6) if height is None else _inches("height", height)
    return label, width_in, height_in


def _paper_template() -> go.layout.Template:
    import plotly.graph_objects as go

    from workbench.report import PALETTE

    small = {"size": SMALL_FONT_SIZE}
    axis = {
        "showline": True, "linewidth": 0.5, "linecolor": "#000000", "mirror": False,
        "ticks": "outside", "ticklen": 3, "tickwidth": 0.5, "tickcolor": "#000000", "tickfont": small,
        "showgrid": False, "zeroline": False, "automargin": True,
        "title": {"font": {"size": FONT_SIZE}, "standoff": 4},
    }
    colorbar = {"outlinewidth": 0, "thickness": 8, "ticks": "outside", "ticklen": 3, "tickwidth": 0.5,
                "tickfont": small}
    return go.layout.Template(
        layout={
            "font": {"family": FONT_FAMILY, "size": FONT_SIZE, "color": "#000000"},
            "title": {"font": {"size": TITLE_FONT_SIZE}, "x": 0.5, "xanchor": "center"},
            "xaxis": axis,
            "yaxis": axis,
            "legend": {"font": small, "bgcolor": "rgba(255,255,255,0)", "borderwidth": 0, "itemsizing": "constant",
                       "tracegroupgap": 2},
            "colorway": list(PALETTE),
            "colorscale": {"sequential": "Viridis", "sequentialminus": "Viridis"},
            "coloraxis": {"colorbar": colorbar},
            "annotationdefaults": {"font": small},
            "paper_bgcolor": "#FFFFFF",
            "plot_bgcolor": "#FFFFFF",
        },
        data={
            "scatter": [{"marker": {"size": 4, "line": {"width": 0}}, "line": {"width": 1.0}}],
            "bar": [{"marker": {"line": {"width": 0}}}],
            "heatmap": [{"colorbar": colorbar}],
        },
    )


def _n_points(trace: Any) -> int:
    return max((len(v) for v in (trace.x, trace.y) if v is not None), default=0)


def paper_figure(fig: Any, width: Width = "single", height: float | None = None) -> go.Figure:
    """A copy of ``fig`` in the paper style (see the module docstring); ``fig`` is left unchanged.

    Parameters
    ----------
    fig : plotly Figure, FigureWidget or figure dict
    width : "single", "double" or float, default "single"
        3.3 in, 6.9 in, or a width in inches.
    height : float, optional
        Inches; by default ``min(0.75 * width, 3.5)``.

    Returns
    -------
    plotly.graph_objects.Figure
        Sized in points (``layout.width == width * 72``). Settings made explicitly on ``fig`` (say an axis range
        or a marker colour) are kept; the template, size, global font, colorway, background and margins are set,
        interactive menus and sliders are removed.

    Examples
    --------
    >>> import plotly.graph_objects as go
    >>> styled = paper_figure(go.Figure(go.Scatter(y=[1, 3, 2])), width="double")
    >>> styled.layout.width, styled.layout.height, styled.layout.font.size
    (496.8, 252.0, 8)
    >>> styled.layout.colorway[:2]
    ('#0072B2', '#D55E00')
    """
    import plotly.graph_objects as go
    from plotly.basedatatypes import BaseFigure

    _, width_in, height_in = _size(width, height)
    if not isinstance(fig, (BaseFigure, Mapping)):
        raise TypeError(f"expected a plotly figure or a figure dict, got {type(fig).__name__}")
    try:
        base = go.Figure(fig)  # a validated deep copy
    except ValueError as exc:
        raise ValueError(f"not a valid plotly figure: {exc}") from None
    data = list(base.data)
    if sum(_n_points(t) for t in data if t.type == "scattergl") <= VECTOR_POINTS_MAX:
        for i, trace in enumerate(data):
            if trace.type == "scattergl":
                props = trace.to_plotly_json()
                props.pop("type", None)
                with contextlib.suppress(ValueError):  # an attribute only WebGL has: keep the WebGL trace
                    data[i] = go.Scatter(props)
    for trace in data:
        if trace.type in ("scatter", "scattergl") and _n_points(trace) > DENSE_POINTS:
            size = trace.marker.size
            if size is None or np.isscalar(size):
                trace.marker.size = min(float(size), DENSE_MARKER_PT) if size is not None else DENSE_MARKER_PT
            else:
                trace.marker.size = np.minimum(np.asarray(size, dtype=np.float64), DENSE_MARKER_PT)
    styled = go.Figure(data=data, layout=base.layout)  # frames (animations) are dropped
    from workbench.report import PALETTE

    has_title = bool(styled.layout.title.text)
    styled.update_layout(
        template=_paper_template(),
        width=round(width_in * POINTS_PER_INCH, 6),
        height=round(height_in * POINTS_PER_INCH, 6),
        autosize=False,
        font={"family": FONT_FAMILY, "size": FONT_SIZE, "color": "#000000"},
        colorway=list(PALETTE),
        paper_bgcolor="#FFFFFF",
        plot_bgcolor="#FFFFFF",
        margin={"l": 36, "r": 6, "t": 22 if has_title else 6, "b": 30, "pad": 0, "autoexpand": True},
    )
    styled.layout.updatemenus = ()  # (update_layout merges lists, so assign)
    styled.layout.sliders = ()
    return styled


# --------------------------------------------------------------------------------------------------------------
# writing figures


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


def _dpi(dpi: Any) -> float:
    if isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not MIN_DPI <= float(dpi) <= MAX_DPI:
        raise ValueError(f"dpi must be a number between {MIN_DPI} and {MAX_DPI}, got {dpi!r}")
    return float(dpi)


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
    dots = _dpi(dpi)
    targets, sidecar = _targets(path, fmts)
    caller = None
    if provenance is not None:
        if not isinstance(provenance, Mapping):
            raise TypeError(f"provenance must be a dict, got {type(provenance).__name__}")
        caller = json.loads(json.dumps(dict(provenance), default=_json_default))  # fail now, not after rendering
    spec = paper_figure(fig, width_in, height_in).to_dict()
    return _Job(spec, targets, sidecar, label, width_in, height_in, dots, caller)


def _version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def _provenance(job: _Job, payloads: dict[str, bytes]) -> dict[str, Any]:
    from workbench._version import __version__

    return {
        "figure": job.sidecar.name.removesuffix(".provenance.json"),
        "files": {
            f: {"name": job.targets[f].name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for f, data in payloads.items()
        },
        "formats": list(payloads),
        "width": job.width,
        "width_in": job.width_in,
        "height_in": job.height_in,
        "width_pt": round(job.width_in * POINTS_PER_INCH, 6),
        "height_pt": round(job.height_in * POINTS_PER_INCH, 6),
        "png_dpi": job.dpi if "png" in payloads else None,
        "style": {"font_family": FONT_FAMILY, "font_size_pt": FONT_SIZE, "palette": "Okabe-Ito"},
        "packages": {"workbench": __version__, **{d: _version(d) for d in ("plotly", "kaleido", "numpy",
                                                                            "choreographer")}},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "browser": _session_browser,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "caller": job.caller,
    }


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
    sidecar = json.dumps(_provenance(job, payloads), indent=2) + "\n"
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
        The image files, in ``formats`` order. The sidecar ``<stem>.provenance.json`` sits beside them: package
        versions (workbench, plotly, kaleido, numpy), UTC time, formats, size, each file's SHA-256.

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


# --------------------------------------------------------------------------------------------------------------
# tables

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX_SPECIAL))
_DASH = {"latex": "--", "markdown": "–"}


def latex_escape(text: str) -> str:
    r"""``text`` with LaTeX's special characters escaped for text mode.

    Examples
    --------
    >>> print(latex_escape("R@1 & 95% CI_lo #2"))
    R@1 \& 95\% CI\_lo \#2
    """
    return _LATEX_RE.sub(lambda m: _LATEX_SPECIAL[m.group()], str(text))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: float, digits: int) -> str:
    if math.isinf(value):
        return "-inf" if value < 0 else "inf"
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.000"


def _cell(value: Any, digits: int, style: str) -> str:
    if _missing(value):
        return _DASH[style]
    if isinstance(value, float) or (isinstance(value, numbers.Real) and not isinstance(value, (int, bool))):
        text = _number(float(value), digits)
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        text = str(value)
        if style == "latex":
            return latex_escape(text)
        return text.replace("|", r"\|").replace("\r", " ").replace("\n", " ")
    if style == "latex":
        text = text.replace("inf", r"\infty")
        return f"${text}$" if text.startswith("-") or "infty" in text else text
    return text.replace("inf", "∞")


def _interval(value: Any, lo: Any, hi: Any, digits: int, style: str) -> str:
    if _missing(value) or _missing(lo) or _missing(hi):
        return _cell(value, digits, style)
    value, lo, hi = float(value), float(lo), float(hi)
    if not all(map(math.isfinite, (value, lo, hi))):
        return _cell(value, digits, style)
    below, above, half = value - lo, hi - value, (hi - lo) / 2
    v = _number(value, digits)
    if abs(above - below) > max(half / 2, 10.0**-digits):  # asymmetric (visibly): show the interval itself
        bounds = f"[{_number(lo, digits)}, {_number(hi, digits)}]"
        return f"${v}\\;{bounds}$" if style == "latex" else f"{v} {bounds}"
    return f"${v} \\pm {_number(half, digits)}$" if style == "latex" else f"{v} ± {_number(half, digits)}"


def _table_cells(table: Any, digits: int, intervals: bool, style: str) -> tuple[list[str], list[bool], list[list[str]]]:
    if not isinstance(table, pl.DataFrame):
        raise TypeError(f"expected a polars DataFrame, got {type(table).__name__} (convert with polars.DataFrame(...))")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}")
    if not table.columns:
        raise ValueError("the table has no columns")
    names = table.columns
    folded = [c for c in names if f"{c}_lo" in names and f"{c}_hi" in names]
    hidden = {f"{c}_{side}" for c in folded for side in ("lo", "hi")}
    columns = [c for c in names if c not in hidden or c in folded]
    numeric = [table.schema[c].is_numeric() for c in columns]
    rows = []
    for row in table.iter_rows(named=True):
        cells = []
        for c in columns:
            if c in folded and intervals:
                cells.append(_interval(row[c], row[f"{c}_lo"], row[f"{c}_hi"], digits, style))
            else:
                cells.append(_cell(row[c], digits, style))
        rows.append(cells)
    return columns, numeric, rows


def to_markdown(table: pl.DataFrame, *, digits: int = 3, intervals: bool = True) -> str:
    """A metric table as a Markdown (GitHub) table, intervals folded into their metric column.

    Parameters
    ----------
    table : polars.DataFrame
        For example :func:`workbench.compare.compare_correctors` output. A column ``m`` with columns ``m_lo`` and
        ``m_hi`` is written as one column ``m``: ``value ± h`` with ``h = (hi - lo) / 2``, the interval's
        half-width (rounded to ``digits``). Where the interval is visibly asymmetric -- its two sides
        ``value - lo`` and ``hi - value`` differ by more than half of ``h`` and by more than the last printed
        digit -- it is written out instead: ``value [lo, hi]``.
    digits : int, default 3
        Decimals of floats (integers are written as they are).
    intervals : bool, default True
        False drops the ``_lo`` / ``_hi`` columns and writes the values alone.

    Returns
    -------
    str
        Lines without a trailing newline; numeric columns right-aligned; a missing value (null or NaN) is ``–``.

    Examples
    --------
    >>> import polars as pl
    >>> table = pl.DataFrame({"corrector": ["none", "GapShift()"], "image_to_text_R@1": [0.552, None],
    ...                       "image_to_text_R@1_lo": [0.531, None], "image_to_text_R@1_hi": [0.573, None]})
    >>> print(to_markdown(table))
    | corrector  | image_to_text_R@1 |
    | ---------- | ----------------: |
    | none       |     0.552 ± 0.021 |
    | GapShift() |                 – |
    """
    columns, numeric, rows = _table_cells(table, digits, intervals, "markdown")
    header = [c.replace("|", r"\|") for c in columns]
    widths = [max(3, len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True)]
        return "| " + " | ".join(padded) + " |"

    rules = ("-" * (w - 1) + ":" if num else "-" * w for w, num in zip(widths, numeric, strict=True))
    rule = "| " + " | ".join(rules) + " |"
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def to_latex(table: pl.DataFrame, *, caption: str | None = None, label: str | None = None, digits: int = 3,
             intervals: bool = True) -> str:
    r"""A metric table as a booktabs LaTeX ``tabular`` (in a ``table`` float when given a caption or label).

    Needs ``\usepackage{booktabs}``. Intervals are folded as in :func:`to_markdown`, in math mode:
    ``$0.552 \pm 0.021$`` (asymmetric ones ``$0.552\;[0.531, 0.601]$``); strings and column names have LaTeX's
    special characters escaped (:func:`latex_escape`); missing values are ``--`` (an en dash); negative numbers
    are in math mode so the minus is a minus sign; numeric columns are right-aligned (``r``), others ``l``.

    Parameters
    ----------
    table : polars.DataFrame
    caption, label : str, optional
        Inserted verbatim: they are LaTeX (so a caption may cite, and must escape ``%`` itself).
    digits, intervals
        As in :func:`to_markdown`.

    Returns
    -------
    str
        Without a trailing newline.

    Examples
    --------
    >>> import polars as pl
    >>> table = pl.DataFrame({"corrector": ["none"], "image_to_text_R@1": [0.552],
    ...                       "image_to_text_R@1_lo": [0.531], "image_to_text_R@1_hi": [0.573]})
    >>> print(to_latex(table))
    \begin{tabular}{lr}
    \toprule
    corrector & image\_to\_text\_R@1 \\
    \midrule
    none & $0.552 \pm 0.021$ \\
    \bottomrule
    \end{tabular}
    """
    columns, numeric, rows = _table_cells(table, digits, intervals, "latex")
    lines = [
        "\\begin{tabular}{" + "".join("r" if num else "l" for num in numeric) + "}",
        "\\toprule",
        " & ".join(latex_escape(c) for c in columns) + r" \\",
        "\\midrule",
        *(" & ".join(r) + r" \\" for r in rows),
        "\\bottomrule",
        "\\end{tabular}",
    ]
    if caption is None and label is None:
        return "\n".join(lines)
    head = ["\\begin{table}", "\\centering"]
    if caption is not None:
        head.append(f"\\caption{{{caption}}}")
    if label is not None:
        head.append(f"\\label{{{label}}}")
    return "\n".join([*head, *lines, "\\end{table}"])
