"""Text boxes of an exported SVG figure, measured in a real browser, and the overlaps among them.

``python tools/svg_layout.py FILE.svg ...`` prints, for each file, every pair of text boxes that overlap and every
text box that reaches into a plot area; exit status 1 if there is any. ``tests/test_export_layout.py`` runs the
same measurement on the package's figures at single and double column width.

Boxes come from Chromium's layout (``getBoundingClientRect`` of each ``<text>`` with visible text), so they hold the
glyphs' real advance widths in the fonts the export used. The plot areas are the rectangles of plotly's plot clip
paths (``clipPath.plotclip``), one per subplot, placed where the subplot's group draws them. Each legend entry counts
as one box, its symbol and its text together, so a legend is checked against the tick labels, the axis titles and
the plot area like the rest.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Box", "main", "measure", "overlaps"]

_JS = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const legend = [...document.querySelectorAll('g.legend g.traces')].map((g) => ({
    text: 'legend: ' + g.textContent.trim(), cls: 'legend', box: box(g)}));
  const texts = [...document.querySelectorAll('text')]
    .filter((t) => !t.closest('g.legend') && t.textContent.trim() && getComputedStyle(t).display !== 'none'
                   && getComputedStyle(t).visibility !== 'hidden' && t.getAttribute('opacity') !== '0')
    .map((t) => ({text: t.textContent.trim(), cls: t.getAttribute('class') || '', box: box(t)}))
    .filter((t) => t.box[2] > t.box[0] && t.box[3] > t.box[1]);
  // a subplot's plot area: the rectangle of its plot clip path, placed by the group that uses it
  const plots = [...document.querySelectorAll('clipPath.plotclip')].flatMap((clip) => {
    const rect = clip.querySelector('rect');
    const users = [...document.querySelectorAll('g[clip-path]')]
      .filter((g) => g.getAttribute('clip-path').includes('#' + clip.id + ')'));
    return users.slice(0, 1).map((g) => {
      const m = g.getScreenCTM(), w = +rect.getAttribute('width'), h = +rect.getAttribute('height');
      return {text: 'plot area', cls: 'plot', box: [m.e, m.f, m.e + m.a * w, m.f + m.d * h]};
    });
  });
  return {texts: texts.concat(legend), plots};
}"""


@dataclass(frozen=True)
class Box:
    """A text (or plot area) and its box in SVG pixels: left, top, right, bottom."""

    text: str
    cls: str
    left: float
    top: float
    right: float
    bottom: float

    def intersects(self, other: Box, slack: float = 0.25) -> bool:
        """True when the boxes share an area wider and taller than ``slack`` pixels."""
        return (min(self.right, other.right) - max(self.left, other.left) > slack
                and min(self.bottom, other.bottom) - max(self.top, other.top) > slack)


def measure(svgs: list[Path], executable: str | None = None) -> list[tuple[list[Box], list[Box]]]:
    """``(text boxes, plot areas)`` of each SVG file, laid out by Chromium.

    Playwright's sync API refuses to run in a thread whose asyncio loop is running (as under pytest-playwright's
    session fixtures, once a browser test has run), so the measurement then runs in a thread of its own.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _measure(svgs, executable)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_measure, svgs, executable).result()


def _measure(svgs: list[Path], executable: str | None) -> list[tuple[list[Box], list[Box]]]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable or "/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                          "--disable-background-networking", "--disable-component-update"])
        try:
            page = browser.new_page()
            for svg in svgs:
                page.set_content("<html><body style='margin:0'>" + Path(svg).read_text(encoding="utf-8")
                                 + "</body></html>")
                found = page.evaluate(_JS)
                out.append(([Box(t["text"], t["cls"], *t["box"]) for t in found["texts"]],
                            [Box(t["text"], t["cls"], *t["box"]) for t in found["plots"]]))
        finally:
            browser.close()
    return out


def overlaps(texts: list[Box], plots: list[Box]) -> list[str]:
    """Each pair of overlapping text boxes, and each text box that reaches into a plot area, in words."""
    found = []
    for i, a in enumerate(texts):
        found += [f"{a.text!r} overlaps {b.text!r}" for b in texts[i + 1:] if a.intersects(b)]
        found += [f"{a.text!r} ({a.cls or 'text'}) reaches into the plot area" for p in plots if a.intersects(p)]
    return found


def main(argv: list[str] | None = None) -> int:
    """Print the overlaps of each SVG named on the command line; 1 if any."""
    paths = [Path(a) for a in (sys.argv[1:] if argv is None else argv)]
    bad = 0
    for path, (texts, plots) in zip(paths, measure(paths), strict=True):
        for line in overlaps(texts, plots):
            print(f"{path}: {line}")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
