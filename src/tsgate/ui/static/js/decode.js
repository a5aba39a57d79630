// Chart API bodies (any layout, JSON or MessagePack) to plain columns per series.
// Result: [{name, t: Float64Array (ms), v: Float64Array (NaN for gaps)}], plus the
// point's ``kind`` and ``mode`` and a comparison's ``offsetMs`` where the body says them.

function checked(bytes, Type, n, key) {
  if (bytes.byteLength !== n * Type.BYTES_PER_ELEMENT) {
    throw new Error(`${key} has ${bytes.byteLength} bytes, not ${n} × ${Type.BYTES_PER_ELEMENT}`);
  }
}

function view(bytes, Type, n, key) {
  checked(bytes, Type, n, key);
  // copy: msgpack's binary fields may sit at offsets typed arrays cannot start on
  const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return new Type(copy);
}

function unplane(planes, Type, n, key) {
  // byte planes: byte b of element i is planes[b * n + i]
  checked(planes, Type, n, key);
  const size = Type.BYTES_PER_ELEMENT;
  const bytes = new Uint8Array(n * size);
  for (let b = 0; b < size; b++) {
    const plane = planes.subarray(b * n, (b + 1) * n);
    for (let i = 0; i < n; i++) bytes[i * size + b] = plane[i];
  }
  return new Type(bytes.buffer);
}

function column(s, key, Type) {
  // the array ``key`` as byte planes (``key`` + "p"), or as plain elements under ``key``
  // as servers before the byte planes sent it
  const planes = s[`${key}p`];
  if (planes instanceof Uint8Array) return unplane(planes, Type, s.n, `${key}p`);
  if (s[key] instanceof Uint8Array) return view(s[key], Type, s.n, key);
  return null;
}

function required(s, key, Type) {
  const got = column(s, key, Type);
  if (got === null) throw new Error(`series ${s.name}: neither ${key}p nor ${key}`);
  return got;
}

function fromBinaryColumns(s) {
  return { name: s.name, t: timesOf(s), v: valuesOf(s) };
}

function timesOf(s) {
  const t = column(s, "t", Float64Array);
  if (t !== null) return t;
  const dt = required(s, "dt", Int32Array);
  const out = new Float64Array(s.n);
  let acc = s.t0;
  for (let i = 0; i < s.n; i++) {
    acc += dt[i];
    out[i] = acc;
  }
  return out;
}

function valuesOf(s) {
  // exact decimals: int32 deltas of value × vs
  const vd = column(s, "vd", Int32Array);
  if (vd === null) return Float64Array.from(required(s, "v", Float32Array));
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
  if (typeof s.n === "number") return fromBinaryColumns(s);
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
