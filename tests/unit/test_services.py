"""What handlers are given: ``Services`` holds the Protocols the owners declare (and plain
values), and handlers ask those owners instead of reaching through them."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from tsgate.core.kinds import PointKinds
from tsgate.ops.warm import ChartWarmCounters
from tsgate.series.planning import CachePolicy
from tsgate.series.recheck import RecheckCounters
from tsgate.services import Services
from tsgate.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# values and counters, not collaborators: nothing behind them does I/O
VALUES = {Settings, CachePolicy, PointKinds, RecheckCounters, ChartWarmCounters}


def _is_protocol(kind: object) -> bool:
    return isinstance(kind, type) and bool(getattr(kind, "_is_protocol", False))


def test_every_collaborator_is_a_protocol_its_owner_declares() -> None:
    hints = typing.get_type_hints(Services)
    concrete = []
    for name, hint in hints.items():
        if name in ("salt", "clock_ms"):
            continue  # bytes, and the clock (a callable)
        kinds = [k for k in typing.get_args(hint) if k is not type(None)] or [hint]
        for kind in kinds:
            if kind not in VALUES and not _is_protocol(kind):
                concrete.append(f"{name}: {kind}")
    assert concrete == []
    assert _is_protocol(hints["reader"]) and _is_protocol(hints["catalog"])


def test_handlers_ask_the_owner_instead_of_reaching_through_it() -> None:
    chain = re.compile(r"services\.(?!settings\.)[a-z_]+\.[a-z_]+\.")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "src" / "tsgate" / "api").glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if chain.search(line)
    ]
    assert found == []
