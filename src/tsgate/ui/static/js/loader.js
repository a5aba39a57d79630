// Loading a chart: one /api/timeseries request (MessagePack, columnar), or a job when the
// server answers 202. Every load is recorded in window.__tsgateLoads for the page and tests.

import { MSGPACK, readBody, request, transferredBytes } from "./api.js";
import { seriesOf, pointCount } from "./decode.js";
import { followJob } from "./jobs.js";

const ACCEPT = `${MSGPACK}, application/json;q=0.5`;
window.__tsgateLoads = window.__tsgateLoads || [];

function iso(ms) {
  return new Date(ms).toISOString().slice(0, 19); // zone-less UTC, whole seconds
}

export function chartUrl({ site, points, startMs, endMs, view, maxPoints }) {
  const q = new URLSearchParams({
    site,
    points: points.join(","),
    start: iso(startMs),
    end: iso(endMs),
    layout: "columnar",
  });
  if (view === "calendar") {
    q.set("interval", "1d");
    q.set("agg", "avg");
  } else {
    q.set("max_points", String(maxPoints));
  }
  return `/api/timeseries?${q}`;
}

async function decoded(url, response, accept) {
  try {
    return [response, ...(await readBody(response))];
  } catch (err) {
    if (accept === "application/json") throw err;
    // MessagePack could not be read here: ask again for JSON
    const again = await request(url, { accept: "application/json" });
    return [again, ...(await readBody(again))];
  }
}

/**
 * Load the series for ``query``; ``onJob(accepted)`` is called when the server answers
 * 202 and ``onProgress(job)`` as the job advances.
 */
export async function loadChart(query, { signal, onJob, onProgress }) {
  const url = chartUrl(query);
  const started = performance.now();
  let response = await request(url, { accept: ACCEPT, signal });
  let job = null;
  if (response.status === 202) {
    // like any answer, the 202 body is MessagePack or JSON as negotiated
    const [accepted] = await readBody(response);
    const statusUrl = accepted.statusUrl || response.headers.get("Location");
    job = { ...accepted, statusUrl };
    onJob(job);
    const done = await followJob(statusUrl, { signal, onProgress });
    response = await request(done.resultUrl || `${statusUrl}/result`, { accept: ACCEPT, signal });
  }
  const [final, body, format, size] = await decoded(url, response, ACCEPT);
  const series = seriesOf(body);
  const h = (name) => final.headers.get(name);
  const load = {
    url,
    status: job ? 202 : final.status,
    job: job ? job.jobId : null,
    format,
    contentType: h("Content-Type"),
    cacheStatus: h("X-Cache-Status") || (job ? "JOB" : "?"),
    cacheSource: h("X-Cache-Source") || (job ? "JOB" : "?"),
    samples: Number(h("X-Data-Samples") || body.metadata?.totalSamples || 0),
    points: pointCount(series),
    bytes: transferredBytes(final.url, size),
    ms: Math.round(performance.now() - started),
  };
  window.__tsgateLoads.push(load);
  return { series, load, metadata: body.metadata || {} };
}
