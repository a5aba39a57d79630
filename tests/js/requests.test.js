// The chart API requests the page makes for a view, its points' kinds and a comparison.
import assert from "node:assert/strict";
import { test } from "node:test";

import { chartRequests } from "../../src/tsgate/ui/static/js/requests.js";

const START = Date.UTC(2026, 2, 1);
const END = Date.UTC(2026, 3, 1);
const KINDS = { fan: { kind: "binary", mode: "cov" }, temp: { kind: "analog", mode: "sampled" }, mode: { kind: "multistate", mode: "cov" } };

function params(url) {
  const [path, query] = url.split("?");
  assert.equal(path, "/api/timeseries");
  return Object.fromEntries(new URLSearchParams(query));
}

test("line views ask once, downsampled to the width, last week only when asked", () => {
  const base = { site: "s", points: ["temp", "fan"], startMs: START, endMs: END, view: "line", maxPoints: 4000, kinds: KINDS };
  const [plain] = chartRequests(base);
  assert.deepEqual(params(plain.url), {
    site: "s", points: "temp,fan", start: "2026-03-01T00:00:00", end: "2026-04-01T00:00:00", layout: "columnar", max_points: "4000",
  });
  const compared = chartRequests({ ...base, compare: true });
  assert.equal(compared.length, 1);
  assert.equal(params(compared[0].url).compare, "-7d");
});

test("the calendar asks for local days: daily means, and duty cycles of on/off points", () => {
  const requests = chartRequests({ site: "s", points: ["fan", "temp", "mode"], startMs: START, endMs: END, view: "calendar", kinds: KINDS, compare: true });
  assert.deepEqual(requests.map((r) => r.agg), ["avg", "duty"]);
  const [means, duty] = requests.map((r) => params(r.url));
  assert.equal(means.points, "temp,mode");
  assert.equal(duty.points, "fan");
  for (const p of [means, duty]) {
    assert.equal(p.interval, "1d");
    assert.equal(p.tz, "site");
    assert.equal(p.compare, undefined); // a calendar has no overlay
  }
  // unknown kinds are analog: one request
  assert.deepEqual(chartRequests({ site: "s", points: ["x"], startMs: START, endMs: END, view: "calendar" }).map((r) => r.agg), ["avg"]);
});
