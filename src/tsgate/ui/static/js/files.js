// A saved chart's attachments (/api/files?chart=<id>): floor plans, reports, snapshots.

import { ApiError, getJson, getToken } from "./api.js";

/** "plan.png · 12.3 kB · PNG": what a listed file is, in a line. */
export function describeFile(file) {
  const size = file.size >= 1e6 ? `${(file.size / 1e6).toFixed(1)} MB`
    : file.size >= 1e3 ? `${(file.size / 1e3).toFixed(1)} kB` : `${file.size} B`;
  const kind = (file.mediaType || "").split("/").pop().toUpperCase();
  return `${file.name} · ${size} · ${kind}`;
}

function authorised() {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function refusal(response) {
  try {
    const body = await response.json();
    return new ApiError(response.status, body.title || `HTTP ${response.status}`, body.detail || "");
  } catch {
    return new ApiError(response.status, response.statusText || `HTTP ${response.status}`, "");
  }
}

export async function listAttachments(chartId) {
  return (await getJson(`/api/files?chart=${encodeURIComponent(chartId)}`)).items || [];
}

/** Upload ``file`` (a File from an <input type=file>) as an attachment of the chart. */
export async function attach(chartId, file) {
  const form = new FormData();
  form.append("chart", chartId);
  form.append("file", file, file.name);
  let response;
  try {
    response = await fetch("/api/files", { method: "POST", headers: authorised(), body: form });
  } catch (err) {
    throw new ApiError(0, "Network error", `tsgate did not answer (${err.message})`);
  }
  if (!response.ok) throw await refusal(response);
  return response.json();
}

/** Save the file: fetched with the token (a plain link would carry none), then handed over. */
export async function download(file) {
  const response = await fetch(file.url, { headers: authorised() });
  if (!response.ok) throw await refusal(response);
  const link = Object.assign(document.createElement("a"), {
    href: URL.createObjectURL(await response.blob()),
    download: file.name,
  });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}

const $ = (id) => document.getElementById(id);
let shownChart = null;

/** Show the attachments of the saved chart ``chartId`` (``null``: hide the panel). */
export async function showAttachments(chartId, onError) {
  shownChart = chartId;
  $("attachments").hidden = !chartId;
  if (!chartId) return;
  try {
    const items = await listAttachments(chartId);
    if (shownChart !== chartId) return; // another chart was opened meanwhile
    const rows = items.map((file) => {
      const button = Object.assign(document.createElement("button"), { type: "button", textContent: describeFile(file) });
      button.setAttribute("aria-label", `Download ${describeFile(file)}`);
      button.addEventListener("click", () => download(file).catch(onError));
      const li = document.createElement("li");
      li.append(button);
      return li;
    });
    $("attachment-list").replaceChildren(...rows);
    $("attachments-empty").hidden = rows.length > 0;
  } catch (err) {
    onError(err);
  }
}

/** The file input: each chosen file is attached to the chart on show, then listed. */
export function wireAttachments(onError) {
  $("attach-file").addEventListener("change", async (event) => {
    const input = event.target;
    const chartId = shownChart;
    const chosen = [...(input.files || [])];
    input.value = "";
    if (!chartId) return;
    try {
      for (const file of chosen) await attach(chartId, file);
      $("attach-status").textContent = `Attached ${chosen.map((f) => f.name).join(", ")}.`;
    } catch (err) {
      $("attach-status").textContent = "";
      onError(err);
    }
    await showAttachments(chartId, onError);
  });
}
