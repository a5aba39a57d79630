"""Drawing a chart server-side with matplotlib (its Agg canvas: no display, no pyplot).

:func:`figure` lays the series out the way the chart page does: a y-axis per unit
(labelled with it), on/off and multistate points as step lines on a small axis of their
own below, COV points as step lines, a comparison as a dashed copy of its series, the
site's occupied hours shaded behind.
:func:`encode` turns the figure into PNG or SVG bytes. Matplotlib is an optional
dependency (``pip install 'tsgate[images]'``), imported on the first image; its global
settings are read while saving, so drawing is serialised by the caller.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tsgate.errors import MissingDependency

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 100
THEMES: dict[str, dict[str, str]] = {
    "light": {"background": "#ffffff", "text": "#222222", "grid": "#dddddd", "stale": "#b00020"},
    "dark": {"background": "#1e1e1e", "text": "#e6e6e6", "grid": "#3a3a3a", "stale": "#ff6e6e"},
}
# the chart page's palette (ECharts' default), so an image matches the page
PALETTE = (
    "#5470c6",
    "#91cc75",
    "#fac858",
    "#ee6666",
    "#73c0de",
    "#3ba272",
    "#fc8452",
    "#9a60b4",
    "#ea7ccc",
)
MAX_UNIT_AXES = 4  # more distinct units share the last axis
BAND_COLOUR, BAND_ALPHA = "#286ec8", 0.13  # the chart page's occupancy bands
BAND_LABEL = "Occupied (schedule)"


@dataclass(frozen=True)
class Line:
    """One series to draw: times in ms, values (NaN: a gap)."""

    label: str
    unit: str
    t_ms: np.ndarray[Any, np.dtype[np.int64]]
    v: np.ndarray[Any, np.dtype[np.float64]]
    step: bool = False  # drawn as steps (COV, on/off, multistate)
    state: bool = False  # on/off or multistate: on the axis below
    dashed: bool = False  # a comparison's copy
    colour: int = -1  # an index into the palette (a comparison shares its series'); -1: its place


@dataclass(frozen=True)
class Picture:
    title: str
    view: str  # line | area | scatter
    start_ms: int
    end_ms: int
    width: int
    height: int
    theme: str = "light"
    note: str = ""  # shown under the title, e.g. that the data is stale
    # when the site was occupied (from its schedule points): shaded behind every axis
    bands: tuple[tuple[int, int], ...] = ()


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise MissingDependency("matplotlib", "images") from exc
    matplotlib.use("agg", force=False)
    return matplotlib


def _times(t_ms: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return t_ms.astype("datetime64[ms]")


def figure(picture: Picture, lines: Sequence[Line]) -> Figure:
    """The figure of ``lines``; its axes carry the units, its lines the drawn data."""
    _matplotlib()
    from matplotlib import dates
    from matplotlib.figure import Figure

    colours = THEMES[picture.theme]
    fig = Figure(figsize=(picture.width / DPI, picture.height / DPI), dpi=DPI)
    fig.patch.set_facecolor(colours["background"])
    states = [line for line in lines if line.state]
    values = [line for line in lines if not line.state]
    rows = (2 if values else 1) if states else 1
    ratios = [4, 1] if values and states else [1]
    grid = fig.add_gridspec(rows, 1, height_ratios=ratios, hspace=0.08)
    main = fig.add_subplot(grid[0])
    axes = [main]
    state_ax = fig.add_subplot(grid[1], sharex=main) if values and states else None
    if state_ax is not None:
        axes.append(state_ax)
    unit_axes = _unit_axes(main, values) if values else {}
    for i, line in enumerate(lines):
        colour = PALETTE[(line.colour if line.colour >= 0 else i) % len(PALETTE)]
        if line.state:
            ax = state_ax if state_ax is not None else main
            if state_ax is None:
                main.set_ylabel(_unit_label(line.unit), color=colours["text"])
        else:
            ax = unit_axes[line.unit]
        _draw(ax, line, picture.view, colour)
    for ax in {id(a): a for a in [*axes, *unit_axes.values()]}.values():
        _style(ax, colours)
    band = _shade(axes, picture.bands)
    if state_ax is not None:
        state_ax.set_ylabel("state", color=colours["text"])
        main.tick_params(labelbottom=False)
    bottom = state_ax if state_ax is not None else main
    locator = dates.AutoDateLocator(  # type: ignore[no-untyped-call]
        minticks=2, maxticks=max(4, picture.width // 110)
    )
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    bottom.set_xlabel("time (UTC)", color=colours["text"])
    start, end = _times(np.array([picture.start_ms, picture.end_ms], dtype=np.int64))
    main.set_xlim(start, end)
    main.grid(True, color=colours["grid"], linewidth=0.6)
    if 1 < len(lines) <= 12 or (band is not None and 0 < len(lines) <= 12):
        handles = [h for ax in axes for h in ax.get_legend_handles_labels()[0]]
        handles += [h for ax in unit_axes.values() if ax is not main for h in ax.lines]
        handles += [band] if band is not None else []
        main.legend(
            handles=handles,
            loc="upper left",
            fontsize="small",
            framealpha=0.7,
            facecolor=colours["background"],
            edgecolor=colours["grid"],
            labelcolor=colours["text"],
        )
    fig.suptitle(picture.title, color=colours["text"], fontsize="medium")
    if picture.note:
        fig.text(0.5, 0.925, picture.note, ha="center", color=colours["stale"], fontsize="small")
    fig.subplots_adjust(
        left=0.09, right=0.96 - 0.08 * max(0, len(unit_axes) - 1), top=0.9, bottom=0.11
    )
    return fig


def _shade(axes: Sequence[Axes], bands: Sequence[tuple[int, int]]) -> Any:
    """The occupied spans shaded behind the lines of every axis; the legend's patch for
    them (``None`` without spans)."""
    if not bands:
        return None
    from matplotlib.patches import Patch

    spans = _times(np.array(bands, dtype=np.int64).reshape(-1, 2))
    for ax in axes:
        for start, end in spans:
            ax.axvspan(start, end, color=BAND_COLOUR, alpha=BAND_ALPHA, linewidth=0, zorder=0)
    return Patch(color=BAND_COLOUR, alpha=3 * BAND_ALPHA, label=BAND_LABEL)


def _unit_label(unit: str) -> str:
    return unit or "(no unit)"


def _unit_axes(main: Axes, values: Sequence[Line]) -> dict[str, Axes]:
    """An axis per distinct unit: the first on the left, the others on the right."""
    units = list(dict.fromkeys(line.unit for line in values))
    out: dict[str, Axes] = {units[0]: main}
    main.set_ylabel(_unit_label(units[0]))
    for i, unit in enumerate(units[1:MAX_UNIT_AXES], start=1):
        twin = main.twinx()
        twin.spines["right"].set_position(("axes", 1 + 0.08 * (i - 1)))
        twin.set_ylabel(_unit_label(unit))
        out[unit] = twin
    for unit in units[MAX_UNIT_AXES:]:
        out[unit] = out[units[MAX_UNIT_AXES - 1]]
    return out


def _draw(ax: Axes, line: Line, view: str, colour: str) -> None:
    x, y = _times(line.t_ms), line.v
    style = "--" if line.dashed else "-"
    label = line.label
    if view == "scatter" and not line.step:
        ax.scatter(x, y, s=4, color=colour, label=label)
        return
    drawstyle = "steps-post" if line.step else "default"
    ax.plot(x, y, style, color=colour, linewidth=1.2, drawstyle=drawstyle, label=label)
    if view == "area" and not line.dashed:
        ax.fill_between(
            x, y, alpha=0.25, color=colour, step="post" if line.step else None, linewidth=0
        )


def _style(ax: Axes, colours: dict[str, str]) -> None:
    ax.set_facecolor(colours["background"])
    ax.tick_params(colors=colours["text"], labelsize="small")
    ax.yaxis.label.set_color(colours["text"])
    for spine in ax.spines.values():
        spine.set_color(colours["text"])


def encode(fig: Figure, fmt: str) -> bytes:
    """PNG or SVG bytes of ``fig``; the same figure gives the same bytes (no dates)."""
    matplotlib = _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    out = io.BytesIO()
    # text stays text in SVG (searchable, small); ids are stable, so are the bytes
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tsgate"}):
        if fmt == "svg":
            fig.savefig(out, format="svg", metadata={"Date": None, "Creator": "tsgate"})
        else:
            fig.savefig(out, format="png", dpi=DPI, metadata={"Software": "tsgate"})
    return out.getvalue()
