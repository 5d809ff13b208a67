"""The encoders' input pipeline: worker processes prepare batches, results bit for bit those of num_workers=0.

Independent expectations: every result with workers is compared with the same encoder run in this thread
(``num_workers=0``, the code path of before the pipeline), a worker's error with the error the same item raises
in this thread, and "no worker left behind" with the live child processes of this process (psutil).
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

import workbench
from workbench._params import InvalidParameterError
from workbench.encoders import TorchEncoder
from workbench.encoders._pipeline import BatchPipeline, check_num_workers, default_num_workers

torch = pytest.importorskip("torch")
psutil = pytest.importorskip("psutil")


def _live_children() -> set[int]:
    alive = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def _jpeg_files(folder, n: int, size=(480, 640)) -> list[str]:
    """Smooth colour photos-like JPEGs (gradients plus noise), each a different size so batches vary."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        h, w = size[0] - 13 * i, size[1] - 7 * i
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h)], axis=-1)
        img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        path = os.path.join(folder, f"photo{i}.jpg")
        Image.fromarray(img).save(path, quality=90)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def vit():
    pytest.importorskip("open_clip")
    from workbench.encoders.openclip import OpenCLIPEncoder

    return OpenCLIPEncoder("ViT-B-32", device="cpu", seed=0)


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory) -> list[str]:
    return _jpeg_files(tmp_path_factory.mktemp("jpegs"), 5)


# -- bit for bit ---------------------------------------------------------------------------------------------------
def test_openclip_images_with_workers_are_bit_identical_in_input_order(vit, jpegs):
    from pathlib import Path

    items = [jpegs[0], np.full((50, 70, 3), 200, np.uint8), jpegs[1], Path(jpegs[2]).read_bytes(), jpegs[3]]
    alone = vit.encode("image", items, batch_size=2, num_workers=0)
    with_workers = vit.encode("image", items, batch_size=2, num_workers=2)
    assert with_workers.dtype == np.float32 and with_workers.shape == (5, 512)
    np.testing.assert_array_equal(with_workers, alone)
    assert len({row.tobytes() for row in alone}) == 5  # five different rows: the order is checked, too
    # and embed passes num_workers through (cache off and through the cache)
    embedded = workbench.embed(vit, items, "image", batch_size=2, num_workers=2, cache=False, progress=False)
    np.testing.assert_array_equal(embedded.vectors, alone)


@pytest.fixture(scope="module")
def small_cnn(tmp_path_factory):
    """A random-init mobilenet_v3_small behind TorchvisionEncoder (64-pixel crops: fast)."""
    torchvision = pytest.importorskip("torchvision")
    from workbench.encoders import TorchvisionEncoder

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = torchvision.models.get_model("mobilenet_v3_small", weights=None)
    path = tmp_path_factory.mktemp("cnn") / "small.pth"
    torch.save(net.state_dict(), path)
    return TorchvisionEncoder("mobilenet_v3_small", path, device="cpu", resize=72, crop=64)


def test_torch_and_torchvision_encoders_with_workers_are_bit_identical(small_cnn, tmp_path):
    files = _jpeg_files(tmp_path, 5, size=(120, 160))
    np.testing.assert_array_equal(small_cnn.encode("image", files, batch_size=2, num_workers=2),
                                  small_cnn.encode("image", files, batch_size=2, num_workers=0))
    np.testing.assert_array_equal(small_cnn.features(files, batch_size=3, num_workers=2),
                                  small_cnn.features(files, batch_size=3, num_workers=0))

    torch.manual_seed(1)
    wrapped = TorchEncoder(torch.nn.Linear(6, 4), "sensor", "toy", device="cpu")
    rows = [np.random.default_rng(i).normal(size=6).astype(np.float32) for i in range(7)]
    np.testing.assert_array_equal(wrapped.encode("sensor", rows, batch_size=2, num_workers=2),
                                  wrapped.encode("sensor", rows, batch_size=2))


def test_clap_audio_with_workers_is_bit_identical():
    pytest.importorskip("transformers")
    from transformers import ClapConfig

    from workbench.encoders import CLAPEncoder

    tiny = ClapConfig(
        text_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=66),
        audio_config=dict(depths=[1, 1], num_attention_heads=[1, 2], patch_embeds_hidden_size=16, hidden_size=32),
        projection_dim=16)
    clap = CLAPEncoder(config=tiny, seed=0, device="cpu")
    t = np.arange(16000) / 16000
    clips = [(np.sin(2 * np.pi * f * t), 16000) for f in (220, 440, 660, 880, 1100)]
    np.testing.assert_array_equal(clap.encode("audio", clips, batch_size=2, num_workers=2),
                                  clap.encode("audio", clips, batch_size=2, num_workers=0))


# -- errors and Ctrl-C ---------------------------------------------------------------------------------------------
def test_a_workers_bad_item_raises_the_same_value_error_naming_its_index(small_cnn, jpegs, tmp_path):
    import re

    bad_file = tmp_path / "x.jpg"
    bad_file.write_bytes(os.urandom(64))
    for bad, index in ((b"not an image", 3), (str(bad_file), 4)):
        items = [*jpegs[:3], *([jpegs[3]] if index == 4 else []), bad, jpegs[4]]
        with pytest.raises(ValueError) as here:
            small_cnn.encode("image", items, batch_size=2, num_workers=0)
        before = _live_children()
        with pytest.raises(ValueError) as there:
            small_cnn.encode("image", items, batch_size=2, num_workers=2)

        def strip(message: str) -> str:  # PIL names its BytesIO object by address
            return re.sub(r" at 0x[0-9a-f]+", "", message)

        assert type(there.value) is ValueError and strip(str(there.value)) == strip(str(here.value))
        assert str(there.value).startswith(f"image item {index} (")
        assert _live_children() <= before


class _Interrupting(torch.nn.Module):
    """A model whose second forward pass is interrupted, as Ctrl-C would interrupt the consumer."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return self.linear(x)


def test_ctrl_c_in_the_consumer_leaves_no_worker_behind():
    before = _live_children()
    encoder = TorchEncoder(_Interrupting(), "sensor", "interrupting", device="cpu")
    rows = [np.ones(3, np.float32) * i for i in range(40)]
    with pytest.raises(KeyboardInterrupt):
        encoder.encode("sensor", rows, batch_size=2, num_workers=2)
    assert encoder.module.calls == 2
    assert _live_children() <= before

    def slow(batch, start):
        return np.asarray(batch)

    with pytest.raises(KeyboardInterrupt), BatchPipeline(list(range(100)), 3, slow, num_workers=2) as batches:
        for start, _ in batches:
            assert _live_children() - before  # the workers are running
            if start >= 3:
                raise KeyboardInterrupt
    assert _live_children() <= before


def test_num_workers_is_checked_and_defaults_to_the_cores():
    from workbench._threads import available_cores

    assert check_num_workers(None) == default_num_workers() == (0 if available_cores() == 1
                                                                 else min(available_cores(), 8))
    with pytest.raises(InvalidParameterError, match="num_workers"):
        TorchEncoder(torch.nn.Linear(2, 2), "sensor", "toy", device="cpu").encode("sensor", [np.ones(2)],
                                                                                   num_workers=-1)

    class Plain:
        name, modalities, fingerprint = "plain", ("sensor",), "f"

        def encode(self, modality, items, batch_size=32):
            return np.asarray(items, dtype=np.float32)

    with pytest.raises(TypeError, match="has no num_workers parameter"):
        workbench.embed(Plain(), [[1.0, 0.0]], "sensor", num_workers=2, cache=False, progress=False)
    out = workbench.embed(Plain(), [[1.0, 0.0]], "sensor", cache=False, progress=False)
    np.testing.assert_array_equal(out.vectors, [[1.0, 0.0]])


# -- opt-in decoding on the device, precisions -----------------------------------------------------------------------
def test_device_decoding_is_opt_in_close_to_pil_and_keyed_apart(vit, jpegs):
    from PIL import Image

    from workbench.encoders.openclip import OpenCLIPEncoder

    on_device = OpenCLIPEncoder("ViT-B-32", device="cpu", seed=0, image_decode="device")
    assert vit.image_decode == "pil" and "image_decode" not in vit.preprocessing
    assert "image_decode=device:cpu" in on_device.preprocessing and on_device.fingerprint == vit.fingerprint
    png = io.BytesIO()
    Image.open(jpegs[0]).save(png, format="PNG")
    items = [*jpegs[:3], png.getvalue()]
    prepared = on_device._device_images(items, 0)
    assert [kind for kind, _ in prepared] == ["jpeg", "jpeg", "jpeg", "pixels"]
    pixels = on_device._device_images.finish(prepared, 0, torch.device("cpu"))
    reference = vit.pixels([Image.open(p).convert("RGB") for p in jpegs[:3]] + [Image.open(png).convert("RGB")])
    assert pixels.shape == reference.shape
    assert float((pixels - reference).abs().mean()) < 0.05  # normalised units (about 4 std per 255 grey levels)
    emb = on_device.encode("image", items[2:], batch_size=1, num_workers=0)
    assert np.all(np.sum(emb * vit.encode("image", items[2:], batch_size=2), axis=1) > 0.99)
    np.testing.assert_array_equal(on_device.encode("image", items[2:], batch_size=1, num_workers=2), emb)
    bad = b"\xff\xd8\xff" + os.urandom(200)
    with pytest.raises(ValueError, match=r"image item 2 \(JPEG\) cannot be decoded"):
        on_device.encode("image", [jpegs[0], jpegs[1], bad], batch_size=4, num_workers=0)
    with pytest.raises(ValueError, match="image_decode must be one of"):
        OpenCLIPEncoder("ViT-B-32", device="cpu", image_decode="gpu")


def test_amp_precisions_autocast_with_float32_weights(vit, jpegs):
    from workbench.encoders.openclip import OpenCLIPEncoder

    amp = OpenCLIPEncoder("ViT-B-32", device="cpu", seed=0, precision="amp_bf16")
    assert amp.fingerprint == vit.fingerprint  # the weights stay float32: the same weights
    assert "precision=amp_bf16" in amp.preprocessing
    emb, ref = amp.encode("image", jpegs[:1]), vit.encode("image", jpegs[:1])
    assert emb.dtype == np.float32 and not np.array_equal(emb, ref)  # bfloat16 arithmetic ran
    assert np.all(np.sum(emb * ref, axis=1) > 0.99)
    texts = amp.encode("text", ["a photo of a cat"])
    assert np.all(np.sum(texts * vit.encode("text", ["a photo of a cat"]), axis=1) > 0.99)
