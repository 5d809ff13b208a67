"""`workbench report`: the files it writes and their values, recomputed independently."""

from __future__ import annotations

import json
import re
from importlib import resources

import numpy as np
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


def test_every_builtin_set_and_a_saved_file_with_a_summary(tmp_path):
    mine = PairedEmbeddings.from_arrays(np.random.default_rng(0).normal(size=(30, 8)),
                                        np.random.default_rng(1).normal(size=(30, 8)), modalities=("audio", "text"))
    mine.save(tmp_path / "mine.npz")
    out = tmp_path / "reports"
    assert main(["report", "--dataset", "all", "--embeddings", str(tmp_path / "mine.npz"), "--out", str(out),
                 "--no-figures", "--resamples", "20"]) == 0
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
    assert "\\toprule" in (out / "summary.tex").read_text()


def test_bad_arguments_exit_2_with_a_message(tmp_path, capsys):
    assert main(["report", "--dataset", "cllip", "--out", str(tmp_path)]) == 2
    assert "unknown dataset 'cllip'" in capsys.readouterr().err
    assert main(["report", "--out", str(tmp_path)]) == 2
    assert "nothing to report" in capsys.readouterr().err
    assert main(["report", "--embeddings", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "no embeddings file" in capsys.readouterr().err
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
