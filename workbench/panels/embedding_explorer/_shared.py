"""What the explorer's controller and both of its views share: constants and the metadata columns over all points.

Points are every row of ``paired.a`` then every row of ``paired.b``; the helpers here give a metadata column over
that order (null where a side lacks the column), whatever the types of the two sides.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

__all__ = [
    "BACKENDS", "MAX_LEGEND_CLASSES", "METHOD_NAMES", "MIN_POINTS", "caption_column", "concat_frames", "point_ids",
    "text_column",
]

#: Categorical colourings with at most this many classes get a legend entry per class.
MAX_LEGEND_CLASSES = 12
#: The views: "plotly", "jscatter" (jupyter-scatter) or "auto" (jscatter above JSCATTER_MIN_POINTS when installed).
BACKENDS = ("auto", "plotly", "jscatter")
#: Points needed for a 2-D projection by each method.
MIN_POINTS = {"pca": 3, "umap": 4, "tsne": 4}
#: How titles and axes name each projection method.
METHOD_NAMES = {"pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}


def concat_frames(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Stack frames whose columns may differ in type between the two sides (differing columns become strings).

    Examples
    --------
    >>> concat_frames([pl.DataFrame({"id": [1]}), pl.DataFrame({"id": ["x"]})]).get_column("id").to_list()
    ['1', 'x']
    """
    try:
        return pl.concat(frames, how="diagonal_relaxed")
    except (pl.exceptions.SchemaError, pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError):
        types: dict[str, set[Any]] = {}
        for f in frames:
            for name, dtype in f.schema.items():
                types.setdefault(name, set()).add(dtype)
        mixed = {name: pl.String for name, seen in types.items() if len(seen) > 1}
        return pl.concat([f.cast({c: t for c, t in mixed.items() if c in f.columns}) for f in frames],
                         how="diagonal_relaxed")


def point_ids(paired: Any) -> pl.Series:
    """The ``id`` of every point (a rows, then b rows; strings when the two sides' ids differ in type)."""
    return concat_frames([paired.a.metadata.select("id"), paired.b.metadata.select("id")]).get_column("id")


def caption_column(e: Any, rows: np.ndarray) -> pl.Series:
    """The ``caption`` of ``rows`` of an Embeddings as strings, or nulls when it has no captions."""
    if "caption" in e.metadata.columns:
        return e.metadata.get_column("caption").cast(pl.String).gather(rows)
    return pl.Series([None] * len(rows), dtype=pl.String)


def text_column(e: Any, column: str) -> pl.DataFrame:
    """``column`` of an Embeddings' metadata as strings, or nulls when it has none."""
    if column in e.metadata.columns:
        return e.metadata.select(pl.col(column).cast(pl.String))
    return pl.DataFrame({column: pl.Series([None] * len(e), dtype=pl.String)})
