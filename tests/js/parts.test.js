// A progressive job's parts (newest first) joined: series concatenated, gaps united, and
// the follower that reads each part once, in order, and stops at the first failure.
import assert from "node:assert/strict";
import { test } from "node:test";

import { PartsFollower, joinParts, uniteSpans } from "../../src/tsgate/ui/static/js/parts.js";

const series = (name, t, v, extra = {}) => ({ name, t: Float64Array.from(t), v: Float64Array.from(v), ...extra });

// one answer of two points and a comparison, cut at 100 and 200 into three parts
function answer() {
  const t = [0, 10, 50, 99, 100, 150, 199, 200, 250, 300];
  const v = t.map((x) => x / 10);
  return {
    series: [series("a", t, v), series("b", t.slice(2), v.slice(2), { kind: "binary" }), series("a", t, v.map((x) => -x), { offsetMs: -7 })],
    metadata: { startTime: "s0", timeZone: "UTC", gaps: { a: [[20, 50], [180, 230]], b: [[0, 50]] } },
  };
}

function cut(body, from, to, gaps, startTime) {
  return {
    series: body.series.map((s) => {
      const keep = [...s.t.keys()].filter((i) => s.t[i] >= from && s.t[i] < to);
      return { ...s, t: Float64Array.from(keep, (i) => s.t[i]), v: Float64Array.from(keep, (i) => s.v[i]) };
    }),
    metadata: { ...body.metadata, startTime, gaps },
  };
}

test("the parts, newest first, join to the whole answer", () => {
  const whole = answer();
  const parts = [
    cut(whole, 200, 400, { a: [[200, 230]] }, "s2"),
    // the older part lists a gap across its end whole (it knew the newer first sample)
    cut(whole, 100, 200, { a: [[180, 230]] }, "s1"),
    cut(whole, 0, 100, { a: [[20, 50]], b: [[0, 50]] }, "s0"),
  ];
  const joined = joinParts(parts);
  assert.deepEqual(joined.series, whole.series);
  assert.deepEqual(joined.metadata.gaps, whole.metadata.gaps);
  assert.equal(joined.metadata.startTime, "s0");
  assert.equal(joined.series[1].kind, "binary");
  assert.equal(joined.series[2].offsetMs, -7);
  // what the newest parts alone show is the whole answer's tail, exactly
  const newest = joinParts(parts.slice(0, 2));
  for (const [i, s] of newest.series.entries()) {
    const all = whole.series[i];
    assert.deepEqual([...s.t], [...all.t].filter((x) => x >= 100));
  }
  assert.equal(newest.metadata.startTime, "s1");
});

test("spans unite when they overlap or touch, in time order", () => {
  assert.deepEqual(uniteSpans([[5, 9], [0, 2], [2, 3], [8, 12], [20, 21]]), [[0, 3], [5, 12], [20, 21]]);
  assert.deepEqual(uniteSpans([]), []);
  assert.deepEqual(joinParts([]), { series: [], metadata: {} });
});

test("empty parts (a month without samples) join as nothing", () => {
  const whole = answer();
  const empty = cut(whole, 1000, 2000, {}, "s9");
  assert.deepEqual(joinParts([cut(whole, 0, 400, whole.metadata.gaps, "s0"), empty]).series, whole.series);
});

test("the follower reads each part once, in order, and stops at the first failure", async () => {
  const asked = [];
  const seen = [];
  const follower = new PartsFollower(
    async (url) => {
      asked.push(url);
      if (url.endsWith("/3")) throw new Error("401");
      return { series: [], metadata: { url } };
    },
    (parts) => seen.push(parts.length),
  );
  let failed = null;
  follower.onFailure = (err) => { failed = err; };
  follower.seen({ status: "running" }); // not progressive: nothing to read
  follower.seen({ partsUrl: "/p", parts: 2 });
  follower.seen({ partsUrl: "/p", parts: 2 }); // the same count again: no new reads
  follower.seen({ partsUrl: "/p", parts: 5 });
  await follower.settled();
  assert.deepEqual(asked, ["/p/0", "/p/1", "/p/2", "/p/3"]);
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(failed.message, "401");
  follower.seen({ partsUrl: "/p", parts: 6 });
  await follower.settled();
  assert.equal(asked.length, 4);
});
