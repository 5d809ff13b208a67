"""Paper exports: real PDF/SVG/PNG files at column widths through one browser session, atomic writes and
provenance, clear errors without Chromium, and metric tables as LaTeX / Markdown."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import plotly.graph_objects as go
import polars as pl
import pytest

from workbench import export
from workbench.export import PALETTE
from workbench.export import _browser as export_browser
from workbench.export import _save as export_save
from workbench.export import _style as export_style


def _has_browser() -> bool:
    try:
        export.find_browser()
    except export.ExportError:
        return False
    return True


needs_browser = pytest.mark.skipif(not _has_browser(), reason="no Chrome/Chromium (apt-get install chromium)")


def _figures() -> dict[str, go.Figure]:
    rng = np.random.default_rng(0)
    line = go.Figure(
        [go.Scatter(x=[1, 2, 3], y=[0.55, 0.61, 0.58], name="CLIP"),
         go.Scatter(x=[1, 2, 3], y=[0.41, 0.47, 0.52], name="CLAP")],
        layout={"title": "R@1 by shift", "xaxis_title": "shift", "yaxis_title": "R@1",
                "updatemenus": [{"buttons": [{"label": "log", "method": "relayout",
                                              "args": [{"yaxis.type": "log"}]}]}]},
    )
    bars = go.Figure(go.Bar(x=["none", "GapShift", "Procrustes"], y=[0.82, 0.04, 0.11]))
    cloud = go.Figure(go.Scattergl(x=rng.normal(size=6000), y=rng.normal(size=6000), mode="markers"))
    return {"line": line, "bars": bars, "cloud": cloud}


# ---------------------------------------------------------------------------------------------------------------
# one real batch through the browser, shared by the file checks below

#: name -> (width in, height in, formats) as exported by the ``batch`` fixture
EXPECTED = {
    "line": (3.3, 2.475, ("pdf", "svg", "png")),
    "bars": (6.9, 3.5, ("pdf", "svg", "png")),
    "cloud": (5.0, 2.0, ("png", "pdf")),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    import kaleido

    folder = tmp_path_factory.mktemp("figures")
    figs = _figures()
    calls = {"start": 0, "stop": 0}
    real_start, real_stop = kaleido.start_sync_server, kaleido.stop_sync_server

    def start(*args, **kwargs):
        calls["start"] += 1
        return real_start(*args, **kwargs)

    def stop(*args, **kwargs):
        calls["stop"] += 1
        return real_stop(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kaleido, "start_sync_server", start)
        mp.setattr(kaleido, "stop_sync_server", stop)
        began = time.perf_counter()
        files = export.save_figures(
            [
                (figs["line"], folder / "line.pdf"),  # suffix replaced per format
                (figs["bars"], folder / "bars", {"width": "double"}),
                (figs["cloud"], folder / "cloud", {"width": 5.0, "height": 2.0, "formats": ("png", "pdf")}),
            ],
            provenance={"source": "tests/test_export.py", "seed": np.int64(0)},
        )
        elapsed = time.perf_counter() - began
    return SimpleNamespace(folder=folder, files=files, calls=calls, elapsed=elapsed, figs=figs)


def _media_box(pdf: bytes) -> tuple[float, float]:
    boxes = re.findall(rb"/MediaBox\s*\[\s*([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s*\]", pdf)
    assert len(boxes) == 1, boxes  # one page
    x0, y0, x1, y1 = map(float, boxes[0])
    return x1 - x0, y1 - y0


@needs_browser
@pytest.mark.slow
def test_batch_runs_in_one_browser_session(batch):
    assert batch.calls == {"start": 1, "stop": 1}, batch.calls
    n_images = sum(len(f) for f in batch.files)
    assert n_images == 8
    print(f"{n_images} images of 3 figures in {batch.elapsed:.1f} s with one browser")


@needs_browser
@pytest.mark.slow
def test_batch_returns_files_in_order_and_leaves_no_temporary_files(batch):
    assert [[p.name for p in f] for f in batch.files] == [
        ["line.pdf", "line.svg", "line.png"], ["bars.pdf", "bars.svg", "bars.png"], ["cloud.png", "cloud.pdf"],
    ]
    expected = {f"{name}.{fmt}" for name, (_, _, fmts) in EXPECTED.items() for fmt in fmts}
    expected |= {f"{name}.provenance.json" for name in EXPECTED}
    assert set(os.listdir(batch.folder)) == expected  # nothing else: no .tmp files, no dotfiles


@needs_browser
@pytest.mark.slow
@pytest.mark.parametrize("name", ["line", "bars", "cloud"])
def test_pdf_page_is_the_column_width(batch, name):
    width_in, height_in, _ = EXPECTED[name]
    data = (batch.folder / f"{name}.pdf").read_bytes()
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    width_pt, height_pt = _media_box(data)
    assert width_pt == pytest.approx(width_in * 72, abs=1.0)  # 237.6 pt single, 496.8 pt double
    assert height_pt == pytest.approx(height_in * 72, abs=1.0)
    assert re.search(rb"/FontName\s*/\w*\+?(Times|LiberationSerif|NimbusRom|DejaVuSerif)", data), "serif not embedded"
    if name == "cloud":  # the WebGL trace became SVG: the PDF is vector, no embedded bitmap
        assert b"/Subtype /Image" not in data


@needs_browser
@pytest.mark.slow
@pytest.mark.parametrize("name", ["line", "bars"])
def test_svg_is_xml_sized_in_points(batch, name):
    width_in, height_in, _ = EXPECTED[name]
    root = ET.parse(batch.folder / f"{name}.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert float(root.get("width").removesuffix("pt")) == pytest.approx(width_in * 72)
    assert root.get("width").endswith("pt") and root.get("height").endswith("pt")
    assert float(root.get("height").removesuffix("pt")) == pytest.approx(height_in * 72)
    text = (batch.folder / f"{name}.svg").read_text()
    assert "Times New Roman" in text
    assert "modebar" not in text
    if name == "line":
        assert "updatemenu" not in text  # the interactive dropdown is gone
        assert PALETTE[0].lower() in text.lower() or "rgb(0, 114, 178)" in text  # Okabe-Ito blue


@needs_browser
@pytest.mark.slow
@pytest.mark.parametrize("name", ["line", "bars", "cloud"])
def test_png_is_print_resolution(batch, name):
    width_in, height_in, _ = EXPECTED[name]
    data = (batch.folder / f"{name}.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind, width_px, height_px = struct.unpack(">I4sII", data[8:24])
    assert (length, kind) == (13, b"IHDR")
    assert width_px == round(width_in * 300)  # 990 px single, 2070 px double
    assert abs(height_px - height_in * 300) <= 1
    from PIL import Image

    with Image.open(batch.folder / f"{name}.png") as image:
        assert image.size == (width_px, height_px)
        assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)  # the pHYs chunk


@needs_browser
@pytest.mark.slow
def test_provenance_sidecar(batch):
    import hashlib

    record = json.loads((batch.folder / "bars.provenance.json").read_text())
    assert set(record["packages"]) >= {"workbench", "plotly", "kaleido", "numpy"}
    assert record["packages"]["kaleido"] and record["packages"]["plotly"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["created_utc"])
    assert (record["width"], record["width_in"], record["height_in"]) == ("double", 6.9, 3.5)
    assert record["formats"] == ["pdf", "svg", "png"]
    assert record["png_dpi"] == 300
    assert record["caller"] == {"source": "tests/test_export.py", "seed": 0}
    for fmt, info in record["files"].items():
        assert hashlib.sha256((batch.folder / info["name"]).read_bytes()).hexdigest() == info["sha256"], fmt
    cloud = json.loads((batch.folder / "cloud.provenance.json").read_text())
    assert (cloud["width"], cloud["width_in"], cloud["formats"]) == ("custom", 5.0, ["png", "pdf"])


@needs_browser
@pytest.mark.slow
def test_batch_left_the_figures_unchanged(batch):
    fresh = _figures()
    for name, fig in batch.figs.items():
        assert fig.to_json() == fresh[name].to_json()
        assert fig.layout.width is None and fig.layout.font.family is None


# ---------------------------------------------------------------------------------------------------------------
# no browser / a broken browser


@pytest.fixture
def no_browser(monkeypatch, tmp_path):
    """PATH without any browser, BROWSER_PATH unset, no downloaded copy; starting or downloading one fails."""
    import choreographer.cli
    import kaleido

    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setattr(export_browser, "_downloaded_browser", lambda: None)
    monkeypatch.setattr(export_browser, "_APP_PATHS", {})

    def forbidden(*args, **kwargs):
        raise AssertionError("must not start or download a browser")

    for module, name in ((kaleido, "start_sync_server"), (kaleido, "get_chrome_sync"), (kaleido, "get_chrome"),
                         (choreographer.cli, "get_chrome_sync"), (choreographer.cli, "get_chrome")):
        monkeypatch.setattr(module, name, forbidden)
    return tmp_path


def test_without_chromium_a_clear_error_and_no_files(no_browser):
    out = no_browser / "figures"
    fig = go.Figure(go.Scatter(y=[1, 2]))
    for call in (lambda: export.save_figure(fig, out / "gap"),
                 lambda: export.save_figures([(fig, out / "a"), (fig, out / "b")])):
        with pytest.raises(export.ExportError) as info:
            call()
        message = str(info.value)
        assert isinstance(info.value, RuntimeError)
        assert "Chrome or Chromium" in message
        assert "sudo apt-get install chromium" in message
        assert "BROWSER_PATH" in message
        assert info.value.__cause__ is None and info.value.__context__ is None
        assert Path(info.traceback[-1].path).name == "_browser.py"  # raised by us, not deep in kaleido
        assert not out.exists()  # not even the folder
    with pytest.raises(export.ExportError, match="apt-get install chromium"), export.export_session():
        pass


def test_browser_path_that_is_not_a_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chrome"))
    with pytest.raises(export.ExportError, match=r"BROWSER_PATH=.*no-such-chrome.*not an executable"):
        export.save_figure(go.Figure(), tmp_path / "fig")
    assert os.listdir(tmp_path) == []


@needs_browser
@pytest.mark.skipif(not os.access("/bin/false", os.X_OK), reason="needs /bin/false")
def test_a_browser_that_does_not_start_fails_fast_instead_of_hanging(monkeypatch, tmp_path):
    monkeypatch.setenv("BROWSER_PATH", "/bin/false")
    began = time.perf_counter()
    with pytest.raises(export.ExportError, match="failed to start"):
        export.save_figure(go.Figure(go.Scatter(y=[1, 2])), tmp_path / "fig")
    assert time.perf_counter() - began < 30
    assert os.listdir(tmp_path) == []


def test_importing_the_module_loads_neither_plotly_nor_kaleido():
    code = (
        "import sys, workbench.export\n"
        "loaded = [m for m in ('plotly', 'kaleido', 'choreographer') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ---------------------------------------------------------------------------------------------------------------
# batches, sessions and atomic writes with a stand-in renderer (no browser)


def _fake_png(width: int = 4, height: int = 3) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * (1 + 3 * width) * height)) + chunk(b"IEND", b""))


@pytest.fixture
def fake_kaleido(monkeypatch):
    """kaleido's server start/stop counted but not run, ``_render`` returning small valid files."""
    import kaleido

    state = SimpleNamespace(start=0, stop=0, renders=[], fail_at=None)
    monkeypatch.setattr(export_browser, "find_browser", lambda: "/usr/bin/fake-chromium")

    def start(*args, **kwargs):
        state.start += 1

    def stop(*args, **kwargs):
        state.stop += 1

    def render(spec, fmt, width_pt, height_pt, dpi):
        state.renders.append((spec["layout"]["width"], fmt))
        if len(state.renders) == state.fail_at:
            raise export.ExportError("kaleido could not render the figure (simulated)")
        return {"pdf": b"%PDF-1.4\n%%EOF\n", "png": _fake_png(),
                "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="5"></svg>'}[fmt]

    monkeypatch.setattr(kaleido, "start_sync_server", start)
    monkeypatch.setattr(kaleido, "stop_sync_server", stop)
    monkeypatch.setattr(export_save, "_render", render)
    return state


def test_save_figure_uses_one_session_for_all_formats_and_sessions_nest(fake_kaleido, tmp_path):
    fig = go.Figure(go.Scatter(y=[1, 2]))
    files = export.save_figure(fig, tmp_path / "gap")
    assert [p.name for p in files] == ["gap.pdf", "gap.svg", "gap.png"]
    assert (fake_kaleido.start, fake_kaleido.stop, len(fake_kaleido.renders)) == (1, 1, 3)
    svg = ET.parse(tmp_path / "gap.svg").getroot()
    assert (svg.get("width"), svg.get("height")) == ("237.6pt", "178.2pt")
    from PIL import Image

    with Image.open(tmp_path / "gap.png") as image:
        assert image.info["dpi"] == pytest.approx((300, 300), abs=0.01)
    with export.export_session() as browser:
        assert browser == "/usr/bin/fake-chromium"
        export.save_figure(fig, tmp_path / "one", "pdf")
        export.save_figures([(fig, tmp_path / "two")], formats=["svg"], width="double")
        export.save_figure(fig, tmp_path / "three.png", formats="png", width=2.5, dpi=600)
    assert (fake_kaleido.start, fake_kaleido.stop) == (2, 2)
    assert fake_kaleido.renders[3:] == [(237.6, "pdf"), (496.8, "svg"), (180.0, "png")]
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["gap.pdf", "gap.svg", "gap.png", "gap.provenance.json", "one.pdf", "one.provenance.json", "two.svg",
         "two.provenance.json", "three.png", "three.provenance.json"]
    )


def test_a_failed_render_mid_batch_keeps_earlier_figures_and_leaves_no_temporary_files(fake_kaleido, tmp_path):
    fig = go.Figure(go.Scatter(y=[1, 2]))
    fake_kaleido.fail_at = 5  # the second figure's svg: its pdf was rendered but must not be written
    with pytest.raises(export.ExportError, match="simulated"):
        export.save_figures([(fig, tmp_path / "a"), (fig, tmp_path / "b"), (fig, tmp_path / "c")])
    assert sorted(os.listdir(tmp_path)) == ["a.pdf", "a.png", "a.provenance.json", "a.svg"]
    assert (fake_kaleido.start, fake_kaleido.stop) == (1, 1)  # the session was closed


def test_a_failed_write_leaves_no_temporary_file(fake_kaleido, tmp_path):
    (tmp_path / "b.png").mkdir()  # the png cannot be renamed over a folder
    fig = go.Figure(go.Scatter(y=[1, 2]))
    with pytest.raises(OSError):
        export.save_figures([(fig, tmp_path / "a"), (fig, tmp_path / "b")])
    names = os.listdir(tmp_path)
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], names
    assert {"a.pdf", "a.svg", "a.png", "a.provenance.json"} <= set(names)
    assert (fake_kaleido.start, fake_kaleido.stop) == (1, 1)


def test_an_invalid_figure_mid_batch_fails_before_anything_is_written(fake_kaleido, tmp_path):
    good = go.Figure(go.Scatter(y=[1, 2]))
    bad = {"data": [{"type": "no-such-trace", "y": [1]}]}
    with pytest.raises(ValueError, match=r"item 1 .*not a valid plotly figure"):
        export.save_figures([(good, tmp_path / "a"), (bad, tmp_path / "b"), (good, tmp_path / "c")])
    assert os.listdir(tmp_path) == []
    assert (fake_kaleido.start, fake_kaleido.renders) == (0, [])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"width": "triple"}, ValueError, "'single' .*'double'"),
        ({"width": 760}, ValueError, "inches.*pixels"),
        ({"width": 3.3, "height": 0}, ValueError, "height is in inches"),
        ({"width": "3.3"}, ValueError, "width must be"),
        ({"formats": ("pdf", "eps")}, ValueError, "unsupported format 'eps'"),
        ({"formats": ()}, ValueError, "formats is empty"),
        ({"dpi": 10}, ValueError, "dpi must be"),
        ({"provenance": {"x": object()}}, TypeError, "not JSON-serialisable"),
        ({"provenance": ["x"]}, TypeError, "provenance must be a dict"),
    ],
)
def test_bad_arguments_fail_before_the_browser_and_any_file(fake_kaleido, tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        export.save_figure(go.Figure(), tmp_path / "out" / "fig", **kwargs)
    assert os.listdir(tmp_path) == [] and fake_kaleido.start == 0


def test_bad_batches(fake_kaleido, tmp_path):
    fig = go.Figure()
    with pytest.raises(ValueError, match="items 0 and 1 would both write"):
        export.save_figures([(fig, tmp_path / "same.pdf"), (fig, tmp_path / "same.svg")])
    with pytest.raises(TypeError, match="overrides must be a dict"):
        export.save_figures([(fig, tmp_path / "a", {"colour": "red"})])
    with pytest.raises(TypeError, match="expected a plotly figure"):
        export.save_figure("figure.png", tmp_path / "a")
    with pytest.raises(ValueError, match="is a folder"):
        export.save_figure(fig, tmp_path)
    assert export.save_figures([]) == []
    assert os.listdir(tmp_path) == [] and fake_kaleido.start == 0


def test_output_names():
    targets, sidecar = export_save._targets("figs/gap.pdf", ("pdf", "png"))
    assert targets == {"pdf": Path("figs/gap.pdf"), "png": Path("figs/gap.png")}
    assert sidecar == Path("figs/gap.provenance.json")
    targets, sidecar = export_save._targets("figs/gap.v2", ("svg",))
    assert (targets["svg"], sidecar) == (Path("figs/gap.v2.svg"), Path("figs/gap.v2.provenance.json"))


# ---------------------------------------------------------------------------------------------------------------
# the style


def test_paper_figure_styles_a_copy():
    figs = _figures()
    before = figs["line"].to_json()
    styled = export.paper_figure(figs["line"])
    assert figs["line"].to_json() == before  # untouched
    layout = styled.layout
    assert (layout.width, layout.height) == (237.6, 178.2)
    assert layout.font.family.startswith("Times New Roman") and layout.font.family.endswith("serif")
    assert (layout.font.size, layout.font.color) == (8, "#000000")
    assert layout.colorway == PALETTE
    assert (layout.paper_bgcolor, layout.plot_bgcolor) == ("#FFFFFF", "#FFFFFF")
    assert layout.updatemenus == () and layout.sliders == ()
    assert layout.margin.l <= 40 and layout.margin.r <= 10 and layout.margin.b <= 40
    axis = layout.template.layout.xaxis
    assert (axis.showline, axis.linewidth, axis.ticks, axis.showgrid) == (True, 0.5, "outside", False)
    assert styled.layout.title.text == "R@1 by shift"
    assert export.paper_figure(figs["bars"], "double", 2.0).layout.width == pytest.approx(6.9 * 72)


def test_paper_figure_keeps_explicit_settings_and_makes_webgl_vector(monkeypatch):
    fig = _figures()["cloud"]
    fig.update_xaxes(range=[-3, 3])
    fig.update_traces(marker_color="#CC79A7")
    styled = export.paper_figure(fig, 5.0)
    assert [t.type for t in styled.data] == ["scatter"]
    assert styled.data[0].marker.color == "#CC79A7" and styled.layout.xaxis.range == (-3, 3)
    monkeypatch.setattr(export_style, "VECTOR_POINTS_MAX", 100)
    assert [t.type for t in export.paper_figure(fig).data] == ["scattergl"]  # too many points for vector


def test_point_clouds_get_print_sized_markers_and_small_traces_keep_theirs():
    import plotly.graph_objects as go

    rng = np.random.default_rng(0)
    fig = go.Figure([
        go.Scatter(x=rng.normal(size=500), y=rng.normal(size=500), mode="markers", marker={"size": 5}),
        go.Scatter(x=[0, 1, 2], y=[1, 0, 1], mode="markers", marker={"size": 5}),
        go.Scatter(x=rng.normal(size=300), y=rng.normal(size=300), mode="markers",
                   marker={"size": np.linspace(1, 6, 300)}),
        go.Scatter(x=rng.normal(size=300), y=rng.normal(size=300), mode="markers", marker={"size": 1.5}),
    ])
    styled = export.paper_figure(fig)
    assert styled.data[0].marker.size == export.DENSE_MARKER_PT == 2.5
    assert styled.data[1].marker.size == 5  # a handful of points keeps its explicit size
    np.testing.assert_array_equal(styled.data[2].marker.size, np.minimum(np.linspace(1, 6, 300), 2.5))
    assert styled.data[3].marker.size == 1.5  # already small enough
    assert fig.data[0].marker.size == 5  # the original is untouched


# ---------------------------------------------------------------------------------------------------------------
# tables


@pytest.fixture
def metrics() -> pl.DataFrame:
    return pl.DataFrame({
        "corrector": ["none", "GapShift(delta=0.5)"],
        "n_test": [500, 500],
        "centroid_distance": [0.8213, 0.0412],
        "centroid_distance_lo": [0.8011, None],
        "centroid_distance_hi": [0.8409, None],
        "image_to_text_R@1": [0.552, 0.5604],
        "image_to_text_R@1_lo": [0.531, 0.5391],
        "image_to_text_R@1_hi": [0.573, 0.5812],
        "modality_probe_accuracy": [1.0, None],
    })


def test_to_markdown(metrics):
    assert export.to_markdown(metrics) == (
        "| corrector           | n_test | centroid_distance | image_to_text_R@1 | modality_probe_accuracy |\n"
        "| ------------------- | -----: | ----------------: | ----------------: | ----------------------: |\n"
        "| none                |    500 |     0.821 ± 0.020 |     0.552 ± 0.021 |                   1.000 |\n"
        "| GapShift(delta=0.5) |    500 |             0.041 |     0.560 ± 0.021 |                       – |"
    )


def test_to_markdown_without_intervals_and_with_other_digits(metrics):
    assert export.to_markdown(metrics.head(1), digits=2, intervals=False) == (
        "| corrector | n_test | centroid_distance | image_to_text_R@1 | modality_probe_accuracy |\n"
        "| --------- | -----: | ----------------: | ----------------: | ----------------------: |\n"
        "| none      |    500 |              0.82 |              0.55 |                    1.00 |"
    )


def test_to_latex(metrics):
    assert export.to_latex(metrics, caption=r"Held-out retrieval (95\% intervals).", label="tab:correctors") == (
        "\\begin{table}\n"
        "\\centering\n"
        "\\caption{Held-out retrieval (95\\% intervals).}\n"
        "\\label{tab:correctors}\n"
        "\\begin{tabular}{lrrrr}\n"
        "\\toprule\n"
        "corrector & n\\_test & centroid\\_distance & image\\_to\\_text\\_R@1 & modality\\_probe\\_accuracy \\\\\n"
        "\\midrule\n"
        "none & 500 & $0.821 \\pm 0.020$ & $0.552 \\pm 0.021$ & 1.000 \\\\\n"
        "GapShift(delta=0.5) & 500 & 0.041 & $0.560 \\pm 0.021$ & -- \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n"
        "\\end{table}"
    )


def test_latex_escapes_strings_and_puts_negatives_in_math_mode():
    table = pl.DataFrame({"name": ["a_b & c", "50% #1 {x}~", None], "delta_R@1": [0.5, -0.25, float("nan")]})
    assert export.to_latex(table) == (
        "\\begin{tabular}{lr}\n"
        "\\toprule\n"
        "name & delta\\_R@1 \\\\\n"
        "\\midrule\n"
        "a\\_b \\& c & 0.500 \\\\\n"
        "50\\% \\#1 \\{x\\}\\textasciitilde{} & $-0.250$ \\\\\n"
        "-- & -- \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}"
    )
    assert export.to_markdown(pl.DataFrame({"name": ["a|b"], "x": [-0.0001]})) == (
        "| name |     x |\n"
        "| ---- | ----: |\n"
        "| a\\|b | 0.000 |"
    )


def test_asymmetric_intervals_are_written_out():
    table = pl.DataFrame({"m": [0.60, -0.5], "m_lo": [0.50, -0.52], "m_hi": [0.62, -0.48]})
    assert export.to_markdown(table) == (
        "|                    m |\n"
        "| -------------------: |\n"
        "| 0.600 [0.500, 0.620] |\n"
        "|       -0.500 ± 0.020 |"
    )
    assert "$0.600\\;[0.500, 0.620]$ \\\\\n$-0.500 \\pm 0.020$ \\\\" in export.to_latex(table)


def test_table_errors():
    with pytest.raises(TypeError, match="polars DataFrame"):
        export.to_markdown([{"a": 1}])
    with pytest.raises(ValueError, match="digits"):
        export.to_latex(pl.DataFrame({"a": [1.0]}), digits=-1)
    with pytest.raises(ValueError, match="no columns"):
        export.to_markdown(pl.DataFrame())
