"""`workbench report`: the files it writes and their values, recomputed independently."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from workbench import PairedEmbeddings, datasets, gap
from workbench.cli import main
from workbench.figures import pca_figure
from workbench.retrieval import matched_ranks


def _unit(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def clip_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("clip-report")
    assert main(["report", "--dataset", "liang2022/clip", "--out", str(out), "--resamples", "50"]) == 0
    return out


def test_report_files(clip_report):
    names = sorted(p.name for p in clip_report.iterdir())
    assert names == ["figures", "metrics.json", "metrics.md", "metrics.tex", "report.html"]
    figures = sorted(p.name for p in (clip_report / "figures").iterdir())
    for key in ("pca", "cosines", "gap_dimensions", "loss_landscape"):
        for suffix in (".pdf", ".svg", ".png", ".provenance.json"):
            assert key + suffix in figures
    assert (clip_report / "figures" / "pca.pdf").read_bytes().startswith(b"%PDF")
    assert (clip_report / "figures" / "pca.png").read_bytes().startswith(b"\x89PNG")
    assert not [p for p in clip_report.rglob("*.tmp")]


def test_report_values_equal_direct_calls(clip_report):
    record = json.loads((clip_report / "metrics.json").read_text())
    with (resources.files("workbench.datasets") / "data" / "liang2022" / "features_clip.npy").open("rb") as f:
        raw = np.load(f)
    a, b = _unit(raw[0]), _unit(raw[1])
    assert record["metrics"]["centroid_distance"] == pytest.approx(np.linalg.norm(a.mean(0) - b.mean(0)), abs=1e-6)
    assert record["metrics"]["mean_matched_cosine"] == pytest.approx(np.mean(np.sum(a * b, axis=1)), abs=1e-6)
    direct = gap.gap_report(datasets.load("liang2022/clip"))
    for key, value in direct.items():
        assert record["metrics"][key] == pytest.approx(value, abs=1e-9), key
    sims = a @ b.T
    assert record["retrieval"]["a_to_b_recall@1"] == pytest.approx(np.mean(sims.argmax(1) == np.arange(500)))
    assert record["retrieval"]["b_to_a_recall@1"] == pytest.approx(np.mean(sims.argmax(0) == np.arange(500)))
    ranks_ab, _ = matched_ranks(a, b)
    assert record["retrieval"]["a_to_b_mean_rank"] == pytest.approx(ranks_ab.mean())
    names = [row["corrector"] for row in record["correctors"]]
    assert names[0] == "none" and "GapShift(delta=1.0)" in names
    prov = record["provenance"]
    assert prov["source"] == "liang2022/clip" and prov["packages"]["numpy"] == np.__version__
    assert prov["correctors"]["GapShift(delta=1.0)"]["params"] == {"delta": 1.0}
    assert len(prov["data_sha256"]) == 64


def test_report_html_and_tables(clip_report):
    page = (clip_report / "report.html").read_text()
    assert page.count('class="plotly-graph-div"') == 4
    assert page.count("<script type=\"text/javascript\">/**") <= 1 or page.count("plotly.js v") <= 2  # js once
    assert '"name":"image (500)"' in page and "0.8514" in page
    tex = (clip_report / "metrics.tex").read_text()
    assert tex.count("\\toprule") == 3 and "centroid\\_distance" in tex
    assert "±" in (clip_report / "metrics.md").read_text()


def test_pca_figure_matches_an_independent_svd():
    paired = datasets.load("liang2022/videoclip")
    fig = pca_figure(paired)
    points = [t for t in fig.data if t.mode == "markers"]
    assert [t.name for t in points] == ["video (100)", "text (100)"]
    coords = np.column_stack([np.concatenate([t.x for t in points]), np.concatenate([t.y for t in points])])
    x = np.concatenate([paired.a.vectors, paired.b.vectors]).astype(np.float64)
    x -= x.mean(0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    expected = u[:, :2] * s[:2]
    for k in range(2):  # principal axes are defined up to sign
        sign = np.sign(np.dot(coords[:, k], expected[:, k]))
        np.testing.assert_allclose(coords[:, k], sign * expected[:, k], atol=1e-5)
    lines = next(t for t in fig.data if t.name == "pairs")
    assert lines.visible == "legendonly" and len(lines.x) == 3 * paired.n_pairs


@pytest.fixture(scope="module")
def all_reports(tmp_path_factory):
    """Every built-in set and a saved file, reported once (no static figures, 20 resamples: the values checked
    below do not depend on either) and shared by the tests that read them."""
    tmp_path = tmp_path_factory.mktemp("all-reports")
    mine = PairedEmbeddings.from_arrays(np.random.default_rng(0).normal(size=(30, 8)),
                                        np.random.default_rng(1).normal(size=(30, 8)), modalities=("audio", "text"))
    mine.save(tmp_path / "mine.npz")
    out = tmp_path / "reports"
    assert main(["report", "--dataset", "all", "--embeddings", str(tmp_path / "mine.npz"), "--out", str(out),
                 "--no-figures", "--resamples", "20", "--quiet"]) == 0
    return out, mine


def test_every_builtin_set_and_a_saved_file_with_a_summary(all_reports):
    out, mine = all_reports
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == sorted([n.replace("/", "-") for n in datasets.names()] + ["mine"])
    index = (out / "index.html").read_text()
    assert len(re.findall(r"<a href='[^']+/report.html'>", index)) == len(datasets.names()) + 1
    summary = json.loads((out / "summary.json").read_text())["rows"]
    assert [r["set"] for r in summary][-1] == "mine" and len(summary) == len(datasets.names()) + 1
    for row in summary:
        record = json.loads((out / row["set"].replace("/", "-") / "metrics.json").read_text())
        assert row["centroid_distance"] == record["metrics"]["centroid_distance"]
    a, b = mine.matched()
    assert summary[-1]["centroid_distance"] == pytest.approx(np.linalg.norm(_unit(a).mean(0) - _unit(b).mean(0)))
    convirt = json.loads((out / "liang2022-convirt" / "metrics.json").read_text())
    assert convirt["duplicate_rows"] == {"a": 0, "b": 57}
    # Procrustes on half of VideoCLIP's 100 pairs in 768 dimensions is not unique off their span: said on the page
    videoclip = json.loads((out / "liang2022-videoclip" / "metrics.json").read_text())
    assert "fitted on about 50 pairs in 768 dimensions" in videoclip["notes"]["Procrustes"]
    assert "about 50 pairs in 768" in (out / "liang2022-videoclip" / "report.html").read_text()
    assert "Procrustes" not in json.loads((out / "emoji-names" / "metrics.json").read_text())["notes"]  # 946 > 128
    assert "\\toprule" in (out / "summary.tex").read_text()


def _data_uris(cell: str, kind: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(rf"src='data:{kind}/[a-z]+;base64,([A-Za-z0-9+/=]+)'", cell)]


def _failure_rows(page: str) -> list[list[str]]:
    table = page.split("<table class='wb-failures'>")[1].split("</table>")[0]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in table.split("<tr>")[2:]]


def test_media_sets_show_failed_queries_with_their_media(all_reports):
    out, _ = all_reports
    for page in out.glob("*/report.html"):  # the largest set (5,665 points with captions) too
        assert page.stat().st_size < 1_000_000, page
    # emoji/names: each failed query recomputed with numpy: its partner's rank (ties against it), the item first
    paired = datasets.load("emoji/names")
    record = json.loads((out / "emoji-names" / "metrics.json").read_text())
    failed = record["failed_queries"]
    assert [r["direction"] for r in failed] == ["a_to_b"] * 5 + ["b_to_a"] * 5
    for r in failed:
        q, g = (paired.a, paired.b) if r["direction"] == "a_to_b" else (paired.b, paired.a)
        pairs = paired.pairs if r["direction"] == "a_to_b" else paired.pairs[:, ::-1]
        scores = _unit(g.vectors) @ _unit(q.vectors[r["query"]][None])[0]
        partners = pairs[pairs[:, 0] == r["query"], 1]
        others = np.setdiff1d(np.arange(len(g)), partners)
        assert r["match"] == partners[np.argmax(scores[partners])]
        assert r["rank"] == 1 + np.sum(scores[others] >= scores[r["match"]]) > 1
        assert r["top"] == others[np.argmax(scores[others])]
        assert r["query_id"] == q.ids[r["query"]] and r["top_id"] == g.ids[r["top"]]
    page = (out / "emoji-names" / "report.html").read_text()
    rows = _failure_rows(page)
    assert len(rows) == 10
    for r, cells in zip(failed, rows, strict=True):
        image_cells = (cells[1],) if r["direction"] == "a_to_b" else (cells[2], cells[4])  # the image side's cells
        image_rows = (r["query"],) if r["direction"] == "a_to_b" else (r["match"], r["top"])
        for cell, row in zip(image_cells, image_rows, strict=True):
            path = paired.a.metadata["path"][row]
            assert _data_uris(cell, "image") == [Path(path).read_bytes()]  # the packaged thumbnail itself
            assert html.escape(paired.a.metadata["caption"][row]) in cell
        text_row = r["match"] if r["direction"] == "a_to_b" else r["query"]
        text_cell = cells[2] if r["direction"] == "a_to_b" else cells[1]
        assert html.escape(paired.b.metadata["caption"][text_row]) in text_cell and "<img" not in text_cell
        assert cells[3] == str(r["rank"])
    # emoji/spoken pairs images with spoken names: players with the packaged clips
    spoken = datasets.load("emoji/spoken")
    record = json.loads((out / "emoji-spoken" / "metrics.json").read_text())
    cells = _failure_rows((out / "emoji-spoken" / "report.html").read_text())[0]
    first = record["failed_queries"][0]
    assert first["direction"] == "a_to_b" and "<audio" in cells[2]
    assert _data_uris(cells[2], "audio") == [Path(spoken.b.metadata["path"][first["match"]]).read_bytes()]
    # a set without media says which column would show some
    assert "No media to show" in (out / "liang2022-clip" / "report.html").read_text()
    assert json.loads((out / "liang2022-clip" / "metrics.json").read_text())["failed_queries"] == []


def test_a_media_report_page_in_a_real_browser(all_reports, playwright):
    """The page opened from disk (offline): the PCA hover of an emoji caption names it, and every thumbnail of the
    failed-queries table decodes (a 64-px image)."""
    executable = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.skip("no Chromium: set BROWSER_PATH or install chromium")
    out, _ = all_reports
    browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
    try:
        page = browser.new_page()
        page.goto((out / "emoji-names" / "report.html").as_uri())
        page.wait_for_selector(".js-plotly-plot .scatterlayer path.point")
        sizes = page.evaluate("() => [...document.querySelectorAll('img.wb-thumb')].map(i => [i.complete, "
                              "i.naturalWidth, i.naturalHeight])")
        assert len(sizes) == 15 and all(done and max(w, h) == 64 for done, w, h in sizes), sizes
        hover = page.evaluate("""async () => {
            const gd = document.querySelector('.js-plotly-plot');
            const curve = gd.data.findIndex(t => t.name.startsWith('text'));
            Plotly.Fx.hover(gd, [{curveNumber: curve, pointNumber: 1}]);
            await new Promise(r => setTimeout(r, 300));
            return [...gd.querySelectorAll('.hoverlayer .hovertext')].map(n => n.textContent); }""")
    finally:
        browser.close()
    row = datasets.load("emoji/names").b.metadata.row(1, named=True)
    assert hover == [f"textid: {row['id']}caption: {row['caption']}label: {row['label']}"]


def test_large_images_of_a_users_set_become_small_thumbnails(tmp_path):
    from PIL import Image

    from workbench.report import write_report

    rng = np.random.default_rng(0)
    paths = []
    for i in range(12):
        paths.append(str(tmp_path / f"photo{i}.png"))
        Image.fromarray(rng.integers(0, 255, size=(300, 400, 3), dtype=np.uint8)).save(paths[-1])
    assert all(os.path.getsize(p) > 300_000 for p in paths)
    ids = [f"p{i}" for i in range(12)]
    paired = PairedEmbeddings.from_arrays(
        rng.normal(size=(12, 6)), rng.normal(size=(12, 6)), modalities=("image", "text"),
        metadata_a=pl.DataFrame({"id": ids, "caption": [f"photo {i}" for i in range(12)], "path": paths}),
        metadata_b=pl.DataFrame({"id": ids, "caption": [f"a <noisy> photo {i}" for i in range(12)]}))
    files = write_report(paired, tmp_path / "r", name="mine", figures=False, correctors=())
    page = files.report_html.read_text()
    assert files.report_html.stat().st_size < 1_000_000 and "a &lt;noisy&gt; photo" in page
    thumbs = _data_uris(page, "image")
    n_failed = len(files.metrics["failed_queries"])
    assert n_failed == 10 and len(thumbs) == sum(1 if r["direction"] == "a_to_b" else 2
                                                 for r in files.metrics["failed_queries"])
    for data in thumbs:  # 400 x 300 noise -> a 64 x 48 PNG thumbnail
        assert Image.open(io.BytesIO(data)).size == (64, 48)


def test_bad_arguments_exit_2_with_a_message(tmp_path, capsys):
    assert main(["report", "--dataset", "cllip", "--out", str(tmp_path)]) == 2
    assert "unknown dataset 'cllip'" in capsys.readouterr().err
    assert main(["report", "--out", str(tmp_path)]) == 2
    assert "nothing to report" in capsys.readouterr().err
    assert main(["report", "--embeddings", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "no embeddings file" in capsys.readouterr().err
    assert main(["report", "--dataset", "liang2022/clip", "--formats", "pdf,jpg", "--out", str(tmp_path / "o")]) == 2
    assert "--formats 'pdf,jpg': give one or more of pdf, svg, png" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_datasets_command_lists_all_sets(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in datasets.names())


def test_report_pages_share_one_plotlyjs_stay_small_and_read_as_prose(tmp_path):
    out = tmp_path / "two"
    assert main(["report", "--dataset", "liang2022/clip", "--dataset", "liang2022/clasp-random", "--out", str(out),
                 "--no-figures", "--resamples", "20", "--quiet"]) == 0
    pages = sorted(out.glob("*/report.html"))
    assert len(pages) == 2 and (out / "plotly.min.js").stat().st_size > 1_000_000  # the real bundle, once
    assert not list(out.glob("*/figures/plotly.min.js")) and not list(out.glob("*/*.js"))
    for page in [*pages, out / "index.html"]:
        assert page.stat().st_size < 1_000_000, page
    clip = (out / "liang2022-clip" / "report.html").read_text()
    assert '<script src="../plotly.min.js"' in clip and "plotly.js v" not in clip  # loaded, not inlined
    # human labels, chance beside R@K (1/500 and 10/500 for 500 one-to-one pairs), intervals folded
    assert "R@1 image→text" in clip and "a_to_b" not in clip and "_lo" not in clip and "r1_" not in clip
    assert "<th>chance level</th>" in clip
    assert "<td class='num'>0.0020</td>" in clip and "<td class='num'>0.0200</td>" in clip
    assert re.search(r"<td class='num'>0\.\d{3} ± 0\.\d{3}</td>", clip)
    assert "wb-degenerate" not in clip
    # CLASP with random weights: every protein (and every text) embedding is one point; said at the top
    clasp = (out / "liang2022-clasp-random" / "report.html").read_text()
    warning = clasp.index("wb-degenerate")
    assert warning < clasp.index("<h2>Gap metrics</h2>")
    assert "each protein item is (almost) the same point" in clasp and "each text item" in clasp
    assert "liang2022/clasp-random" in (out / "index.html").read_text().split("wb-degenerate")[1][:400]


def test_a_single_report_keeps_plotlyjs_in_its_figures_folder(tmp_path):
    from workbench.report import PLOTLY_JS, write_report

    paired = datasets.load("liang2022/videoclip")
    files = write_report(paired, tmp_path, name="v", figures=False, correctors=())
    page = files.report_html.read_text()
    assert f'<script src="figures/{PLOTLY_JS}"' in page and (tmp_path / "figures" / PLOTLY_JS).is_file()
    assert files.report_html.stat().st_size < 1_000_000
    # the chance level of R@5 text→video over 100 one-to-one pairs: 5 / 100
    assert files.metrics["retrieval_chance"]["b_to_a_recall@5"] == pytest.approx(0.05)


@pytest.mark.parametrize("command", ["report", "reproduce", "datasets"])
def test_cli_help_shows_defaults_and_an_example(command, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "example" in text and f"workbench {command}" in text.split("example")[1]
    if command == "report":
        assert "(default: 200)" in text and "(default: None)" not in text and "(default: False)" not in text
    if command == "reproduce":
        assert "(default: ViT-B-32)" in text and "(default: 64)" in text


def test_datasets_command_prints_whole_descriptions_in_a_wide_terminal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for description in datasets.list()["description"].to_list():
        assert description in out  # on one line, not cut with "…"
    assert "…" not in out


def test_datasets_command_keeps_every_name_whole_in_a_narrow_terminal(capsys, monkeypatch):
    # at 80 columns the table would wrap cells (a name split over two lines cannot be copied): a list instead
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["datasets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(name in lines for name in datasets.names())  # each name alone on its own line
    assert max(len(line) for line in lines) < 80
    words = " ".join(lines).split()
    for description in datasets.list()["description"].to_list():
        assert " ".join(description.split()) in " ".join(words)  # every description in full
