"""The bounds every option struct shares, and the option texts they parse.

Each component declares its own ``TSGATE_*`` options as a frozen dataclass next to its
code (``upstream/options.py``, ``series/options.py``, ``jobs/options.py``,
``ops/options.py``); ``tsgate.settings.Settings`` composes them and reads the
environment. A field's name is its variable's without the prefix; its ``Annotated``
bounds are checked by ``msgspec.convert`` when the settings are built.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from tsgate.errors import ConfigError

DAY_S = 86_400.0

# every float has an upper bound, so inf and nan fail
Seconds = Annotated[float, msgspec.Meta(ge=0, le=366 * DAY_S)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0, le=366 * DAY_S)]
Days = Annotated[float, msgspec.Meta(gt=0, le=36600)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
AtLeastOne = Annotated[int, msgspec.Meta(ge=1, le=2**62)]
Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


def ms(seconds: float) -> int:
    """An option's seconds as the milliseconds the components keep time in."""
    return int(seconds * 1000)


_DURATION_MS = {"s": 1_000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}


def durations_ms(env_name: str, text: str) -> tuple[int, ...]:
    """``"2h,6h,1d"`` (or plain seconds, ``"7200,21600"``) as ascending milliseconds."""
    out: list[int] = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        number = part.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = part[len(number) :] or "s"
        try:
            value = float(number)
        except ValueError:
            value = -1.0
        if unit not in _DURATION_MS or value <= 0:
            raise ConfigError(f"{env_name}={text!r}: {part!r} is not a duration like 90s, 2h or 7d")
        out.append(int(value * _DURATION_MS[unit]))
    if out != sorted(set(out)):
        raise ConfigError(f"{env_name}={text!r}: durations must be ascending")
    return tuple(out)
