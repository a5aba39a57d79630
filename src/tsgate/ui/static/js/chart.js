// ECharts options for the loaded series: line, area, scatter (a y-axis per unit) and a
// calendar heatmap of daily means or duty cycles (one calendar per point). On/off and
// multistate points are step lines on their own small axis below the others; COV points
// are step lines; a comparison ("last week") is a dashed copy of its series. Where the
// site has schedule points, its occupied spans are shaded behind (occupancy.js).

import { occupancySeries, occupancyText } from "./occupancy.js";

const AXIS_GAP_PX = 64;
const CALENDAR_PX = 170;
const STATE_PX = 90; // the height of the on/off and multistate axis
const BOTTOM_PX = 72; // room for the zoom slider

const GAP_COLOR = "rgba(200, 60, 40, 0.12)"; // a span without samples (metadata.gaps)

const isState = (s) => s.kind === "binary" || s.kind === "multistate";
const isStep = (s) => isState(s) || s.mode === "cov";

/** A series' legend label: its point's, marked when it is the comparison. */
function seriesLabel(label, s) {
  return s.offsetMs ? `${label} (${offsetText(s.offsetMs)})` : label;
}

export function offsetText(offsetMs) {
  const days = Math.abs(offsetMs) / 86_400_000;
  if (days === 7) return "last week";
  return Number.isInteger(days) ? `${days} d earlier` : `${Math.abs(offsetMs) / 3_600_000} h earlier`;
}

/** Legend labels: what tells the names apart (their common prefix dropped). */
export function labels(names) {
  if (names.length === 1) return [names[0].split("/").pop()];
  let common = names[0];
  for (const name of names) {
    while (!name.startsWith(common)) common = common.slice(0, -1);
  }
  const cut = Math.max(common.lastIndexOf("/"), common.lastIndexOf(".")) + 1;
  return names.map((name) => name.slice(cut) || name);
}

function unitOf(units, name) {
  return units[name] || "";
}

function yAxes(units, names) {
  const distinct = [...new Set(names.map((n) => unitOf(units, n)))];
  const axes = distinct.map((unit, i) => ({
    type: "value",
    name: unit || "(no unit)",
    position: i % 2 === 0 ? "left" : "right",
    offset: Math.floor(i / 2) * AXIS_GAP_PX,
    scale: true,
    alignTicks: i > 0,
    axisLine: { show: true },
    splitLine: { show: i === 0 },
  }));
  return { axes, indexOf: (name) => distinct.indexOf(unitOf(units, name)) };
}

/** ``[t, v]`` pairs, with a break (a null) in each gap wide against its neighbours'
 * spacing, so that no line is drawn across a span without samples. */
function pairs(s) {
  const out = [];
  const gaps = s.gaps || [];
  let g = 0;
  for (let i = 0; i < s.t.length; i++) {
    const t = s.t[i];
    for (; g < gaps.length && (gaps[g][0] + gaps[g][1]) / 2 < t; g++) {
      const [a, b] = gaps[g];
      if (i > 0 && (a + b) / 2 > s.t[i - 1] && 2 * (b - a) >= t - s.t[i - 1]) out.push([(a + b) / 2, null]);
    }
    const v = s.v[i];
    out.push([t, Number.isNaN(v) ? null : v]);
  }
  return out;
}

const VIEW_NAMES = { line: "Line chart", area: "Area chart", scatter: "Scatter chart", calendar: "Calendar heatmap of the daily means" };

function utc(ms) {
  return `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function extremes(v) {
  let min = Infinity;
  let max = -Infinity;
  let count = 0;
  for (const x of v) {
    if (Number.isNaN(x)) continue;
    count++;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  return { count, min, max };
}

function rounded(x) {
  return Number(x.toPrecision(4)).toString();
}

/** The chart as one sentence per series: the text alternative for screen readers. */
export function describe({ series, units, view, startMs, endMs, occupancy }) {
  const names = labels(series.map((s) => s.name)).map((label, i) => seriesLabel(label, series[i]));
  const count = series.filter((s) => !s.offsetMs).length;
  const head = `${VIEW_NAMES[view] || VIEW_NAMES.line} of ${count} point${count === 1 ? "" : "s"}, ${utc(startMs)} to ${utc(endMs)}.`;
  const lines = series.map((s, i) => {
    const unit = s.agg === "duty" ? "% on" : unitOf(units, s.name);
    const { count, min, max } = extremes(s.v);
    if (!count) return `${names[i]}: no samples.`;
    const suffix = unit ? ` ${unit}` : "";
    return `${names[i]}: ${count} values from ${rounded(min)} to ${rounded(max)}${suffix}.${gapText(s.gaps)}`;
  });
  const bands = view === "calendar" ? "" : occupancyText(occupancy);
  return [head + bands, ...lines].join(" ");
}

function hours(ms) {
  return ms >= 3_600_000 ? `${rounded(ms / 3_600_000)} h` : `${Math.round(ms / 60_000)} min`;
}

function gapText(gaps) {
  if (!gaps?.length) return "";
  const longest = Math.max(...gaps.map(([a, b]) => b - a));
  const spans = gaps.length === 1 ? "1 span" : `${gaps.length} spans`;
  return ` No samples in ${spans} (shaded), the longest ${hours(longest)}.`;
}

/** A series' gaps (``[[startMs, endMs], …]``) as shaded bands behind it. */
export function gapBands(gaps) {
  if (!gaps?.length) return undefined;
  return {
    silent: true,
    label: { show: false },
    itemStyle: { color: GAP_COLOR },
    data: gaps.map(([a, b]) => [{ name: "no samples", xAxis: a }, { xAxis: b }]),
  };
}

function aria(spec) {
  return { enabled: true, label: { description: describe(spec) } };
}

/** The state axis: 0/1 for on/off points, 0…n for multistate ones. */
function stateAxis(series, gridIndex) {
  let max = 1;
  for (const s of series) for (const v of s.v) if (v > max) max = v;
  const binary = series.every((s) => s.kind === "binary");
  return {
    type: "value",
    gridIndex,
    name: binary ? "on/off" : "state",
    min: 0,
    max: Math.ceil(max),
    interval: binary ? 1 : Math.max(1, Math.ceil(max / 4)),
    axisLabel: binary ? { formatter: (v) => (v === 1 ? "on" : v === 0 ? "off" : "") } : {},
    axisLine: { show: true },
    splitLine: { show: true },
  };
}

/** The occupied spans shaded on every grid (one legend entry shows or hides them all). */
function bandSeries(occupancy, grids, yAxisOf) {
  return grids
    .map((_, i) => occupancySeries(occupancy, { xAxisIndex: i, yAxisIndex: yAxisOf(i) }))
    .filter(Boolean);
}

function timeOption({ series, units, view, startMs, endMs, occupancy }) {
  const states = series.filter(isState);
  const values = series.filter((s) => !isState(s));
  const { axes, indexOf } = yAxes(units, values.map((s) => s.name));
  const names = labels(series.map((s) => s.name)).map((label, i) => seriesLabel(label, series[i]));
  const both = states.length > 0 && values.length > 0;
  const left = Math.max(1, Math.ceil(axes.length / 2));
  const right = Math.floor(axes.length / 2);
  const side = { left: 16 + left * AXIS_GAP_PX, right: 16 + Math.max(right, 0.3) * AXIS_GAP_PX };
  // on/off and multistate points get a small grid of their own under the others
  const grids = both
    ? [{ ...side, top: 48, bottom: BOTTOM_PX + STATE_PX + 24 }, { ...side, height: STATE_PX, bottom: BOTTOM_PX }]
    : [{ ...side, top: 48, bottom: BOTTOM_PX }];
  const stateGrid = both ? 1 : 0;
  const yAxis = values.length ? axes : [];
  const stateIndex = yAxis.length;
  if (states.length) yAxis.push(stateAxis(states, stateGrid));
  const xAxes = grids.map((_, i) => ({ type: "time", gridIndex: i, min: startMs, max: endMs, axisLabel: { show: i === grids.length - 1 } }));
  const xAxisIndex = grids.map((_, i) => i);
  return {
    aria: aria({ series, units, view, startMs, endMs, occupancy }),
    animation: false,
    legend: { type: "scroll", top: 4 },
    tooltip: { trigger: view === "scatter" ? "item" : "axis" },
    grid: grids,
    xAxis: xAxes,
    yAxis,
    axisPointer: { link: [{ xAxisIndex: "all" }] },
    dataZoom: [
      { type: "inside", xAxisIndex, filterMode: "none" },
      { type: "slider", xAxisIndex, filterMode: "none", bottom: 16 },
    ],
    series: series.map((s, i) => {
      const state = isState(s);
      return {
        name: names[i],
        type: view === "scatter" ? "scatter" : "line",
        xAxisIndex: state ? stateGrid : 0,
        yAxisIndex: state ? stateIndex : indexOf(s.name),
        step: view !== "scatter" && isStep(s) ? "end" : undefined, // a value holds until the next
        showSymbol: view === "scatter",
        symbolSize: 3,
        connectNulls: false,
        lineStyle: s.offsetMs ? { type: "dashed", opacity: 0.7 } : undefined,
        areaStyle: view === "area" && !state ? { opacity: 0.25 } : undefined,
        markArea: gapBands(s.gaps),
        data: pairs(s),
      };
    }).concat(bandSeries(occupancy, grids, (i) => (i === stateGrid && states.length ? stateIndex : 0))),
  };
}

/** ``YYYY-MM-DD`` of ``ms`` in ``timeZone`` (the zone the days were computed in). */
export function localDay(ms, timeZone = "UTC") {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).formatToParts(ms);
  const part = (type) => parts.find((p) => p.type === type).value;
  return `${part("year")}-${part("month")}-${part("day")}`;
}

function calendarOption({ series, units, startMs, endMs, timeZone = "UTC" }) {
  const day = (ms) => localDay(ms, timeZone);
  series = series.filter((s) => !s.offsetMs); // one calendar per point: no overlay here
  const range = [day(startMs), day(endMs - 1)];
  const option = {
    aria: aria({ series, units, view: "calendar", startMs, endMs }),
    animation: false, tooltip: {}, title: [], calendar: [], visualMap: [], series: [],
  };
  const names = labels(series.map((s) => s.name));
  series.forEach((s, i) => {
    const top = 30 + i * CALENDAR_PX;
    const data = pairs(s).filter(([, v]) => v !== null).map(([t, v]) => [day(t), v]);
    const values = data.map(([, v]) => v);
    const duty = s.agg === "duty";
    const unit = duty ? "% on (duty cycle)" : unitOf(units, s.name);
    option.title.push({ text: `${names[i]} ${unit}`.trim(), top: top - 26, left: 16, textStyle: { fontSize: 13 } });
    option.calendar.push({ top: top + 4, left: 60, right: 110, range, cellSize: ["auto", 14] });
    option.visualMap.push({
      seriesIndex: i,
      min: duty ? 0 : values.length ? Math.min(...values) : 0,
      max: duty ? 100 : values.length ? Math.max(...values) : 1,
      calculable: true,
      orient: "vertical",
      right: 8,
      top: top,
      itemHeight: 90,
      precision: 1,
    });
    option.series.push({ name: names[i], type: "heatmap", coordinateSystem: "calendar", calendarIndex: i, data });
  });
  return option;
}

/** The height the chart needs for ``view`` and ``count`` series (null: fill the space). */
export function heightFor(view, count) {
  return view === "calendar" ? 40 + count * CALENDAR_PX : null;
}

export function optionFor(spec) {
  return spec.view === "calendar" ? calendarOption(spec) : timeOption(spec);
}
