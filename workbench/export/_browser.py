"""The headless browser behind every export: finding Chrome/Chromium, one kaleido session, rendering an image.

Every export runs in a kaleido browser session. Starting the browser takes a few seconds, so a batch should share
one: :func:`~workbench.export.save_figures` does, and so does everything inside ``with export_session():``.
"""

from __future__ import annotations

import contextlib
import os
import platform
import queue
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.export._style import POINTS_PER_INCH

__all__ = ["ExportError", "export_session", "find_browser"]

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


def _current_browser() -> str | None:
    """The browser of the running session (``None`` outside one), for provenance records."""
    return _session_browser


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
