"""Paired data from folders: media files plus a captions file, as polars frames with stable ids.

- :func:`image_captions`: a folder of images and a CSV, JSONL or JSON file of captions.
- :func:`audio_captions`: a folder of ``.wav`` files and captions in a simple long layout, the Clotho wide layout
  or the AudioCaps layout.

Both check every referenced file (images are fully decoded, wav files opened and their last frame read), skip the
missing, unreadable or truncated ones with ONE :class:`SkippedItemsWarning` that counts them and names the first
few (or raise ``ValueError`` with ``strict=True``), and drop a skipped file's captions with it: the pairing of the
remaining files is never shifted. Ids are the files' paths relative to the folder, so they are the same across runs
and do not change when other files are skipped or removed.

Examples
--------
>>> import tempfile, pathlib
>>> from PIL import Image
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> Image.new("RGB", (8, 8), "red").save(folder / "red.png")
>>> _ = (folder / "captions.csv").write_text("file,caption\\nred.png,a red square\\nred.png,all red\\n")
>>> paired = image_captions(folder)
>>> paired
PairedItems(image: 1 files, 2 captions, 0 skipped)
>>> paired.captions.select("id", "item_id", "caption").rows()
[('red.png#0', 'red.png', 'a red square'), ('red.png#1', 'red.png', 'all red')]
>>> paired.pairs().tolist()
[[0, 0], [0, 1]]
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import warnings
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

__all__ = ["PairedItems", "SkippedItemsWarning", "audio_captions", "image_captions"]

#: Columns (CSV) or keys (JSON) that name the media file, in order of preference.
FILE_COLUMNS: tuple[str, ...] = ("file", "filename", "file_name", "image", "audio", "path")
_WIDE_CAPTION = re.compile(r"^caption_(\d+)$")
_SHOWN = 3  # skipped files named in the warning


class SkippedItemsWarning(UserWarning):
    """Some media files referenced by a captions file are missing or unreadable and were skipped with their captions."""


@dataclass(frozen=True, eq=False, repr=False)
class PairedItems:
    """Media files and their captions, as polars frames with stable ids.

    Attributes
    ----------
    items : polars.DataFrame
        One row per kept media file, in order of first mention in the captions file: ``id`` (the path relative to
        the folder, POSIX separators), ``path`` (absolute path), then per modality ``width``, ``height``,
        ``format`` (images) or ``sample_rate``, ``channels``, ``frames``, ``duration`` (seconds; audio).
    captions : polars.DataFrame
        One row per caption of a kept file, in captions-file order: ``id`` (``"<item id>#<k>"``, the k-th caption
        of that file), ``item_id``, ``caption``, ``row`` (0-based data row in the captions file).
    skipped : polars.DataFrame
        One row per skipped file: ``path`` (as referenced, relative to the folder), ``reason``, ``captions``
        (how many captions were dropped with it).
    modality : str
        ``"image"`` or ``"audio"``.
    root : str
        The folder the ids are relative to.

    Examples
    --------
    >>> items = pl.DataFrame({"id": ["a.png", "b.png"], "path": ["/d/a.png", "/d/b.png"]})
    >>> captions = pl.DataFrame({"id": ["b.png#0", "a.png#0"], "item_id": ["b.png", "a.png"],
    ...                          "caption": ["bee", "ant"], "row": [0, 1]})
    >>> PairedItems(items, captions).pairs().tolist()
    [[1, 0], [0, 1]]
    """

    items: pl.DataFrame
    captions: pl.DataFrame
    skipped: pl.DataFrame = field(default_factory=lambda: _skipped_frame([]))
    modality: str = "image"
    root: str = ""

    def __post_init__(self) -> None:
        for what, frame, needed in (("items", self.items, ("id", "path")),
                                    ("captions", self.captions, ("id", "item_id", "caption")),
                                    ("skipped", self.skipped, ("path", "reason"))):
            if not isinstance(frame, pl.DataFrame):
                raise TypeError(f"{what} must be a polars DataFrame, got {type(frame).__name__}")
            missing = [c for c in needed if c not in frame.columns]
            if missing:
                raise ValueError(f"{what} lacks column(s) {missing} (columns: {frame.columns})")
        ids = self.items.get_column("id")
        if ids.n_unique() != len(ids):
            raise ValueError(f"items: {len(ids) - ids.n_unique()} rows repeat an id")
        orphans = self.captions.filter(~pl.col("item_id").is_in(ids.implode()))
        if orphans.height:
            raise ValueError(f"captions: {orphans.height} of {self.captions.height} rows name an item_id that is "
                             f"not in items (e.g. {orphans.get_column('item_id')[0]!r})")

    def __len__(self) -> int:
        return self.items.height

    def __repr__(self) -> str:
        return (f"PairedItems({self.modality}: {self.items.height} files, {self.captions.height} captions, "
                f"{self.skipped.height} skipped)")

    @property
    def paths(self) -> list[str]:
        """Absolute paths of the kept files, in item order (what an encoder reads)."""
        return self.items.get_column("path").to_list()

    @property
    def texts(self) -> list[str]:
        """The captions, in caption order."""
        return self.captions.get_column("caption").to_list()

    def pairs(self) -> np.ndarray:
        """(P x 2) int64 index pairs (item row, caption row), one per caption, in caption order.

        Use them as ``pairs=`` of :meth:`workbench.PairedEmbeddings.from_arrays` with the media embeddings as
        ``a`` (rows in ``items`` order) and the caption embeddings as ``b`` (rows in ``captions`` order).
        """
        row_of = {item_id: row for row, item_id in enumerate(self.items.get_column("id").to_list())}
        item_rows = np.fromiter((row_of[i] for i in self.captions.get_column("item_id").to_list()), dtype=np.int64,
                                count=self.captions.height)
        return np.stack([item_rows, np.arange(self.captions.height, dtype=np.int64)], axis=1)


# -- public loaders -------------------------------------------------------------------------------------------------


def image_captions(
    folder: str | os.PathLike[str],
    captions_file: str | os.PathLike[str] | None = None,
    *,
    strict: bool = False,
) -> PairedItems:
    """Load a folder of images and their captions.

    Parameters
    ----------
    folder : path
        The image folder; file references in the captions file are relative to it (subfolders allowed).
    captions_file : path, optional
        A ``.csv``, ``.jsonl`` (one JSON object a line) or ``.json`` (a list of objects) file. The file is named by
        a column/key ``file`` (or ``filename``, ``file_name``, ``image``, ``path``); captions by ``caption`` (a
        string, or in JSON a list of strings), ``captions`` (JSON list) or wide columns ``caption_1..caption_N``.
        Several rows per image are several captions. Default: ``captions.csv`` or ``captions.jsonl`` in the
        folder. A relative path that does not exist is also looked up inside the folder.
    strict : bool, default False
        Raise ``ValueError`` instead of warning when files are missing or unreadable, or rows lack a file name or
        caption.

    Returns
    -------
    PairedItems
        ``items`` (``id``, ``path``, ``width``, ``height``, ``format``), ``captions`` (``id``, ``item_id``,
        ``caption``, ``row``), ``skipped`` (``path``, ``reason``, ``captions``).

    Raises
    ------
    ValueError
        With ``strict=True`` for any skipped file or empty row; always when no image can be read, or the
        captions file has no file or caption column, or cannot be parsed.
    FileNotFoundError
        When the folder or the captions file does not exist.

    Warns
    -----
    SkippedItemsWarning
        Once, when files are missing or unreadable (every image is fully decoded, which also catches truncated
        files), counting them and naming the first few; their captions are dropped with them.

    Examples
    --------
    >>> import tempfile, pathlib, json
    >>> from PIL import Image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new("RGB", (4, 4), "blue").save(folder / "sky.jpg")
    >>> _ = (folder / "captions.jsonl").write_text(json.dumps({"image": "sky.jpg", "captions": ["blue", "sky"]}))
    >>> image_captions(folder).items.select("id", "width", "format").rows()
    [('sky.jpg', 4, 'JPEG')]
    """
    return _load(folder, captions_file, strict=strict, modality="image", function="image_captions")


def audio_captions(
    folder: str | os.PathLike[str],
    captions_file: str | os.PathLike[str] | None = None,
    *,
    strict: bool = False,
) -> PairedItems:
    """Load a folder of ``.wav`` files and their captions (long, Clotho or AudioCaps layout).

    Supported captions files (``.csv``, ``.jsonl`` or ``.json``, column names as in :func:`image_captions`):

    - long: ``file, caption`` (or ``filename``/``file_name``/``audio``/``path``), one row per caption;
    - Clotho (wide): ``file_name, caption_1, ..., caption_5`` (any number of ``caption_<k>`` columns);
    - AudioCaps: ``audiocap_id, youtube_id, start_time, caption``, with no file column: each row's file is the
      first that exists of ``<youtube_id>.wav``, ``<audiocap_id>.wav`` and ``Y<youtube_id>.wav``, so clips named
      by YouTube id collect all their captions.

    A reference without an extension also tries ``<reference>.wav``. Only what the standard-library ``wave``
    module reads is supported: integer PCM WAV (not float or, before Python 3.12, WAVE_FORMAT_EXTENSIBLE files;
    those are skipped as unreadable). Each file is opened and its last frame read, so empty and truncated files
    are caught without reading the whole clip.

    Parameters
    ----------
    folder : path
        The audio folder.
    captions_file : path, optional
        Default: ``captions.csv``, ``captions.jsonl`` or a single ``clotho_captions_*.csv`` in the folder, else
        ``clotho_captions_<folder name>.csv`` beside the folder (Clotho's ``development/`` layout).
    strict : bool, default False
        Raise ``ValueError`` instead of warning about skipped files or empty rows.

    Returns
    -------
    PairedItems
        ``items`` (``id``, ``path``, ``sample_rate``, ``channels``, ``frames``, ``duration``), ``captions``
        (``id``, ``item_id``, ``caption``, ``row``), ``skipped`` (``path``, ``reason``, ``captions``).

    Examples
    --------
    >>> import tempfile, pathlib, wave
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with wave.open(str(folder / "rain.wav"), "wb") as w:
    ...     w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(bytes(1600))
    >>> _ = (folder / "clotho_captions_evaluation.csv").write_text(
    ...     "file_name,caption_1,caption_2\\nrain.wav,rain falls,drops on a roof\\n")
    >>> paired = audio_captions(folder)
    >>> paired.items.select("id", "duration").rows(), paired.texts
    ([('rain.wav', 0.1)], ['rain falls', 'drops on a roof'])
    """
    return _load(folder, captions_file, strict=strict, modality="audio", function="audio_captions")


# -- captions files -------------------------------------------------------------------------------------------------


def _find_captions_file(folder: Path, captions_file: str | os.PathLike[str] | None, modality: str) -> Path:
    if captions_file is not None:
        given = Path(captions_file)
        if not given.exists() and not given.is_absolute() and (folder / given).exists():
            given = folder / given
        if not given.is_file():
            raise FileNotFoundError(f"captions file {os.fspath(captions_file)!r} not found (also looked in {folder})")
        return given
    names = ["captions.csv", "captions.jsonl"]
    found = [folder / name for name in names if (folder / name).is_file()]
    if modality == "audio":
        found += sorted(folder.glob("clotho_captions_*.csv"))
        if not found and (folder.parent / f"clotho_captions_{folder.name}.csv").is_file():
            found = [folder.parent / f"clotho_captions_{folder.name}.csv"]
    if len(found) > 1:
        raise ValueError(f"{len(found)} captions files in {folder} ({', '.join(p.name for p in found)}); "
                         "pass captions_file= to choose one")
    if not found:
        looked = names + (["clotho_captions_*.csv", f"../clotho_captions_{folder.name}.csv"]
                          if modality == "audio" else [])
        raise FileNotFoundError(f"no captions file in {folder} (looked for {', '.join(looked)}); "
                                "pass captions_file=")
    return found[0]


def _read_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of a captions file as dicts, and the column names (union of keys for JSON)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            with path.open("rb") as handle:  # read literally: polars takes [, ], *, ? in a path as a pattern
                frame = pl.read_csv(handle, infer_schema=False)
        except Exception as exc:
            raise ValueError(f"{path}: cannot parse as CSV: {exc}") from None
        return frame.to_dicts(), frame.columns
    if suffix in (".jsonl", ".ndjson"):
        records = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}: line {number} is not valid JSON: {exc}") from None
    elif suffix == ".json":
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from None
        if not isinstance(records, list):
            raise ValueError(f"{path}: a .json captions file must hold a list of objects, got {type(records).__name__}")
    else:
        raise ValueError(f"{path}: unsupported captions file type {suffix!r}; use .csv, .jsonl or .json")
    bad = [i for i, r in enumerate(records) if not isinstance(r, dict)]
    if bad:
        raise ValueError(f"{path}: {len(bad)} of {len(records)} records are not JSON objects (first: record {bad[0]})")
    return records, list(dict.fromkeys(k for r in records for k in r))


def _caption_values(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def _caption_rows(records: list[dict[str, Any]], columns: list[str], path: Path, modality: str
                  ) -> tuple[list[tuple[int, tuple[str, ...], str]], int]:
    """(row, candidate file references, caption) per caption, and the number of rows/captions left empty."""
    file_key = next((c for c in FILE_COLUMNS if c in columns), None)
    audiocaps = file_key is None and modality == "audio" and "youtube_id" in columns
    if file_key is None and not audiocaps:
        expected = ", ".join(FILE_COLUMNS) + (" (or AudioCaps' youtube_id)" if modality == "audio" else "")
        raise ValueError(f"{path}: no column naming the {modality} file; expected one of {expected} "
                         f"(columns: {columns})")
    wide = sorted((c for c in columns if _WIDE_CAPTION.match(c)), key=lambda c: int(c.split("_")[1]))
    caption_keys = [c for c in ("caption", "captions") if c in columns] + wide
    if not caption_keys:
        raise ValueError(f"{path}: no caption column; expected caption, captions or caption_1..caption_N "
                         f"(columns: {columns})")
    rows: list[tuple[int, tuple[str, ...], str]] = []
    empty = 0
    for number, record in enumerate(records):
        if audiocaps:
            yt, ac = (str(record.get(k) or "").strip() for k in ("youtube_id", "audiocap_id"))
            candidates = tuple(c for c in (_with_wav(yt), _with_wav(ac), _with_wav(f"Y{yt}" if yt else "")) if c)
        else:
            reference = str(record.get(file_key) or "").strip()  # type: ignore[arg-type]
            candidates = (reference,) if reference else ()
            if modality == "audio" and reference and not posixpath.splitext(reference)[1]:
                candidates = (reference, f"{reference}.wav")
        texts = []
        for key in caption_keys:
            if key not in record:
                continue
            for caption in _caption_values(record[key]):
                text = "" if caption is None else str(caption).strip()
                if text:
                    texts.append(text)
                else:
                    empty += 1
        if not candidates:
            empty += len(texts) or 1
            continue
        rows.extend((number, candidates, text) for text in texts)
    return rows, empty


def _with_wav(stem: str) -> str:
    if not stem:
        return ""
    return stem if stem.lower().endswith(".wav") else f"{stem}.wav"


def _relative_id(folder: Path, reference: str) -> str:
    """The stable id of a file reference: its normalised path relative to the folder, with ``/`` separators."""
    reference = reference.replace("\\", "/")
    if posixpath.isabs(reference) or os.path.isabs(reference):
        try:
            reference = Path(reference).resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            return Path(reference).as_posix()
    return posixpath.normpath(reference)


# -- media checks ---------------------------------------------------------------------------------------------------


def _check_image(path: Path) -> dict[str, Any]:
    """Fully decode an image (JPEGs at 1/8 scale: every byte is still entropy-decoded); raise if unreadable."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's own warnings (EXIF, palette...) do not make a file unreadable
        with Image.open(path) as image:
            width, height = image.size
            fmt = image.format
            if fmt == "JPEG":
                image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
    return {"width": width, "height": height, "format": fmt}


def _check_wav(path: Path) -> dict[str, Any]:
    """Open a wav file with the stdlib ``wave`` module and read its last frame; raise if empty or truncated."""
    with wave.open(os.fspath(path), "rb") as handle:
        frames = handle.getnframes()
        rate, channels, width = handle.getframerate(), handle.getnchannels(), handle.getsampwidth()
        if frames <= 0:
            raise ValueError("no audio frames")
        if rate <= 0:
            raise ValueError(f"invalid sample rate {rate}")
        handle.setpos(frames - 1)
        if len(handle.readframes(1)) != channels * width:
            raise ValueError(f"truncated: the header promises {frames} frames")
    return {"sample_rate": rate, "channels": channels, "frames": frames, "duration": frames / rate}


_MEDIA_SCHEMA: dict[str, dict[str, Any]] = {
    "image": {"width": pl.Int64, "height": pl.Int64, "format": pl.String},
    "audio": {"sample_rate": pl.Int64, "channels": pl.Int64, "frames": pl.Int64, "duration": pl.Float64},
}


def _skipped_frame(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"path": pl.String, "reason": pl.String, "captions": pl.Int64}, orient="row")


class _StrictTruncation:
    """Make Pillow raise on truncated files while checking, even if ``ImageFile.LOAD_TRUNCATED_IMAGES`` is set."""

    def __enter__(self) -> None:
        from PIL import ImageFile

        self.previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False

    def __exit__(self, *exc: object) -> None:
        from PIL import ImageFile

        ImageFile.LOAD_TRUNCATED_IMAGES = self.previous


# -- the shared loader ----------------------------------------------------------------------------------------------


def _load(folder: str | os.PathLike[str], captions_file: str | os.PathLike[str] | None, *, strict: bool,
          modality: str, function: str) -> PairedItems:
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be True or False, got {type(strict).__name__}")
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"{function}: folder {os.fspath(folder)!r} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{function}: {os.fspath(folder)!r} is not a folder")
    source = _find_captions_file(root, captions_file, modality)
    records, columns = _read_records(source)
    rows, n_empty = _caption_rows(records, columns, source, modality)

    check: Callable[[Path], dict[str, Any]] = _check_image if modality == "image" else _check_wav
    resolved: dict[tuple[str, ...], tuple[str, str | None]] = {}  # candidates -> (id, reason or None)
    media: dict[str, dict[str, Any]] = {}
    reasons: dict[str, str] = {}
    with _StrictTruncation() if modality == "image" else contextlib.nullcontext():
        for _, candidates, _ in rows:
            if candidates in resolved:
                continue
            ids = [_relative_id(root, c) for c in candidates]
            found = next((i for i in ids if (root / i).is_file()), None)
            if found is None:
                tried = f" (tried {', '.join(ids)})" if len(ids) > 1 else ""
                resolved[candidates] = (ids[0], f"missing{tried}")
                reasons.setdefault(ids[0], f"missing{tried}")
                continue
            if found not in media and found not in reasons:
                try:
                    media[found] = check(root / found)
                except Exception as exc:  # every decoder error means the same thing here: unusable
                    detail = str(exc).strip()
                    reasons[found] = f"unreadable ({type(exc).__name__}{': ' + detail if detail else ''})"
            resolved[candidates] = (found, reasons.get(found))

    kept_rows: list[tuple[str, str, int]] = []
    dropped: dict[str, int] = {}
    order: list[str] = []
    for number, candidates, text in rows:
        item_id, reason = resolved[candidates]
        if reason is not None:
            dropped[item_id] = dropped.get(item_id, 0) + 1
            continue
        kept_rows.append((item_id, text, number))
        order.append(item_id)
    item_ids = list(dict.fromkeys(order))
    skipped = _skipped_frame([(i, reasons[i], n) for i, n in dropped.items()])
    message = _skip_message(function, modality, skipped, len(item_ids), n_empty, source)
    if message and (strict or not item_ids):
        raise ValueError(message + ("" if item_ids else f"; no readable {modality} file is left"))
    if not item_ids:
        raise ValueError(f"{function}: {source.name} lists no {modality} file with a caption")
    if message:
        warnings.warn(message, SkippedItemsWarning, stacklevel=3)

    schema = _MEDIA_SCHEMA[modality]
    items = pl.DataFrame(
        {"id": item_ids, "path": [os.fspath((root / i).absolute()) for i in item_ids],
         **{c: [media[i][c] for i in item_ids] for c in schema}},
        schema={"id": pl.String, "path": pl.String, **schema},
    )
    counter: dict[str, int] = {}
    caption_ids = []
    for item_id, _, _ in kept_rows:
        caption_ids.append(f"{item_id}#{counter.get(item_id, 0)}")
        counter[item_id] = counter.get(item_id, 0) + 1
    captions = pl.DataFrame(
        {"id": caption_ids, "item_id": [r[0] for r in kept_rows], "caption": [r[1] for r in kept_rows],
         "row": [r[2] for r in kept_rows]},
        schema={"id": pl.String, "item_id": pl.String, "caption": pl.String, "row": pl.Int64},
    )
    return PairedItems(items=items, captions=captions, skipped=skipped, modality=modality, root=os.fspath(root))


def _skip_message(function: str, modality: str, skipped: pl.DataFrame, n_kept: int, n_empty: int,
                  source: Path) -> str:
    parts = []
    if skipped.height:
        reasons: Iterable[str] = skipped.get_column("reason").to_list()
        kinds = {"missing": sum(r.startswith("missing") for r in reasons)}
        kinds["unreadable"] = skipped.height - kinds["missing"]
        kind_text = ", ".join(f"{k} {v}" for k, v in kinds.items() if v)
        shown = "; ".join(f"{p}: {r}" for p, r in skipped.head(_SHOWN).select("path", "reason").rows())
        more = f"; and {skipped.height - _SHOWN} more" if skipped.height > _SHOWN else ""
        n_captions = int(skipped.get_column("captions").sum())
        parts.append(f"skipped {skipped.height} of {skipped.height + n_kept} {modality} files ({kind_text}) with "
                     f"their {n_captions} captions: {shown}{more}")
    if n_empty:
        parts.append(f"dropped {n_empty} captions of {source.name} with an empty file name or caption text")
    if not parts:
        return ""
    return f"{function}: " + "; ".join(parts) + " (see .skipped)"
