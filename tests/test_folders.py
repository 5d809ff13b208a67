"""Folder loaders: images and wav files with captions, skipping bad files without shifting the pairing."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image, ImageFile

from workbench import PairedEmbeddings
from workbench.datasets.folders import PairedItems, SkippedItemsWarning, audio_captions, image_captions

# -- builders -------------------------------------------------------------------------------------------------------


def make_image(path: Path, seed: int = 0, size: tuple[int, int] = (48, 40)) -> Path:
    """A noisy RGB image (noise keeps JPEGs large enough to truncate meaningfully)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def make_wav(path: Path, frames: int = 800, rate: int = 8000, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = (np.sin(np.arange(frames * channels) * 0.1) * 10000).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    return path


def truncate(path: Path, fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pl.DataFrame(rows).write_csv(path)
    return path


def check_pairing(paired: PairedItems) -> None:
    """Every caption was planted as '<file id> says <k>': its pair must point at that file."""
    ids = paired.items.get_column("id").to_list()
    texts = paired.texts
    for item_row, caption_row in paired.pairs().tolist():
        assert texts[caption_row].startswith(f"{ids[item_row]} says"), (ids[item_row], texts[caption_row])
        assert paired.captions.get_column("item_id")[caption_row] == ids[item_row]


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Good PNG/JPEG images (one in a subfolder), a corrupt PNG, a truncated JPEG, and a missing file."""
    folder = tmp_path / "images"
    for k, name in enumerate(["a.png", "b.jpg", "c.png", "sub/d.jpg", "e.jpg"]):
        make_image(folder / name, seed=k)
    (folder / "corrupt.png").write_bytes(b"definitely not a png" * 20)
    make_image(folder / "truncated.jpg", seed=9, size=(96, 96))
    truncate(folder / "truncated.jpg")
    rows = []
    for name in ["a.png", "corrupt.png", "b.jpg", "missing.png", "c.png", "truncated.jpg", "sub/d.jpg", "e.jpg"]:
        for k in range(2 if name in ("a.png", "corrupt.png", "sub/d.jpg") else 1):
            rows.append({"file": name, "caption": f"{name} says {k}"})
    rows.append({"file": "a.png", "caption": "a.png says again"})  # not adjacent: still the same item
    write_csv(folder / "captions.csv", rows)
    return folder


# -- images ---------------------------------------------------------------------------------------------------------


def test_bad_images_are_skipped_with_one_warning(image_folder):
    with pytest.warns(SkippedItemsWarning) as record:
        paired = image_captions(image_folder)
    assert len(record) == 1
    message = str(record[0].message)
    assert "skipped 3 of 8 image files (missing 1, unreadable 2)" in message
    assert "with their 4 captions" in message
    assert "corrupt.png" in message and "missing.png" in message and "truncated.jpg" in message
    assert record[0].filename == __file__  # points at the caller

    assert paired.items.get_column("id").to_list() == ["a.png", "b.jpg", "c.png", "sub/d.jpg", "e.jpg"]
    assert paired.items.columns == ["id", "path", "width", "height", "format"]
    assert paired.items.get_column("format").to_list() == ["PNG", "JPEG", "PNG", "JPEG", "JPEG"]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in paired.paths)
    assert paired.captions.height == 8
    check_pairing(paired)
    assert paired.captions.filter(pl.col("item_id") == "a.png").get_column("id").to_list() == [
        "a.png#0", "a.png#1", "a.png#2"]
    assert paired.captions.get_column("row").to_list() == [0, 1, 4, 6, 8, 9, 10, 11]

    skipped = paired.skipped.sort("path")
    assert skipped.get_column("path").to_list() == ["corrupt.png", "missing.png", "truncated.jpg"]
    assert skipped.get_column("captions").to_list() == [2, 1, 1]
    reasons = dict(skipped.select("path", "reason").rows())
    assert reasons["missing.png"] == "missing"
    assert reasons["corrupt.png"].startswith("unreadable (UnidentifiedImageError")
    assert "truncated" in reasons["truncated.jpg"]


def test_caption_rows_are_traced_to_the_captions_file(image_folder):
    with pytest.warns(SkippedItemsWarning):
        paired = image_captions(image_folder)
    source = pl.read_csv(image_folder / "captions.csv")
    for row, caption in paired.captions.select("row", "caption").rows():
        assert source.get_column("caption")[row] == caption


def test_strict_raises_and_names_the_count(image_folder):
    with pytest.raises(ValueError, match=r"skipped 3 of 8 image files"):
        image_captions(image_folder, strict=True)


def test_truncated_jpeg_is_caught_even_when_pillow_is_told_to_accept_truncation(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    make_image(tmp_path / "ok.jpg", seed=1)
    make_image(tmp_path / "cut.jpg", seed=2, size=(120, 90))
    truncate(tmp_path / "cut.jpg", 0.6)
    write_csv(tmp_path / "captions.csv", [{"image": "ok.jpg", "caption": "ok.jpg says"},
                                          {"image": "cut.jpg", "caption": "cut.jpg says"}])
    with pytest.warns(SkippedItemsWarning, match="skipped 1 of 2"):
        paired = image_captions(tmp_path)
    assert paired.items.get_column("id").to_list() == ["ok.jpg"]
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored


def test_jsonl_and_csv_give_the_same_pairing(tmp_path):
    folder = tmp_path / "imgs"
    for k, name in enumerate(["x.png", "y.jpg", "z.png"]):
        make_image(folder / name, seed=k)
    write_csv(folder / "labels.csv", [{"filename": n, "caption": f"{n} says {k}"}
                                      for n in ["x.png", "y.jpg", "z.png"] for k in range(2)])
    lines = [
        {"image": "x.png", "caption": ["x.png says 0", "x.png says 1"]},
        {"image": "y.jpg", "captions": ["y.jpg says 0"]},
        {"image": "./y.jpg", "caption": "y.jpg says 1"},
        {"image": "z.png", "caption": "z.png says 0"},
        {"image": "z.png", "caption": "z.png says 1"},
    ]
    (folder / "captions.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    from_csv = image_captions(folder, "labels.csv")  # relative to the folder
    from_jsonl = image_captions(folder)  # captions.jsonl is the default
    for paired in (from_csv, from_jsonl):
        check_pairing(paired)
        assert paired.captions.height == 6 and len(paired) == 3
    assert from_csv.items.drop("path").equals(from_jsonl.items.drop("path"))
    assert from_csv.captions.select("id", "item_id", "caption").equals(
        from_jsonl.captions.select("id", "item_id", "caption"))
    assert from_csv.skipped.height == 0
    json_file = folder / "all.json"
    json_file.write_text(json.dumps(lines))
    assert image_captions(folder, json_file).captions.select("id", "caption").equals(
        from_jsonl.captions.select("id", "caption"))


def test_wide_caption_columns_for_images(tmp_path):
    make_image(tmp_path / "p.png")
    write_csv(tmp_path / "captions.csv", [{"file": "p.png", "caption_1": "p.png says 0", "caption_2": "p.png says 1"}])
    paired = image_captions(tmp_path)
    assert paired.texts == ["p.png says 0", "p.png says 1"] and paired.pairs().tolist() == [[0, 0], [0, 1]]


def test_ids_are_stable_when_an_unrelated_file_is_removed(image_folder):
    with pytest.warns(SkippedItemsWarning):
        before = image_captions(image_folder)
    (image_folder / "b.jpg").unlink()
    with pytest.warns(SkippedItemsWarning, match="skipped 4 of 8"):
        after = image_captions(image_folder)
    assert "b.jpg" in after.skipped.get_column("path").to_list()
    kept = before.items.filter(pl.col("id") != "b.jpg")
    assert after.items.equals(kept)
    assert after.captions.equals(before.captions.filter(pl.col("item_id") != "b.jpg"))
    check_pairing(after)


def test_empty_captions_and_file_names_are_counted(tmp_path):
    make_image(tmp_path / "a.png")
    (tmp_path / "captions.csv").write_text("file,caption\na.png,a.png says 0\na.png,\n,orphan caption\n")
    with pytest.warns(SkippedItemsWarning, match="dropped 2 captions of captions.csv") as record:
        paired = image_captions(tmp_path)
    assert len(record) == 1
    assert paired.texts == ["a.png says 0"]
    with pytest.raises(ValueError, match="dropped 2 captions"):
        image_captions(tmp_path, strict=True)


def test_pairs_feed_paired_embeddings(image_folder):
    with pytest.warns(SkippedItemsWarning):
        paired = image_captions(image_folder)
    rng = np.random.default_rng(0)
    emb = PairedEmbeddings.from_arrays(rng.normal(size=(len(paired), 4)), rng.normal(size=(paired.captions.height, 4)),
                                       modalities=("image", "text"), pairs=paired.pairs(),
                                       metadata_a=paired.items, metadata_b=paired.captions)
    assert emb.n_pairs == 8 and emb.a.metadata.get_column("id").to_list() == paired.items.get_column("id").to_list()


@pytest.mark.parametrize(
    ("setup", "call", "error", "message"),
    [
        (lambda d: None, lambda d: image_captions(d), FileNotFoundError, "no captions file"),
        (lambda d: None, lambda d: image_captions(d / "nope"), FileNotFoundError, "does not exist"),
        (lambda d: None, lambda d: image_captions(d, "other.csv"), FileNotFoundError, "'other.csv' not found"),
        (lambda d: (write_csv(d / "captions.csv", [{"file": "a.png", "caption": "x"}]),
                    (d / "captions.jsonl").write_text("{}")),
         lambda d: image_captions(d), ValueError, "2 captions files"),
        (lambda d: write_csv(d / "captions.csv", [{"name": "a.png", "caption": "x"}]),
         lambda d: image_captions(d), ValueError, "no column naming the image file"),
        (lambda d: write_csv(d / "captions.csv", [{"file": "a.png", "text": "x"}]),
         lambda d: image_captions(d), ValueError, "no caption column"),
        (lambda d: (d / "captions.jsonl").write_text('{"file": "a.png", "caption": "x"}\n{oops\n'),
         lambda d: image_captions(d), ValueError, "line 2 is not valid JSON"),
        (lambda d: (d / "c.txt").write_text("x"), lambda d: image_captions(d, d / "c.txt"), ValueError,
         "unsupported captions file type"),
        (lambda d: write_csv(d / "captions.csv", [{"file": "gone.png", "caption": "x"}]),
         lambda d: image_captions(d), ValueError, "no readable image file is left"),
        (lambda d: make_image(d / "a.png"), lambda d: image_captions(d, strict=1), TypeError, "strict must be"),
    ],
)
def test_bad_folders_name_the_problem(tmp_path, setup, call, error, message):
    setup(tmp_path)
    with pytest.raises(error, match=message):
        call(tmp_path)


# -- audio ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def clotho(tmp_path: Path) -> Path:
    """Clotho layout: <root>/development/*.wav and <root>/clotho_captions_development.csv (wide, five captions)."""
    folder = tmp_path / "development"
    make_wav(folder / "rain.wav", frames=1600, rate=16000)
    make_wav(folder / "birds song.wav", frames=2205, rate=44100, channels=2)
    make_wav(folder / "empty.wav", frames=0)
    make_wav(folder / "cut.wav", frames=4000)
    truncate(folder / "cut.wav", 0.5)
    (folder / "noise.wav").write_bytes(b"RIFF....WAVEjunk" * 4)
    make_wav(folder / "wind.wav", frames=400)
    names = ["rain.wav", "empty.wav", "birds song.wav", "cut.wav", "noise.wav", "gone.wav", "wind.wav"]
    write_csv(tmp_path / "clotho_captions_development.csv",
              [{"file_name": n, **{f"caption_{k}": f"{n} says {k}" for k in range(1, 6)}} for n in names])
    return folder


def test_clotho_wide_layout_skips_bad_wavs(clotho):
    with pytest.warns(SkippedItemsWarning) as record:
        paired = audio_captions(clotho)
    assert len(record) == 1
    message = str(record[0].message)
    assert "skipped 4 of 7 audio files (missing 1, unreadable 3) with their 20 captions" in message
    assert paired.items.get_column("id").to_list() == ["rain.wav", "birds song.wav", "wind.wav"]
    assert paired.items.columns == ["id", "path", "sample_rate", "channels", "frames", "duration"]
    assert paired.items.select("sample_rate", "channels", "frames").rows() == [(16000, 1, 1600), (44100, 2, 2205),
                                                                              (8000, 1, 400)]
    assert paired.items.get_column("duration").to_list() == [0.1, 0.05, 0.05]
    assert paired.captions.height == 15
    check_pairing(paired)
    reasons = dict(paired.skipped.select("path", "reason").rows())
    assert "no audio frames" in reasons["empty.wav"]
    assert "truncated" in reasons["cut.wav"]
    assert reasons["noise.wav"].startswith("unreadable (")
    assert reasons["gone.wav"] == "missing"
    with pytest.raises(ValueError, match="skipped 4 of 7 audio files"):
        audio_captions(clotho, strict=True)


def test_audio_long_layout_and_names_without_extension(tmp_path):
    make_wav(tmp_path / "dog.wav")
    make_wav(tmp_path / "cat.wav")
    write_csv(tmp_path / "captions.csv", [{"file": "dog.wav", "caption": "dog.wav says 0"},
                                          {"file": "cat", "caption": "cat.wav says 0"},
                                          {"file": "dog.wav", "caption": "dog.wav says 1"}])
    paired = audio_captions(tmp_path)
    assert paired.items.get_column("id").to_list() == ["dog.wav", "cat.wav"]
    assert paired.pairs().tolist() == [[0, 0], [1, 1], [0, 2]]
    check_pairing(paired)


def test_audiocaps_layout_finds_files_by_youtube_or_audiocap_id(tmp_path):
    make_wav(tmp_path / "-abc_123.wav")  # by youtube id
    make_wav(tmp_path / "91139.wav")  # by audiocap id
    make_wav(tmp_path / "Yqq.wav")  # AudioSet-style name
    rows = [
        {"audiocap_id": "1", "youtube_id": "-abc_123", "start_time": "30", "caption": "-abc_123.wav says 0"},
        {"audiocap_id": "91139", "youtube_id": "zzz", "start_time": "0", "caption": "91139.wav says 0"},
        {"audiocap_id": "2", "youtube_id": "-abc_123", "start_time": "30", "caption": "-abc_123.wav says 1"},
        {"audiocap_id": "3", "youtube_id": "qq", "start_time": "10", "caption": "Yqq.wav says 0"},
        {"audiocap_id": "4", "youtube_id": "nothere", "start_time": "10", "caption": "nothing"},
    ]
    write_csv(tmp_path / "train.csv", rows)
    with pytest.warns(SkippedItemsWarning, match="skipped 1 of 4") as record:
        paired = audio_captions(tmp_path, tmp_path / "train.csv")
    assert "tried nothere.wav, 4.wav, Ynothere.wav" in str(record[0].message)
    assert paired.items.get_column("id").to_list() == ["-abc_123.wav", "91139.wav", "Yqq.wav"]
    assert paired.captions.get_column("id").to_list() == ["-abc_123.wav#0", "91139.wav#0", "-abc_123.wav#1",
                                                          "Yqq.wav#0"]
    check_pairing(paired)


def test_audio_default_captions_file_must_be_unambiguous(tmp_path):
    make_wav(tmp_path / "a.wav")
    for split in ("development", "evaluation"):
        write_csv(tmp_path / f"clotho_captions_{split}.csv", [{"file_name": "a.wav", "caption_1": "a.wav says"}])
    with pytest.raises(ValueError, match="2 captions files"):
        audio_captions(tmp_path)
    assert audio_captions(tmp_path, "clotho_captions_evaluation.csv").texts == ["a.wav says"]
