// ECharts options and the chart's text alternative, from plain series.
import assert from "node:assert/strict";
import { test } from "node:test";

import { describe, heightFor, labels, optionFor } from "../../src/tsgate/ui/static/js/chart.js";

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
