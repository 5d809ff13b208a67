"""`workbench reproduce openclip-retrieval`, end to end on the hand-made Karpathy fixture with random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("open_clip")

from workbench.cli import main
from workbench.datasets import load_karpathy
from workbench.reproduce import PUBLISHED, openclip_retrieval

FIXTURE = Path(__file__).parent / "fixtures" / "karpathy"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


@pytest.fixture(scope="module")
def encoder():
    from workbench.encoders import OpenCLIPEncoder

    return OpenCLIPEncoder("ViT-B-32", None)


def test_protocol_on_the_fixture_equals_a_hand_computation(encoder, tmp_path):
    result = openclip_retrieval("ViT-B-32", None, FIXTURE / "dataset_coco.json", image_root=FIXTURE / "images",
                                cache_dir=tmp_path, progress=False, encoder=encoder)
    split = load_karpathy(FIXTURE / "dataset_coco.json", split="test", image_root=FIXTURE / "images")
    assert (result.n_images, result.n_captions) == (split.n_images, split.n_captions)
    images = encoder.encode("image", split.images["path"].to_list())
    texts = encoder.encode("text", split.captions["caption"].to_list())
    sims = texts.astype(np.float64) @ images.T.astype(np.float64)
    # a caption queries the images: hit when its image scores highest
    hits = sims.argmax(axis=1) == split.text_to_image
    assert result.metrics["image_retrieval_recall@1"] == pytest.approx(hits.mean())
    # an image queries the captions: a hit when no other image's caption scores at least as high as its best own
    # one (the fixture has one caption text on two images: identical embeddings tie, and a tie counts as a miss)
    own = split.text_to_image[:, None] == np.arange(split.n_images)[None, :]
    best_own = np.where(own, sims, -np.inf).max(axis=0)
    beaten = ((sims >= best_own[None, :]) & ~own).any(axis=0)
    assert result.metrics["text_retrieval_recall@1"] == pytest.approx(np.mean(~beaten))
    assert result.published == {}  # no published numbers for random weights


def test_published_numbers_sit_beside_ours(encoder, tmp_path):
    # the published row is looked up by (model, weights, dataset); a stand-in encoder shows the table's shape
    result = openclip_retrieval("ViT-B-32", "openai", FIXTURE / "dataset_coco.json", image_root=FIXTURE / "images",
                                cache_dir=tmp_path, progress=False, encoder=encoder)
    table = result.table()
    row = table.filter(table["metric"] == "text_retrieval_recall@1").row(0, named=True)
    assert row["published"] == PUBLISHED[("ViT-B-32", "openai", "coco")]["text_retrieval_recall@1"] == 0.5012
    assert row["difference"] == pytest.approx(row["ours"] - 0.5012)


def test_command_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))
    code = main(["reproduce", "openclip-retrieval", "--pretrained", "none", "--flickr",
                 str(FIXTURE / "dataset_flickr30k.json"), "--image-root", str(FIXTURE / "images" / "flickr30k-images")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "flickr30k 2 images" in out and "image_retrieval_recall@1" in out
    assert main(["reproduce", "openclip-retrieval", "--pretrained", "none", "--coco",
                 str(FIXTURE / "dataset_coco.json"), "--image-root", str(tmp_path)]) == 2
    assert "images of the split are missing" in capsys.readouterr().err
