// The chart page's decoder against bodies built here byte by byte from docs/api.md
// (tests/unit/test_chart_wire.py holds it against the server's encoder).
import assert from "node:assert/strict";
import { test } from "node:test";

import { pointCount, seriesOf } from "../../src/tsgate/ui/static/js/decode.js";

/** Little-endian bytes of ``values`` as ``kind`` (int32, float32, float64), at ``offset``. */
function bytes(kind, values, offset = 0) {
  const size = { int32: 4, float32: 4, float64: 8 }[kind];
  const buffer = new ArrayBuffer(offset + size * values.length);
  const view = new DataView(buffer);
  const set = { int32: "setInt32", float32: "setFloat32", float64: "setFloat64" }[kind];
  values.forEach((x, i) => view[set](offset + i * size, x, true));
  // a view that does not start at offset 0, as a MessagePack decoder hands out
  return new Uint8Array(buffer, offset, size * values.length);
}

/** ``values`` as ``kind`` in byte planes (docs/api.md): byte b of element i at b × n + i. */
function planes(kind, values, offset = 0) {
  const flat = bytes(kind, values);
  const size = flat.length / Math.max(1, values.length);
  const out = new Uint8Array(offset + flat.length);
  values.forEach((_, i) => {
    for (let b = 0; b < size; b++) out[offset + b * values.length + i] = flat[i * size + b];
  });
  return out.subarray(offset);
}

const T0 = Date.UTC(2025, 9, 1);

test("byte planes: every first byte, then every second byte, …", () => {
  // dt [0, 0x01020304] (int32 little-endian: 04 03 02 01), values [1, -2] (float32)
  const dtp = new Uint8Array([0x00, 0x04, 0x00, 0x03, 0x00, 0x02, 0x00, 0x01]);
  const vp = new Uint8Array([0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x3f, 0xc0]);
  const [s] = seriesOf({ series: [{ name: "p", n: 2, t0: T0, dtp, vp }] });
  assert.deepEqual([...s.t], [T0, T0 + 0x01020304]);
  assert.deepEqual([...s.v], [1, -2]);
  assert.deepEqual([...planes("int32", [0, 0x01020304])], [...dtp]);
});

test("binary columns: t0 + int32 deltas (the first 0) and float32 values, in byte planes", () => {
  const times = [T0, T0 + 300_000, T0 + 600_000, T0 + 1_500_000];
  const dt = [0, 300_000, 300_000, 900_000];
  const values = [21.5, 0.1, 1e6, NaN];
  const [s] = seriesOf({ series: [{ name: "a", n: 4, t0: T0, dtp: planes("int32", dt, 1), vp: planes("float32", values, 3) }] });
  assert.equal(s.name, "a");
  assert.deepEqual([...s.t], times);
  assert.deepEqual([...s.v], values.map(Math.fround));
  assert.ok(s.t instanceof Float64Array && s.v instanceof Float64Array);
});

test("binary columns: float64 times in byte planes when a gap exceeds int32", () => {
  const times = [T0, T0 + 2 ** 31 + 5, T0 + 2 ** 33 + 0.5];
  const [s] = seriesOf({ series: [{ name: "b", n: 3, t0: T0, tp: planes("float64", times, 5), vp: planes("float32", [1, 2, 3]) }] });
  assert.deepEqual([...s.t], times);
  assert.deepEqual([...s.v], [1, 2, 3]);
});

test("exact decimals: int32 deltas of value × vs in byte planes, the first from 0", () => {
  const values = [72.4, 72.5, 71.9, -0.3];
  const scaled = values.map((x) => Math.round(x * 10));
  const vd = scaled.map((x, i) => x - (i ? scaled[i - 1] : 0));
  const [s] = seriesOf({ series: [{ name: "c", n: 4, t0: T0, vs: 10, dtp: planes("int32", [0, 1, 1, 1]), vdp: planes("int32", vd, 2) }] });
  assert.deepEqual([...s.v], values);
  assert.deepEqual([...s.t], [T0, T0 + 1, T0 + 2, T0 + 3]);
});

test("earlier servers' plain arrays (dt, t, v, vd) still decode", () => {
  const values = [72.4, 72.5];
  const [flat, far, decimals] = seriesOf({
    series: [
      { name: "a", n: 2, t0: T0, dt: bytes("int32", [0, 300_000], 1), v: bytes("float32", [21.5, -3.25], 3) },
      { name: "b", n: 2, t0: T0, t: bytes("float64", [T0, T0 + 2 ** 31 + 5], 5), v: bytes("float32", [1, 2]) },
      { name: "c", n: 2, t0: T0, dt: bytes("int32", [0, 1]), vs: 10, vd: bytes("int32", [724, 1], 2) },
    ],
  });
  assert.deepEqual([...flat.t], [T0, T0 + 300_000]);
  assert.deepEqual([...flat.v], [21.5, -3.25]);
  assert.deepEqual([...far.t], [T0, T0 + 2 ** 31 + 5]);
  assert.deepEqual([...decimals.v], values);
});

test("a binary series without known arrays, or with arrays of the wrong length, throws", () => {
  const dtp = planes("int32", [0, 1]);
  assert.throws(() => seriesOf({ series: [{ name: "x", n: 2, t0: T0, dtp, xv: planes("float32", [1, 2]) }] }), /neither vp nor v/);
  assert.throws(() => seriesOf({ series: [{ name: "x", n: 2, t0: T0, vp: planes("float32", [1, 2]) }] }), /neither dtp nor dt/);
  assert.throws(() => seriesOf({ series: [{ name: "x", n: 3, t0: T0, dtp, vp: planes("float32", [1, 2, 3]) }] }), /dtp has 8 bytes/);
});

test("JSON columns and pairs: null is a gap (NaN)", () => {
  const [cols, pairs] = seriesOf({
    series: [
      { name: "d", t: [T0, T0 + 1], v: [null, 4.5] },
      { name: "e", data: [[T0, 1.25], [T0 + 7, null]] },
    ],
  });
  assert.deepEqual([...cols.t], [T0, T0 + 1]);
  assert.ok(Number.isNaN(cols.v[0]) && cols.v[1] === 4.5);
  assert.deepEqual([...pairs.t], [T0, T0 + 7]);
  assert.ok(pairs.v[0] === 1.25 && Number.isNaN(pairs.v[1]));
});

test("empty series and a body without series", () => {
  const [s] = seriesOf({ series: [{ name: "f", n: 0, t0: 0, dtp: new Uint8Array(0), vp: new Uint8Array(0) }] });
  assert.equal(s.t.length, 0);
  assert.equal(s.v.length, 0);
  assert.deepEqual(seriesOf({}), []);
});

test("pointCount adds up every series", () => {
  const series = seriesOf({ series: [{ name: "g", t: [1, 2, 3], v: [1, 2, 3] }, { name: "h", data: [[1, 1]] }] });
  assert.equal(pointCount(series), 4);
  assert.equal(pointCount([]), 0);
});
