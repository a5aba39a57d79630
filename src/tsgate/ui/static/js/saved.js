// Saved chart configurations (/api/charts): come back to a chart by URL, /?chart=<id>.

import { getJson, request } from "./api.js";

export function saveChart(name, config) {
  return getJson("/api/charts", { method: "POST", body: { name, config } });
}

export async function listCharts() {
  return (await getJson("/api/charts")).items || [];
}

export function getChart(id) {
  return getJson(`/api/charts/${encodeURIComponent(id)}`);
}

export function deleteChart(id) {
  return request(`/api/charts/${encodeURIComponent(id)}`, { method: "DELETE" });
}
