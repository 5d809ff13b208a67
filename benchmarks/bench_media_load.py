"""How long each built-in real-media set takes to load in a fresh process (target: under 2 s, issue 14).

Run: ``python benchmarks/bench_media_load.py`` (about 10 s). Prints, per set, the seconds for ``import workbench`` plus
``datasets.load(name)`` in a new interpreter (best of 3) and the ratio to the 2 s target.
"""

from __future__ import annotations

import subprocess
import sys

TARGET_S = 2.0
CODE = ("import time; t = time.perf_counter(); import warnings; warnings.simplefilter('ignore'); "
        "from workbench import datasets; datasets.load({name!r}); print(time.perf_counter() - t)")


def main() -> None:
    from workbench.datasets import media

    for name in media.MEDIA_SETS:
        runs = [float(subprocess.run([sys.executable, "-c", CODE.format(name=name)], capture_output=True, text=True,
                                     check=True).stdout) for _ in range(3)]
        best = min(runs)
        print(f"{name:16s} cold load {best:.2f} s  ({best / TARGET_S:.2f} of the {TARGET_S:.0f} s target)")


if __name__ == "__main__":
    main()
