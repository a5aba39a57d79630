// Chart API bodies (any layout, JSON or MessagePack) to plain columns per series.
// Result: [{name, t: Float64Array (ms), v: Float64Array (NaN for gaps)}], plus the
// point's ``kind`` and ``mode`` and a comparison's ``offsetMs`` where the body says them.

function view(bytes, Type) {
  // copy: msgpack's binary fields may sit at offsets typed arrays cannot start on
  const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return new Type(copy);
}

function fromBinaryColumns(s) {
  const n = s.n;
  let t;
  if (s.t instanceof Uint8Array) {
    t = view(s.t, Float64Array);
  } else {
    const dt = view(s.dt, Int32Array);
    t = new Float64Array(n);
    let acc = s.t0;
    for (let i = 0; i < n; i++) {
      acc += dt[i];
      t[i] = acc;
    }
  }
  return { name: s.name, t, v: valuesOf(s) };
}

function valuesOf(s) {
  if (!(s.vd instanceof Uint8Array)) return Float64Array.from(view(s.v, Float32Array));
  // exact decimals: int32 deltas of value × vs
  const vd = view(s.vd, Int32Array);
  const v = new Float64Array(vd.length);
  let acc = 0;
  for (let i = 0; i < vd.length; i++) {
    acc += vd[i];
    v[i] = acc / s.vs;
  }
  return v;
}

function fromJsonColumns(s) {
  return {
    name: s.name,
    t: Float64Array.from(s.t),
    v: Float64Array.from(s.v, (x) => (x === null ? NaN : x)),
  };
}

function fromPairs(s) {
  const n = s.data.length;
  const t = new Float64Array(n);
  const v = new Float64Array(n);
  s.data.forEach(([ms, value], i) => {
    t[i] = ms;
    v[i] = value === null ? NaN : value;
  });
  return { name: s.name, t, v };
}

function columns(s) {
  if (s.v instanceof Uint8Array || s.vd instanceof Uint8Array) return fromBinaryColumns(s);
  if (Array.isArray(s.t)) return fromJsonColumns(s);
  return fromPairs(s);
}

export function seriesOf(body) {
  return (body.series || []).map((s) => {
    const out = columns(s);
    for (const key of ["kind", "mode", "offsetMs"]) if (s[key] !== undefined) out[key] = s[key];
    return out;
  });
}

export function pointCount(series) {
  return series.reduce((sum, s) => sum + s.t.length, 0);
}
