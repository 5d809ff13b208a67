"""GapExplorer: one slider move at 5,000 pairs x 512-d (target: at most 200 ms on a 2-core machine).

Prints the median kernel-side time of ``explorer.delta = x`` over 20 slider values -- every gap metric but the
probe, R@1/5/10 both ways, the CLIP loss and the 2-D view -- for the controller alone and with its widget built
(the FigureWidget and readouts updated too), and the ratio to a from-scratch recomputation of the same values
(GapShift fit and transform, ``gap_report(probe=False)``, ``per_query_ranks`` both ways, ``clip_loss`` and the PCA
transform). Run: `.venv/bin/python benchmarks/bench_gap_explorer.py`.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from workbench import PairedEmbeddings
from workbench.correct import GapShift
from workbench.gap import core_metrics
from workbench.panels import GapExplorer

N, D, TARGET = 5000, 512, 0.200
DELTAS = [float(d) for d in np.round(np.linspace(-1.0, 1.0, 20), 3)]


def synthetic() -> PairedEmbeddings:
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(N, D)).astype(np.float32)
    a = shared + 0.8 * rng.normal(size=(N, D)).astype(np.float32) + 0.5
    b = shared + 0.8 * rng.normal(size=(N, D)).astype(np.float32) - 0.5
    return PairedEmbeddings.from_arrays(a, b, modalities=("image", "text"))


def slider_times(explorer: GapExplorer) -> list[float]:
    times = []
    for delta in DELTAS:
        start = time.perf_counter()
        explorer.delta = delta
        times.append(time.perf_counter() - start)
    return times


def from_scratch(explorer: GapExplorer, delta: float) -> float:
    start = time.perf_counter()
    paired = explorer.paired
    a2, b2 = GapShift(delta).fit(*paired.matched()).transform(paired.a.vectors, paired.b.vectors)
    core_metrics(paired, a2, b2, ks=explorer.ks, uniformity_rows=explorer.uniformity_rows, seed=explorer.seed,
                 pca=explorer.pca)
    return time.perf_counter() - start


def main() -> None:
    paired = synthetic()
    start = time.perf_counter()
    explorer = GapExplorer(paired)
    setup = time.perf_counter() - start
    explorer.delta = 0.5  # warm up (numba kernels load from their on-disk cache)
    controller = statistics.median(slider_times(explorer))
    start = time.perf_counter()
    _ = explorer.widget
    build = time.perf_counter() - start
    with_widget = statistics.median(slider_times(explorer))
    scratch = statistics.median(from_scratch(explorer, d) for d in DELTAS[::4])
    print(f"GapExplorer, {N} pairs x {D}-d (setup {setup:.2f} s: similarity matrix, PCA, first update; "
          f"widget build {build:.2f} s)")
    print(f"slider move, controller only:   {1000 * controller:7.1f} ms  (median of {len(DELTAS)} values)")
    print(f"slider move, widget built:      {1000 * with_widget:7.1f} ms")
    print(f"from-scratch recomputation:     {1000 * scratch:7.1f} ms  (median of {len(DELTAS[::4])} values)")
    print(f"speed-up: {scratch / with_widget:5.1f} x (widget built), {scratch / controller:5.1f} x (controller)")
    print(f"target <= {1000 * TARGET:.0f} ms: {'OK' if with_widget <= TARGET else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
