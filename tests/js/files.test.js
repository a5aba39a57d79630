// The attachment list's one-line description of a file.
import assert from "node:assert/strict";
import { test } from "node:test";

import { describeFile } from "../../src/tsgate/ui/static/js/files.js";

test("sizes read in B, kB and MB, kinds from the media type", () => {
  assert.equal(describeFile({ name: "a.csv", size: 512, mediaType: "text/csv" }), "a.csv · 512 B · CSV");
  assert.equal(describeFile({ name: "plan.png", size: 12_345, mediaType: "image/png" }), "plan.png · 12.3 kB · PNG");
  assert.equal(describeFile({ name: "r.pdf", size: 2_500_000, mediaType: "application/pdf" }), "r.pdf · 2.5 MB · PDF");
});

test("a file without a media type still gets a line", () => {
  assert.equal(describeFile({ name: "x", size: 0 }), "x · 0 B · ");
});
