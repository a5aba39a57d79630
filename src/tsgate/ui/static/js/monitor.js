// The monitor view: the monitoring history (/api/monitor) drawn with the chart page's own
// charts (store sizes, growth, requests and error rate, the job backlog), and the alert
// rules with their levels and the history of their changes.

import { getJson } from "./api.js";
import { describe, optionFor } from "./chart.js";
import { iso } from "./requests.js";

const MAX_POINTS = 400;
const PANEL_PX = 260;

/** The panels: a chart each, of these metrics, each metric's unit on its own axis. */
export const PANELS = [
  {
    id: "sizes",
    title: "Store sizes",
    units: { database_bytes: "bytes", store_bytes: "bytes", chunk_bytes: "bytes", job_result_bytes: "bytes", file_bytes: "bytes" },
  },
  { id: "growth", title: "Growth per day", units: { database_growth_bytes_per_day: "bytes/day", store_growth_bytes_per_day: "bytes/day" } },
  { id: "errors", title: "Requests and error rate", units: { request_error_ratio: "share of 5xx", requests: "requests" } },
  { id: "jobs", title: "Job backlog", units: { job_backlog: "jobs queued", oldest_queued_job_s: "s waited" } },
];

export function monitorUrl({ startMs, endMs, maxPoints = MAX_POINTS }) {
  return `/api/monitor?${new URLSearchParams({ start: iso(startMs), end: iso(endMs), max_points: String(maxPoints) })}`;
}

export async function loadMonitor(query, { signal } = {}) {
  return getJson(monitorUrl(query), { signal });
}

/** The chart series of ``panel`` in a /api/monitor body (metrics with no samples left out). */
export function panelSeries(body, panel) {
  const out = [];
  for (const name of Object.keys(panel.units)) {
    const m = body.metrics?.[name];
    if (!m || !m.t.length) continue;
    out.push({ name, t: Float64Array.from(m.t), v: Float64Array.from(m.v, (x) => (x === null ? NaN : x)), kind: "analog", mode: "sampled", offsetMs: 0 });
  }
  return out;
}

/** The alert rules' rows: the rule, its level now, its thresholds and the latest value. */
export function ruleRows(body) {
  const latest = body.latest?.values || {};
  const rules = body.rules || [];
  const named = new Set(rules.map((r) => r.metric));
  const extra = Object.keys(body.levels || {}).filter((rule) => !named.has(rule)); // rules since removed
  return [...rules, ...extra.map((metric) => ({ metric, warning: null, critical: null }))].map((r) => ({
    rule: r.metric,
    level: body.levels?.[r.metric] || "ok",
    warning: r.warning,
    critical: r.critical,
    value: latest[r.metric] ?? null,
  }));
}

function number(x) {
  if (x === null || x === undefined) return "—";
  return Math.abs(x) >= 1e4 ? x.toExponential(2) : String(Number(x.toPrecision(4)));
}

function utc(ms) {
  return `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function level(text) {
  return el("span", { className: `level level-${text}`, textContent: text });
}

function table(caption, heads, rows) {
  const head = el("tr", {}, heads.map((h) => el("th", { scope: "col", textContent: h })));
  const body = rows.map((cells) => el("tr", {}, cells.map((c, i) => (i === 0 ? el("th", { scope: "row" }, [c]) : el("td", {}, [c])))));
  return el("table", {}, [el("caption", { textContent: caption }), el("thead", {}, [head]), el("tbody", {}, body)]);
}

export class MonitorView {
  constructor(root, echarts) {
    this.root = root;
    this.echarts = echarts;
    this.charts = new Map();
  }

  /** Draw ``body`` (a /api/monitor answer) over ``[startMs, endMs)``. */
  show(body, startMs, endMs) {
    const panels = PANELS.map((panel) => {
      const box = el("div", { className: "monitor-chart", id: `monitor-${panel.id}` });
      box.setAttribute("role", "img");
      box.style.height = `${PANEL_PX}px`;
      return { panel, box, section: el("section", { className: "monitor-panel" }, [el("h3", { textContent: panel.title }), box]) };
    });
    const rules = ruleRows(body);
    const events = [...(body.events || [])].sort((a, b) => b.at - a.at); // newest first
    this.root.replaceChildren(
      el("h2", { textContent: `Monitoring, ${utc(startMs)} to ${utc(endMs)}` }),
      el("div", { className: "monitor-panels" }, panels.map((p) => p.section)),
      rules.length
        ? table("Alert rules and their levels now", ["Rule", "Level", "Warning over", "Critical over", "Latest value"], rules.map((r) => [r.rule, level(r.level), number(r.warning), number(r.critical), number(r.value)]))
        : el("p", { id: "monitor-no-rules", textContent: "No alert rules are set (TSGATE_ALERT_RULES)." }),
      events.length
        ? table("Alert history: changes of level in this range", ["Time", "Rule", "From", "To", "Value", "Message"], events.map((e) => [utc(e.at), e.rule, level(e.previous), level(e.level), number(e.value), e.message]))
        : el("p", { id: "monitor-no-events", textContent: "No alert changed level in this range." }),
    );
    for (const chart of this.charts.values()) chart.dispose();
    this.charts.clear();
    for (const { panel, box } of panels) {
      const series = panelSeries(body, panel);
      const spec = { series, units: panel.units, view: "line", startMs, endMs };
      const label = series.length ? `${panel.title}: ${describe(spec)}` : `${panel.title}: no samples in this range.`;
      const chart = this.echarts.init(box);
      // ECharts writes the description onto the box: the panel's title leads it
      chart.setOption({ ...optionFor(spec), aria: { enabled: true, label: { description: label } } }, { notMerge: true });
      box.setAttribute("aria-label", label);
      this.charts.set(panel.id, chart);
    }
  }

  resize() {
    for (const chart of this.charts.values()) chart.resize();
  }
}
