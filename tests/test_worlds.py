"""Synthetic worlds: reproducibility, captions, planted answers in the pixels and samples, splits and relevance."""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter

import numpy as np
import polars as pl
import pytest

from workbench.datasets import worlds
from workbench.datasets.worlds import COLORS, PALETTE, POSITIONS, SHAPES, SIZES, World, shapes, tones

CAPTION = re.compile(
    r"^a (?P<size>small|large) (?P<color>\w+) (?P<shape>\w+) "
    r"(?:at the (?P<corner>top left|top right|bottom left|bottom right)|in the (?P<centre>centre))$"
)
TONE_CAPTION = re.compile(
    r"^a (?P<pitch>low|mid|high) (?P<waveform>sine|square-wave|sawtooth|triangle-wave) tone that "
    r"(?P<envelope>stays steady|fades in|fades out|pulses)$"
)


def sha(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def world() -> World:
    return shapes(2000, seed=0)


@pytest.fixture(scope="module")
def tone_world() -> World:
    return tones(480, seed=3)


# -- reproducibility ------------------------------------------------------------------------------------------------


def test_same_seed_same_bytes_different_seed_different_bytes():
    a, b, c = shapes(300, seed=7, with_sound=True), shapes(300, seed=7, with_sound=True), shapes(300, seed=8)
    assert sha(a.images) == sha(b.images) and sha(a.sounds) == sha(b.sounds)
    assert a.items.equals(b.items)
    assert sha(a.images) != sha(c.images)
    assert a.captions != c.captions
    t1, t2, t3 = tones(100, seed=1), tones(100, seed=1), tones(100, seed=2)
    assert sha(t1.sounds) == sha(t2.sounds) and t1.items.equals(t2.items)
    assert sha(t1.sounds) != sha(t3.sounds)


def test_smaller_worlds_are_prefixes_and_sound_does_not_change_images(world):
    small = shapes(50, seed=0, with_sound=True)
    assert sha(small.images) == sha(world.images[:50])
    assert small.items.select(world.items.columns).equals(world.items.head(50))
    assert sha(tones(20, seed=3).sounds) == sha(tones(60, seed=3).sounds[:20])


def test_generation_is_fast():
    start = time.perf_counter()
    shapes(2000, seed=11)
    assert time.perf_counter() - start < 5.0  # about 0.2 s; generous for slow machines


# -- captions and attributes ----------------------------------------------------------------------------------------


def test_at_least_300_distinct_captions_balanced(world):
    captions = world.items.get_column("caption").to_list()
    counts = Counter(captions)
    assert len(counts) >= 300
    assert len(counts) == len(SHAPES) * len(COLORS) * len(SIZES) * len(POSITIONS) == 360
    assert set(counts.values()) <= {2000 // 360, 2000 // 360 + 1}
    assert len(set(world.items.select("shape", "color", "size", "position").rows())) == len(counts)


def test_captions_agree_with_attributes_and_codes(world):
    items = world.items
    for row in items.iter_rows(named=True):
        match = CAPTION.match(row["caption"])
        assert match, row["caption"]
        assert match["size"] == row["size"] and match["color"] == row["color"] and match["shape"] == row["shape"]
        assert (match["corner"] or match["centre"]) == row["position"]
    for attribute, vocab in (("shape", SHAPES), ("color", COLORS), ("size", SIZES), ("position", POSITIONS)):
        codes = items.get_column(f"{attribute}_code").to_numpy()
        assert [vocab[c] for c in codes] == items.get_column(attribute).to_list()
    assert items.get_column("id").to_list() == list(range(2000))
    assert world.attributes == ("shape", "color", "size", "position")


def test_tone_captions_agree_with_attributes(tone_world):
    for row in tone_world.items.iter_rows(named=True):
        match = TONE_CAPTION.match(row["caption"])
        assert match, row["caption"]
        assert match["pitch"] == row["pitch"]
        assert match["waveform"] == worlds.WAVEFORMS[row["waveform"]]
        assert match["envelope"] == worlds.ENVELOPES[row["envelope"]]
    assert tone_world.items.get_column("caption").n_unique() == 48


# -- planted answers: images ----------------------------------------------------------------------------------------


def _shape_pixels(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask of non-background pixels and each image's background colour (packed as r * 65536 + g * 256 + b).

    The background covers more than half of every image (the largest shape has under 700 of 4096 pixels), so it is
    the median pixel value.
    """
    flat = images.reshape(len(images), -1, 3).astype(np.int64)
    packed = flat[..., 0] * 65536 + flat[..., 1] * 256 + flat[..., 2]
    background = np.sort(packed, axis=1)[:, packed.shape[1] // 2]
    assert np.all((packed == background[:, None]).mean(axis=1) > 0.5)
    return (packed != background[:, None]).reshape(images.shape[:3]), background


def test_images_encode_colour_position_and_size(world):
    images = world.images
    n, side = images.shape[:2]
    mask, background = _shape_pixels(images)
    assert np.all(background % 65536 // 256 == background // 65536)  # grey backgrounds
    counts = mask.sum(axis=(1, 2))
    assert counts.min() > 20

    # colour: mean of the shape's pixels is nearest to the named palette colour
    rgb = np.stack([(images[..., c] * mask).sum(axis=(1, 2)) for c in range(3)], axis=1) / counts[:, None]
    palette = np.array([PALETTE[c] for c in COLORS], dtype=np.float64)
    nearest = np.linalg.norm(rgb[:, None, :] - palette[None], axis=2).argmin(axis=1)
    assert [COLORS[k] for k in nearest] == world.items.get_column("color").to_list()
    # every shape pixel has one colour (no anti-aliasing), within +-15 per channel of the palette
    for i in range(0, n, 97):
        assert len(np.unique(images[i][mask[i]], axis=0)) == 1

    # position: the centroid lies in the named quadrant, or near the middle for "centre"
    yy, xx = np.mgrid[0:side, 0:side]
    cx = (mask * xx).sum(axis=(1, 2)) / counts
    cy = (mask * yy).sum(axis=(1, 2)) / counts
    for position, x, y in zip(world.items.get_column("position").to_list(), cx, cy, strict=True):
        if position == "centre":
            assert abs(x - side / 2) < side / 8 and abs(y - side / 2) < side / 8
        else:
            vertical, horizontal = position.split()
            assert (y < side / 2) == (vertical == "top") and (x < side / 2) == (horizontal == "left")
            assert abs(x - side / 2) > side / 8 and abs(y - side / 2) > side / 8

    # size: every small shape has fewer pixels than every large one
    large = world.items.get_column("size").to_numpy() == "large"
    assert counts[~large].max() < counts[large].min()


# the shapes' outlines in units of the size radius r, upright (y grows downwards), from the documented geometry
_OUTLINES = {
    "square": [(-0.886, -0.886), (0.886, -0.886), (0.886, 0.886), (-0.886, 0.886)],
    "diamond": [(0.0, -1.25), (1.25, 0.0), (0.0, 1.25), (-1.25, 0.0)],
    "triangle": [(1.2 * np.sin(2 * np.pi * k / 3), -1.2 * np.cos(2 * np.pi * k / 3)) for k in range(3)],
    "star": [((1.25, 0.625)[k % 2] * np.sin(np.pi * k / 5), -(1.25, 0.625)[k % 2] * np.cos(np.pi * k / 5))
             for k in range(10)],
    "cross": [(-0.3, -1.2), (0.3, -1.2), (0.3, -0.3), (1.2, -0.3), (1.2, 0.3), (0.3, 0.3), (0.3, 1.2), (-0.3, 1.2),
              (-0.3, 0.3), (-1.2, 0.3), (-1.2, -0.3), (-0.3, -0.3)],
}


def _inside(u: np.ndarray, v: np.ndarray, shape: str) -> np.ndarray:
    """Which local points (u, v) lie inside a shape (even-odd ray casting; circles analytically)."""
    if shape == "circle":
        return u**2 + v**2 <= 1.0
    inside = np.zeros(u.shape, dtype=bool)
    vertices = _OUTLINES[shape]
    for (x1, y1), (x2, y2) in zip(vertices, vertices[1:] + vertices[:1], strict=True):
        crosses = (y1 > v) != (y2 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (v - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (u < x_at)
    return inside


def test_images_encode_the_shape(world):
    """Template matching: of the six outlines placed at the item's centre, radius and angle, the named one overlaps
    the drawn pixels best (intersection over union), for every item."""
    mask, _ = _shape_pixels(world.images)
    side = world.images.shape[1]
    ious, margins = [], []
    for i, row in enumerate(world.items.iter_rows(named=True)):
        x, y, r, theta = row["x"], row["y"], row["radius"], np.radians(row["angle"])
        x0, y0 = max(int(x - 1.5 * r), 0), max(int(y - 1.5 * r), 0)
        x1, y1 = min(int(x + 1.5 * r) + 2, side), min(int(y + 1.5 * r) + 2, side)
        drawn = mask[i, y0:y1, x0:x1]
        assert drawn.sum() == mask[i].sum()  # nothing drawn outside the outline's reach
        yy, xx = np.mgrid[y0:y1, x0:x1] + 0.5  # pixel centres in drawing coordinates
        dx, dy = (xx - x) / r, (yy - y) / r
        u, v = dx * np.cos(theta) + dy * np.sin(theta), -dx * np.sin(theta) + dy * np.cos(theta)
        scores = {s: (drawn & _inside(u, v, s)).sum() / (drawn | _inside(u, v, s)).sum() for s in SHAPES}
        ranked = sorted(scores, key=scores.get, reverse=True)
        assert ranked[0] == row["shape"], (i, row["caption"], scores)
        ious.append(scores[ranked[0]])
        margins.append(scores[ranked[0]] - scores[ranked[1]])
    assert np.median(ious) > 0.9 and min(ious) > 0.75
    assert np.median(margins) > 0.1


# -- planted answers: sounds ----------------------------------------------------------------------------------------


def _spectrum(sound: np.ndarray) -> np.ndarray:
    return np.abs(np.fft.rfft(sound.astype(np.float64)))


def _peak(spectrum: np.ndarray, frequency: float, sample_rate: int, n: int, width: float = 12.0) -> float:
    centre = frequency * n / sample_rate
    lo, hi = round(centre - width), round(centre + width) + 1
    return float(spectrum[max(lo, 0):hi].max()) if lo < len(spectrum) else 0.0


def test_tones_pitch_envelope_and_waveform(tone_world):
    sounds, sr = tone_world.sounds, tone_world.sample_rate
    assert sounds.dtype == np.float32 and sounds.shape == (480, 16000)
    assert np.abs(sounds).max() <= 1.0
    n = sounds.shape[1]
    window = int(0.1 * sr)
    for sound, row in zip(sounds, tone_world.items.iter_rows(named=True), strict=True):
        spectrum = _spectrum(sound)
        dominant = spectrum.argmax() * sr / n
        pitch = "low" if dominant < 350 else ("mid" if dominant < 900 else "high")
        assert pitch == row["pitch"], (row["caption"], dominant)
        assert abs(dominant - row["frequency"]) <= 5

        first, last = (np.sqrt(np.mean(sound[s].astype(np.float64) ** 2)) for s in
                       (slice(0, window), slice(n - window, n)))
        frames = np.sqrt(np.mean(sound[: n // 320 * 320].astype(np.float64).reshape(-1, 320) ** 2, axis=1))  # 20 ms
        middle = frames[3:-3]
        crossings = int(np.sum(np.diff(np.sign(middle - middle.mean())) != 0))
        envelope = row["envelope"]
        if envelope == "fades in":
            assert last > 4 * first
        elif envelope == "fades out":
            assert first > 4 * last
        elif envelope == "steady":
            assert 0.8 < first / last < 1.25 and middle.std() / middle.mean() < 0.1
        else:  # pulses: 3-5 Hz, so the frame loudness crosses its mean at least 4 times
            assert crossings >= 4 and middle.std() / middle.mean() > 0.3

        f = row["frequency"]
        h1, h2, h3 = (_peak(spectrum, k * f, sr, n) for k in (1, 2, 3))
        ratio2, ratio3 = h2 / h1, h3 / h1
        waveform = row["waveform"]
        if waveform == "sine":
            assert ratio2 < 0.02 and ratio3 < 0.02
        elif waveform == "square":
            assert ratio2 < 0.02 and 0.25 < ratio3 < 0.42
        elif waveform == "triangle":
            assert ratio2 < 0.02 and 0.07 < ratio3 < 0.16
        else:  # sawtooth
            assert 0.4 < ratio2 < 0.6


def test_shape_sounds_follow_colour_and_size():
    world = shapes(360, seed=5, with_sound=True)
    sr, n = world.sample_rate, world.sounds.shape[1]
    base = {"red": 262, "orange": 330, "yellow": 392, "green": 523, "blue": 659, "purple": 784}
    for sound, row in zip(world.sounds, world.items.iter_rows(named=True), strict=True):
        dominant = _spectrum(sound).argmax() * sr / n
        nearest = min(base, key=lambda c: abs(np.log(dominant / base[c])))
        assert nearest == row["color"]
        peak = np.abs(sound).max()
        assert (0.2 < peak <= 0.36) if row["size"] == "small" else (0.65 < peak <= 0.9)


# -- splits and relevance -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: shapes(2000, seed=0), lambda: tones(480, seed=3)], ids=["shapes", "tones"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compositional_split_holds_out_unseen_combinations(make, seed):
    world = make()
    a, b = world.attributes[:2]
    train, test = world.split(0.2, seed=seed, compositional=True)
    assert len(train) + len(test) == len(world)
    assert set(train.items["id"]).isdisjoint(test.items["id"])
    seen = set(zip(train.items[a], train.items[b], strict=True))
    assert not any(pair in seen for pair in zip(test.items[a], test.items[b], strict=True))
    for attribute in world.attributes:
        assert set(test.items[attribute]) <= set(train.items[attribute]), attribute
    assert 0.1 < len(test) / len(world) < 0.3
    # rows of a subset still match their images
    ids = test.items.get_column("id").to_numpy()
    if world.images is not None:
        assert np.array_equal(test.images, world.images[ids])
    else:
        assert np.array_equal(test.sounds, world.sounds[ids])
    again = world.split(0.2, seed=seed, compositional=True)[1]
    assert again.items.equals(test.items)


def test_compositional_split_by_other_attributes():
    world = shapes(720, seed=2)
    train, test = world.split(0.25, seed=0, compositional=True, by=("size", "position"))
    seen = set(zip(train.items["size"], train.items["position"], strict=True))
    assert not any(p in seen for p in zip(test.items["size"], test.items["position"], strict=True))
    assert set(test.items["size"]) <= set(train.items["size"])


def test_random_split_is_exact_and_seeded(world):
    train, test = world.split(0.2, seed=4)
    assert (len(train), len(test)) == (1600, 400)
    ids = np.concatenate([train.items["id"].to_numpy(), test.items["id"].to_numpy()])
    assert sorted(ids.tolist()) == list(range(2000))
    assert train.name == "shapes/train" and test.name == "shapes/test"
    assert test.items.equals(world.split(0.2, seed=4)[1].items)
    assert not test.items.equals(world.split(0.2, seed=5)[1].items)
    assert not test.images.flags.writeable


def test_relevance_and_caption_groups_match_brute_force():
    world = shapes(500, seed=9)
    captions = world.captions
    expected = sorted((i, j) for i in range(500) for j in range(500) if captions[i] == captions[j])
    assert world.relevance().dtype == np.int64
    assert [tuple(p) for p in world.relevance().tolist()] == expected
    groups = world.caption_groups()
    assert all((groups[i] == groups[j]) == (captions[i] == captions[j]) for i in range(0, 500, 7) for j in range(500))
    assert groups[0] == 0 and groups.max() + 1 == len(set(captions))
    sub = world.subset(np.arange(0, 500, 3))
    sub_captions = sub.captions
    expected_sub = sorted((i, j) for i in range(len(sub)) for j in range(len(sub))
                          if sub_captions[i] == sub_captions[j])
    assert [tuple(p) for p in sub.relevance().tolist()] == expected_sub


# -- the World object and bad input ---------------------------------------------------------------------------------


def test_world_object_basics(world):
    assert len(world) == 2000
    assert world.images.shape == (2000, 64, 64, 3) and world.images.dtype == np.uint8
    assert world.sounds is None and world.modalities == ("image", "text")
    assert not world.images.flags.writeable
    with pytest.raises(ValueError):
        world.images[0, 0, 0, 0] = 1
    assert "distinct captions=360" in repr(world)
    assert shapes(10, size=32).images.shape == (10, 32, 32, 3)
    assert world.subset([5, 2]).items["id"].to_list() == [5, 2]
    custom = World(pl.DataFrame({"id": [0, 1], "caption": ["x", "x"], "k": ["a", "b"], "k_code": [0, 1]}))
    assert custom.attributes == ("k",) and custom.relevance().tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: shapes(0), ValueError, "n must be >= 1"),
        (lambda: shapes(5, seed=-1), ValueError, "seed must be >= 0"),
        (lambda: shapes(5, seed=1.5), TypeError, "seed must be an int"),
        (lambda: shapes(True), TypeError, "n must be an int"),
        (lambda: shapes(5, size=8), ValueError, "size must be >= 16"),
        (lambda: tones(5, duration=0), ValueError, "duration must be between"),
        (lambda: tones(5, sample_rate=100), ValueError, "sample_rate must be >= 4000"),
        (lambda: shapes(20).split(1.0), ValueError, "between 0 and 1"),
        (lambda: shapes(20).split(0.2, compositional=True, by=("shape", "shape")), ValueError, "two different"),
        (lambda: shapes(20).split(0.2, compositional=True, by=("shape", "hue")), ValueError, "unknown attribute"),
        (lambda: shapes(1).split(0.5), ValueError, "cannot split a world of 1"),
        (lambda: shapes(20).subset([0, 25, 30]), ValueError, "2 of 3 row indices are outside"),
        (lambda: World(pl.DataFrame({"id": [0]})), ValueError, r"lacks column\(s\) \['caption'\]"),
        (lambda: World(pl.DataFrame({"id": [0], "caption": ["a"]}), images=np.zeros((2, 4, 4, 3))), ValueError,
         "images has 2 rows but items has 1"),
    ],
)
def test_bad_input_names_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_world_written_to_a_folder_is_read_back_by_the_folder_loaders(tmp_path):
    import wave

    from PIL import Image

    from workbench.datasets import folders

    world = shapes(12, seed=2, with_sound=True).subset(np.arange(3, 12), name="shapes/part")
    with pytest.raises(ValueError, match="choose one with modality="):
        world.to_folder(tmp_path / "both")
    images = folders.image_captions(world.to_folder(tmp_path / "images", modality="image"))
    assert images.skipped.height == 0 and images.captions["caption"].to_list() == world.captions
    assert images.items["id"].to_list() == [f"{i:06d}.png" for i in world.items["id"].to_list()]
    for path, expected in zip(images.items["path"], world.images, strict=True):
        with Image.open(path) as im:
            np.testing.assert_array_equal(np.asarray(im.convert("RGB")), expected)  # PNG is lossless

    sounds = folders.audio_captions(world.to_folder(tmp_path / "sounds", modality="sound"))
    assert sounds.skipped.height == 0 and sounds.captions["caption"].to_list() == world.captions
    assert set(sounds.items["sample_rate"].to_list()) == {world.sample_rate}
    for path, expected in zip(sounds.items["path"], world.sounds, strict=True):
        with wave.open(path) as handle:
            pcm = np.frombuffer(handle.readframes(handle.getnframes()), dtype="<i2") / 32767
        np.testing.assert_allclose(pcm, expected, atol=0.5 / 32767 + 1e-9)  # 16-bit rounding

    with pytest.raises(ValueError, match="already exists"):
        world.to_folder(tmp_path / "images", modality="image")
    with pytest.raises(ValueError, match="modality must be one of"):
        tones(3).to_folder(tmp_path / "x", modality="image")
    assert not list(tmp_path.glob(".*.tmp"))  # no half-built folder left behind


def test_an_interrupted_folder_write_leaves_nothing(tmp_path, monkeypatch):
    import workbench.datasets.worlds._folder as world_folder

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(world_folder, "_write_images", fail)
    with pytest.raises(OSError, match="disk full"):
        shapes(4, seed=0).to_folder(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
