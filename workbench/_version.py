"""The package version, in a leaf module that the CLI, reports and exports import (never the package face)."""

__version__ = "0.1.0"
