// What the page tells the user: errors, the job progress bar and each load's figures.

const $ = (id) => document.getElementById(id);

export function setState(state) {
  document.body.dataset.state = state;
}

export function explain(err) {
  const text = err.detail ? `${err.title}: ${err.detail}` : err.title || String(err.message || err);
  if (err.status === 401) return `${text} — check the token field.`;
  if (err.status === 429 && err.retryAfterS !== null) return `${text} — try again in ${err.retryAfterS} s.`;
  if (err.status === 502 || err.status === 504) return `${text} — the ACE API is failing; cached data may still load for other ranges.`;
  return text;
}

export function showMessage(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = kind;
  box.hidden = !text;
}

export function overlay(text, kind = "") {
  const box = $("chart-overlay");
  box.textContent = text;
  box.className = kind;
  box.hidden = !text;
}

export function showJob(job) {
  const box = $("job");
  if (!job) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const progress = Math.round(job.progress || 0);
  $("job-progress").value = progress;
  const estimate = job.estimatedSamples ? ` · about ${job.estimatedSamples.toLocaleString()} samples` : "";
  const total = job.samplesTotal || 0;
  const samples = total
    ? ` · ${(job.samplesDone || 0).toLocaleString()} of ${job.status === "completed" ? "" : "about "}${total.toLocaleString()} samples`
    : "";
  const drawn = job.partsTotal ? ` · ${job.partsDone} of ${job.partsTotal} parts ready, newest first` : "";
  $("job-text").textContent = `Job ${job.jobId}: ${job.status} ${progress}%${estimate}${samples}${drawn}`;
}

function kB(bytes) {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

export function showLoad(load) {
  const parts = [
    load.job ? `job ${load.job}` : `HTTP ${load.status}`,
    load.format,
    `cache ${load.cacheStatus}`,
    `source ${load.cacheSource}`,
    `${load.samples.toLocaleString()} samples behind ${load.points.toLocaleString()} points drawn`,
    kB(load.bytes),
    `${load.ms} ms`,
  ];
  $("load-info").textContent = parts.join(" · ");
}
