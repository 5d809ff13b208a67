"""The ``workbench`` command.

Examples
--------
``workbench datasets`` lists the built-in sets; ``workbench report --dataset liang2022/clip --out reports/clip``
writes ``metrics.json`` and ``report.html``; ``--dataset all`` reports every built-in set (one folder each, plus
``index.html``); ``--embeddings FILE`` reports a file saved with ``PairedEmbeddings.save``.

An expected failure (bad input, an output that cannot be written, missing files or weights) prints one line
``workbench: error: ...`` on stderr and exits with status 2; ``--debug`` shows the Python traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_DEBUG_HELP = "on an error, show the Python traceback instead of one line"
_EXAMPLES = {
    "top": """examples:
  workbench datasets
  workbench report --dataset liang2022/clip --out reports/clip
  workbench report --dataset all --out reports/demo
  workbench reproduce openclip-retrieval --coco data/dataset_coco.json --image-root data/coco""",
    "datasets": """example:
  workbench datasets        (name, modalities, model, pairs, dimensions and a description of each set)""",
    "report": """examples:
  workbench report --dataset liang2022/clip --out reports/clip
  workbench report --dataset all --out reports/demo --no-figures
  workbench report --embeddings run1/emb.npz --embeddings run2/emb.npz --out reports/runs""",
    "reproduce": """example:
  workbench reproduce openclip-retrieval --model ViT-B-32 --pretrained laion2b_s34b_b79k \\
      --coco data/dataset_coco.json --image-root data/coco""",
}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option's help (those that say something: not None, False or empty); examples
    (the epilog) kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, [], argparse.SUPPRESS) or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)
#: Failures a user can meet and act on (bad input, an unwritable output, missing files, weights or extras, no
#: browser for figures): one line ``workbench: error: ...`` on stderr and exit status 2, as argparse does.
#: OSError covers PermissionError, FileNotFoundError and WeightsUnavailableError; RuntimeError covers ExportError.
_EXPECTED = (OSError, ValueError, TypeError, RuntimeError, ImportError)


def _parser() -> argparse.ArgumentParser:
    from workbench._version import __version__

    parser = argparse.ArgumentParser(prog="workbench", description="Study multimodal alignment and the modality gap.",
                                     epilog=_EXAMPLES["top"], formatter_class=_HelpFormatter)
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    common = argparse.ArgumentParser(add_help=False)  # --debug after the command too (absent: the top level's value)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("datasets", parents=[common], help="list the built-in embedding sets",
                   description="List the built-in embedding sets.", epilog=_EXAMPLES["datasets"],
                   formatter_class=_HelpFormatter)

    report = sub.add_parser("report", parents=[common],
                            help="write metrics.json and report.html for one or several paired sets",
                            description="Write metrics.json, metrics.tex/.md, figures and report.html for one or "
                                        "several paired sets (one folder each and an index.html for several).",
                            epilog=_EXAMPLES["report"], formatter_class=_HelpFormatter)
    report.add_argument("--dataset", action="append", default=[], metavar="NAME",
                        help="a built-in set (repeatable; 'all' for every one); see `workbench datasets`")
    report.add_argument("--embeddings", action="append", default=[], metavar="FILE", type=Path,
                        help="a .npz/.parquet file written by PairedEmbeddings.save (repeatable)")
    report.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    report.add_argument("--quiet", action="store_true", help="print only where the reports are")
    report.add_argument("--no-figures", action="store_true", help="skip the static PDF/SVG/PNG figures")
    report.add_argument("--resamples", type=int, default=200, help="resamples for the corrector intervals")
    report.add_argument("--formats", default="pdf,svg,png", metavar="LIST",
                        help="static figure formats, comma-separated (pdf, svg, png)")

    reproduce = sub.add_parser("reproduce", parents=[common],
                               help="run a published protocol and print our numbers beside the paper's",
                               description="Run a published protocol and print our numbers beside the paper's.",
                               epilog=_EXAMPLES["reproduce"], formatter_class=_HelpFormatter)
    reproduce.add_argument("protocol", choices=["openclip-retrieval"])
    reproduce.add_argument("--model", default="ViT-B-32", help="an open_clip architecture")
    reproduce.add_argument("--pretrained", default="laion2b_s34b_b79k",
                           help="an open_clip pretrained tag, a checkpoint path, or 'none' for random weights")
    data = reproduce.add_mutually_exclusive_group(required=True)
    data.add_argument("--coco", type=Path, metavar="JSON", help="Karpathy dataset_coco.json (5k test split)")
    data.add_argument("--flickr", type=Path, metavar="JSON", help="Karpathy dataset_flickr30k.json (1k test split)")
    reproduce.add_argument("--image-root", type=Path, metavar="DIR",
                           help="folder the JSON's image paths are relative to (default: beside the JSON)")
    reproduce.add_argument("--batch-size", type=int, default=64, help="images or captions per encoder call")
    return parser


_FOLDER_KEEP = set("-_.+=@,")
_FOLDER_MAX = 120  # characters; file systems refuse names over 255 bytes


def _folder_name(label: str) -> str:
    """``label`` as ONE safe folder name: separators and other punctuation become ``-`` (spaces ``_``), never
    ``.``, ``..`` or a hidden name, nothing a link has to quote, at most 120 characters; ``set`` when nothing is
    left."""
    text = label.replace(" ", "_")
    text = "".join(c if c.isalnum() or c in _FOLDER_KEEP else "-" for c in text)
    return text.lstrip(".")[:_FOLDER_MAX].rstrip(".") or "set"


def _unique_folders(labels: Sequence[str]) -> list[str]:
    """One folder name per label, distinct even where the file system ignores case (``-2``, ``-3``, ... added)."""
    taken: set[str] = set()
    names = []
    for label in labels:
        base = _folder_name(label)
        name, k = base, 1
        while name.casefold() in taken:
            k += 1
            name = f"{base}-{k}"
        taken.add(name.casefold())
        names.append(name)
    return names


def _embedding_labels(paths: Sequence[Path], fixed: Sequence[str]) -> list[str]:
    """A report name per embeddings file: its stem, or as many parent folders before it as tell it apart from the
    other inputs (``run1/emb`` and ``run2/emb``, not ``emb`` twice)."""
    parts = []
    for path in paths:
        absolute = Path(os.path.abspath(path))
        parts.append([*absolute.parent.parts[1:], absolute.stem])
    depth = [1] * len(paths)
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depth, strict=True)]
        counts = Counter([*fixed, *labels])
        grow = [i for i, label in enumerate(labels) if counts[label] > 1 and depth[i] < len(parts[i])]
        if not grow:
            return labels
        for i in grow:
            depth[i] += 1


def _report(args: argparse.Namespace) -> int:
    from workbench import datasets
    from workbench.data import PairedEmbeddings
    from workbench.report import write_index, write_plotlyjs, write_report

    names: list[str] = []
    for name in args.dataset:
        names.extend(datasets.names() if name == "all" else [datasets.resolve(name)])
    names = list(dict.fromkeys(names))
    paths = list({os.path.abspath(path): path for path in args.embeddings}.values())  # each file once
    inputs = [(name, name) for name in names]
    inputs += [(label, str(path)) for label, path in zip(_embedding_labels(paths, names), paths, strict=True)]
    if not inputs:
        raise ValueError("nothing to report: pass --dataset NAME (or 'all') and/or --embeddings FILE")

    several = len(inputs) > 1
    folders = _unique_folders([label for label, _ in inputs])
    formats = _formats(args.formats)
    written = []
    shared_js = write_plotlyjs(args.out) if several else None  # one plotly.js for every page
    with contextlib.ExitStack() as stack:
        if not args.no_figures:
            _one_browser(stack)
        for i, ((label, source), folder) in enumerate(zip(inputs, folders, strict=True)):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # duplicate rows are recorded in metrics.json instead
                paired = datasets.load(source) if i < len(names) else PairedEmbeddings.load(source)
            out = args.out / folder if several else args.out
            files = write_report(paired, out, name=label, source=source, figures=not args.no_figures,
                                 formats=formats, n_resamples=args.resamples, plotlyjs=shared_js)
            written.append(files)
            if not args.quiet:
                m = files.metrics["metrics"]
                print(f"{label:28s} centroid distance {m['centroid_distance']:.4f}   "
                      f"mean matched cosine {m['mean_matched_cosine']:.4f}   -> {files.report_html} "
                      f"({time.perf_counter() - start:.1f} s)")
    if several:
        index = write_index(written, args.out)
        print(f"Open {index} (one report per set, metrics.json beside each).")
    else:
        print(f"Open {written[0].report_html} (metrics in {written[0].metrics_json}).")
    return 0


def _formats(text: str) -> tuple[str, ...]:
    """``--formats pdf,png`` as a tuple, checked before any work starts."""
    from workbench.export import FORMATS

    formats = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"--formats {text!r}: give one or more of {', '.join(FORMATS)} separated by commas")
    return formats


def _one_browser(stack: contextlib.ExitStack) -> None:
    """One headless browser for every report's figures (a few seconds saved per report); without one, each report
    notes why its static figures are missing, as it does alone."""
    from workbench.export import ExportError, export_session

    try:
        stack.enter_context(export_session())
    except ExportError:
        pass


def _reproduce(args: argparse.Namespace) -> int:
    import polars as pl

    from workbench.reproduce import openclip_retrieval

    json_path = args.coco or args.flickr
    pretrained = None if str(args.pretrained).lower() in ("none", "random") else args.pretrained
    result = openclip_retrieval(args.model, pretrained, json_path, image_root=args.image_root or json_path.parent,
                                batch_size=args.batch_size)
    print(f"{result.dataset} {result.n_images} images, {result.n_captions} captions; "
          f"open_clip {result.model} / {result.pretrained or 'random init'}")
    with pl.Config(tbl_rows=-1, tbl_hide_dataframe_shape=True, float_precision=4):
        print(result.table())
    if not result.published:
        print("(no published numbers for this model, weights and dataset)")
    return 0


def _dataset_list(table: Any, width: int) -> str:
    """The sets as a list for a narrow terminal: each name whole on its own line, the rest wrapped below it."""
    import textwrap

    lines = []
    for row in table.iter_rows(named=True):
        lines.append(row["name"])
        facts = f"{row['modalities']}; {row['model']}; {row['pairs']} pairs x {row['dim']} dims. {row['description']}"
        lines.extend(textwrap.wrap(facts, width=width - 1, initial_indent="    ", subsequent_indent="    "))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script."""
    args = _parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    try:
        if args.command == "datasets":
            import polars as pl

            from workbench import datasets

            table = datasets.list()
            width = max(shutil.get_terminal_size((160, 24)).columns, 40)
            # the table when every cell fits on one line (a cell wrapped by polars splits the names); else a list
            natural = sum(max(len(c), *(len(str(v)) for v in table[c].to_list())) + 3 for c in table.columns) + 1
            if natural <= width:
                longest = max(len(str(v)) for c in table.columns for v in table[c].to_list())
                with pl.Config(tbl_rows=-1, tbl_width_chars=width, fmt_str_lengths=longest + 1,
                               tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
                    print(table)
            else:
                print(_dataset_list(table, width))
            return 0
        if args.command == "reproduce":
            return _reproduce(args)
        return _report(args)
    except _EXPECTED as exc:
        if debug:
            raise
        print(f"workbench: error: {str(exc) or type(exc).__name__}", file=sys.stderr)
        print("workbench: (run with --debug for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
