// Time ranges of the chart page: presets end on the next whole minute; custom ranges in UTC.
import assert from "node:assert/strict";
import { test } from "node:test";

import { PRESETS, custom, inputValue, resolve } from "../../src/tsgate/ui/static/js/range.js";

const MINUTE_MS = 60_000;
const NOW = Date.UTC(2025, 9, 12, 16, 35, 37, 694);

test("every preset spans its length and ends on the next whole minute", () => {
  const expected = { "1h": 1, "24h": 24, "7d": 168, "30d": 720, "365d": 8760 };
  assert.deepEqual(Object.keys(PRESETS), Object.keys(expected));
  for (const [preset, hours] of Object.entries(expected)) {
    const [start, end] = resolve({ preset }, NOW);
    assert.equal(end, Date.UTC(2025, 9, 12, 16, 36));
    assert.equal(end - start, hours * 60 * MINUTE_MS);
  }
});

test("reloads within one minute ask the same question", () => {
  const first = resolve({ preset: "24h" }, Date.UTC(2025, 0, 1, 0, 0, 0, 1));
  const later = resolve({ preset: "24h" }, Date.UTC(2025, 0, 1, 0, 0, 59, 999));
  assert.deepEqual(first, later);
  // exactly on a minute: that minute is the end, not the next one
  assert.equal(resolve({ preset: "1h" }, Date.UTC(2025, 0, 1, 1))[1], Date.UTC(2025, 0, 1, 1));
});

test("custom ranges read zone-less strings as UTC, and numbers as ms", () => {
  assert.deepEqual(resolve({ preset: "custom", start: "2025-10-01T00:00", end: "2025-10-02T00:00Z" }), [
    Date.UTC(2025, 9, 1),
    Date.UTC(2025, 9, 2),
  ]);
  assert.deepEqual(resolve({ preset: "custom", start: 5, end: 10 }), [5, 10]);
});

test("custom() and inputValue() round-trip through UTC", () => {
  const range = custom(Date.UTC(2025, 9, 1, 6, 30), Date.UTC(2025, 9, 1, 7));
  assert.deepEqual(range, { preset: "custom", start: "2025-10-01T06:30:00.000Z", end: "2025-10-01T07:00:00.000Z" });
  assert.deepEqual(resolve(range), [Date.UTC(2025, 9, 1, 6, 30), Date.UTC(2025, 9, 1, 7)]);
  assert.equal(inputValue(Date.UTC(2025, 9, 1, 6, 30, 59)), "2025-10-01T06:30");
});
