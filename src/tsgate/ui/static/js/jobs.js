// Following a background job (202 Accepted): server-sent events, else polling.
// EventSource cannot send a bearer token, so the event stream is read with fetch().

import { ApiError, getJson, request } from "./api.js";

const TERMINAL = new Set(["completed", "failed", "dead", "cancelled"]);
const POLL_MS = 1000;

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    }, { once: true });
  });
}

function parseEvent(block) {
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  return data ? JSON.parse(data) : null;
}

async function watchEvents(statusUrl, signal, onProgress) {
  const response = await request(`${statusUrl}/events`, { accept: "text/event-stream", signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return null; // the stream ended early: the caller polls
    buffer += value.replaceAll("\r\n", "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const job = parseEvent(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
      if (!job) continue;
      onProgress(job);
      if (TERMINAL.has(job.status)) {
        reader.cancel().catch(() => {});
        return job;
      }
    }
  }
}

async function poll(statusUrl, signal, onProgress) {
  for (;;) {
    const job = await getJson(statusUrl, { signal });
    onProgress(job);
    if (TERMINAL.has(job.status)) return job;
    await sleep(POLL_MS, signal);
  }
}

/** Wait for the job at ``statusUrl`` to end; resolves with the completed job. */
export async function followJob(statusUrl, { signal, onProgress }) {
  let job = null;
  try {
    job = await watchEvents(statusUrl, signal, onProgress);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    // no event stream (older server, proxy): fall back to polling
  }
  job = job || (await poll(statusUrl, signal, onProgress));
  if (job.status !== "completed") {
    throw new ApiError(0, `Job ${job.status}`, job.error || `the job ended as ${job.status}`);
  }
  return job;
}

export function cancelJob(statusUrl) {
  return request(statusUrl, { method: "DELETE" });
}
