// Occupancy bands: when the site was occupied, from its schedule points
// (/api/occupancy), shaded behind the chart in a colour of their own (gaps are red),
// with a legend entry that shows or hides them and a sentence in the chart's text
// alternative.

import { getJson } from "./api.js";
import { iso } from "./requests.js";

export const OCCUPIED_NAME = "Occupied (schedule)";
export const OCCUPIED_COLOR = "rgba(40, 110, 200, 0.13)";
const OCCUPIED_LEGEND = "rgba(40, 110, 200, 0.45)"; // the legend's swatch: the band, stronger

export function occupancyUrl({ site, startMs, endMs }) {
  return `/api/occupancy?${new URLSearchParams({ site, start: iso(startMs), end: iso(endMs) })}`;
}

/**
 * The occupied spans of the charted range: ``{points, spans: [[startMs, endMs], …]}``,
 * or null when they cannot be had (an older server, a cold range over the fetch budget):
 * the chart is drawn without them then.
 */
export async function loadOccupancy(query, { signal } = {}) {
  try {
    const body = await getJson(occupancyUrl(query), { signal });
    return { points: body.metadata?.points || [], spans: body.occupied || [] };
  } catch (err) {
    if (err.name === "AbortError") throw err;
    return null;
  }
}

function hours(ms) {
  const h = ms / 3_600_000;
  return `${Number(h.toPrecision(3))} h`;
}

/** The bands as one sentence for the text alternative ("" when the site has none). */
export function occupancyText(occupancy) {
  if (!occupancy?.points?.length) return "";
  const spans = occupancy.spans;
  if (!spans.length) return " Not occupied in this range by the site's schedule (no blue bands).";
  const total = spans.reduce((sum, [a, b]) => sum + (b - a), 0);
  const count = spans.length === 1 ? "1 span" : `${spans.length} spans`;
  return ` Occupied by the site's schedule in ${count}, ${hours(total)} in all (shaded blue).`;
}

/**
 * The bands as an ECharts series of their own on the main grid's axes: no line, a
 * legend entry (clicking it shows or hides them), the spans as a mark area behind the
 * data. Null when there is nothing to shade.
 */
export function occupancySeries(occupancy, { xAxisIndex = 0, yAxisIndex = 0 } = {}) {
  if (!occupancy?.spans?.length) return null;
  return {
    name: OCCUPIED_NAME,
    type: "line",
    xAxisIndex,
    yAxisIndex,
    data: [],
    silent: true,
    z: 0,
    legendIcon: "rect",
    symbol: "rect",
    showSymbol: false,
    itemStyle: { color: OCCUPIED_LEGEND },
    lineStyle: { opacity: 0 },
    tooltip: { show: false },
    markArea: {
      silent: true,
      label: { show: false },
      itemStyle: { color: OCCUPIED_COLOR },
      data: occupancy.spans.map(([a, b]) => [{ name: "occupied", xAxis: a }, { xAxis: b }]),
    },
  };
}
