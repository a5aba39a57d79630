"""tsgate: a timeseries gateway for building-automation data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tsgate")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
