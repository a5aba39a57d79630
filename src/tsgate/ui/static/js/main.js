// The chart page: state, wiring of the controls, and the load → draw cycle.

import * as echarts from "../vendor/echarts.esm.min.js";
import { getToken, setToken } from "./api.js";
import { heightFor, optionFor } from "./chart.js";
import { exportCsv, exportJson } from "./exporting.js";
import { showAttachments, wireAttachments } from "./files.js";
import { cancelJob } from "./jobs.js";
import { AHEAD_MS, Live, merge } from "./live.js";
import { loadChart } from "./loader.js";
import { MonitorView, loadMonitor } from "./monitor.js";
import { loadOccupancy } from "./occupancy.js";
import { Picker } from "./picker.js";
import { QualityTable, loadQuality } from "./quality.js";
import { custom, inputValue, resolve } from "./range.js";
import { deleteChart, getChart, listCharts, saveChart } from "./saved.js";
import { explain, overlay, setState, showJob, showLoad, showMessage } from "./status.js";

const $ = (id) => document.getElementById(id);
const ZOOM_DELAY_MS = 400;
const MIN_WINDOW_MS = 60_000;

const state = { view: "line", range: { preset: "24h" }, compare: false, live: false, history: [], series: [], controller: null, job: null, shown: null, timeZone: "UTC", occupancy: null, bands: true };
const chart = echarts.init($("chart"));
window.echarts = echarts;
window.__tsgateChart = chart;

// one click on a point's name in the quality view charts that point
const quality = new QualityTable($("quality"), (p) => {
  picker.setSelection([{ name: p.name, unit: p.unit || "", kind: p.kind, mode: p.mode }]);
  state.view = "line";
  load();
});

const monitor = new MonitorView($("monitor"), echarts);

const picker = new Picker({
  site: $("site"), search: $("search"), tags: $("tags"), results: $("results"), empty: $("results-empty"), selected: $("selected"),
  onChange: () => load(),
  onError: fail,
});

// "Live": the stream's first answer replaces the series, its new samples are merged in
const live = new Live({
  onInitial: (series) => {
    for (const s of series) {
      const old = state.series.find((x) => x.name === s.name && (x.offsetMs || 0) === (s.offsetMs || 0));
      if (old) Object.assign(s, { kind: s.kind || old.kind, mode: s.mode || old.mode, agg: old.agg });
    }
    state.series = series;
    drawLive();
  },
  onSamples: (pushed) => { if (merge(state.series, pushed)) drawLive(); },
  reload: () => load(),
});

function drawLive() {
  if (!state.shown) return;
  // the window follows the newest sample, keeping its width
  const newest = Math.max(...state.series.map((s) => (s.t.length ? s.t[s.t.length - 1] : -Infinity)));
  const shift = Math.max(0, newest - state.shown.endMs);
  state.shown = { startMs: state.shown.startMs + shift, endMs: state.shown.endMs + shift };
  draw(state.shown.startMs, state.shown.endMs);
}

function fail(err) {
  if (err.name === "AbortError") return;
  const text = explain(err);
  showMessage(text);
  overlay(text, "error");
  $("chart").setAttribute("aria-label", `Chart: not drawn. ${text}`);
  showJob(null);
  setState("error");
}

function pressed(container, attr, value) {
  for (const b of $(container).querySelectorAll(`button[${attr}]`)) {
    b.setAttribute("aria-pressed", String(b.getAttribute(attr) === value));
  }
}

function config() {
  return { site: picker.site, points: [...picker.selected.keys()], units: picker.units, kinds: picker.kinds, view: state.view, range: state.range, compare: state.compare };
}

function plotWidthPx() {
  const option = chart.getOption();
  const grid = option?.grid?.[0];
  const margins = grid ? Number(grid.left) + Number(grid.right) : 100;
  return Math.max(100, Math.floor(chart.getWidth() - (Number.isFinite(margins) ? margins : 100)));
}

async function load() {
  state.controller?.abort();
  live.stop();
  $("live").setAttribute("aria-pressed", String(state.live));
  const points = [...picker.selected.keys()];
  pressed("presets", "data-preset", state.range.preset);
  pressed("views", "data-view", state.view);
  $("compare").setAttribute("aria-pressed", String(state.compare));
  const inQuality = state.view === "quality";
  const inMonitor = state.view === "monitor";
  $("quality").hidden = !inQuality;
  $("monitor").hidden = !inMonitor;
  $("chart-wrap").hidden = inQuality || inMonitor;
  if (inQuality) return showQuality(controller0());
  if (inMonitor) return showMonitor(controller0());
  if (!picker.site || !points.length) {
    chart.clear();
    const hint = picker.site ? "Pick points from the list to draw them." : "Choose a site.";
    overlay(hint);
    $("chart").setAttribute("aria-label", `Chart: nothing drawn. ${hint}`); // no stale description
    setState("idle");
    return;
  }
  const controller = controller0();
  const [startMs, endMs] = resolve(state.range);
  $("start").value = inputValue(startMs);
  $("end").value = inputValue(endMs);
  setState("loading");
  showMessage("");
  overlay("Loading…");
  // M4 downsampling draws four values per pixel column: this is pixel-exact
  const query = { site: picker.site, points, startMs, endMs, view: state.view, maxPoints: 4 * plotWidthPx(), kinds: picker.kinds, compare: state.compare };
  // the site's occupied spans, asked beside the chart (a calendar has no time axis)
  const occupancy = state.view === "calendar" ? Promise.resolve(null) : loadOccupancy({ site: picker.site, startMs, endMs }, { signal: controller.signal }).catch(() => null);
  try {
    const result = await loadChart(query, {
      signal: controller.signal,
      // a load replaced by a newer one must not draw its job over the newer one's
      onJob: (job) => {
        if (controller.signal.aborted) return;
        state.job = job;
        showJob(job);
        setState("job");
      },
      onProgress: (job) => {
        if (!controller.signal.aborted) showJob({ ...state.job, ...job });
      },
      // a long job's newest months, drawn while the older ones are fetched
      onPartial: ({ series, metadata }) => {
        if (controller.signal.aborted) return;
        state.series = series;
        state.timeZone = metadata.timeZone || "UTC";
        state.shown = { startMs, endMs };
        draw(startMs, endMs);
      },
    });
    if (controller.signal.aborted) return;
    state.series = result.series;
    state.timeZone = result.metadata.timeZone || "UTC";
    state.occupancy = await occupancy;
    if (controller.signal.aborted) return;
    showBandsButton();
    state.shown = { startMs, endMs };
    draw(startMs, endMs);
    if (state.live && state.view !== "calendar") live.follow(result.load.url, endMs + AHEAD_MS);
    showLoad(result.load);
    showJob(null);
    state.job = null;
    setState("ready");
  } catch (err) {
    if (!controller.signal.aborted) fail(err);
  }
}

function controller0() {
  const controller = new AbortController();
  state.controller = controller;
  return controller;
}

async function showQuality(controller) {
  if (!picker.site) {
    $("quality").replaceChildren(Object.assign(document.createElement("p"), { textContent: "Choose a site." }));
    setState("idle");
    return;
  }
  const [startMs, endMs] = resolve(state.range);
  $("start").value = inputValue(startMs);
  $("end").value = inputValue(endMs);
  setState("loading");
  showMessage("");
  try {
    const body = await loadQuality({ site: picker.site, startMs, endMs }, { signal: controller.signal });
    if (controller.signal.aborted) return;
    quality.show(body);
    setState("ready");
  } catch (err) {
    if (!controller.signal.aborted) fail(err);
  }
}

async function showMonitor(controller) {
  const [startMs, endMs] = resolve(state.range);
  $("start").value = inputValue(startMs);
  $("end").value = inputValue(endMs);
  setState("loading");
  showMessage("");
  try {
    const body = await loadMonitor({ startMs, endMs }, { signal: controller.signal });
    if (controller.signal.aborted) return;
    monitor.show(body, startMs, endMs);
    setState("ready");
  } catch (err) {
    if (!controller.signal.aborted) fail(err);
  }
}

function draw(startMs, endMs) {
  const height = heightFor(state.view, state.series.length);
  $("chart-wrap").style.minHeight = height ? `${height}px` : "";
  chart.resize();
  chart.setOption(optionFor({ series: state.series, units: picker.units, view: state.view, startMs, endMs, timeZone: state.timeZone, occupancy: state.bands ? state.occupancy : null }), { notMerge: true });
  const empty = state.series.every((s) => s.t.length === 0);
  overlay(empty ? "No samples in this range." : "");
}

/** The Occupancy toggle: pressed while the bands are shown; off where the site has no
 * schedule point (or the chart has no time axis). */
function showBandsButton() {
  const button = $("occupancy");
  const has = Boolean(state.occupancy?.points?.length);
  button.setAttribute("aria-pressed", String(state.bands && has));
  button.disabled = !has;
  button.title = has ? "Shade when the site was occupied, from its schedule points" : "No schedule points on this site (or no time axis): nothing to shade";
}

function rangeTo(range) {
  state.history.push(state.range);
  $("zoom-back").disabled = false;
  state.range = range;
  load();
}

let zoomTimer = null;
chart.on("datazoom", () => {
  clearTimeout(zoomTimer);
  zoomTimer = setTimeout(() => {
    const zoom = chart.getOption().dataZoom?.[0];
    if (!zoom || !state.shown) return;
    const { startMs, endMs } = state.shown;
    const span = endMs - startMs;
    const from = Math.round(startMs + (span * zoom.start) / 100);
    const to = Math.round(startMs + (span * zoom.end) / 100);
    if (to - from >= span * 0.995 || to - from < MIN_WINDOW_MS) return;
    rangeTo(custom(from, to)); // re-query: finer data for the narrower window
  }, ZOOM_DELAY_MS);
});

function wireControls() {
  $("token").value = getToken();
  $("token").addEventListener("change", () => { setToken($("token").value.trim()); start(); });
  $("presets").addEventListener("click", (e) => {
    const preset = e.target.dataset?.preset;
    if (preset) rangeTo({ preset });
  });
  $("views").addEventListener("click", (e) => {
    const view = e.target.dataset?.view;
    if (view) { state.view = view; load(); }
  });
  $("compare").addEventListener("click", () => { state.compare = !state.compare; load(); });
  $("live").addEventListener("click", () => { state.live = !state.live; load(); });
  $("occupancy").addEventListener("click", () => {
    state.bands = !state.bands;
    showBandsButton();
    if (state.shown && state.view !== "calendar") draw(state.shown.startMs, state.shown.endMs);
  });
  $("apply-range").addEventListener("click", () => {
    if ($("start").value && $("end").value) rangeTo(custom(Date.parse(`${$("start").value}Z`), Date.parse(`${$("end").value}Z`)));
  });
  $("zoom-back").addEventListener("click", () => {
    if (!state.history.length) return;
    state.range = state.history.pop();
    $("zoom-back").disabled = !state.history.length;
    load();
  });
  $("job-cancel").addEventListener("click", async () => {
    const job = state.job;
    state.controller?.abort();
    showJob(null);
    if (job) await cancelJob(job.statusUrl).catch(fail);
    overlay("Job cancelled.");
    setState("cancelled");
  });
  const stem = () => `tsgate-${picker.site}-${new Date().toISOString().slice(0, 19)}`;
  $("export-csv").addEventListener("click", () => exportCsv(state.series, stem()));
  $("export-json").addEventListener("click", () => exportJson(state.series, config(), stem()));
  $("save").addEventListener("click", save);
  $("saved").addEventListener("change", () => { if ($("saved").value) openChart($("saved").value); });
  $("saved-delete").addEventListener("click", removeSaved);
  wireAttachments((err) => showMessage(explain(err)));
  new ResizeObserver(() => chart.resize()).observe($("chart-wrap"));
  new ResizeObserver(() => monitor.resize()).observe($("monitor"));
}

async function save() {
  const name = prompt("Name this chart", `${picker.site}: ${picker.selected.size} points`);
  if (name === null) return;
  try {
    const saved = await saveChart(name, config());
    history.replaceState(null, "", saved.url);
    showMessage(`Saved: ${location.origin}${saved.url}`, "info");
    await refreshSaved(saved.id);
    await showAttachments(saved.id, fail);
  } catch (err) {
    fail(err);
  }
}

async function removeSaved() {
  const id = $("saved").value;
  if (!id) return;
  try {
    await deleteChart(id);
    await refreshSaved("");
    await showAttachments(null);
  } catch (err) {
    fail(err);
  }
}

async function refreshSaved(selectedId) {
  const items = await listCharts();
  const options = items.map((c) => Object.assign(document.createElement("option"), { value: c.id, textContent: c.name || c.id }));
  $("saved").replaceChildren(Object.assign(document.createElement("option"), { value: "", textContent: "Saved charts…" }), ...options);
  $("saved").value = selectedId || "";
}

async function openChart(id) {
  const saved = await getChart(id);
  const c = saved.config;
  history.replaceState(null, "", saved.url);
  showAttachments(saved.id, (err) => showMessage(explain(err)));
  if (picker.site !== c.site) {
    picker.siteSelect.value = c.site;
    await picker.search();
  }
  picker.setSelection(c.points.map((name) => ({ name, unit: c.units?.[name] || "", ...(c.kinds?.[name] || {}) })));
  state.view = c.view || "line";
  state.compare = Boolean(c.compare);
  state.range = c.range || { preset: "24h" };
  state.history = [];
  await load();
}

async function start() {
  try {
    const chartId = new URLSearchParams(location.search).get("chart");
    await picker.loadSites();
    await picker.search();
    refreshSaved("").catch(() => {}); // older servers have no /api/charts
    if (chartId) await openChart(chartId);
    else await load();
  } catch (err) {
    fail(err);
  }
}

wireControls();
start();
