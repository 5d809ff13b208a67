"""What every real-browser test does the same way: open a notebook in JupyterLab, run its cells, hover a marker,
read back what the page shows.

- :func:`open_lab` opens a notebook of the session's JupyterLab (``jupyter_lab``) in a new Chromium page, runs the
  cells named, waits for the kernel to go idle and yields a :class:`Lab` (the page, its cells by id, the page's
  uncaught errors and console errors). :func:`write_notebook` writes a notebook of code cells into the server's
  folder first (for the modules that build their notebook themselves).
- :func:`isolated_marker`, :func:`hover`: the plotly marker farthest from every other (hovering it can only hit it)
  and the mouse moves that hover it.
- :func:`image_pixels`, :func:`thumb_pixels`, :func:`file_pixels`: the pixels an ``<img>`` shows, those of a
  ``data:`` thumbnail, those of an image file, to compare with each other.
- :func:`query_ranks`, :func:`worst_first`, :func:`open_query`: a retrieval browser's failures, computed here from
  the embeddings, and the click that opens one.

Every wait waits for something on the page (a prompt's execution count, the kernel's idle status, an element, a
condition in the page), never for a fixed time.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import make_panels_demo as demo

#: Waits (milliseconds): generous, for a loaded 2-core machine.
KERNEL_IDLE_TIMEOUT = 60_000
CELL_TIMEOUT = 180_000
UI_TIMEOUT = 60_000
#: The page size every test sees.
VIEWPORT = {"width": 1600, "height": 1300}
#: A cell's stderr output (a traceback or a warning).
STDERR = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'
#: JS: the EmbeddingExplorer's point traces with every marker's page position and hover text, and the plotting area.
POINTS_JS = """gd => {
  const fl = gd._fullLayout, xa = fl.xaxis, ya = fl.yaxis, r = gd.getBoundingClientRect();
  const points = [];
  gd._fullData.forEach((t, i) => {
    const side = t.meta && t.meta.side;
    if (side !== 'a' && side !== 'b') return;
    for (let j = 0; j < t.x.length; j++) {
      points.push({curve: i, side: side, index: j, text: String(t.text[j]),
                   px: r.left + xa._offset + xa.d2p(t.x[j]), py: r.top + ya._offset + ya.d2p(t.y[j])});
    }
  });
  return {points: points,
          area: {left: r.left + xa._offset, top: r.top + ya._offset, width: xa._length, height: ya._length}};
}"""
#: JS: resolves once the element has stayed at the same place on the page for 5 animation frames (a scroll ended).
SETTLED_JS = """el => new Promise(resolve => {
  let last = null, same = 0;
  const check = () => {
    const r = el.getBoundingClientRect(), now = [r.left, r.top, r.width, r.height];
    same = last !== null && now.every((v, i) => Math.abs(v - last[i]) < 0.5) ? same + 1 : 0;
    last = now;
    if (same >= 5) resolve(true); else requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})"""


def expect(actual: Any, message: str | None = None) -> Any:
    """playwright's ``expect(actual)`` (imported late: this module loads without playwright, the tests then skip)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(actual, message)


@dataclass
class Lab:
    """A notebook open in JupyterLab: the page, its cell ids in order, the page's errors and console errors."""

    page: Any
    artifacts: Path
    cell_ids: Sequence[str]
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def cell(self, cell_id: str) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell").nth(list(self.cell_ids).index(cell_id))

    def run(self, cell_id: str) -> Any:
        """Select the cell, press Shift+Enter and wait until it has run (its prompt shows an execution count)."""
        cell = self.cell(cell_id)
        prompt = cell.locator(".jp-InputPrompt")
        prompt.scroll_into_view_if_needed()
        prompt.click()
        self.page.keyboard.press("Shift+Enter")
        expect(prompt).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=CELL_TIMEOUT)
        return cell

    def kernel_json(self, cell_id: str) -> dict[str, Any]:
        """Run a read-back cell and parse the JSON it prints."""
        output = self.run(cell_id).locator(".jp-OutputArea-output").first
        expect(output).to_contain_text("{", timeout=UI_TIMEOUT)
        return json.loads(output.inner_text())

    def shot(self, name: str, locator: Any = None) -> Path:
        path = self.artifacts / f"{name}.png"
        (locator or self.page).screenshot(path=str(path))
        return path

    def wait_idle(self) -> None:
        """Wait until the status bar shows the kernel idle."""
        expect(self.page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=KERNEL_IDLE_TIMEOUT)


def write_notebook(path: Path, cells: Sequence[tuple[str, str]]) -> None:
    """A notebook of code cells ``(id, source)``, without outputs, written to ``path``."""
    path.write_text(demo.render([(cell_id, "code", source) for cell_id, source in cells]), encoding="utf-8")


@contextmanager
def open_lab(browser: Any, jupyter_lab: Any, artifacts: Path, notebook: str, cell_ids: Sequence[str],
             run: Sequence[str], *, name: str, lab_type: type[Lab] = Lab, opened_shot: str | None = None,
             ready: Callable[[Any], None] | None = None, console_log: str | None = None,
             no_page_errors: bool = False) -> Iterator[Any]:
    """The notebook ``notebook`` of the server open in a new page, its cells ``run`` run once, the kernel idle.

    On a failure while opening, the page's screenshot is ``FAILED-<name>.png``. ``opened_shot``: a screenshot's
    name once the kernel is first idle; ``ready(lab)``: waits for what the cells show before the last idle wait;
    ``console_log``: a file of the artifacts that receives the page's errors and console errors at the end;
    ``no_page_errors``: the page must have raised no uncaught error by the end of the module's tests.
    """
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT)
    lab = lab_type(page=page, artifacts=artifacts, cell_ids=cell_ids)
    page.on("pageerror", lambda error: lab.page_errors.append(str(error)))
    page.on("console", lambda m: lab.console_errors.append(m.text) if m.type == "error" else None)
    try:
        try:
            page.goto(jupyter_lab.notebook_url(notebook))
            lab.wait_idle()
            if opened_shot is not None:
                lab.shot(opened_shot)
            for cell_id in run:
                lab.run(cell_id)
            if ready is not None:
                ready(lab)
            lab.wait_idle()
        except Exception:
            lab.shot(f"FAILED-{name}")
            raise
        yield lab
        if no_page_errors:
            assert not lab.page_errors, lab.page_errors
    finally:
        if console_log is not None:
            (artifacts / console_log).write_text(
                "page errors:\n" + "\n".join(lab.page_errors) + "\n\nconsole errors:\n"
                + "\n".join(lab.console_errors) + "\n", encoding="utf-8")
        context.close()


def settle(locator: Any, centre: bool = True) -> None:
    """Scroll the element into view (to the viewport's centre, or only if needed) and wait until it stops moving."""
    if centre:
        locator.evaluate("el => el.scrollIntoView({block: 'center'})")
    else:
        locator.scroll_into_view_if_needed()
    locator.evaluate(SETTLED_JS)


def isolated_marker(plot: Any, n_points: int, image_only: bool = False) -> tuple[dict[str, Any], dict[str, float]]:
    """The marker farthest from every other, inside the plot area (hovering it hits it alone), and the area.

    Scrolls the plot into view and checks that it draws ``n_points`` markers; ``image_only``: a marker of side a
    (the images) only.
    """
    settle(plot)
    info = plot.evaluate(POINTS_JS)
    points, area = info["points"], info["area"]
    assert len(points) == n_points
    xy = np.array([[p["px"], p["py"]] for p in points])
    inside = ((xy[:, 0] > area["left"] + 10) & (xy[:, 0] < area["left"] + area["width"] - 10)
              & (xy[:, 1] > area["top"] + 10) & (xy[:, 1] < area["top"] + area["height"] - 10))
    distances = np.linalg.norm(xy[:, None, :] - xy[None, :, :], axis=-1)
    np.fill_diagonal(distances, np.inf)
    eligible = inside & np.array([p["side"] == "a" or not image_only for p in points])
    isolation = np.where(eligible, distances.min(axis=1), -1.0)
    assert isolation.max() > 3, f"no {'image ' if image_only else ''}marker is apart from the others"
    return points[int(np.argmax(isolation))], area


def hover(page: Any, x: float, y: float, approach: float = 30, steps: int = 5) -> None:
    """Move the mouse onto ``(x, y)`` from ``approach`` pixels up and left of it, in ``steps`` moves."""
    page.mouse.move(x - approach, y - approach)
    page.mouse.move(x, y, steps=steps)


def hover_image_marker(page: Any, explorer: Any, n_points: int) -> tuple[int, Any, Any]:
    """Hover the most isolated image marker of an EmbeddingExplorer (``explorer``: its element, ``n_points`` markers).

    Waits for the plot, and for the tooltip to show; returns the marker's row, the tooltip and the side preview.
    """
    plot = explorer.locator(".js-plotly-plot").first
    expect(plot).to_be_visible(timeout=UI_TIMEOUT)
    target, _ = isolated_marker(plot, n_points, image_only=True)
    hover(page, target["px"], target["py"])
    tooltip = plot.locator(".hoverlayer .hovertext")
    expect(tooltip).to_be_visible(timeout=UI_TIMEOUT)
    return target["index"], tooltip, explorer.locator(".wb-preview")


def image_pixels(page: Any, image: Any) -> np.ndarray:
    """The RGB pixels an ``<img>`` element shows, once it is visible and loaded (drawn on a canvas in the page)."""
    expect(image).to_be_visible(timeout=UI_TIMEOUT)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    shown = image.evaluate("""img => { const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight; const g = c.getContext('2d');
        g.drawImage(img, 0, 0); return {w: c.width, h: c.height,
        data: Array.from(g.getImageData(0, 0, c.width, c.height).data)}; }""")
    return np.array(shown["data"], dtype=np.uint8).reshape(shown["h"], shown["w"], 4)[..., :3]


def thumb_pixels(image: Any) -> np.ndarray:
    """The RGB pixels of a visible ``<img>`` whose ``src`` is a ``data:image/png;base64,...`` URI."""
    from PIL import Image

    expect(image).to_be_visible()
    src = image.get_attribute("src")
    assert src.startswith("data:image/png;base64,"), src[:40]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"))


def file_pixels(path: str | Path) -> np.ndarray:
    """The RGB pixels of an image file."""
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def query_ranks(scores: np.ndarray) -> np.ndarray:
    """Each query's rank of its own match (``scores[q, q]``) in its row of ``scores``; ties count against it."""
    own = np.diag(scores)
    return 1 + (scores > own[:, None]).sum(axis=1) + ((scores == own[:, None]).sum(axis=1) - 1)


def worst_first(ranks: np.ndarray) -> list[int]:
    """The failing queries (rank > 1), worst rank first, then by row: the order of the browser's failure list."""
    return sorted((q for q in range(len(ranks)) if ranks[q] > 1), key=lambda q: (-ranks[q], q))


def open_query(row: Any) -> None:
    """Open a failure row's query in its RetrievalBrowser (the row's open button)."""
    row.scroll_into_view_if_needed()
    row.locator("button.wb-open-query").click()
