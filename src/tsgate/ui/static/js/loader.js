// Loading a chart: one /api/timeseries request (MessagePack, columnar), or a job when the
// server answers 202; a progressive job's parts (the newest months first) are read as they
// are ready and handed to ``onPartial`` joined. Every load is recorded in
// window.__tsgateLoads, every partial picture in window.__tsgatePartials.

import { MSGPACK, readBody, request, transferredBytes } from "./api.js";
import { seriesOf, pointCount } from "./decode.js";
import { followJob } from "./jobs.js";
import { PartsFollower, joinParts } from "./parts.js";
import { chartRequests } from "./requests.js";

const ACCEPT = `${MSGPACK}, application/json;q=0.5`;
window.__tsgateLoads = window.__tsgateLoads || [];
window.__tsgatePartials = window.__tsgatePartials || [];

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

/** ``part``'s series drawn as the page draws them: kind, mode, gap bands, aggregate. */
function decorate(query, part, agg) {
  for (const s of part.series) {
    s.kind = s.kind || query.kinds?.[s.name]?.kind || "analog";
    s.mode = s.mode || query.kinds?.[s.name]?.mode || "sampled";
    s.offsetMs = s.offsetMs || 0;
    // spans without samples, drawn as bands (the comparison shows its own series' only)
    s.gaps = s.offsetMs ? [] : part.metadata.gaps?.[s.name] || [];
    if (agg) s.agg = agg;
  }
  return part;
}

function ordered(query, parts) {
  const order = (s) => query.points.indexOf(s.name) * 2 + (s.offsetMs ? 1 : 0);
  return parts.flatMap((p) => p.series).sort((a, b) => order(a) - order(b));
}

/**
 * Load the series for ``query`` (each of its requests in turn, series in the order of
 * ``query.points``, each comparison after its own series); ``onJob(accepted)`` is called
 * when the server answers 202, ``onProgress(job)`` as the job advances and
 * ``onPartial({series, metadata})`` with what its parts ready so far show.
 */
export async function loadChart(query, { signal, onJob, onProgress, onPartial = () => {} }) {
  const parts = [];
  for (const { url, agg } of chartRequests(query)) {
    const partial = (joined) => {
      const shown = [...parts, decorate(query, joined, agg)];
      onPartial({ series: ordered(query, shown), metadata: parts[0]?.metadata || joined.metadata });
    };
    parts.push(decorate(query, await loadOne(url, { signal, onJob, onProgress, onPartial: partial }), agg));
  }
  const load = parts[parts.length - 1].load;
  return { series: ordered(query, parts), load, metadata: parts[0].metadata };
}

async function readPart(url, signal) {
  const response = await request(url, { accept: "application/json", signal });
  const [body] = await readBody(response);
  return { series: seriesOf(body), metadata: body.metadata || {} };
}

/** Follow the job at ``statusUrl``, reading its parts as they are ready. A part that
 * cannot be read (a token revoked meanwhile) ends the load with that error. */
async function followWithParts(statusUrl, started, { signal, onProgress, onPartial }) {
  const inner = new AbortController();
  const stop = () => inner.abort();
  signal?.addEventListener("abort", stop, { once: true });
  const follower = new PartsFollower(
    (url) => readPart(url, inner.signal),
    (parts) => {
      if (inner.signal.aborted) return;
      const joined = joinParts(parts);
      window.__tsgatePartials.push({
        url: statusUrl,
        parts: parts.length,
        points: pointCount(joined.series),
        startTime: joined.metadata.startTime,
        ms: Math.round(performance.now() - started),
      });
      onPartial(joined);
    },
  );
  follower.onFailure = stop;
  try {
    const done = await followJob(statusUrl, {
      signal: inner.signal,
      onProgress: (job) => {
        follower.seen(job);
        onProgress(job);
      },
    });
    follower.seen(done);
    await follower.settled();
    if (follower.failure) throw follower.failure;
    return done;
  } catch (err) {
    throw follower.failure || err;
  } finally {
    signal?.removeEventListener("abort", stop);
    inner.abort(); // parts still being read are not wanted any more
  }
}

async function loadOne(url, { signal, onJob, onProgress, onPartial }) {
  const started = performance.now();
  let response = await request(url, { accept: ACCEPT, signal });
  let job = null;
  if (response.status === 202) {
    // like any answer, the 202 body is MessagePack or JSON as negotiated
    const [accepted] = await readBody(response);
    const statusUrl = accepted.statusUrl || response.headers.get("Location");
    job = { ...accepted, statusUrl };
    onJob(job);
    const done = await followWithParts(statusUrl, started, { signal, onProgress, onPartial });
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
