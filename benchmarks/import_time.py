"""How long `import workbench` takes, against `import numpy` (target: under 1 s, no heavy library loaded).

Also the time a cold process takes to learn that pretrained weights are missing offline (HF_HUB_OFFLINE=1, an empty
hub cache): the README promises WeightsUnavailableError within two seconds, and the lookup runs before torch loads.

Run: `make benchmark` or `.venv/bin/python benchmarks/import_time.py`. Prints the median of several cold
interpreter starts for each statement and the ratio to the numpy baseline.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

REPEATS = 7
STATEMENTS = {
    "python (nothing)": "pass",
    "import numpy": "import numpy",
    "import workbench": "import workbench",
    "workbench.datasets.load('liang2022/clip')": "import workbench; workbench.datasets.load('liang2022/clip')",
    "import torch (for scale)": "import torch",
    "missing weights offline -> WeightsUnavailable": (
        "from workbench.encoders import OpenCLIPEncoder, WeightsUnavailableError\n"
        "try:\n    OpenCLIPEncoder('ViT-B-32', pretrained='laion2b_s34b_b79k')\n"
        "except WeightsUnavailableError:\n    pass\nelse:\n    raise SystemExit('weights were found')"
    ),
}
#: the offline environment of the missing-weights line: no network lookups, an empty hub cache
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_HOME": tempfile.mkdtemp(prefix="wb-empty-hf-")}
HEAVY = ("torch", "plotly", "ipywidgets", "sklearn", "umap", "open_clip")


def cold_start_seconds(code: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"}} | OFFLINE
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    results = {label: cold_start_seconds(code) for label, code in STATEMENTS.items()}
    base = results["python (nothing)"]
    numpy_cost = results["import numpy"] - base
    print(f"{'statement':45s} {'median s':>9s} {'minus python':>13s} {'x numpy':>8s}")
    for label, seconds in results.items():
        cost = seconds - base
        print(f"{label:45s} {seconds:9.3f} {cost:13.3f} {cost / numpy_cost:8.2f}")
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, workbench; print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    heavy = sorted({m.split(".")[0] for m in loaded} & set(HEAVY))
    verdict = "OK" if results["import workbench"] < 1.0 and not heavy else "TOO SLOW OR HEAVY"
    print(f"\nimport workbench: {results['import workbench']:.3f} s (target < 1 s); heavy modules loaded: "
          f"{heavy or 'none'} -> {verdict}")
    missing = results["missing weights offline -> WeightsUnavailable"]
    print(f"missing weights offline: WeightsUnavailableError after {missing:.3f} s (README: within 2 s) -> "
          f"{'OK' if missing < 2.0 else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
