// A long chart answered part by part (a progressive query job: each part the answer's
// buckets between two of its grid's boundaries, newest first). Joined in time order —
// series concatenated, gap spans united — the parts are the answer. No browser globals:
// unit-tested in Node.

/** ``[[start, end], …]`` as the fewest spans covering the same time, ascending. */
export function uniteSpans(spans) {
  const out = [];
  for (const [a, b] of [...spans].sort((x, y) => x[0] - y[0] || x[1] - y[1])) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

function concat(arrays) {
  const out = new Float64Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

const keyOf = (s) => `${s.offsetMs || 0}|${s.name}`;

/**
 * Join decoded parts ``[{series, metadata}]`` (newest first, as the job makes them):
 * each series (by name and comparison offset, in the newest part's order) is its pieces
 * oldest first; ``metadata`` is the newest part's with ``gaps`` united per point and the
 * range from the oldest part's start.
 */
export function joinParts(parts) {
  if (!parts.length) return { series: [], metadata: {} };
  const oldestFirst = [...parts].reverse();
  const pieces = new Map();
  for (const part of oldestFirst) {
    for (const s of part.series) {
      const key = keyOf(s);
      if (!pieces.has(key)) pieces.set(key, []);
      pieces.get(key).push(s);
    }
  }
  const series = parts[0].series.map((s) => {
    const all = pieces.get(keyOf(s));
    const out = { ...s, t: concat(all.map((p) => p.t)), v: concat(all.map((p) => p.v)) };
    return out;
  });
  const gaps = {};
  for (const part of oldestFirst) {
    for (const [name, spans] of Object.entries(part.metadata?.gaps || {})) {
      gaps[name] = (gaps[name] || []).concat(spans.map(([a, b]) => [a, b]));
    }
  }
  for (const name of Object.keys(gaps)) gaps[name] = uniteSpans(gaps[name]);
  const metadata = { ...(parts[0].metadata || {}), gaps };
  if (oldestFirst[0].metadata?.startTime) metadata.startTime = oldestFirst[0].metadata.startTime;
  return { series, metadata };
}

/**
 * Follows the parts a progressive job says are ready (``job.parts`` of them at
 * ``job.partsUrl``), reading each once, in order, with ``read(url)`` (resolving to
 * ``{series, metadata}``); ``onParts(parts)`` is called with all read so far (newest
 * first) after each. A failed read stops the follower: ``failure`` holds the error.
 */
export class PartsFollower {
  constructor(read, onParts) {
    this.read = read;
    this.onParts = onParts;
    this.parts = [];
    this.asked = 0;
    this.failure = null;
    this.chain = Promise.resolve();
    this.onFailure = () => {};
  }

  seen(job) {
    if (!job?.partsUrl || this.failure) return;
    const ready = Number(job.parts) || 0;
    for (; this.asked < ready; this.asked++) {
      const url = `${job.partsUrl}/${this.asked}`;
      this.chain = this.chain.then(async () => {
        if (this.failure) return;
        try {
          this.parts.push(await this.read(url));
        } catch (err) {
          this.failure = err;
          this.onFailure(err);
          return;
        }
        this.onParts(this.parts);
      });
    }
  }

  /** Resolves once every part asked for is read (or the follower failed). */
  settled() {
    return this.chain;
  }
}
