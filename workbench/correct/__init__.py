"""Gap correctors (see :mod:`workbench.correct._base`)."""

from workbench.correct._base import (
    ALL_CORRECTORS,
    AblateGapDimensions,
    GapShift,
    LinearAdapter,
    MeanCenter,
    Procrustes,
    ProjectOutGap,
    Standardize,
)

__all__ = [
    "ALL_CORRECTORS",
    "AblateGapDimensions",
    "GapShift",
    "LinearAdapter",
    "MeanCenter",
    "Procrustes",
    "ProjectOutGap",
    "Standardize",
]
