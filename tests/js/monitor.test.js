// The monitor view's data: its request, the series of each panel, the rules' rows.
import assert from "node:assert/strict";
import { test } from "node:test";

import { optionFor } from "../../src/tsgate/ui/static/js/chart.js";
import { PANELS, monitorUrl, panelSeries, ruleRows } from "../../src/tsgate/ui/static/js/monitor.js";

const T0 = Date.UTC(2025, 10, 14);
const BODY = {
  metrics: {
    store_bytes: { t: [T0, T0 + 60_000], v: [100, 200] },
    database_bytes: { t: [T0], v: [null] },
    request_error_ratio: { t: [T0], v: [0.5] },
    chunk_bytes: { t: [], v: [] },
  },
  rules: [{ metric: "store_bytes", warning: 150, critical: null }],
  levels: { store_bytes: "warning", job_backlog: "ok" },
  latest: { at: T0 + 60_000, values: { store_bytes: 200 } },
  events: [],
};

test("the request asks for the range and a point budget", () => {
  const url = new URL(monitorUrl({ startMs: T0, endMs: T0 + 3_600_000 }), "http://x");
  assert.equal(url.pathname, "/api/monitor");
  assert.equal(url.searchParams.get("start"), "2025-11-14T00:00:00");
  assert.equal(url.searchParams.get("end"), "2025-11-14T01:00:00");
  assert.equal(url.searchParams.get("max_points"), "400");
});

test("each panel charts its metrics with samples, gaps as NaN, a y-axis per unit", () => {
  const sizes = PANELS.find((p) => p.id === "sizes");
  const series = panelSeries(BODY, sizes);
  assert.deepEqual(series.map((s) => s.name), ["database_bytes", "store_bytes"]);
  assert.ok(Number.isNaN(series[0].v[0]));
  assert.deepEqual([...series[1].v], [100, 200]);
  const option = optionFor({ series, units: sizes.units, view: "line", startMs: T0, endMs: T0 + 120_000 });
  assert.deepEqual(option.yAxis.map((a) => a.name), ["bytes"]);
  const errors = PANELS.find((p) => p.id === "errors");
  assert.deepEqual(panelSeries(BODY, errors).map((s) => s.name), ["request_error_ratio"]);
  assert.deepEqual(panelSeries({ metrics: {} }, errors), []);
});

test("rules carry their level, thresholds and latest value; removed rules keep their level", () => {
  assert.deepEqual(ruleRows(BODY), [
    { rule: "store_bytes", level: "warning", warning: 150, critical: null, value: 200 },
    { rule: "job_backlog", level: "ok", warning: null, critical: null, value: null },
  ]);
  assert.deepEqual(ruleRows({}), []);
});
