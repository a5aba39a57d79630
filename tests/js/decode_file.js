// Decodes a chart API MessagePack body (a file) with the page's decoder; prints JSON
// (NaN as null, infinities as the strings "Infinity" and "-Infinity").
// Used by tests/api/test_page_decoder.py and tests/unit/test_chart_wire.py to hold the
// page against the server's encoder.
import { readFileSync } from "node:fs";

import { decode } from "@msgpack/msgpack";

import { seriesOf } from "../../src/tsgate/ui/static/js/decode.js";

function plain(x) {
  if (Number.isNaN(x)) return null;
  return Number.isFinite(x) ? x : String(x);
}

const body = decode(readFileSync(process.argv[2]));
const out = seriesOf(body).map((s) => ({ name: s.name, t: [...s.t], v: [...s.v].map(plain) }));
process.stdout.write(JSON.stringify(out));
