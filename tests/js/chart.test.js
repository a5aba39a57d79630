// ECharts options and the chart's text alternative, from plain series.
import assert from "node:assert/strict";
import { test } from "node:test";

import { describe, heightFor, labels, localDay, optionFor } from "../../src/tsgate/ui/static/js/chart.js";

const T0 = Date.UTC(2025, 9, 1);
const DAY_MS = 86_400_000;

function series(name, values) {
  return { name, t: Float64Array.from(values, (_, i) => T0 + i * 300_000), v: Float64Array.from(values) };
}

test("legend labels drop the common prefix, up to a separator", () => {
  assert.deepEqual(labels(["ses/site/ahu1/SaTemp", "ses/site/ahu1/SfPower"]), ["SaTemp", "SfPower"]);
  assert.deepEqual(labels(["a.b.Temp1", "a.b.Temp2"]), ["Temp1", "Temp2"]);
  assert.deepEqual(labels(["ses/site/x"]), ["x"]);
  assert.deepEqual(labels(["same", "same"]), ["same", "same"]);
});

test("a y-axis per unit, series placed on their unit's axis", () => {
  const spec = {
    series: [series("p/t1", [1, 2]), series("p/kw", [3]), series("p/t2", [4])],
    units: { "p/t1": "°F", "p/kw": "kW", "p/t2": "°F" },
    view: "line", startMs: T0, endMs: T0 + DAY_MS,
  };
  const option = optionFor(spec);
  assert.deepEqual(option.yAxis.map((a) => a.name), ["°F", "kW"]);
  assert.deepEqual(option.series.map((s) => s.yAxisIndex), [0, 1, 0]);
  assert.deepEqual(option.series[0].data, [[T0, 1], [T0 + 300_000, 2]]);
});

test("the text alternative names the view, the range and each series' extremes", () => {
  const spec = {
    series: [series("p/SaTemp", [55.5, NaN, 61.25, 58]), series("p/Empty", [NaN])],
    units: { "p/SaTemp": "°F" },
    view: "area", startMs: T0, endMs: T0 + DAY_MS,
  };
  const text = describe(spec);
  assert.equal(
    text,
    "Area chart of 2 points, 2025-10-01 00:00 UTC to 2025-10-02 00:00 UTC. " +
      "SaTemp: 3 values from 55.5 to 61.25 °F. Empty: no samples.",
  );
  const option = optionFor(spec);
  assert.deepEqual(option.aria, { enabled: true, label: { description: text } });
});

test("the calendar view: one calendar per point, daily values, its own description", () => {
  const daily = { name: "p/x", t: Float64Array.from([T0, T0 + DAY_MS]), v: Float64Array.from([1, 2]) };
  const option = optionFor({ series: [daily], units: {}, view: "calendar", startMs: T0, endMs: T0 + 2 * DAY_MS });
  assert.equal(option.calendar.length, 1);
  assert.deepEqual(option.series[0].data, [["2025-10-01", 1], ["2025-10-02", 2]]);
  assert.deepEqual(option.calendar[0].range, ["2025-10-01", "2025-10-02"]);
  assert.match(option.aria.label.description, /^Calendar heatmap of the daily means of 1 point, /);
  assert.equal(heightFor("calendar", 3), 40 + 3 * 170);
  assert.equal(heightFor("line", 3), null);
});

function typed(name, values, kind, mode = kind === "analog" ? "sampled" : "cov", offsetMs = 0) {
  return { ...series(name, values), kind, mode, offsetMs };
}

test("on/off points are step lines on their own small axis under the others; COV points step", () => {
  const spec = {
    series: [typed("p/SaTemp", [55, 56], "analog"), typed("p/SfStatus", [0, 1, 1], "binary"), typed("p/Flow", [3, 4], "analog", "cov")],
    units: { "p/SaTemp": "°F", "p/Flow": "cfm" },
    view: "line", startMs: T0, endMs: T0 + DAY_MS,
  };
  const option = optionFor(spec);
  assert.equal(option.grid.length, 2);
  assert.deepEqual(option.yAxis.map((a) => [a.name, a.gridIndex ?? 0]), [["°F", 0], ["cfm", 0], ["on/off", 1]]);
  assert.deepEqual(option.yAxis[2].axisLabel.formatter(1), "on");
  assert.deepEqual([option.yAxis[2].min, option.yAxis[2].max], [0, 1]);
  assert.deepEqual(option.series.map((s) => [s.xAxisIndex, s.yAxisIndex, s.step]), [[0, 0, undefined], [1, 2, "end"], [0, 1, "end"]]);
  assert.deepEqual(option.xAxis.map((a) => a.gridIndex), [0, 1]);
  assert.deepEqual(option.dataZoom.map((z) => z.xAxisIndex), [[0, 1], [0, 1]]); // both zoom together
});

test("multistate points alone: one grid, a state axis up to the highest state", () => {
  const option = optionFor({ series: [typed("p/Mode", [0, 3, 2], "multistate")], units: {}, view: "line", startMs: T0, endMs: T0 + DAY_MS });
  assert.equal(option.grid.length, 1);
  assert.deepEqual(option.yAxis.map((a) => [a.name, a.min, a.max]), [["state", 0, 3]]);
  assert.deepEqual([option.series[0].xAxisIndex, option.series[0].yAxisIndex, option.series[0].step], [0, 0, "end"]);
});

test("last week is a dashed copy of its series, named so, and said once in the description", () => {
  const spec = {
    series: [typed("p/SaTemp", [55], "analog"), typed("p/SaTemp", [54], "analog", "sampled", -7 * DAY_MS)],
    units: { "p/SaTemp": "°F" },
    view: "line", startMs: T0, endMs: T0 + DAY_MS,
  };
  const option = optionFor(spec);
  assert.deepEqual(option.series.map((s) => s.name), ["SaTemp", "SaTemp (last week)"]);
  assert.deepEqual(option.series.map((s) => s.lineStyle?.type), [undefined, "dashed"]);
  assert.match(describe(spec), /^Line chart of 1 point, .* SaTemp: 1 values from 55 to 55 °F\. SaTemp \(last week\): 1 values from 54 to 54 °F\.$/);
});

test("calendar days are the site's local days; a duty cycle is 0–100 % on", () => {
  // local midnights in Berlin are 23:00 or 22:00 UTC the day before
  const berlin = [Date.UTC(2026, 2, 28, 23), Date.UTC(2026, 2, 29, 23)];
  const duty = { ...typed("p/SfStatus", [25, 50], "binary"), t: Float64Array.from(berlin), agg: "duty" };
  const option = optionFor({ series: [duty], units: {}, view: "calendar", startMs: berlin[0], endMs: berlin[1] + 23 * 3_600_000, timeZone: "Europe/Berlin" });
  assert.deepEqual(option.series[0].data, [["2026-03-29", 25], ["2026-03-30", 50]]);
  assert.deepEqual(option.calendar[0].range, ["2026-03-29", "2026-03-30"]);
  assert.deepEqual([option.visualMap[0].min, option.visualMap[0].max], [0, 100]);
  assert.match(option.title[0].text, /% on/);
  assert.equal(localDay(Date.UTC(2026, 2, 28, 23), "UTC"), "2026-03-28");
});

test("gaps are shaded bands behind their series and are named in the text alternative", () => {
  const HOUR = 3_600_000;
  const withGaps = { ...series("p/SaTemp", [55, 56]), gaps: [[T0 + HOUR, T0 + 3 * HOUR], [T0 + 5 * HOUR, T0 + 5 * HOUR + 20 * 60_000]] };
  const spec = { series: [withGaps, series("p/RaTemp", [60])], units: {}, view: "line", startMs: T0, endMs: T0 + DAY_MS };
  const option = optionFor(spec);
  assert.deepEqual(option.series[0].markArea.data, [
    [{ name: "no samples", xAxis: T0 + HOUR }, { xAxis: T0 + 3 * HOUR }],
    [{ name: "no samples", xAxis: T0 + 5 * HOUR }, { xAxis: T0 + 5 * HOUR + 20 * 60_000 }],
  ]);
  assert.equal(option.series[0].markArea.silent, true);
  assert.equal(option.series[1].markArea, undefined);
  assert.match(describe(spec), /SaTemp: 2 values from 55 to 56\. No samples in 2 spans \(shaded\), the longest 2 h\. RaTemp: 1 values/);
});

test("no line is drawn across a gap: a break at its middle, none for a short gap between far points", () => {
  const t = [T0, T0 + 300_000, T0 + 4 * 3_600_000, T0 + 4 * 3_600_000 + 300_000];
  const s = { name: "p/x", t: Float64Array.from(t), v: Float64Array.from([1, 2, 3, 4]), gaps: [[t[1], t[2]]] };
  const line = optionFor({ series: [s], units: {}, view: "line", startMs: T0, endMs: T0 + DAY_MS }).series[0];
  assert.deepEqual(line.data, [[t[0], 1], [t[1], 2], [(t[1] + t[2]) / 2, null], [t[2], 3], [t[3], 4]]);
  const hourly = { name: "p/h", t: Float64Array.from([T0, T0 + 3_600_000]), v: Float64Array.from([1, 2]), gaps: [[T0 + 600_000, T0 + 1_800_000]] };
  const drawn = optionFor({ series: [hourly], units: {}, view: "line", startMs: T0, endMs: T0 + DAY_MS }).series[0];
  assert.deepEqual(drawn.data, [[T0, 1], [T0 + 3_600_000, 2]]); // 20 min inside an hour's spacing
});
