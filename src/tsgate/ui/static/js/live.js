// The "Live" toggle: new samples pushed by GET /api/timeseries/stream (server-sent events)
// are merged into the drawn series. Where the stream cannot be used — EventSource cannot
// send a bearer token, or the stream fails — the chart is reloaded every POLL_MS instead.
// What it does is recorded in window.__tsgateLive for the page and tests.
// (No browser globals at import: unit-tested in Node.)

import { getToken } from "./api.js";
import { seriesOf } from "./decode.js";

export const POLL_MS = 60_000;
export const AHEAD_MS = 3_600_000; // a live chart's range reaches this far past now

const record = (globalThis.__tsgateLive = { mode: "off", events: 0, samples: 0 });

/** The stream of a chart request URL (/api/timeseries?…) whose range ends at ``endMs``. */
export function streamUrl(chartUrl, endMs, base = globalThis.location?.href) {
  const url = new URL(chartUrl, base);
  url.pathname = "/api/timeseries/stream";
  url.searchParams.set("end", new Date(endMs).toISOString().slice(0, 19));
  url.searchParams.delete("format");
  return `${url.pathname}?${url.searchParams}`;
}

/** ``pushed`` samples (new, each in time order) merged into ``series`` in place. */
export function merge(series, pushed) {
  let added = 0;
  for (const p of pushed) {
    const s = series.find((x) => x.name === p.name && !x.offsetMs);
    if (!s) continue;
    const t = [...s.t, ...p.t];
    const v = [...s.v, ...p.v];
    const order = t.map((_, i) => i).sort((a, b) => t[a] - t[b]);
    s.t = Float64Array.from(order, (i) => t[i]);
    s.v = Float64Array.from(order, (i) => v[i]);
    added += p.t.length;
  }
  return added;
}

export class Live {
  /** ``onInitial(series)``, ``onSamples(pushed)``, ``reload()`` (a poll, or a new stream). */
  constructor({ onInitial, onSamples, reload }) {
    Object.assign(this, { onInitial, onSamples, reload, source: null, timer: null });
  }

  follow(chartUrl, endMs) {
    this.stop();
    if (getToken() || typeof EventSource === "undefined") return this.poll();
    const source = new EventSource(streamUrl(chartUrl, endMs));
    this.source = source;
    this.record("sse");
    const data = (e) => JSON.parse(e.data);
    source.addEventListener("initial", (e) => this.onInitial(seriesOf(data(e))));
    source.addEventListener("samples", (e) => {
      const pushed = seriesOf(data(e));
      record.events += 1;
      record.samples += pushed.reduce((n, s) => n + s.t.length, 0);
      this.onSamples(pushed);
    });
    // the range is over (or the stream's time is up): load afresh, which follows again
    source.addEventListener("end", () => { this.stop(); this.reload(); });
    // access lost, too slow, refused (429) or no stream at all: poll instead
    source.addEventListener("error", (e) => {
      if (e.data !== undefined || source.readyState === EventSource.CLOSED) this.poll();
    });
  }

  poll() {
    this.stop();
    this.record("poll");
    this.timer = setInterval(() => this.reload(), POLL_MS);
  }

  stop() {
    this.source?.close();
    this.source = null;
    clearInterval(this.timer);
    this.timer = null;
    this.record("off");
  }

  record(mode) {
    record.mode = mode;
  }
}
