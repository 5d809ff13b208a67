"""Paper-ready exports (moving into a package: see the following commits)."""

from workbench.export._save import *  # noqa: F403
from workbench.export._save import __all__  # noqa: F401
