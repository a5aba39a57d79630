// Time ranges: presets ending now, or a custom [start, end) in UTC.

const HOUR_MS = 3_600_000;
export const PRESETS = { "1h": HOUR_MS, "24h": 24 * HOUR_MS, "7d": 168 * HOUR_MS, "30d": 720 * HOUR_MS, "365d": 8760 * HOUR_MS };
const MINUTE_MS = 60_000;

/** ``[startMs, endMs)`` of a range {preset} or {preset: "custom", start, end}. */
export function resolve(range, nowMs = Date.now()) {
  if (range.preset !== "custom") {
    // ends on the next whole minute, so reloads within a minute ask the same question
    const end = Math.ceil(nowMs / MINUTE_MS) * MINUTE_MS;
    return [end - PRESETS[range.preset], end];
  }
  return [toMs(range.start), toMs(range.end)];
}

function toMs(value) {
  return typeof value === "number" ? value : Date.parse(value.endsWith("Z") ? value : `${value}Z`);
}

/** A value for <input type="datetime-local">, in UTC. */
export function inputValue(ms) {
  return new Date(ms).toISOString().slice(0, 16);
}

export function custom(startMs, endMs) {
  return { preset: "custom", start: new Date(startMs).toISOString(), end: new Date(endMs).toISOString() };
}
