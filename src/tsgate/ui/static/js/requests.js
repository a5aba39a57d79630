// The chart API requests a chart needs (no browser globals: unit-tested in Node).

export function iso(ms) {
  return new Date(ms).toISOString().slice(0, 19); // zone-less UTC, whole seconds
}

export const COMPARE = "-7d"; // "last week" on this week

/**
 * The chart requests for ``query``: one, except in the calendar view, which asks for
 * local days (``tz=site``) of the on/off points' duty cycle (``agg=duty``, % of time on)
 * apart from the other points' daily means. ``compare`` adds last week's copy of each
 * series (not in the calendar, which has a cell per day already).
 */
export function chartRequests({ site, points, startMs, endMs, view, maxPoints, kinds = {}, compare = false }) {
  const url = (names, params) => {
    const q = new URLSearchParams({ site, points: names.join(","), start: iso(startMs), end: iso(endMs), layout: "columnar", ...params });
    if (compare && view !== "calendar") q.set("compare", COMPARE);
    return `/api/timeseries?${q}`;
  };
  if (view !== "calendar") return [{ url: url(points, { max_points: String(maxPoints) }), agg: null }];
  const binary = points.filter((p) => kinds[p]?.kind === "binary");
  const other = points.filter((p) => kinds[p]?.kind !== "binary");
  const out = [];
  if (other.length) out.push({ url: url(other, { interval: "1d", tz: "site", agg: "avg" }), agg: "avg" });
  if (binary.length) out.push({ url: url(binary, { interval: "1d", tz: "site", agg: "duty" }), agg: "duty" });
  return out;
}
