"""The pure core: series values, their codec, rollups, grids, calendars and the
arithmetic on them. Nothing here imports a framework, a driver, I/O or another
tsgate package but ``errors`` (the pure-core contract in ``pyproject.toml``)."""
