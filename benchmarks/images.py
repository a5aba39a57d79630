"""The cost of drawing chart images (``/api/charts/{id}.png``) with matplotlib.

``python -m benchmarks.images``: the import time of what the renderer imports (in a
fresh interpreter, median of 3), the time to draw 50 series x 2,000 points at 1200 x 600
through tsgate's own renderer (``api/plotting.py``, median of 5) as PNG and SVG, and the
installed size of matplotlib with the packages it pulls in. docs/chart-images.md has the
figures and the comparison with ECharts' server-side rendering.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from importlib import metadata

import numpy as np

from tsgate.api import plotting

IMPORT = (
    "import time; t = time.perf_counter(); import matplotlib; matplotlib.use('agg'); "
    "from matplotlib.figure import Figure; from matplotlib.backends.backend_agg import "
    "FigureCanvasAgg; print(time.perf_counter() - t)"
)
PACKAGES = (
    "matplotlib",
    "contourpy",
    "cycler",
    "fonttools",
    "kiwisolver",
    "pillow",
    "pyparsing",
    "python-dateutil",
    "six",
)


def import_s() -> float:
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", IMPORT], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return statistics.median(runs)


def draw_s(fmt: str, series: int = 50, points: int = 2000) -> tuple[float, int]:
    rng = np.random.default_rng(1)
    t = np.arange(points, dtype=np.int64) * 300_000
    lines = [
        plotting.Line(f"p{i}", "°F" if i % 2 else "%", t, np.cumsum(rng.normal(size=points)))
        for i in range(series)
    ]
    picture = plotting.Picture("bench", "line", 0, int(t[-1]) + 1, 1200, 600)
    plotting.encode(plotting.figure(picture, lines), fmt)  # first draw: font cache
    runs, size = [], 0
    for _ in range(5):
        started = time.perf_counter()
        size = len(plotting.encode(plotting.figure(picture, lines), fmt))
        runs.append(time.perf_counter() - started)
    return statistics.median(runs), size


def installed_mib() -> float:
    total = 0
    for name in PACKAGES:
        files = metadata.distribution(name).files or []
        total += sum(f.size or 0 for f in files if f.size)
    return total / (1 << 20)


def main() -> None:
    print(f"import: {import_s() * 1000:.0f} ms")
    for fmt in ("png", "svg"):
        seconds, size = draw_s(fmt)
        print(f"50 series x 2,000 points, 1200x600 {fmt}: {seconds * 1000:.0f} ms, {size:,} B")
    print(f"installed: {installed_mib():.0f} MiB ({', '.join(PACKAGES)})")


if __name__ == "__main__":
    main()
