// The quality view's flags, sorting and texts, from /api/quality items.
import assert from "node:assert/strict";
import { test } from "node:test";

import { COLUMNS, duration, flags, qualityUrl, sortRows, summaryText } from "../../src/tsgate/ui/static/js/quality.js";

function point(name, extra = {}) {
  return {
    name, kind: "analog", mode: "sampled", coveragePct: 100, longestGapMs: 300_000, staleMs: 120_000,
    stale: false, missing: false, flatlineHours: 0, outOfRangeHours: 0, ...extra,
  };
}

const POINTS = [
  point("b", { coveragePct: 50, longestGapMs: 7_200_000 }),
  point("a", { coveragePct: 99.5, flatlineHours: 3 }),
  point("c", { coveragePct: 0, missing: true, stale: true, staleMs: null }),
  point("fan", { kind: "binary", mode: "cov", coveragePct: 50, flatlineHours: 20, outOfRangeHours: 2 }),
];

test("flags: missing before stale, flatline only for analog points, out of range", () => {
  assert.deepEqual(POINTS.map(flags), [[], ["flatline"], ["missing"], ["out of range"]]);
  assert.deepEqual(flags(point("s", { stale: true })), ["stale"]);
});

test("rows sort by any column either way, ties in name order", () => {
  const names = (key, ascending) => sortRows(POINTS, key, ascending).map((p) => p.name);
  assert.deepEqual(names("coveragePct", true), ["c", "b", "fan", "a"]);
  assert.deepEqual(names("coveragePct", false), ["a", "b", "fan", "c"]);
  assert.deepEqual(names("name", true), ["a", "b", "c", "fan"]);
  assert.deepEqual(names("staleMs", false), ["c", "a", "b", "fan"]); // never seen: the stalest
  assert.deepEqual(names("flags", false), ["a", "c", "fan", "b"]);
  assert.deepEqual(POINTS.map((p) => p.name), ["b", "a", "c", "fan"]); // not sorted in place
  for (const column of COLUMNS) assert.equal(typeof column.text(POINTS[2]), "string");
});

test("durations, the request and the summary read as a person would say them", () => {
  assert.deepEqual([45_000, 300_000, 7_200_000, 3 * 86_400_000].map(duration), ["45 s", "5 min", "2.0 h", "3.0 d"]);
  assert.equal(
    qualityUrl({ site: "demo campus", startMs: Date.UTC(2026, 0, 1), endMs: Date.UTC(2026, 0, 8) }),
    "/api/quality?site=demo+campus&start=2026-01-01T00%3A00%3A00&end=2026-01-08T00%3A00%3A00",
  );
  const body = {
    metadata: { startTime: "2026-01-01T00:00:00", endTime: "2026-01-08T00:00:00", timeZone: "America/New_York" },
    summary: { points: 4, missing: 1, stale: 1, flatlined: 1, outOfRange: 1, meanCoveragePct: 49.875 },
  };
  assert.equal(
    summaryText(body),
    "4 points, 2026-01-01T00:00:00 to 2026-01-08T00:00:00 UTC (site zone America/New_York): 1 missing, 1 stale, 1 flatlined, 1 out of range; mean coverage 49.9 %.",
  );
});

test("the gaps column counts the chart's gap bands, against the point's own limit", () => {
  const column = COLUMNS.find((c) => c.key === "gaps");
  const cov = point("cov", { kind: "binary", mode: "cov", gaps: 2, gapLimitMs: 5_400_000 });
  assert.equal(column.text(cov), "2 (over 1.5 h)");
  assert.equal(column.text(point("s", { gaps: 0, gapLimitMs: 900_000 })), "0 (over 15 min)");
  assert.equal(column.text(point("old")), "0"); // an answer without the figures
  const rows = [cov, point("s", { gaps: 5, gapLimitMs: 900_000 }), point("none")];
  assert.deepEqual(sortRows(rows, "gaps", false).map((p) => p.name), ["s", "cov", "none"]);
});
