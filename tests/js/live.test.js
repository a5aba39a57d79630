// The live module's pure parts: the stream URL of a chart request, and merging pushes.
import assert from "node:assert/strict";
import { test } from "node:test";

import { merge, streamUrl } from "../../src/tsgate/ui/static/js/live.js";

test("the stream URL is the chart request's, on the stream path, with the live end", () => {
  const chart = "/api/timeseries?site=s&points=a%2Cb&start=2026-03-01T00%3A00%3A00&end=2026-03-02T00%3A00%3A00&layout=columnar&max_points=4000&format=msgpack";
  const url = streamUrl(chart, Date.UTC(2026, 2, 2, 1), "http://tsgate/");
  const [path, query] = url.split("?");
  assert.equal(path, "/api/timeseries/stream");
  assert.deepEqual(Object.fromEntries(new URLSearchParams(query)), {
    site: "s", points: "a,b", start: "2026-03-01T00:00:00", end: "2026-03-02T01:00:00", layout: "columnar", max_points: "4000",
  });
});

test("pushed samples are merged by time into their own series only", () => {
  const series = [
    { name: "a", t: Float64Array.from([1, 2, 5]), v: Float64Array.from([10, 20, 50]) },
    { name: "a", offsetMs: -7, t: Float64Array.from([1]), v: Float64Array.from([9]) },
    { name: "b", t: Float64Array.from([]), v: Float64Array.from([]) },
  ];
  const added = merge(series, [
    { name: "a", t: Float64Array.from([3, 6]), v: Float64Array.from([30, 60]) }, // 3: a late one
    { name: "b", t: Float64Array.from([4]), v: Float64Array.from([NaN]) },
    { name: "gone", t: Float64Array.from([1]), v: Float64Array.from([1]) },
  ]);
  assert.equal(added, 3);
  assert.deepEqual([...series[0].t], [1, 2, 3, 5, 6]);
  assert.deepEqual([...series[0].v], [10, 20, 30, 50, 60]);
  assert.deepEqual([...series[1].t], [1]); // the comparison is not live
  assert.deepEqual([...series[2].t], [4]);
  assert.ok(Number.isNaN(series[2].v[0]));
});
