"""`workbench report`: the files it writes and their values, recomputed independently."""

from __future__ import annotations

import json
import re
from importlib import resources

import numpy as np
import pytest

from workbench import PairedEmbeddings, datasets
from workbench.cli import main
from workbench.report import pca_figure


def _unit(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_report_for_one_builtin_set(tmp_path, capsys):
    assert main(["report", "--dataset", "liang2022/clip", "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "report.html"]
    record = json.loads((tmp_path / "metrics.json").read_text())

    with (resources.files("workbench.datasets") / "data" / "liang2022" / "features_clip.npy").open("rb") as f:
        raw = np.load(f)
    a, b = _unit(raw[0]), _unit(raw[1])
    assert record["metrics"]["centroid_distance"] == pytest.approx(np.linalg.norm(a.mean(0) - b.mean(0)), abs=1e-6)
    assert record["metrics"]["mean_matched_cosine"] == pytest.approx(np.mean(np.sum(a * b, axis=1)), abs=1e-6)
    assert record["modalities"] == ["image", "text"] and record["n_pairs"] == 500 and record["dim"] == 512
    assert record["provenance"]["source"] == "liang2022/clip"
    assert record["provenance"]["packages"]["numpy"] == np.__version__

    page = (tmp_path / "report.html").read_text()
    assert page.count('class="plotly-graph-div"') == 1
    assert '"name":"image (500)"' in page and '"name":"text (500)"' in page
    assert "0.8514" in page  # the metric table
    assert "report.html" in capsys.readouterr().out


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
    # the hidden "pairs" trace joins each matched pair
    lines = next(t for t in fig.data if t.name == "pairs")
    assert lines.visible == "legendonly" and len(lines.x) == 3 * paired.n_pairs


def test_report_for_every_builtin_set_and_a_saved_file(tmp_path, capsys):
    mine = PairedEmbeddings.from_arrays(np.random.default_rng(0).normal(size=(30, 8)),
                                        np.random.default_rng(1).normal(size=(30, 8)), modalities=("audio", "text"))
    mine.save(tmp_path / "mine.npz")
    out = tmp_path / "reports"
    assert main(["report", "--dataset", "all", "--embeddings", str(tmp_path / "mine.npz"), "--out", str(out)]) == 0
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert folders == sorted([n.replace("/", "-") for n in datasets.names()] + ["mine"])
    for folder in folders:
        assert (out / folder / "metrics.json").is_file() and (out / folder / "report.html").is_file()
    index = (out / "index.html").read_text()
    assert len(re.findall(r"<a href='[^']+/report.html'>", index)) == 9
    record = json.loads((out / "mine" / "metrics.json").read_text())
    a, b = mine.matched()
    assert record["metrics"]["centroid_distance"] == pytest.approx(
        np.linalg.norm(_unit(a).mean(0) - _unit(b).mean(0)), abs=1e-6)
    convirt = json.loads((out / "liang2022-convirt" / "metrics.json").read_text())
    assert convirt["duplicate_rows"] == {"image": 0, "text": 57}


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
