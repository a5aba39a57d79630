// Occupancy bands: the schedule's occupied spans as shaded bands with a legend entry,
// and as a sentence of the chart's text alternative.
import assert from "node:assert/strict";
import { test } from "node:test";

import { describe, optionFor } from "../../src/tsgate/ui/static/js/chart.js";
import { OCCUPIED_COLOR, OCCUPIED_NAME, occupancySeries, occupancyText, occupancyUrl } from "../../src/tsgate/ui/static/js/occupancy.js";

const T0 = Date.UTC(2026, 2, 27);
const H = 3_600_000;
const SPANS = [[T0 + 5.5 * H, T0 + 18 * H], [T0 + 72 * H + 4.5 * H, T0 + 72 * H + 17 * H]];

function series(name, values, extra = {}) {
  return { name, t: Float64Array.from(values, (_, i) => T0 + i * H), v: Float64Array.from(values), ...extra };
}

test("the url asks for the charted range of the site", () => {
  const url = new URL(occupancyUrl({ site: "rhine_lab", startMs: T0, endMs: T0 + 24 * H }), "http://x");
  assert.equal(url.pathname, "/api/occupancy");
  assert.equal(url.searchParams.get("site"), "rhine_lab");
  assert.equal(url.searchParams.get("start"), "2026-03-27T00:00:00");
  assert.equal(url.searchParams.get("end"), "2026-03-28T00:00:00");
});

test("the spans are a band series of their own, in their own colour, behind the data", () => {
  const band = occupancySeries({ points: ["p"], spans: SPANS });
  assert.equal(band.name, OCCUPIED_NAME);
  assert.deepEqual(band.data, []);
  assert.equal(band.markArea.itemStyle.color, OCCUPIED_COLOR);
  assert.deepEqual(band.markArea.data.map(([a, b]) => [a.xAxis, b.xAxis]), SPANS);
  assert.equal(occupancySeries({ points: ["p"], spans: [] }), null);
  assert.equal(occupancySeries(null), null);
});

test("the chart shades every grid, with one legend entry, distinct from the gap bands", () => {
  const spec = {
    series: [series("s/temp", [70, 71, 72], { gaps: [[T0 + H, T0 + 2 * H]] }), series("s/fan", [0, 1, 1], { kind: "binary", mode: "cov" })],
    units: { "s/temp": "°F" },
    view: "line", startMs: T0, endMs: T0 + 96 * H,
    occupancy: { points: ["s/occ"], spans: SPANS },
  };
  const option = optionFor(spec);
  const bands = option.series.filter((s) => s.name === OCCUPIED_NAME);
  assert.equal(bands.length, 2); // the value grid and the on/off grid
  assert.deepEqual(bands.map((b) => b.xAxisIndex), [0, 1]);
  assert.deepEqual(bands.map((b) => b.yAxisIndex), [0, 1]);
  const gap = option.series[0].markArea.itemStyle.color;
  assert.notEqual(gap, OCCUPIED_COLOR);
  assert.match(option.aria.label.description, /Occupied by the site's schedule in 2 spans, 25 h in all \(shaded blue\)\./);
  // without spans: no band series, and nothing said about them
  const plain = optionFor({ ...spec, occupancy: null });
  assert.equal(plain.series.filter((s) => s.name === OCCUPIED_NAME).length, 0);
  assert.doesNotMatch(plain.aria.label.description, /Occupied/);
});

test("the text alternative says when a scheduled site was not occupied", () => {
  assert.equal(occupancyText(null), "");
  assert.equal(occupancyText({ points: [], spans: [] }), "");
  assert.match(occupancyText({ points: ["p"], spans: [] }), /Not occupied/);
  assert.match(occupancyText({ points: ["p"], spans: [SPANS[0]] }), /in 1 span, 12\.5 h in all/);
  const text = describe({ series: [series("a", [1])], units: {}, view: "calendar", startMs: T0, endMs: T0 + H, occupancy: { points: ["p"], spans: SPANS } });
  assert.doesNotMatch(text, /Occupied/); // a calendar has no time axis to shade
});
