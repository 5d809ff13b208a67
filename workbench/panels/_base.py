"""The shared base of every panel: a lazily built widget, notebook display, messages instead of tracebacks.

A panel subclass implements ``_build_widget()`` (returns an ipywidgets container; called once, on first access of
``.widget``) and ``figure()`` (a static plotly figure of the current state). It calls ``self._show_message(text)``
to put a message into its ``wb-message`` HTML area and wraps widget callbacks in ``self._guarded(fn)`` so that an
exception in a callback becomes such a message instead of a traceback in the log.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["MessagePanel", "Panel"]

_P = TypeVar("_P", bound="Panel")


class Panel:
    """Base of the panels: ``.widget`` (built on first access), display in notebooks, ``.figure()``.

    The widget is an ipywidgets container with the CSS classes ``wb-panel`` and one per panel kind (e.g.
    ``wb-gap-explorer``); its message area is an ``ipywidgets.HTML`` with the class ``wb-message``.
    """

    #: CSS class of this panel kind's outer container (a DOM hook for browser tests).
    css_class = "wb-panel"
    _widget: Any = None
    _message: Any = None

    # -- construction for display ---------------------------------------------------------------------------------
    @classmethod
    def show(cls: type[_P], *args: Any, **kwargs: Any) -> _P | MessagePanel:
        """Build the panel for display: the panel, or for bad input a :class:`MessagePanel` showing the message.

        The Python API (``cls(...)``) raises a ``ValueError`` for bad input; this is the widget path, which shows
        the same message in an ``ipywidgets.HTML`` (class ``wb-message wb-error``) instead of a traceback.
        """
        try:
            return cls(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            return MessagePanel(str(exc), title=cls.__name__)

    # -- the widget -----------------------------------------------------------------------------------------------
    @property
    def widget(self) -> Any:
        """The ipywidgets container of this panel (built on first access; imports ipywidgets and plotly)."""
        if self._widget is None:
            widget = self._build_widget()
            widget.add_class("wb-panel")
            widget.add_class(self.css_class)
            self._widget = widget
        return self._widget

    @property
    def widget_built(self) -> bool:
        """Whether ``.widget`` was built (controllers update their widget only then)."""
        return self._widget is not None

    def _build_widget(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def figure(self) -> Any:  # pragma: no cover - abstract
        """A static ``plotly.graph_objects.Figure`` of the panel's current state (for export)."""
        raise NotImplementedError

    def _message_widget(self) -> Any:
        """The panel's message area (an empty ``ipywidgets.HTML`` with class ``wb-message``), made once."""
        if self._message is None:
            import ipywidgets as widgets

            self._message = widgets.HTML(value="")
            self._message.add_class("wb-message")
        return self._message

    @property
    def message(self) -> str:
        """The text of the message shown in the panel ('' when none)."""
        return getattr(self, "_message_text", "")

    def _show_message(self, text: str, kind: str = "error") -> None:
        """Show ``text`` in the message area (``kind``: "error" or "info"); '' clears it."""
        self._message_text = text
        self._message_kind = kind
        if self._message is None:
            return
        self._message.value = _message_html(text, kind) if text else ""
        for k in ("error", "info"):
            self._message.remove_class(f"wb-{k}")
        if text:
            self._message.add_class(f"wb-{kind}")

    def _guarded(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a widget callback: success clears the message, an exception is shown as one (no traceback)."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                out = fn(*args, **kwargs)
            except Exception as exc:
                self._show_message(f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc))
                return None
            if self.message and getattr(self, "_message_kind", "error") == "error":
                self._show_message("")
            return out

        return wrapper

    # -- notebook display -----------------------------------------------------------------------------------------
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return self.widget._repr_mimebundle_(include=include, exclude=exclude)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _message_html(text: str, kind: str) -> str:
    colour = "#b00020" if kind == "error" else "#444"
    body = html.escape(text).replace("\n", "<br>")
    return f"<div style='color:{colour};padding:.3em 0'>{body}</div>"


class MessagePanel(Panel):
    """A panel that only shows a message (what ``Panel.show`` returns for bad input).

    Examples
    --------
    >>> panel = MessagePanel("color_by='nope' is not a column", title="EmbeddingExplorer")
    >>> panel.message
    "EmbeddingExplorer: color_by='nope' is not a column"
    """

    css_class = "wb-message-panel"

    def __init__(self, message: str, title: str = "") -> None:
        self._message_text = f"{title}: {message}" if title else message

    def _build_widget(self) -> Any:
        import ipywidgets as widgets

        box = widgets.VBox([self._message_widget()])
        self._show_message(self._message_text)
        return box

    def figure(self) -> Any:
        """An empty figure whose title is the message."""
        import plotly.graph_objects as go

        return go.Figure(layout={"title": {"text": html.escape(self._message_text)}, "template": "simple_white"})
