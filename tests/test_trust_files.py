"""Issue 13 (no silent wrong result), files and the command line: literal paths, report folders, CLI errors, LaTeX.

13.1  paths with glob characters (``[``, ``]``, ``*``, ``?``) and a leading ``~`` are read literally;
13.9  `workbench report` gives every input its own folder inside ``--out``;
13.10 expected CLI failures print ``workbench: error: ...`` and exit 2 (tracebacks only with ``--debug``);
13.11 user strings are escaped in LaTeX captions and Markdown.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import workbench.store
from workbench.data import PairedEmbeddings
from workbench.datasets.folders import image_captions

ROOT = Path(__file__).resolve().parents[1]


class _Identity:
    """A toy encoder: an item is its own vector."""

    name, modalities, fingerprint = "identity", ("sensor",), "f0"

    def encode(self, modality, items, batch_size=32):
        return np.asarray(items, dtype=np.float32)


def _store(folder: Path, ids: list[str], vectors: np.ndarray, shard_size: int = 2) -> None:
    workbench.store.write(_Identity(), list(vectors), "sensor", folder, shard_size=shard_size, ids=ids,
                          progress=False)


# -- 13.1: literal paths --------------------------------------------------------------------------------------------


def _image_folder(folder: Path, captions: list[str]) -> None:
    folder.mkdir()
    Image.new("RGB", (8, 8), "red").save(folder / "red.png")
    lines = "".join(f"red.png,{c}\n" for c in captions)
    (folder / "captions.csv").write_text("file,caption\n" + lines)


@pytest.mark.parametrize(("name", "sibling"), [("imgs[1]", "imgs1"), ("exp*", "exp2"), ("im?", "im2")])
def test_image_captions_read_the_folders_own_captions_file(tmp_path, name, sibling):
    _image_folder(tmp_path / sibling, ["the sibling's caption"])
    _image_folder(tmp_path / name, ["my own caption", "and a second one"])
    assert image_captions(tmp_path / name).texts == ["my own caption", "and a second one"]
    assert image_captions(tmp_path / sibling).texts == ["the sibling's caption"]
    # an explicit captions file with glob characters in its own name too
    (tmp_path / name / "caps[1].csv").write_text("file,caption\nred.png,bracketed\n")
    (tmp_path / name / "caps1.csv").write_text("file,caption\nred.png,plain\n")
    assert image_captions(tmp_path / name, tmp_path / name / "caps[1].csv").texts == ["bracketed"]


@pytest.mark.parametrize(("name", "sibling"), [("exp*", "exp2"), ("x[1]", "x1"), ("s?", "s2")])
def test_a_store_reads_its_own_shards_not_a_siblings(tmp_path, name, sibling):
    mine = np.eye(3, dtype=np.float32)
    _store(tmp_path / sibling, ["z", "y", "x"], np.eye(3, dtype=np.float32)[::-1] * 2)
    _store(tmp_path / name, ["a", "b", "c"], mine)
    store = workbench.store.open(tmp_path / name)
    assert store.ids().to_list() == ["a", "b", "c"]
    frame = store.scan().collect()
    assert frame["id"].to_list() == ["a", "b", "c"]
    np.testing.assert_array_equal(np.stack(frame["embedding"].to_list()), mine)
    np.testing.assert_array_equal(store.to_embeddings().vectors, mine)
    assert store.to_embeddings().metadata["id"].to_list() == ["a", "b", "c"]


def test_streamed_retrieval_takes_ids_from_the_named_store(tmp_path):
    from workbench.retrieval import evaluate_retrieval

    basis = np.eye(4, dtype=np.float32)
    # the sibling pairs every id with another id's vector: read by mistake, recall@1 would be 0
    _store(tmp_path / "exp2", ["d", "c", "b", "a"], basis)
    _store(tmp_path / "exp*", ["a", "b", "c", "d"], basis)
    _store(tmp_path / "texts", ["a", "b", "c", "d"], basis + 0.01)
    result = evaluate_retrieval(tmp_path / "exp*", tmp_path / "texts", chunk_size=2)
    # every text is nearest to its own image (hand computation: the vectors are the basis, slightly moved)
    assert result["image_retrieval_recall@1"] == 1.0 and result["text_retrieval_recall@1"] == 1.0


def test_a_store_folder_named_tilde_is_not_the_home_folder(tmp_path, monkeypatch):
    home = tmp_path / "home"
    _store(home, ["h1", "h2"], np.eye(2, dtype=np.float32))  # a decoy at $HOME
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    _store(Path("~"), ["a", "b"], np.eye(2, dtype=np.float32) * 3)
    store = workbench.store.open("~")
    assert store.ids().to_list() == ["a", "b"]
    assert store.scan().collect()["id"].to_list() == ["a", "b"]
    np.testing.assert_array_equal(store.to_embeddings().vectors, np.eye(2, dtype=np.float32))  # unit rows of 3 I


def test_embedding_files_in_folders_with_glob_characters(tmp_path):
    rng = np.random.default_rng(0)
    saved = {}
    for name in ("x[1]", "x1", "x*"):
        (tmp_path / name).mkdir()
        paired = PairedEmbeddings.from_arrays(rng.normal(size=(5, 3)), rng.normal(size=(5, 3)))
        for suffix in (".npz", ".parquet"):
            paired.save(tmp_path / name / f"e{suffix}")
        saved[name] = paired
    for name, paired in saved.items():
        for suffix in (".npz", ".parquet"):
            loaded = PairedEmbeddings.load(tmp_path / name / f"e{suffix}")
            np.testing.assert_array_equal(loaded.a.vectors, paired.a.vectors)


# -- 13.9: one folder per report, inside --out ----------------------------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _saved(path: Path, seed: int, shift: float = 0.0) -> float:
    """Save a paired set at ``path``; return its centroid distance computed by hand."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(24, 6)) + shift, rng.normal(size=(24, 6))
    path.parent.mkdir(parents=True, exist_ok=True)
    PairedEmbeddings.from_arrays(a, b).save(path)
    return float(np.linalg.norm(_unit(a).mean(0) - _unit(b).mean(0)))


def _report(*args: str) -> int:
    from workbench.cli import main

    return main(["report", *args, "--no-figures", "--resamples", "10", "--quiet"])


def test_report_inputs_sharing_a_file_name_get_their_own_folders(tmp_path):
    expected = {"run1/emb": _saved(tmp_path / "run1" / "emb.npz", 0),
                "run2/emb": _saved(tmp_path / "run2" / "emb.npz", 1, shift=0.5)}
    out = tmp_path / "out"
    assert _report("--embeddings", str(tmp_path / "run1" / "emb.npz"),
                   "--embeddings", str(tmp_path / "run2" / "emb.npz"), "--out", str(out)) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["run1-emb", "run2-emb"]
    for name, distance in expected.items():
        record = json.loads((out / name.replace("/", "-") / "metrics.json").read_text())
        assert record["name"] == name
        assert record["metrics"]["centroid_distance"] == pytest.approx(distance, abs=1e-6)
    summary = json.loads((out / "summary.json").read_text())["rows"]
    assert [(r["set"], pytest.approx(r["centroid_distance"], abs=1e-6)) for r in summary] == list(expected.items())


def test_report_folders_stay_inside_out(tmp_path):
    data = tmp_path / "data"
    expected = {"...npz": _saved(data / "...npz", 2), "..npz": _saved(data / "..npz", 3),
                "x.npz": _saved(data / "x.npz", 4)}
    parent = tmp_path / "parent"
    out = parent / "out"
    assert _report(*(a for name in expected for a in ("--embeddings", str(data / name))), "--out", str(out)) == 0
    assert [p.name for p in parent.iterdir()] == ["out"]  # nothing written beside --out
    reports = sorted(out.glob("*/metrics.json"))
    assert len(reports) == 3 and all(p.parent.parent == out for p in reports)
    distances = sorted(json.loads(p.read_text())["metrics"]["centroid_distance"] for p in reports)
    np.testing.assert_allclose(distances, sorted(expected.values()), atol=1e-6)
    assert not (out / "metrics.json").exists()


def test_report_folder_names_are_single_safe_and_distinct():
    from workbench.cli import _unique_folders

    names = _unique_folders(["..", ".", "a/b", "a\\b", "A-b", "", "x y", "n#1?&%", "..hidden", "é"])
    assert names == ["set", "set-2", "a-b", "a-b-2", "A-b-3", "set-3", "x_y", "n-1---", "hidden", "é"]
    assert all(os.sep not in n and not n.startswith(".") for n in names)


# -- 13.10: expected CLI failures are one line and exit status 2 ----------------------------------------------------


def test_an_unwritable_out_is_an_error_line_not_a_traceback(tmp_path, capsys):
    from workbench.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = ["report", "--dataset", "liang2022/clip", "--out", str(blocker / "out"), "--no-figures"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("workbench: error: ") and str(blocker / "out") in captured.err
    assert "Traceback" not in captured.err
    with pytest.raises(NotADirectoryError):  # --debug, before or after the command: the exception itself
        main(["--debug", *argv])
    with pytest.raises(NotADirectoryError):
        main([*argv, "--debug"])


def test_bad_input_with_debug_raises_and_without_exits_2(tmp_path, capsys):
    from workbench.cli import main

    assert main(["report", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("workbench: error: nothing to report")
    with pytest.raises(ValueError, match="nothing to report"):
        main(["report", "--out", str(tmp_path), "--debug"])


def test_reproduce_offline_is_an_error_line_with_status_2(tmp_path):
    pytest.importorskip("open_clip")
    fixture = ROOT / "tests" / "fixtures" / "karpathy"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "WORKBENCH_CACHE_DIR": str(tmp_path / "wb")}
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "reproduce", "openclip-retrieval",
                           "--coco", str(fixture / "dataset_coco.json"), "--image-root", str(fixture / "images")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("workbench: error: weights for openclip:ViT-B-32/laion2b_s34b_b79k are not "
                                  "available")
    assert "Traceback" not in done.stderr and "HF_HUB_OFFLINE" in done.stderr


# -- 13.11: user strings escaped in LaTeX and Markdown --------------------------------------------------------------

TRICKY = "my_run #1 & 50%"
TRICKY_TEX = r"my\_run \#1 \& 50\%"


def _compile_latex(folder: Path, body: str) -> None:
    """Compile ``body`` in a minimal document with pdflatex (the test skips this part where it is missing)."""
    (folder / "doc.tex").write_text("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
                                    "\\begin{document}\n" + body + "\n\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]


def _render_markdown(text: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(text)


def test_report_captions_escape_the_set_name_and_labels_are_ascii(tmp_path):
    data = tmp_path / "data"
    _saved(data / f"{TRICKY}.npz", 5)
    _saved(data / "[1] *star* _x_ $5 ~a~.npz", 6)
    out = tmp_path / "out"
    assert _report("--embeddings", str(data / f"{TRICKY}.npz"),
                   "--embeddings", str(data / "[1] *star* _x_ $5 ~a~.npz"), "--out", str(out)) == 0
    folder = next(p for p in out.iterdir() if (p / "metrics.json").exists()
                  and json.loads((p / "metrics.json").read_text())["name"] == TRICKY)
    tex = (folder / "metrics.tex").read_text()
    assert f"\\caption{{Gap metrics: {TRICKY_TEX}}}" in tex
    assert f"\\caption{{Retrieval: {TRICKY_TEX}}}" in tex
    assert f"\\caption{{Gap correctors on held-out pairs: {TRICKY_TEX}}}" in tex
    assert "\\label{tab:gap-my-run--1---50}" in tex
    summary = (out / "summary.tex").read_text()
    # a row that starts with [ must not be read as the optional argument of the \\ before it
    assert "\n{}[1] *star* \\_x\\_ \\$5 \\textasciitilde{}a\\textasciitilde{} & " in summary
    assert f"\n{TRICKY_TEX} & " in summary
    md = (folder / "metrics.md").read_text()
    assert md.startswith("# my_run \\#1 \\& 50%\n")
    if shutil.which("pdflatex"):
        _compile_latex(folder, "\\input{metrics.tex}\n\\input{../summary.tex}")


def test_latex_rows_starting_with_a_bracket_or_star_keep_them():
    import polars as pl

    from workbench.export import to_latex

    table = pl.DataFrame({"[name]": ["*starred*", "[0.1, 0.2]", "line\nbreak"], "x": [1.0, 2.0, 3.0]})
    assert to_latex(table) == (
        "\\begin{tabular}{lr}\n"
        "\\toprule\n"
        "{}[name] & x \\\\\n"
        "\\midrule\n"
        "{}*starred* & 1.000 \\\\\n"
        "{}[0.1, 0.2] & 2.000 \\\\\n"
        "line break & 3.000 \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}"
    )


MARKDOWN_NAMES = ["*bold*", "_x_", "a__b__c", "<b>hi</b>", "a|b", "[link](http://x)", "`code`", "~~gone~~",
                  "&amp; &copy;", "$x$", "# not a heading", "back\\slash*", "image_to_text_R@1", "two\nlines"]


def test_markdown_cells_and_headers_render_as_the_literal_text():
    import html
    import re

    import polars as pl

    from workbench.export import markdown_escape, to_markdown

    table = pl.DataFrame({"name": MARKDOWN_NAMES, "*col*_x_": list(range(len(MARKDOWN_NAMES)))})
    text = to_markdown(table)
    assert "| image_to_text_R@1 " in text and "| a\\|b " in text and "| \\*bold\\* " in text
    rendered = _render_markdown(text)
    cells = [html.unescape(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", rendered)]
    assert cells[:2] == ["name", "*col*_x_"]
    assert cells[2::2] == [n.replace("\n", " ") for n in MARKDOWN_NAMES]  # no markup, no HTML, no lost characters
    for name in MARKDOWN_NAMES:
        heading = _render_markdown(f"# {markdown_escape(name)}\n")
        assert html.unescape(re.fullmatch(r"<h1>(.*)</h1>\n", heading).group(1)) == name.replace("\n", " ")
