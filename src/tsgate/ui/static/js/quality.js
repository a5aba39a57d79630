// The quality view: a site's points with their flags from /api/quality, sortable, each
// name a button that charts the point.

import { getJson } from "./api.js";
import { iso } from "./requests.js";

export function qualityUrl({ site, startMs, endMs }) {
  return `/api/quality?${new URLSearchParams({ site, start: iso(startMs), end: iso(endMs) })}`;
}

export async function loadQuality(query, { signal } = {}) {
  return getJson(qualityUrl(query), { signal });
}

/** What is wrong with a point, worst first (an empty list: nothing). */
export function flags(p) {
  const out = [];
  if (p.missing) out.push("missing");
  else if (p.stale) out.push("stale");
  if (p.flatlineHours > 0 && p.kind === "analog") out.push("flatline");
  if (p.outOfRangeHours > 0) out.push("out of range");
  return out;
}

/** The table's columns: key, heading, the value sorted by, and the cell's text. */
export const COLUMNS = [
  { key: "name", title: "Point", value: (p) => p.name, text: (p) => p.name },
  { key: "kind", title: "Kind", value: (p) => `${p.kind} ${p.mode}`, text: (p) => `${p.kind} (${p.mode})` },
  { key: "coveragePct", title: "Coverage %", value: (p) => p.coveragePct, text: (p) => p.coveragePct.toFixed(1) },
  { key: "longestGapMs", title: "Longest gap", value: (p) => p.longestGapMs, text: (p) => duration(p.longestGapMs) },
  // the chart's gap bands: silences longer than the point's own limit (its cadence, or
  // 1.5 heartbeats for a point reporting on change)
  { key: "gaps", title: "Gaps", value: (p) => p.gaps ?? 0, text: (p) => gapsText(p) },
  { key: "staleMs", title: "Since last sample", value: (p) => (p.staleMs === null ? Infinity : p.staleMs), text: (p) => (p.staleMs === null ? "never" : duration(p.staleMs)) },
  { key: "flatlineHours", title: "Flatline h", value: (p) => p.flatlineHours, text: (p) => String(p.flatlineHours) },
  { key: "outOfRangeHours", title: "Out of range h", value: (p) => p.outOfRangeHours, text: (p) => String(p.outOfRangeHours) },
  { key: "flags", title: "Flags", value: (p) => flags(p).length, text: (p) => flags(p).join(", ") || "ok" },
];

function gapsText(p) {
  const count = String(p.gaps ?? 0);
  return p.gapLimitMs ? `${count} (over ${duration(p.gapLimitMs)})` : count;
}

export function duration(ms) {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 172_800_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} d`;
}

/** ``points`` sorted by column ``key`` (``ascending`` or not); ties keep name order. */
export function sortRows(points, key, ascending) {
  const column = COLUMNS.find((c) => c.key === key) || COLUMNS[0];
  const sign = ascending ? 1 : -1;
  return [...points].sort((a, b) => {
    const x = column.value(a);
    const y = column.value(b);
    const order = typeof x === "string" ? x.localeCompare(y) : x - y;
    return order * sign || a.name.localeCompare(b.name);
  });
}

export function summaryText(body) {
  const s = body.summary;
  return `${s.points} points, ${body.metadata.startTime} to ${body.metadata.endTime} UTC (site zone ${body.metadata.timeZone}): ` +
    `${s.missing} missing, ${s.stale} stale, ${s.flatlined} flatlined, ${s.outOfRange} out of range; mean coverage ${s.meanCoveragePct.toFixed(1)} %.`;
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** The sortable table, in ``container``; ``onChart(point)`` when a name is clicked. */
export class QualityTable {
  constructor(container, onChart) {
    this.container = container;
    this.onChart = onChart;
    this.body = null;
    this.sort = { key: "coveragePct", ascending: true }; // worst coverage first
  }

  show(body) {
    this.body = body;
    this.render();
  }

  render() {
    const { key, ascending } = this.sort;
    const heads = COLUMNS.map((c) => {
      const button = el("button", { type: "button", textContent: c.title, className: "sort" });
      button.dataset.sort = c.key;
      button.addEventListener("click", () => {
        this.sort = { key: c.key, ascending: this.sort.key === c.key ? !this.sort.ascending : c.key === "name" || c.key === "coveragePct" };
        this.render();
        this.container.querySelector(`button[data-sort="${c.key}"]`).focus();
      });
      const th = el("th", { scope: "col" }, button);
      th.setAttribute("aria-sort", c.key === key ? (ascending ? "ascending" : "descending") : "none");
      return th;
    });
    const rows = sortRows(this.body.points, key, ascending).map((p) => {
      const cells = COLUMNS.map((c) => {
        if (c.key !== "name") return el("td", { textContent: c.text(p) });
        const button = el("button", { type: "button", textContent: p.name, className: "chart-point", title: `Chart ${p.name}` });
        button.addEventListener("click", () => this.onChart(p));
        return el("th", { scope: "row" }, button);
      });
      const tr = el("tr", {}, ...cells);
      tr.dataset.name = p.name;
      tr.dataset.flags = flags(p).join(",");
      return tr;
    });
    const table = el(
      "table",
      {},
      el("caption", { textContent: summaryText(this.body) }),
      el("thead", {}, el("tr", {}, ...heads)),
      el("tbody", {}, ...rows),
    );
    this.container.replaceChildren(table);
  }
}
