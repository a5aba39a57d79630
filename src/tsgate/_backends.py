"""Choosing a backend adapter by URL scheme, with lazy imports.

Every seam keeps one table ``{scheme: "module:Class"}``; ``load_adapter`` imports the
module only when that scheme is used, so a missing optional driver fails loudly and
names the extra to install, and nothing heavy is imported at start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from tsgate.errors import ConfigError, MissingDependency


@dataclass(frozen=True)
class Adapter:
    """Where an adapter lives, and which extra brings its driver."""

    target: str  # "package.module:Class"
    extra: str | None = None


def scheme_of(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        raise ConfigError(f"{url!r} has no scheme (expected e.g. 'file://…', 'sqlite://…')")
    return scheme


def load_adapter(seam: str, url: str, table: Mapping[str, Adapter]) -> type:
    """Import and return the adapter class serving ``url``'s scheme for ``seam``."""
    scheme = scheme_of(url)
    adapter = table.get(scheme)
    if adapter is None:
        supported = ", ".join(f"{s}://" for s in sorted(table))
        raise ConfigError(
            f"{seam}: unsupported scheme {scheme!r} in {url!r}; use one of {supported}"
        )
    module_name, _, class_name = adapter.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if adapter.extra is None or exc.name is None or exc.name.split(".")[0] == "tsgate":
            raise
        raise MissingDependency(exc.name.split(".")[0], adapter.extra) from exc
    cls: type = getattr(module, class_name)
    return cls
