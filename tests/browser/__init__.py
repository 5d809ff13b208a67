"""Real-browser tests of the panels (a package, so that its conftest and modules have their own import names)."""
