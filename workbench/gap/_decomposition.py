"""Where the gap is: per-sample conformity, the centroid part vs the spread of the distance, the top-k dimensions.

- **Conformity** (Levi & Gilboa, *The Double-Ellipsoid Geometry of CLIP*, ICML 2025): how typical an embedding is of
  its modality. Here ``conformity(x_i) = cos(x_i, mu)`` with ``mu`` the mean of the modality's unit rows. Levi &
  Gilboa's mean cosine to the other rows, ``(n <x_i, mu> - 1) / (n - 1)`` for unit rows, is an increasing affine
  map of it (same order, same shape of the distribution). The mean conformity of a modality is ``||mu||``.
- **Decomposition of the distance between the modality distributions.** For independent ``X ~ P_a``, ``Y ~ P_b``
  with means ``mu_a, mu_b`` and (population) covariances ``S_a, S_b``::

      E ||X - Y||^2 = ||mu_a - mu_b||^2 + tr S_a + tr S_b                      (1)

  (expand ``X - Y = (X - mu_a) - (Y - mu_b) + (mu_a - mu_b)``; the cross terms have mean zero). The first term is
  the *centroid part* (the squared centroid distance of Liang et al., NeurIPS 2022), the others the spread of
  each modality; for unit rows ``tr S = 1 - ||mu||^2``. The squared Frechet (2-Wasserstein between Gaussians,
  Dowson & Landau 1982) distance splits the same way into the same centroid term plus a covariance term::

      d_F^2 = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)   (2)

  and the squared-distance energy distance ``2 E||X-Y||^2 - E||X-X'||^2 - E||Y-Y'||^2`` equals
  ``2 ||mu_a - mu_b||^2`` (the spreads cancel), so the centroid is all a squared-distance test can see.
- **Top-k dimensions**: the share of ``||mu_a - mu_b||^2`` carried by the k largest coordinates
  (:func:`workbench.gap.gap_shares`; Schrodi et al., ICLR 2025).

Each modality's items are counted once (as every gap metric: see :func:`workbench.gap.paired_items`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from workbench._params import check_ints
from workbench._validation import unit_rows64
from workbench.data import PairedEmbeddings
from workbench.gap._metrics import gap_shares, paired_items

__all__ = ["conformity", "conformity_frame", "gap_decomposition"]


def conformity(x: Any) -> np.ndarray:
    """Per-row conformity: the cosine of each (unit) row to the mean of the rows (Levi & Gilboa, ICML 2025).

    Examples
    --------
    >>> import numpy as np
    >>> conformity(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])).round(4).tolist()
    [0.7071, 0.7071, 1.0]
    """
    u = unit_rows64(x, "x")
    mu = u.mean(axis=0)
    norm = float(np.linalg.norm(mu))
    if norm == 0:
        raise ValueError("x: the rows' mean is zero, so conformity (cosine to the mean) is undefined")
    return u @ mu / norm


def conformity_frame(a: Any, b: Any | None = None) -> pl.DataFrame:
    """Conformity of every paired item of both modalities: ``modality``, ``item`` (row among the paired items),
    ``conformity``. Takes a PairedEmbeddings or two row-paired arrays (modalities then "a" and "b").

    Examples
    --------
    >>> import workbench
    >>> frame = conformity_frame(workbench.datasets.load("liang2022/clip"))
    >>> frame.group_by("modality").agg(pl.col("conformity").mean()).sort("modality").rows()
    [('image', 0.729...), ('text', 0.718...)]
    """
    items_a, items_b, _ = paired_items(a, b)
    names = a.modalities if isinstance(a, PairedEmbeddings) else ("a", "b")
    parts = []
    for name, items in zip(names, (items_a, items_b), strict=True):
        parts.append(pl.DataFrame({"modality": [name] * len(items), "item": np.arange(len(items), dtype=np.int64),
                                   "conformity": conformity(items)}))
    return pl.concat(parts)


def _sqrtm_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def gap_decomposition(a: Any, b: Any | None = None, *, ks: Sequence[int] = (1, 5, 20)) -> dict[str, float]:
    """The distance between the two modality distributions split into its centroid part and the rest.

    Returns (see the module docstring for identities (1) and (2)):

    - ``mean_sq_distance``: ``E||X - Y||^2`` over every (a item, b item) combination;
    - ``centroid_term`` ``||mu_a - mu_b||^2``, ``spread_a`` ``tr S_a``, ``spread_b`` ``tr S_b`` (they sum to it),
      and ``centroid_share`` = centroid_term / mean_sq_distance;
    - ``frechet_sq`` ``d_F^2``, its ``frechet_covariance_term`` (d_F^2 - centroid_term) and ``frechet_centroid_share``;
    - ``mean_conformity_a`` / ``_b`` (``||mu||``, the mean cosine of each row to its modality's mean);
    - ``gap_top{k}_share`` for each k (share of ``||mu_a - mu_b||^2`` in its k largest coordinates).

    Examples
    --------
    >>> import numpy as np
    >>> d = gap_decomposition(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[0.0, 1.0], [0.0, 1.0]]), ks=(1,))
    >>> d["mean_sq_distance"], d["centroid_term"], d["spread_a"], d["centroid_share"], d["gap_top1_share"]
    (2.0, 2.0, 0.0, 1.0, 0.5)
    """
    ks = check_ints(ks, "ks")
    items_a, items_b, _ = paired_items(a, b)
    mu_a, mu_b = items_a.mean(axis=0), items_b.mean(axis=0)
    ca, cb = items_a - mu_a, items_b - mu_b
    s_a, s_b = ca.T @ ca / len(ca), cb.T @ cb / len(cb)
    centroid = float((mu_a - mu_b) @ (mu_a - mu_b))
    spread_a, spread_b = float(np.trace(s_a)), float(np.trace(s_b))
    total = centroid + spread_a + spread_b
    root_a = _sqrtm_psd(s_a)
    cross = np.linalg.eigvalsh((root_a @ s_b @ root_a + (root_a @ s_b @ root_a).T) / 2)
    covariance = max(spread_a + spread_b - 2.0 * float(np.sqrt(np.clip(cross, 0.0, None)).sum()), 0.0)
    frechet = centroid + covariance
    out = {
        "mean_sq_distance": total,
        "centroid_term": centroid,
        "spread_a": spread_a,
        "spread_b": spread_b,
        "centroid_share": centroid / total if total > 0 else 0.0,
        "frechet_sq": frechet,
        "frechet_covariance_term": covariance,
        "frechet_centroid_share": centroid / frechet if frechet > 0 else 0.0,
        "mean_conformity_a": float(np.linalg.norm(mu_a)),
        "mean_conformity_b": float(np.linalg.norm(mu_b)),
    }
    shares = gap_shares(a, b, ks=ks)
    out.update({f"gap_top{k}_share": shares[k] for k in ks})
    return out
