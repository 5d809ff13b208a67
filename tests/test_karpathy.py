"""The Karpathy-split loader against the fixture JSON files, read independently with the json module."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from workbench import Embeddings, PairedEmbeddings
from workbench.datasets.karpathy import KarpathySplit, load_karpathy

FIXTURES = Path(__file__).parent / "fixtures" / "karpathy"
COCO = FIXTURES / "dataset_coco.json"
FLICKR = FIXTURES / "dataset_flickr30k.json"


def _raw(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _expected(path: Path, splits: set[str] | None) -> tuple[list[dict], list[tuple[dict, dict]]]:
    """Images in the wanted splits (file order) and their (image, sentence) pairs, straight from the JSON."""
    images = [im for im in _raw(path)["images"] if splits is None or im["split"] in splits]
    return images, [(im, s) for im in images for s in im["sentences"]]


def test_fixture_has_the_promised_shape():
    raw = _raw(COCO)
    counts = Counter(im["split"] for im in raw["images"])
    assert counts == {"test": 4, "train": 2, "restval": 1, "val": 1}
    caption_counts = sorted(len(im["sentences"]) for im in raw["images"] if im["split"] == "test")
    assert caption_counts == [4, 5, 5, 6]
    texts = Counter(s["raw"] for im in raw["images"] for s in im["sentences"])
    assert any(n > 1 for n in texts.values())  # a caption text shared by two images, as in the real sets
    assert all("filepath" not in im and "cocoid" not in im for im in _raw(FLICKR)["images"])


@pytest.mark.parametrize("split", ["test", "train", "val", "restval", None, ["train", "restval"], ("test", "val")])
def test_counts_and_order_match_the_json(split):
    wanted = None if split is None else ({split} if isinstance(split, str) else set(split))
    images, pairs = _expected(COCO, wanted)
    ks = load_karpathy(COCO, split=split)
    assert isinstance(ks, KarpathySplit)
    assert ks.n_images == len(images) and ks.n_captions == len(pairs)
    assert ks.images["id"].to_list() == [im["imgid"] for im in images]
    assert ks.images["filename"].to_list() == [im["filename"] for im in images]
    assert ks.images["split"].to_list() == [im["split"] for im in images]
    assert ks.images["cocoid"].to_list() == [im["cocoid"] for im in images]
    assert ks.captions["id"].to_list() == [s["sentid"] for _, s in pairs]
    assert ks.captions["image_id"].to_list() == [s["imgid"] for _, s in pairs]
    assert ks.captions["caption"].to_list() == [s["raw"].strip() for _, s in pairs]
    assert ks.dataset == "coco"
    assert ks.splits == (tuple(dict.fromkeys([split] if isinstance(split, str) else split)) if split is not None
                         else tuple(dict.fromkeys(im["split"] for im in _raw(COCO)["images"])))


def test_test_split_counts_per_image():
    ks = load_karpathy(COCO)  # default split: test
    per_image = np.bincount(ks.text_to_image, minlength=ks.n_images)
    expected = [len(im["sentences"]) for im in _raw(COCO)["images"] if im["split"] == "test"]
    assert per_image.tolist() == expected
    assert ks.n_images == 4 and ks.n_captions == 20


def test_text_to_image_agrees_with_every_sentences_imgid():
    for split in (None, "test", ["train", "restval"]):
        ks = load_karpathy(COCO, split=split)
        assert ks.text_to_image.dtype == np.int64
        image_ids = np.asarray(ks.images["id"])
        sentence_imgid = {s["sentid"]: s["imgid"] for im in _raw(COCO)["images"] for s in im["sentences"]}
        for j, (sentid, t) in enumerate(zip(ks.captions["id"], ks.text_to_image, strict=True)):
            assert image_ids[t] == sentence_imgid[sentid] == ks.captions["image_id"][j]


def test_captions_are_stripped_and_duplicates_kept():
    ks = load_karpathy(COCO)
    captions = ks.captions["caption"].to_list()
    assert all(c == c.strip() for c in captions)
    raw_first = _raw(COCO)["images"][0]["sentences"]
    assert raw_first[0]["raw"].endswith(" ") and captions[0] == raw_first[0]["raw"].strip()
    assert raw_first[4]["raw"].endswith("\n") and captions[4] == raw_first[4]["raw"].strip()
    repeated = [c for c, n in Counter(captions).items() if n > 1]
    assert len(repeated) == 1
    rows = [j for j, c in enumerate(captions) if c == repeated[0]]
    assert len({int(ks.text_to_image[j]) for j in rows}) == 2  # one text, two different images


def test_paths_without_and_with_image_root():
    raw_test = [im for im in _raw(COCO)["images"] if im["split"] == "test"]
    plain = load_karpathy(COCO)
    assert plain.images["path"].to_list() == [os.path.join(im["filepath"], im["filename"]) for im in raw_test]
    root = FIXTURES / "images"
    rooted = load_karpathy(COCO, image_root=root)
    assert rooted.images["path"].to_list() == [os.path.join(str(root), im["filepath"], im["filename"])
                                               for im in raw_test]
    every = load_karpathy(COCO, split=None, image_root=str(root))
    assert all(Path(p).is_file() for p in every.images["path"])  # the fixture images exist where the paths say


def test_pairs_are_the_text_to_image_pairing_and_build_paired_embeddings(rng):
    ks = load_karpathy(COCO, split=None)
    pairs = ks.pairs()
    assert pairs.dtype == np.int64 and pairs.shape == (ks.n_captions, 2)
    assert np.array_equal(pairs[:, 0], ks.text_to_image)
    assert np.array_equal(pairs[:, 1], np.arange(ks.n_captions))
    images = Embeddings(rng.normal(size=(ks.n_images, 8)), "image", metadata=ks.images)
    texts = Embeddings(rng.normal(size=(ks.n_captions, 8)), "text", metadata=ks.captions)
    paired = PairedEmbeddings(images, texts, pairs)
    assert paired.n_pairs == ks.n_captions and not paired.is_one_to_one
    a, b = paired.matched()
    assert np.array_equal(a, images.vectors[ks.text_to_image]) and np.array_equal(b, texts.vectors)


def test_text_to_image_is_read_only():
    ks = load_karpathy(COCO)
    with pytest.raises(ValueError, match="read-only"):
        ks.text_to_image[0] = 1


def test_flickr_layout():
    raw = _raw(FLICKR)
    ks = load_karpathy(FLICKR, split="test")
    test_images = [im for im in raw["images"] if im["split"] == "test"]
    assert ks.dataset == "flickr30k"
    assert ks.images.columns == ["id", "path", "filename", "split"]  # no cocoid in Flickr30k
    assert ks.images["path"].to_list() == [im["filename"] for im in test_images]
    assert ks.n_captions == sum(len(im["sentences"]) for im in test_images)
    root = FIXTURES / "images" / "flickr30k-images"
    every = load_karpathy(FLICKR, split=None, image_root=root)
    assert every.images["path"].to_list() == [os.path.join(str(root), im["filename"]) for im in raw["images"]]
    assert all(Path(p).is_file() for p in every.images["path"])
    assert every.images.schema["id"] == pl.Int64 and every.captions.schema["image_id"] == pl.Int64


def test_repr():
    assert repr(load_karpathy(COCO)) == "KarpathySplit(dataset='coco', splits=['test'], images=4, captions=20)"


# -- bad files ---------------------------------------------------------------------------------------------------------
def _write(tmp_path: Path, data, name: str = "dataset_coco.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def _broken(tmp_path: Path, change) -> Path:
    data = _raw(COCO)
    change(data)
    return _write(tmp_path, data)


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "dataset_coco.json"
    with pytest.raises(FileNotFoundError, match=r"dataset_coco\.json") as info:
        load_karpathy(missing)
    assert str(missing) in str(info.value)


def test_not_json_and_not_the_layout(tmp_path):
    with pytest.raises(ValueError, match="not valid JSON"):
        load_karpathy(_write(tmp_path, "{'images': ["))
    with pytest.raises(ValueError, match="expected an object with an 'images' list, found list"):
        load_karpathy(_write(tmp_path, [1, 2]))
    with pytest.raises(ValueError, match=r"found an object with keys \['annotations'\]"):
        load_karpathy(_write(tmp_path, {"annotations": []}))  # e.g. a COCO captions_val2014.json
    with pytest.raises(ValueError, match="'images' list is empty"):
        load_karpathy(_write(tmp_path, {"images": []}))


def _same_imgid(data: dict) -> None:
    data["images"][7]["imgid"] = 2
    for s in data["images"][7]["sentences"]:
        s["imgid"] = 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["images"][2].pop("sentences"), r"images\[2\] \('COCO_val2014_000000522418.jpg'\).*no 'sentences'"),
        (lambda d: d["images"][3].update(sentences=[]), r"images\[3\] .*an empty 'sentences' list"),
        (lambda d: d["images"][1].pop("filename"), r"images\[1\] has no 'filename'"),
        (lambda d: d["images"][4].pop("split"), r"images\[4\] .*has no 'split'"),
        (lambda d: d["images"][0].update(imgid="0"), r"images\[0\] .*no integer 'imgid'"),
        (lambda d: d["images"].__setitem__(5, "x.jpg"), r"images\[5\] is a str"),
        (lambda d: d["images"][6]["sentences"][1].pop("raw"), r"images\[6\] .*sentences\[1\] needs a string 'raw'"),
        (lambda d: d["images"][6]["sentences"][0].update(imgid=3), r"sentences\[0\] has imgid 3, but the image's "),
        (_same_imgid, r"1 of 8 images repeat an earlier imgid \(e.g. \[2\]\)"),
        (lambda d: d["images"][7]["sentences"][0].update(sentid=0), r"1 of 40 sentences repeat an earlier sentid"),
    ],
)
def test_broken_entries_are_named(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        load_karpathy(_broken(tmp_path, change), split=None)


def test_broken_entry_outside_the_requested_split_still_fails(tmp_path):
    path = _broken(tmp_path, lambda d: d["images"][1].pop("sentences"))  # a train image
    with pytest.raises(ValueError, match=r"images\[1\]"):
        load_karpathy(path, split="test")


def test_unknown_split_lists_the_splits_present(tmp_path):
    msg = r"unknown split 'testing'.*splits present: test \(4 images\), train \(2 images\), restval \(1 image\), val"
    with pytest.raises(ValueError, match=msg):
        load_karpathy(COCO, split="testing")
    flickr_msg = r"unknown split 'restval'.*train \(1 image\), test \(2 images\), val \(1 image\)"
    with pytest.raises(ValueError, match=flickr_msg):
        load_karpathy(FLICKR, split=["test", "restval"])
    with pytest.raises(ValueError, match="empty list"):
        load_karpathy(COCO, split=[])
    with pytest.raises(TypeError, match="split must be"):
        load_karpathy(COCO, split=3)


def test_the_fixture_stays_small():
    total = sum(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file())
    assert total < 50_000
