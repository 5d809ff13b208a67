"""CLAPEncoder on transformers' ClapModel at random init, offline: audio and text, save/reload, audio input.

The default ClapConfig model (153M parameters) is built once per module; nothing is downloaded.
"""

from __future__ import annotations

import struct
import time
import wave

import numpy as np
import pytest

import workbench
from workbench.encoders import WeightsUnavailableError, load

pytest.importorskip("torch")
pytest.importorskip("transformers", reason="the `audio` extra (transformers) is not installed")
pytest.importorskip("scipy")

from workbench.encoders.base import tokenizer_digest
from workbench.encoders.clap import CLAPEncoder
from workbench.encoders.media import load_audio, read_wav, resample

RATE = 16000
CAPTIONS = ["a dog barks", "a violin plays a slow melody", "rain on a tin roof"]


def tone(freq: float = 440.0, seconds: float = 1.0, rate: int = RATE) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def write_wav(path, samples: np.ndarray, rate: int, width: int = 2) -> None:
    """PCM WAV through the standard library; ``samples`` in [-1, 1], shape (n,) or (n, channels)."""
    frames = samples.reshape(len(samples), -1)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(frames.shape[1])
        handle.setsampwidth(width)
        handle.setframerate(rate)
        if width == 1:
            data = np.clip(np.round(frames * 127 + 128), 0, 255).astype(np.uint8).tobytes()
        elif width == 3:
            ints = np.clip(np.round(frames * (2**23 - 1)), -(2**23), 2**23 - 1).astype("<i4").reshape(-1)
            data = b"".join(struct.pack("<i", int(v))[:3] for v in ints)
        else:
            kind = {2: "<i2", 4: "<i4"}[width]
            scale = 2 ** (8 * width - 1) - 1
            data = np.round(frames * scale).astype(kind).tobytes()
        handle.writeframes(data)


def write_float_wav(path, samples: np.ndarray, rate: int) -> None:
    """A mono IEEE-float32 WAV (format code 3), which the stdlib wave module cannot write or read."""
    data = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


@pytest.fixture(scope="module")
def clap() -> CLAPEncoder:
    return CLAPEncoder(device="cpu", seed=0)


@pytest.fixture(scope="module")
def reloaded(clap, tmp_path_factory) -> CLAPEncoder:
    folder = clap.save_pretrained(tmp_path_factory.mktemp("clap") / "random-clap")
    return CLAPEncoder(folder, device="cpu")


CLIPS = [(tone(440), RATE), (tone(300, 0.5), RATE)]  # 1 s and 0.5 s at 16 kHz: resampled to 48 kHz, padded


@pytest.fixture(scope="module")
def clap_embeddings(clap) -> tuple[np.ndarray, np.ndarray]:
    return clap.encode("audio", CLIPS), clap.encode("text", CAPTIONS)


@pytest.mark.slow
def test_random_init_audio_and_text(clap, clap_embeddings):
    assert clap.name == "clap:random-seed0" and clap.modalities == ("audio", "text")
    assert isinstance(clap, workbench.encoders.Encoder)
    assert clap.feature_extractor.truncation == "rand_trunc" and clap.feature_extractor.sampling_rate == 48000
    audio, text = clap_embeddings
    for emb, n in ((audio, 2), (text, 3)):
        assert emb.shape == (n, 512) and emb.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert "48000" in clap.preprocessing and "RobertaTokenizer" in clap.preprocessing
    before = tokenizer_digest(clap.tokenizer)
    clap.encode("text", ["tokenizing (with truncation) does not change the tokenizer's identity"])
    assert tokenizer_digest(clap.tokenizer) == before


@pytest.mark.slow
def test_save_and_reload_gives_identical_embeddings(clap, clap_embeddings, reloaded):
    assert reloaded.name == "clap:dir:random-clap"
    assert reloaded.fingerprint == clap.fingerprint
    assert reloaded.preprocessing == clap.preprocessing
    audio, text = clap_embeddings
    np.testing.assert_array_equal(reloaded.encode("audio", CLIPS), audio)
    np.testing.assert_array_equal(reloaded.encode("text", CAPTIONS), text)


def test_spec_string_loads_a_saved_folder(tmp_path):
    small = CLAPEncoder(config=_tiny_config(), seed=3, device="cpu")
    folder = small.save_pretrained(tmp_path / "small")
    for spec in (f"clap:{folder}", f"clap:@{folder}"):
        again = load(spec, device="cpu")
        assert again.fingerprint == small.fingerprint
        np.testing.assert_array_equal(again.encode("text", CAPTIONS), small.encode("text", CAPTIONS))


def test_an_embedding_does_not_depend_on_its_batch_or_on_chance():
    clap = CLAPEncoder(config=_tiny_config(), device="cpu")
    long_clip = (np.random.default_rng(0).normal(0, 0.1, 12 * RATE).astype(np.float32), RATE)  # > 10 s window
    short = (tone(440), RATE)
    alone = clap.encode("audio", [long_clip])
    in_batch = clap.encode("audio", [short, long_clip, short], batch_size=3)
    np.testing.assert_allclose(in_batch[1], alone[0], atol=1e-5)
    np.testing.assert_allclose(in_batch[0], in_batch[2], atol=1e-6)
    np.testing.assert_array_equal(clap.encode("audio", [long_clip]), alone)


def test_audio_items_of_every_kind_agree(tmp_path):
    base = tone(440)
    stereo = np.stack([base, base], axis=1)
    path = tmp_path / "tone.wav"
    write_wav(path, stereo, RATE)
    enc = CLAPEncoder(config=_tiny_config(), device="cpu", sample_rate=RATE)
    floats = enc.encode("audio", [(base, RATE), base, (stereo.T.copy(), RATE), (stereo, RATE)])
    np.testing.assert_array_equal(floats, np.broadcast_to(floats[0], floats.shape))
    pcm16 = np.round(base * 32767).astype(np.int16)  # what the 16-bit file holds
    quantised = enc.encode("audio", [str(path), path, (pcm16, RATE)])
    np.testing.assert_array_equal(quantised, np.broadcast_to(quantised[0], quantised.shape))
    np.testing.assert_allclose(quantised[0], floats[0], atol=2e-2)  # 16-bit quantisation noise only


def test_embed_caches_clap_embeddings(tmp_path, monkeypatch):
    clap = CLAPEncoder(config=_tiny_config(), device="cpu")
    clips = [(tone(440), RATE), (tone(660), RATE)]
    first = workbench.embed(clap, clips, "audio", cache_dir=tmp_path, progress=False)
    monkeypatch.setattr(clap, "encode", lambda *a, **k: pytest.fail("encoder called on a cache hit"))
    again = workbench.embed(clap, clips, "audio", cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(first.vectors, again.vectors)


# -- small configs, seeds, errors ---------------------------------------------------------------------------------
def _tiny_config():
    from transformers import ClapConfig

    return ClapConfig(
        text_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=66),
        audio_config=dict(depths=[1, 1], num_attention_heads=[1, 2], patch_embeds_hidden_size=16, hidden_size=32),
        projection_dim=16,
    )


def test_seeds_and_spec_strings():
    import torch

    before = torch.random.get_rng_state().clone()
    a = CLAPEncoder(config=_tiny_config(), seed=0, device="cpu")
    b = CLAPEncoder(config=_tiny_config(), seed=0, device="cpu")
    c = load("clap:random-seed1", config=_tiny_config(), device="cpu")
    assert torch.equal(before, torch.random.get_rng_state())
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert c.name == "clap:random-seed1"
    with pytest.raises(ValueError, match=r"either checkpoint= .* or config="):
        CLAPEncoder("laion/clap-htsat-unfused", config=_tiny_config())
    with pytest.raises(ValueError, match="vocab_size"):
        from transformers import ClapConfig

        CLAPEncoder(config=ClapConfig(text_config=dict(vocab_size=100)), device="cpu")


def test_audio_input_errors_name_the_item(tmp_path):
    enc = CLAPEncoder(config=_tiny_config(), device="cpu")
    with pytest.raises(ValueError, match="audio item 1 is a bare waveform"):
        enc.encode("audio", [(tone(), RATE), tone()])
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(ValueError, match=r"audio item 0 \(.*x\.wav'\) cannot be read"):
        enc.encode("audio", [bad])
    with pytest.raises(ValueError, match=r"audio item 0 \(.*nope\.wav'\) cannot be read"):
        enc.encode("audio", [str(tmp_path / "nope.wav")])
    with pytest.raises(ValueError, match="NaN"):
        enc.encode("audio", [(np.full(100, np.nan), RATE)])
    with pytest.raises(ValueError, match="sample rate"):
        enc.encode("audio", [(tone(), 0)])
    with pytest.raises(ValueError, match="empty"):
        enc.encode("audio", [(np.zeros(0), RATE)])
    with pytest.raises(TypeError, match="text item 0 is a bytes"):
        enc.encode("text", [b"bytes"])
    with pytest.raises(ValueError, match=r"not 'image'"):
        enc.encode("image", ["x"])


def test_hub_checkpoint_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="laion/clap-htsat-unfused") as info:
        load("clap:laion/clap-htsat-unfused")
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert "HF_HUB_OFFLINE=1 is set" in message and str(tmp_path / "hub") in message
    assert "connect to the internet" in message and "save_pretrained" in message
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        CLAPEncoder(tmp_path / "no-such-folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsUnavailableError, match=r"no config\.json"):
        CLAPEncoder(tmp_path / "empty")


# -- WAV reading and resampling -----------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_read_wav_pcm_widths(tmp_path, width):
    samples = tone(440, 0.1) * 0.9
    path = tmp_path / f"pcm{width}.wav"
    write_wav(path, samples, RATE, width)
    wave_, rate = read_wav(path)
    assert rate == RATE and wave_.dtype == np.float32 and wave_.shape == samples.shape
    np.testing.assert_allclose(wave_, samples, atol=2.0 / 2 ** (8 * width - 1) + 1e-6)


def test_read_wav_float_and_stereo(tmp_path):
    samples = tone(220, 0.05)
    write_float_wav(tmp_path / "f.wav", samples, 22050)
    wave_, rate = read_wav(tmp_path / "f.wav")
    assert rate == 22050
    np.testing.assert_array_equal(wave_, samples)
    write_wav(tmp_path / "s.wav", np.stack([samples, -samples], axis=1), 8000)
    mono, _ = read_wav(tmp_path / "s.wav")
    np.testing.assert_allclose(mono, 0.0, atol=1e-4)  # the two channels cancel when mixed down


def test_resample_is_correct():
    up = resample(tone(440, 1.0, 16000), 16000, 48000)
    assert len(up) == 48000
    ref = tone(440, 1.0, 48000)
    np.testing.assert_allclose(up[2000:-2000], ref[2000:-2000], atol=1e-3)
    down = resample(tone(1000, 1.0, 44100), 44100, 48000)
    assert len(down) == 48000
    spectrum = np.abs(np.fft.rfft(down))
    assert abs(np.argmax(spectrum) * 48000 / len(down) - 1000) < 2
    same = tone()
    assert resample(same, RATE, RATE) is not None and np.array_equal(resample(same, RATE, RATE), same)
    assert load_audio((np.zeros((3, 10), np.float32), 8000))[0].shape == (10,)
    assert load_audio((np.zeros((10, 2), np.uint8), 8000))[0].min() == -1.0
