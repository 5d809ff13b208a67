"""Build the built-in real-media sets shipped in ``workbench/datasets/data/{emoji,sounds}`` (reproducible, offline).

Sources (registry packages only; the versions are pinned below and recorded in each set's ``SOURCES.json``):

- npm ``emoji-datasource-google@16.0.0``: Noto Emoji 64-px PNGs (images: Apache-2.0, Google) and ``emoji.json``
  (names, short names, category, subcategory; MIT, Cal Henderson).
- npm ``openmoji@17.0.0``: ``data/openmoji.json`` -- the Unicode CLDR annotation (name) and keywords (tags) of each
  emoji (CC-BY-SA-4.0 data file; the strings come from Unicode CLDR, Unicode License v3). Only text is taken.
- Debian bookworm ``sonic-pi-samples 3.2.2~repack-8``: freesound.org samples, CC0 (per-file licences read from the
  package's ``copyright`` file; only CC0 files are used).
- Debian bookworm ``sound-theme-freedesktop 0.8-2``: desktop sounds; only the CC-BY-3.0 / CC-BY-SA-3.0 files.
- Debian bookworm ``espeak-ng 1.51+dfsg-10+deb12u2`` (GPL-3+; used as a tool, its output is not covered):
  speaks each emoji name (voice ``en-us``, default speed).

What is derived:

- ``emoji/images/<id>.webp``: each non-skin-tone emoji (category "Component" dropped), composited on white, resized to
  64x64 (Lanczos), WebP quality 80.
- ``emoji/items.parquet``: one row per image; ``emoji/captions.parquet``: the CLDR name and the CLDR keyword list of
  each image (two captions per image).
- ``emoji/spoken/<id>.wav``: the CLDR name of every "Animals & Nature" and "Food & Drink" emoji, spoken by espeak-ng,
  resampled to 8 kHz mono 16-bit PCM, leading/trailing silence trimmed; ``emoji/spoken.parquet``.
- ``sounds/audio/<id>.wav``: the first second (silence trimmed) of each sound, 8 kHz mono 16-bit PCM;
  ``sounds/items.parquet`` (caption from the file name, label = its family).
- ``*/features.npz``: float16 unit rows from the offline pretrained encoders, in table order: images with
  ``torchvision:mobilenet_v2`` (1280-d), texts with ``sentence-transformers:all-MiniLM-L6-v2`` (384-d), audio with
  :class:`workbench.datasets.sound_features.LogMelStatistics` (a fixed log-mel statistics featurizer, NOT a learned
  network; 192-d).

Run (about 3 minutes on 2 cores; needs ``npm``, ``apt-get download`` and, to decode FLAC/Ogg, ``soundfile``)::

    pip install --target /tmp/pydeps soundfile
    PYTHONPATH=$PWD:/tmp/pydeps HF_HUB_OFFLINE=1 python tools/build_media_sets.py --src /tmp/mediasrc
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "workbench" / "datasets" / "data"
NPM = {"emoji-datasource-google": "16.0.0", "openmoji": "17.0.0"}
DEBS = {
    "sonic-pi-samples": "3.2.2~repack-8",
    "sound-theme-freedesktop": "0.8-2",
    "espeak-ng": "1.51+dfsg-10+deb12u2",
    "espeak-ng-data": "1.51+dfsg-10+deb12u2",
    "libespeak-ng1": "1.51+dfsg-10+deb12u2",
    "libpcaudio0": "1.2-2",
    "libsonic0": "0.2.0-12",
}
THUMB = 64
RATE = 8000
SOUND_SECONDS = 1.0
SPOKEN_SECONDS = 2.0
SPOKEN_CATEGORIES = ("Animals & Nature", "Food & Drink")


def fetch(src: Path) -> None:
    """npm pack / apt-get download the pinned packages into ``src`` and unpack them (skipped when present)."""
    src.mkdir(parents=True, exist_ok=True)
    for name, version in NPM.items():
        tgz = src / f"{name}-{version}.tgz"
        if not tgz.exists():
            subprocess.run(["npm", "pack", f"{name}@{version}"], cwd=src, check=True, capture_output=True)
        out = src / "npm" / name
        if not out.exists():
            out.mkdir(parents=True)
            with tarfile.open(tgz) as tar:
                tar.extractall(out, filter="data")
    for name, version in DEBS.items():
        debs = glob.glob(str(src / f"{name}_*.deb"))
        if not debs:
            subprocess.run(["apt-get", "download", f"{name}={version}"], cwd=src, check=True, capture_output=True)
            debs = glob.glob(str(src / f"{name}_*.deb"))
        if not (src / "deb" / ".done" / name).exists():
            subprocess.run(["dpkg-deb", "-x", debs[0], str(src / "deb")], check=True)
            (src / "deb" / ".done").mkdir(parents=True, exist_ok=True)
            (src / "deb" / ".done" / name).touch()


# -- emoji -------------------------------------------------------------------------------------------------------------
def emoji_tables(src: Path) -> tuple[list[dict], list[dict]]:
    """(items, captions) rows of the emoji sets, in emoji-datasource sort order."""
    meta = json.loads((src / "npm/emoji-datasource-google/package/emoji.json").read_text())
    openmoji = json.loads((src / "npm/openmoji/package/data/openmoji.json").read_text())
    cldr = {row["hexcode"]: row for row in openmoji}
    items, captions = [], []
    for entry in sorted(meta, key=lambda e: e["sort_order"]):
        if not entry["has_img_google"] or entry["category"] == "Component":
            continue
        om = cldr.get(entry["unified"]) or cldr.get(entry["non_qualified"] or "")
        if om is None:
            raise SystemExit(f"no CLDR annotation for {entry['unified']}")
        uid = entry["unified"].lower()
        name = om["annotation"].strip()
        keywords = ", ".join(t.strip() for t in om["tags"].split(",") if t.strip())
        items.append({
            "id": uid, "file": f"images/{uid}.webp", "caption": name, "label": entry["category"],
            "subcategory": entry["subcategory"], "keywords": keywords, "short_name": entry["short_name"],
            "emoji": om["emoji"], "source": "Noto Emoji via npm emoji-datasource-google@16.0.0",
            "licence": "Apache-2.0",
        })
        kinds = [("name", name)] + ([("keywords", keywords)] if keywords and keywords != name else [])
        for k, (kind, text) in enumerate(kinds):
            captions.append({"id": f"{uid}#{k}", "item_id": uid, "caption": text, "kind": kind,
                             "label": entry["category"]})
    return items, captions


def write_thumbnails(src: Path, out: Path, items: list[dict]) -> None:
    from PIL import Image

    (out / "images").mkdir(parents=True, exist_ok=True)
    folder = src / "npm/emoji-datasource-google/package/img/google/64"
    for row in items:
        image = Image.open(folder / f"{row['id']}.png").convert("RGBA")
        canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
        canvas.alpha_composite(image)
        rgb = canvas.convert("RGB").resize((THUMB, THUMB), Image.Resampling.LANCZOS)
        rgb.save(out / row["file"], "WEBP", quality=80, method=6)


def drop_duplicate_images(out: Path, items: list[dict], captions: list[dict]) -> tuple[list[dict], list[dict]]:
    """Drop each item whose thumbnail is byte-identical to an earlier one (Noto draws some flags/families alike)."""
    import hashlib

    seen: set[str] = set()
    dropped = set()
    for row in items:
        digest = hashlib.sha256((out / row["file"]).read_bytes()).hexdigest()
        if digest in seen:
            dropped.add(row["id"])
            (out / row["file"]).unlink()
        seen.add(digest)
    print(f"emoji: dropped {len(dropped)} items whose image repeats an earlier one")
    return [r for r in items if r["id"] not in dropped], [c for c in captions if c["item_id"] not in dropped]


# -- audio -------------------------------------------------------------------------------------------------------------
def to_clip(waveform: np.ndarray, rate: int, seconds: float) -> np.ndarray:
    """Mono, resampled to RATE, silence (< -40 dB of the peak) trimmed at both ends, cut to ``seconds``, int16."""
    from math import gcd

    from scipy.signal import resample_poly

    mono = waveform.mean(axis=1) if waveform.ndim == 2 else waveform
    g = gcd(int(rate), RATE)
    mono = resample_poly(mono.astype(np.float64), RATE // g, int(rate) // g)
    peak = float(np.abs(mono).max()) or 1.0
    loud = np.flatnonzero(np.abs(mono) > peak * 0.01)
    if loud.size:
        mono = mono[loud[0] : loud[-1] + 1]
    mono = mono[: int(seconds * RATE)]
    mono = mono / peak * 0.9
    return np.round(mono * 32767).astype(np.int16)


def write_wav(path: Path, clip: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(clip.tobytes())


def debian_licences(copyright_file: Path) -> dict[str, tuple[str, str, str]]:
    """File basename -> (licence, copyright holder, upstream source) from a machine-readable Debian copyright file."""
    found: dict[str, tuple[str, str, str]] = {}
    for block in copyright_file.read_text().split("\n\n"):
        files = re.search(r"^Files:(.*?)(?=^\S)", block + "\nX", re.S | re.M)
        licence = re.search(r"^License:\s*(\S+)", block, re.M)
        holder = re.search(r"^Copyright:\s*(.*)$", block, re.M)
        source = re.search(r"^Source:\s*(.*)$", block, re.M)
        if files and licence:
            for name in files.group(1).split():
                found[os.path.basename(name)] = (licence.group(1), holder.group(1).strip() if holder else "",
                                                 source.group(1).strip() if source else "")
    return found


SOUND_FAMILIES = {
    "ambi": "ambient", "bass": "bass", "bd": "bass drum", "drum": "drum", "elec": "electronic", "glitch": "glitch",
    "guit": "guitar", "loop": "loop", "mehackit": "mehackit", "misc": "misc", "perc": "percussion", "sn": "snare",
    "tabla": "tabla", "vinyl": "vinyl", "arovane": "arovane", "hat": "hi-hat", "tbd": "tbd",
}


def sound_rows(src: Path, out: Path) -> list[dict]:
    import soundfile as sf

    rows = []
    samples = src / "deb/usr/share/sonic-pi/samples"
    licences = debian_licences(src / "deb/usr/share/doc/sonic-pi-samples/copyright")
    for path in sorted(samples.glob("*.flac")):
        licence, holder, origin = licences.get(path.name, ("", "", ""))
        if licence != "CC0":
            continue
        stem = path.stem
        family = stem.split("_")[0]
        words = " ".join(w for w in stem.split("_") if w)
        caption = f"{SOUND_FAMILIES.get(family, family)} sample: {words}"
        rows.append({"id": f"sonic-pi/{stem}", "file": f"audio/sonic-pi-{stem}.wav", "caption": caption,
                     "label": SOUND_FAMILIES.get(family, family), "source": "Debian sonic-pi-samples 3.2.2~repack-8",
                     "licence": "CC0-1.0", "original": path.name, "credit": f"{holder} ({origin})",
                     "_src": str(path)})
    stereo = src / "deb/usr/share/sounds/freedesktop/stereo"
    licences = debian_licences(src / "deb/usr/share/doc/sound-theme-freedesktop/copyright")
    for path in sorted(stereo.glob("*.oga")):
        licence, holder, _ = licences.get(path.name, ("", "", ""))
        if not licence.startswith("CC-BY"):
            continue
        caption = f"desktop sound: {path.stem.replace('-', ' ')}"
        rows.append({"id": f"freedesktop/{path.stem}", "file": f"audio/freedesktop-{path.stem}.wav",
                     "caption": caption, "label": "desktop", "licence": licence, "original": path.name,
                     "source": "Debian sound-theme-freedesktop 0.8-2", "credit": holder, "_src": str(path)})
    seen: set[bytes] = set()
    kept = []
    for row in rows:
        data, rate = sf.read(row.pop("_src"), always_2d=False)
        clip = to_clip(np.asarray(data), rate, SOUND_SECONDS)
        if clip.tobytes() in seen:  # a clip whose first second repeats an earlier clip exactly
            print(f"sounds: dropped {row['id']} (its clip repeats an earlier one)")
            continue
        seen.add(clip.tobytes())
        write_wav(out / row["file"], clip)
        kept.append(row)
    return kept


def spoken_rows(src: Path, out: Path, items: list[dict]) -> list[dict]:
    deb = src / "deb"
    env = dict(os.environ, LD_LIBRARY_PATH=str(deb / "usr/lib/x86_64-linux-gnu"))
    rows = []
    for item in items:
        if item["label"] not in SPOKEN_CATEGORIES:
            continue
        raw = subprocess.run(
            [str(deb / "usr/bin/espeak-ng"), f"--path={deb / 'usr/lib/x86_64-linux-gnu/espeak-ng-data'}",
             "-v", "en-us", "--stdout", item["caption"]], env=env, check=True, capture_output=True).stdout
        with wave.open(io.BytesIO(raw)) as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768
        row = {"id": item["id"], "file": f"spoken/{item['id']}.wav", "caption": item["caption"],
               "label": item["label"], "subcategory": item["subcategory"], "voice": "espeak-ng 1.51 en-us",
               "source": "espeak-ng 1.51 (Debian bookworm) speaking the CLDR name", "licence": "CC0-1.0"}
        write_wav(out / row["file"], to_clip(pcm, rate, SPOKEN_SECONDS))
        rows.append(row)
    return rows


EMOJI_ATTRIBUTION = """# Attribution: emoji media (workbench/datasets/data/emoji)

- Images (`images/*.webp`): Noto Emoji by Google (https://github.com/googlefonts/noto-emoji), Apache License 2.0
  (`LICENSE-Apache-2.0.txt`), taken from the npm package emoji-datasource-google 16.0.0 (Noto Emoji v2.048; its
  `emoji.json` metadata -- category, subcategory, short names -- is MIT, Copyright (c) 2013 Cal Henderson).
  Changed: composited on white, kept at 64 px, re-encoded as WebP quality 80; 14 images that
  repeat an earlier one byte for byte were dropped.
- Captions (`caption`, `keywords`): the Unicode CLDR short names and keywords of each emoji (Unicode License v3,
  https://www.unicode.org/license.txt), as collected in `data/openmoji.json` of the npm package openmoji 17.0.0
  (OpenMoji, https://openmoji.org, CC BY-SA 4.0, `LICENSE-openmoji.txt`). No OpenMoji artwork is shipped.
- Spoken names (`spoken/*.wav`): the CLDR name of each emoji, spoken by espeak-ng 1.51 (voice en-us; Debian bookworm
  package espeak-ng 1.51+dfsg-10+deb12u2, GPL-3+, used as a tool; its output is not covered by its licence),
  resampled to 8 kHz mono 16-bit; dedicated to the public domain (CC0-1.0) by this package.

Built by `tools/build_media_sets.py`; versions in `SOURCES.json`.
"""

SOUNDS_ATTRIBUTION_HEAD = """# Attribution: named sounds (workbench/datasets/data/sounds)

- `audio/sonic-pi-*.wav`: Sonic Pi samples from freesound.org (Debian package sonic-pi-samples 3.2.2~repack-8),
  each CC0 1.0 (public domain dedication; the per-file authors and sources are credited below as a courtesy).
- `audio/freedesktop-*.wav`: freedesktop.org sound theme (Debian package sound-theme-freedesktop 0.8-2); only the
  files licensed CC BY 3.0 (https://creativecommons.org/licenses/by/3.0/) or CC BY-SA 3.0
  (https://creativecommons.org/licenses/by-sa/3.0/) are used; authors below. The GPL-licensed files are left out.
- Changes to every clip: mixed to mono, resampled to 8 kHz, silence trimmed, cut to the first second, peak-normalised
  to 0.9, 16-bit WAV. The changed clips keep each source's licence (CC BY-SA files: CC BY-SA 3.0).

| file | licence | credit |
|---|---|---|
"""


# -- embeddings ----------------------------------------------------------------------------------------------------
def encode_all(out: Path, images: list[str] | None, texts: list[str], audio: list[str] | None) -> None:
    from workbench.datasets.sound_features import LogMelStatistics
    from workbench.encoders import SentenceTransformerEncoder, TorchvisionEncoder

    arrays = {}
    if images is not None:
        enc = TorchvisionEncoder("mobilenet_v2", device="cpu")
        arrays["image"] = enc.encode("image", [str(out / f) for f in images], batch_size=64)
    text = SentenceTransformerEncoder("all-MiniLM-L6-v2", device="cpu")
    arrays["text"] = text.encode("text", texts, batch_size=128)
    if audio is not None:
        arrays["audio"] = LogMelStatistics().encode("audio", [str(out / f) for f in audio])
    np.savez_compressed(out / "features.npz", **{k: v.astype(np.float16) for k, v in arrays.items()})


def add_splits(out: Path, seed: int = 0, test_fraction: float = 0.2) -> None:
    """Add the fixed ``split`` column to ``items.parquet``: ``test_fraction`` of the items (seed 0) are "test"."""
    import polars as pl

    items = pl.read_parquet(out / "items.parquet").drop("split", strict=False)
    order = np.random.default_rng(seed).permutation(items.height)
    split = np.full(items.height, "train", dtype=object)
    split[order[: round(test_fraction * items.height)]] = "test"
    items.with_columns(pl.Series("split", split.tolist(), dtype=pl.String)).write_parquet(
        out / "items.parquet", compression="zstd", compression_level=19, statistics=False)


def fit_shared(folder: str) -> None:
    """Fit a CCA per set and modality pair on the train split; store the projected rows, means and projections."""
    from itertools import combinations

    import polars as pl

    from workbench.datasets import media
    from workbench.datasets.cca import CCA

    media.media_path = lambda name: DATA / name  # read the tables and features just written (also with --out)
    media._tables.cache_clear()
    media._arrays.cache_clear()
    arrays = {}
    for ds in media.MEDIA_SETS.values():
        if ds.folder != folder or ds.fit:  # a set with ``fit`` reuses another set's CCA
            continue
        mm = media.load_features(ds.name)
        for a, b in combinations(sorted(ds.modalities), 2):
            ea, eb = mm[a], mm[b]
            left = ea.metadata.select("item_id", "split").with_row_index("_a")
            right = eb.metadata.select("item_id").with_row_index("_b")
            pairs = left.join(right, on="item_id").filter(pl.col("split") == "train").select("_a", "_b").to_numpy()
            cca = CCA(ds.shared_dim, reg=0.1).fit(ea.vectors[pairs[:, 0]], eb.vectors[pairs[:, 1]])
            key = f"{ds.key}/{a}-{b}"
            arrays[f"{key}/{a}/mean"], arrays[f"{key}/{b}/mean"] = cca.mean_a_, cca.mean_b_
            arrays[f"{key}/{a}/proj"] = cca.proj_a_.astype(np.float32)
            arrays[f"{key}/{b}/proj"] = cca.proj_b_.astype(np.float32)
            arrays[f"{key}/correlations"] = cca.correlations_
            print(f"{ds.name} {a}-{b}: {len(pairs)} train pairs, top correlations {np.round(cca.correlations_[:3], 3)}")
    np.savez_compressed(DATA / folder / "shared.npz", **arrays)
    media._arrays.cache_clear()


def write_table(path: Path, rows: list[dict]) -> None:
    import polars as pl

    pl.DataFrame(rows).write_parquet(path, compression="zstd", compression_level=19, statistics=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=Path("/tmp/mediasrc"), help="download/unpack folder")
    parser.add_argument("--only", choices=["emoji", "sounds"], default=None)
    parser.add_argument("--shared-only", action="store_true", help="only redo the splits and the CCA spaces")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the sets here instead of the package (to compare a rebuild with what ships)")
    args = parser.parse_args(argv)
    global DATA
    if args.out is not None:
        DATA = args.out
    if args.shared_only:
        for folder in ("emoji", "sounds"):
            if args.only in (None, folder):
                add_splits(DATA / folder)
                fit_shared(folder)
        return 0
    fetch(args.src)
    sources = {"npm": NPM, "debian": DEBS, "thumbnail_px": THUMB, "audio_rate_hz": RATE}
    if args.only in (None, "emoji"):
        out = DATA / "emoji"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        items, captions = emoji_tables(args.src)
        write_thumbnails(args.src, out, items)
        items, captions = drop_duplicate_images(out, items, captions)
        spoken = spoken_rows(args.src, out, items)
        write_table(out / "items.parquet", items)
        write_table(out / "captions.parquet", captions)
        write_table(out / "spoken.parquet", spoken)
        encode_all(out, [r["file"] for r in items], [r["caption"] for r in captions], [r["file"] for r in spoken])
        (out / "SOURCES.json").write_text(json.dumps(sources, indent=1) + "\n")
        shutil.copy("/usr/share/common-licenses/Apache-2.0", out / "LICENSE-Apache-2.0.txt")
        shutil.copy(args.src / "npm/openmoji/package/LICENSE.txt", out / "LICENSE-openmoji.txt")
        (out / "ATTRIBUTION.md").write_text(EMOJI_ATTRIBUTION)
        add_splits(out)
        fit_shared("emoji")
        print(f"emoji: {len(items)} images, {len(captions)} captions, {len(spoken)} spoken names")
    if args.only in (None, "sounds"):
        out = DATA / "sounds"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        rows = sound_rows(args.src, out)
        table = "".join(f"| {r['file']} | {r['licence']} | {r['credit']} |\n" for r in rows)
        (out / "ATTRIBUTION.md").write_text(SOUNDS_ATTRIBUTION_HEAD + table)
        write_table(out / "items.parquet", rows)
        encode_all(out, None, [r["caption"] for r in rows], [r["file"] for r in rows])
        (out / "SOURCES.json").write_text(json.dumps(sources, indent=1) + "\n")
        add_splits(out)
        fit_shared("sounds")
        print(f"sounds: {len(rows)} clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
