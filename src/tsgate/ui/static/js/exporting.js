// CSV and JSON files of what is on screen, built from the loaded series.

function download(filename, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function csvField(text) {
  return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function toCsv(series) {
  const lines = ["time,point,value"];
  for (const s of series) {
    const name = csvField(s.name);
    for (let i = 0; i < s.t.length; i++) {
      const v = s.v[i];
      lines.push(`${new Date(s.t[i]).toISOString()},${name},${Number.isNaN(v) ? "" : v}`);
    }
  }
  return lines.join("\n") + "\n";
}

export function toJson(series, meta) {
  return JSON.stringify({
    ...meta,
    series: series.map((s) => ({
      name: s.name,
      unit: meta.units?.[s.name] || "",
      data: Array.from(s.t, (t, i) => [t, Number.isNaN(s.v[i]) ? null : s.v[i]]),
    })),
  });
}

export function exportCsv(series, stem) {
  download(`${stem}.csv`, "text/csv", toCsv(series));
}

export function exportJson(series, meta, stem) {
  download(`${stem}.json`, "application/json", toJson(series, meta));
}
