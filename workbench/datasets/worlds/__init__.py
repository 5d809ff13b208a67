"""Synthetic paired worlds with known ground truth (see :mod:`workbench.datasets.worlds._world`)."""

from workbench.datasets.worlds._world import (
    COLORS,
    ENVELOPES,
    PALETTE,
    PITCHES,
    POSITIONS,
    SHAPE_WAVEFORMS,
    SHAPES,
    SIZES,
    WAVEFORMS,
    World,
    shapes,
    tones,
)

__all__ = [
    "COLORS",
    "ENVELOPES",
    "PALETTE",
    "PITCHES",
    "POSITIONS",
    "SHAPES",
    "SHAPE_WAVEFORMS",
    "SIZES",
    "WAVEFORMS",
    "World",
    "shapes",
    "tones",
]
