"""Missing weights, said plainly: :class:`WeightsUnavailableError` and the quick offline checks behind it.

Hub libraries, offline, retry for about a minute before failing with a long traceback. The encoders here look in
the local caches first, then decide *before* any download whether the hub can be reached: ``HF_HUB_OFFLINE`` (or
``TRANSFORMERS_OFFLINE``) set, or no TCP connection to the hub host within about a second, fails at once with a
message that names the model, where it looked and the ways out. Only this module's standard-library imports run at
import time.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

__all__ = [
    "WeightsUnavailableError",
    "cached_hub_file",
    "forced_offline",
    "hub_cache_dir",
    "hub_endpoint",
    "hub_offline_reason",
]

_T = TypeVar("_T")

_TRUE = {"1", "on", "yes", "true"}
_CONNECT_TIMEOUT = 1.0


class WeightsUnavailableError(OSError):
    """Model weights could not be found locally and cannot be downloaded now.

    A subclass of :class:`OSError`, like the "file not found" and "no network" errors it stands for (and like
    the ``OSError`` that ``transformers`` raises for a missing checkpoint), so ``except OSError`` catches it.
    Raised for a hub tag or checkpoint that is not in the local cache while offline, an unknown pretrained tag,
    and a local checkpoint path that does not exist. The message names the model, every place that was
    searched and the ways out; the attributes hold the same facts for programs.

    Attributes
    ----------
    model : str
        The model that was asked for, e.g. ``"openclip:ViT-B-32/laion2b_s34b_b79k"``.
    looked_in : tuple of str
        Where the weights were searched for (files, hub repositories, cache directories).
    reason : str
        Why they could not be fetched.

    Examples
    --------
    >>> err = WeightsUnavailableError("openclip:ViT-B-32/x", "no such file", looked_in=["/tmp/x.pt"])
    >>> isinstance(err, OSError), err.model, err.looked_in
    (True, 'openclip:ViT-B-32/x', ('/tmp/x.pt',))
    >>> print(str(err).splitlines()[0])
    weights for openclip:ViT-B-32/x are not available: no such file
    """

    def __init__(
        self,
        model: str,
        reason: str,
        *,
        looked_in: Sequence[str] = (),
        ways_out: Sequence[str] = (),
    ) -> None:
        self.model = model
        self.reason = reason
        self.looked_in = tuple(looked_in)
        self.ways_out = tuple(ways_out)
        lines = [f"weights for {model} are not available: {reason}"]
        if self.looked_in:
            lines.append("looked in:")
            lines.extend(f"  - {place}" for place in self.looked_in)
        if self.ways_out:
            lines.append("ways out:")
            lines.extend(f"  - {way}" for way in self.ways_out)
        super().__init__("\n".join(lines))

    def __reduce__(self):  # keep pickling (multiprocessing) working with keyword-only arguments
        return (_rebuild, (self.model, self.reason, self.looked_in, self.ways_out))


def _rebuild(model: str, reason: str, looked_in: tuple[str, ...], ways_out: tuple[str, ...]) -> WeightsUnavailableError:
    return WeightsUnavailableError(model, reason, looked_in=looked_in, ways_out=ways_out)


def hub_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> str:
    """The Hugging Face hub cache folder in use (``cache_dir``, else ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``).

    Read from the environment at call time, so a changed ``HF_HOME`` is honoured.

    Examples
    --------
    >>> hub_cache_dir("/data/hub")
    '/data/hub'
    """
    if cache_dir is not None:
        return os.fspath(cache_dir)
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    return os.path.join(os.path.expanduser(home), "hub")


def hub_endpoint() -> str:
    """The hub address (``$HF_ENDPOINT``, default ``https://huggingface.co``)."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _env_offline() -> str | None:
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUE:
            return f"{var}={os.environ[var]} is set"
    try:  # offline mode switched on in-process (huggingface_hub reads the variable once, at import)
        import sys

        constants = sys.modules.get("huggingface_hub.constants")
        if constants is not None and getattr(constants, "HF_HUB_OFFLINE", False):
            return "huggingface_hub offline mode is on (HF_HUB_OFFLINE was set when it was imported)"
    except Exception:  # pragma: no cover - defensive
        pass
    return None


def _proxy_for(scheme: str, host: str) -> str | None:
    no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    for entry in (e.strip().lstrip(".") for e in no_proxy.split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return None
    for var in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"):
        if os.environ.get(var):
            return os.environ[var]
    return None


def _can_connect(host: str, port: int, timeout: float) -> str | None:
    """None when a TCP connection to ``host:port`` opens within ``timeout`` seconds, else why not.

    Name resolution has no timeout of its own, so the whole attempt runs in a daemon thread that is abandoned when
    it takes too long.
    """
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except Exception as exc:  # OSError in practice; anything else must not escape a background thread
            outcome.append(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)

    worker = threading.Thread(target=attempt, name="workbench-hub-check", daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if not outcome:
        return f"no answer within {timeout:.0f} s"
    return outcome[0]


def hub_offline_reason(url: str | None = None, *, timeout: float = _CONNECT_TIMEOUT) -> str | None:
    """Why the hub (or ``url``) cannot be used right now, or None when it can.

    Offline when ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` is set (read at call time) or when no TCP
    connection to the host (or to the proxy in ``HTTPS_PROXY`` / ``ALL_PROXY``) opens within ``timeout``
    seconds. This decides in about a second at most, instead of the minute of retries a download attempt takes.

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"HF_HUB_OFFLINE": "1"}):
    ...     hub_offline_reason()
    'HF_HUB_OFFLINE=1 is set'
    """
    reason = _env_offline()
    if reason is not None:
        return reason
    parts = urlsplit(url or hub_endpoint())
    scheme = parts.scheme or "https"
    host = parts.hostname or ""
    if not host:
        return f"cannot tell the host of {url!r}"
    port = parts.port or (443 if scheme == "https" else 80)
    proxy = _proxy_for(scheme, host)
    if proxy:
        proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if proxy_parts.hostname:
            host, port = proxy_parts.hostname, proxy_parts.port or 8080
    problem = _can_connect(host, port, timeout)
    return None if problem is None else f"{host}:{port} cannot be reached ({problem})"


@contextlib.contextmanager
def forced_offline() -> Iterator[None]:
    """Switch huggingface_hub (and so transformers, open_clip, sentence-transformers) to offline mode for a while.

    Inside the block every hub lookup is answered from the local cache or fails at once, never with a network
    round trip or a retry loop. The switch is process-wide for its duration; the previous value is restored.

    Examples
    --------
    >>> with forced_offline():
    ...     pass
    """
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - huggingface_hub comes with open_clip and transformers
        yield
        return
    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


def cached_hub_file(repo: str, filenames: Sequence[str], cache_dir: str | os.PathLike[str] | None = None) -> str | None:
    """The local path of the first of ``filenames`` of hub ``repo`` already in the cache, else None (no network).

    Examples
    --------
    >>> import tempfile
    >>> cached_hub_file("nobody/nothing", ["config.json"], cache_dir=tempfile.mkdtemp()) is None
    True
    """
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        try:
            found = try_to_load_from_cache(repo, filename, cache_dir=hub_cache_dir(cache_dir))
        except Exception:  # an invalid repo id, an unreadable cache
            return None
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def short_error(exc: BaseException, limit: int = 300) -> str:
    """``"TypeName: first line of the message"``, cut to ``limit`` characters, for one-line causes."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def missing_path_error(model: str, path: str | os.PathLike[str], what: str, example: str) -> WeightsUnavailableError:
    """The error for a local checkpoint path that does not exist."""
    path = os.fspath(path)
    near = ""
    parent = Path(path).expanduser().parent
    if parent.is_dir():
        names = sorted(p.name for p in parent.iterdir())[:2000]
        import difflib

        close = difflib.get_close_matches(Path(path).name, names, n=3)
        if close:
            near = f" (in that folder: {', '.join(close)})"
    return WeightsUnavailableError(
        model,
        f"the {what} {path!r} does not exist{near}",
        looked_in=[os.path.abspath(os.path.expanduser(path))],
        ways_out=[f"check the path (relative paths are resolved from {os.getcwd()})", example],
    )


def hub_ways_out(repo: str, local_example: str) -> list[str]:
    """The standard ways out for weights that live on the Hugging Face hub."""
    return [
        "connect to the internet (and unset HF_HUB_OFFLINE) and try again: the weights are downloaded once into "
        "the hub cache",
        f"pass a local checkpoint instead: {local_example}",
        f"pre-fill the hub cache on a connected machine (`hf download {repo}`), copy the cache folder here "
        "(HF_HOME or HF_HUB_CACHE point to it) and set HF_HUB_OFFLINE=1",
    ]


def load_from_hub(
    name: str,
    repo: str,
    load: Callable[[str, bool], _T],
    *,
    files: Sequence[str],
    cache_dir: str | os.PathLike[str] | None,
    local_example: str,
    more_ways_out: Sequence[str] = (),
    what: str = "checkpoint",
    fallback: Callable[[], _T | None] | None = None,
    also_looked: Sequence[str] = (),
) -> _T:
    """Load hub ``repo`` as the encoders do: from the cache first, then a download only when the hub can be reached.

    ``load(cache, offline)`` builds the model from the hub cache folder ``cache`` (:func:`hub_cache_dir`, resolved
    once, now): with ``offline=True`` from the cache alone (``local_files_only``), tried (under
    :func:`forced_offline`) when one of ``files`` is cached; with ``offline=False`` by downloading. Between the two,
    ``fallback()`` may supply the model (e.g. a copy a package ships; None: no). When the hub cannot be reached
    (:func:`hub_offline_reason`), or the download fails, a :class:`WeightsUnavailableError` for ``name`` says where
    it looked (the hub cache, with why a cached copy did not load, then ``also_looked``) and gives the ways out
    (:func:`hub_ways_out` with ``local_example``, then ``more_ways_out``).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> cache = Path(tempfile.mkdtemp())
    >>> snapshot = cache / "models--me--tiny" / "snapshots" / "0123abcd"
    >>> snapshot.mkdir(parents=True)
    >>> _ = (snapshot / "config.json").write_text("{}")
    >>> _ = (cache / "models--me--tiny" / "refs").mkdir()
    >>> _ = (cache / "models--me--tiny" / "refs" / "main").write_text("0123abcd")
    >>> load_from_hub("me:tiny", "me/tiny", lambda cache, offline: f"loaded, offline={offline}",
    ...               files=["config.json"], cache_dir=cache, local_example='Tiny("/path/to/folder")')
    'loaded, offline=True'
    """
    cache = hub_cache_dir(cache_dir)
    looked = [f"the Hugging Face hub cache {cache} for repo {repo}"]
    ways_out = [*hub_ways_out(repo, local_example), *more_ways_out]
    if cached_hub_file(repo, files, cache_dir):
        try:
            with forced_offline():
                return load(cache, True)
        except OSError as exc:  # e.g. the config is cached but not the weights
            looked[0] += f" (incomplete: {short_error(exc)})"
    found = fallback() if fallback is not None else None
    if found is not None:
        return found
    looked += also_looked
    reason = hub_offline_reason()
    if reason is not None:
        raise WeightsUnavailableError(
            name, f"the {what} is not cached and cannot be downloaded: {reason}", looked_in=looked, ways_out=ways_out
        )
    try:
        return load(cache, False)
    except OSError as exc:
        raise WeightsUnavailableError(
            name, f"the download failed ({short_error(exc)})", looked_in=looked, ways_out=ways_out
        ) from None
