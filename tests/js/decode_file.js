// Decodes a chart API MessagePack body (a file) with the page's decoder; prints JSON.
// Used by tests/api/test_page_decoder.py to hold the page against the server's encoder.
import { readFileSync } from "node:fs";

import { decode } from "@msgpack/msgpack";

import { seriesOf } from "../../src/tsgate/ui/static/js/decode.js";

const body = decode(readFileSync(process.argv[2]));
const out = seriesOf(body).map((s) => ({ name: s.name, t: [...s.t], v: [...s.v].map((x) => (Number.isNaN(x) ? null : x)) }));
process.stdout.write(JSON.stringify(out));
