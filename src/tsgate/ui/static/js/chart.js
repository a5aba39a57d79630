// ECharts options for the loaded series: line, area, scatter (a y-axis per unit) and a
// calendar heatmap of daily means (one calendar per point).

const AXIS_GAP_PX = 64;
const CALENDAR_PX = 170;

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

function pairs(s) {
  const out = new Array(s.t.length);
  for (let i = 0; i < s.t.length; i++) {
    const v = s.v[i];
    out[i] = [s.t[i], Number.isNaN(v) ? null : v];
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
export function describe({ series, units, view, startMs, endMs }) {
  const names = labels(series.map((s) => s.name));
  const head = `${VIEW_NAMES[view] || VIEW_NAMES.line} of ${series.length} point${series.length === 1 ? "" : "s"}, ${utc(startMs)} to ${utc(endMs)}.`;
  const lines = series.map((s, i) => {
    const unit = unitOf(units, s.name);
    const { count, min, max } = extremes(s.v);
    if (!count) return `${names[i]}: no samples.`;
    const suffix = unit ? ` ${unit}` : "";
    return `${names[i]}: ${count} values from ${rounded(min)} to ${rounded(max)}${suffix}.`;
  });
  return [head, ...lines].join(" ");
}

function aria(spec) {
  return { enabled: true, label: { description: describe(spec) } };
}

function timeOption({ series, units, view, startMs, endMs }) {
  const { axes, indexOf } = yAxes(units, series.map((s) => s.name));
  const names = labels(series.map((s) => s.name));
  const left = Math.ceil(axes.length / 2);
  const right = Math.floor(axes.length / 2);
  return {
    aria: aria({ series, units, view, startMs, endMs }),
    animation: false,
    legend: { type: "scroll", top: 4 },
    tooltip: { trigger: view === "scatter" ? "item" : "axis" },
    grid: { left: 16 + left * AXIS_GAP_PX, right: 16 + Math.max(right, 0.3) * AXIS_GAP_PX, top: 48, bottom: 72 },
    xAxis: { type: "time", min: startMs, max: endMs },
    yAxis: axes,
    dataZoom: [
      { type: "inside", xAxisIndex: 0, filterMode: "none" },
      { type: "slider", xAxisIndex: 0, filterMode: "none", bottom: 16 },
    ],
    series: series.map((s, i) => ({
      name: names[i],
      type: view === "scatter" ? "scatter" : "line",
      yAxisIndex: indexOf(s.name),
      showSymbol: view === "scatter",
      symbolSize: 3,
      connectNulls: false,
      areaStyle: view === "area" ? { opacity: 0.25 } : undefined,
      data: pairs(s),
    })),
  };
}

function day(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

function calendarOption({ series, units, startMs, endMs }) {
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
    option.title.push({ text: `${names[i]} ${unitOf(units, s.name)}`.trim(), top: top - 26, left: 16, textStyle: { fontSize: 13 } });
    option.calendar.push({ top: top + 4, left: 60, right: 110, range, cellSize: ["auto", 14] });
    option.visualMap.push({
      seriesIndex: i,
      min: values.length ? Math.min(...values) : 0,
      max: values.length ? Math.max(...values) : 1,
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
