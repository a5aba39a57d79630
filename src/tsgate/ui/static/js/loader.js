// Loading a chart: one /api/timeseries request (MessagePack, columnar), or a job when the
// server answers 202. Every load is recorded in window.__tsgateLoads for the page and tests.

import { MSGPACK, readBody, request, transferredBytes } from "./api.js";
import { seriesOf, pointCount } from "./decode.js";
import { followJob } from "./jobs.js";
import { chartRequests } from "./requests.js";

const ACCEPT = `${MSGPACK}, application/json;q=0.5`;
window.__tsgateLoads = window.__tsgateLoads || [];

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
 * Load the series for ``query`` (each of its requests in turn, series in the order of
 * ``query.points``, each comparison after its own series); ``onJob(accepted)`` is called
 * when the server answers 202 and ``onProgress(job)`` as the job advances.
 */
export async function loadChart(query, { signal, onJob, onProgress }) {
  const parts = [];
  for (const { url, agg } of chartRequests(query)) {
    const part = await loadOne(url, { signal, onJob, onProgress });
    for (const s of part.series) {
      s.kind = s.kind || query.kinds?.[s.name]?.kind || "analog";
      s.mode = s.mode || query.kinds?.[s.name]?.mode || "sampled";
      s.offsetMs = s.offsetMs || 0;
      // spans without samples, drawn as bands (the comparison shows its own series' only)
      s.gaps = s.offsetMs ? [] : part.metadata.gaps?.[s.name] || [];
      if (agg) s.agg = agg;
    }
    parts.push(part);
  }
  const order = (s) => query.points.indexOf(s.name) * 2 + (s.offsetMs ? 1 : 0);
  const series = parts.flatMap((p) => p.series).sort((a, b) => order(a) - order(b));
  const load = parts[parts.length - 1].load;
  return { series, load, metadata: parts[0].metadata };
}

async function loadOne(url, { signal, onJob, onProgress }) {
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
