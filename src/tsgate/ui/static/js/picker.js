// The site selector and the point picker (search by name and tags, showing units).

import { getJson } from "./api.js";

const SEARCH_DELAY_MS = 250;

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

export class Picker {
  constructor({ site, search, tags, results, empty, selected, onChange, onError }) {
    Object.assign(this, { siteSelect: site, searchInput: search, tagsInput: tags, resultsList: results, emptyNote: empty, selectedList: selected });
    this.onChange = onChange;
    this.onError = onError;
    this.selected = new Map(); // name -> {name, unit, kind, mode}
    this.timer = null;
    this.searches = 0; // answers to older searches are dropped
    this.siteSelect.addEventListener("change", () => {
      this.selected.clear();
      this.renderSelected();
      this.search();
      this.onChange();
    });
    this.resultsList.addEventListener("keydown", (event) => this.onKey(event));
    for (const input of [this.searchInput, this.tagsInput]) {
      input.addEventListener("input", () => {
        this.resultsList.dataset.state = "pending";
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.search(), SEARCH_DELAY_MS);
      });
    }
  }

  get site() {
    return this.siteSelect.value;
  }

  get units() {
    return Object.fromEntries([...this.selected.values()].map((p) => [p.name, p.unit || ""]));
  }

  /** ``{name: {kind, mode}}`` of the selected points, as point search described them. */
  get kinds() {
    return Object.fromEntries([...this.selected.values()].map((p) => [p.name, { kind: p.kind || "analog", mode: p.mode || "sampled" }]));
  }

  async loadSites(preferred) {
    const body = await getJson("/api/sites?page=1&per_page=500");
    const names = (body.items || []).map((s) => s.name);
    this.siteSelect.replaceChildren(el("option", { value: "", textContent: "Choose a site…" }));
    for (const name of names) this.siteSelect.append(el("option", { value: name, textContent: name }));
    if (preferred && names.includes(preferred)) this.siteSelect.value = preferred;
  }

  async search() {
    const seq = ++this.searches;
    this.resultsList.dataset.state = "loading";
    if (!this.site) {
      this.resultsList.replaceChildren();
      this.emptyNote.hidden = true;
      this.resultsList.dataset.state = "idle";
      return;
    }
    const q = new URLSearchParams({ site: this.site, q: this.searchInput.value.trim(), tags: this.tagsInput.value.trim(), limit: "100" });
    try {
      const body = await getJson(`/api/points/search?${q}`);
      if (seq !== this.searches) return;
      this.renderResults(body.items || []);
      this.resultsList.dataset.query = q.toString();
      this.resultsList.dataset.state = "ready";
    } catch (err) {
      if (seq !== this.searches) return;
      this.resultsList.dataset.state = "error";
      this.onError(err);
    }
  }

  // The results are a multi-select listbox: Tab focuses it, arrows move the active
  // option, Space or Enter toggles it (the WAI-ARIA listbox pattern).
  renderResults(items) {
    const rows = items.map((p, i) => {
      const li = el(
        "li",
        { id: `result-${i}`, title: p.name },
        el("span", {}, el("span", { className: "name", textContent: p.name }), el("br"), el("span", { className: "tags", textContent: (p.tags || []).join(" ") })),
        el("span", { className: "unit", textContent: p.unit || "" }),
      );
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(this.selected.has(p.name)));
      li.dataset.name = p.name;
      li.dataset.unit = p.unit || "";
      li.dataset.kind = p.kind || "analog";
      li.dataset.mode = p.mode || "sampled";
      li.addEventListener("click", () => {
        this.activate(li);
        this.toggle(li);
      });
      return li;
    });
    this.resultsList.replaceChildren(...rows);
    this.resultsList.removeAttribute("aria-activedescendant");
    this.emptyNote.hidden = rows.length > 0;
  }

  options() {
    return [...this.resultsList.querySelectorAll('[role="option"]')];
  }

  activate(li) {
    for (const other of this.resultsList.querySelectorAll(".active")) other.classList.remove("active");
    if (!li) return;
    li.classList.add("active");
    this.resultsList.setAttribute("aria-activedescendant", li.id);
    li.scrollIntoView({ block: "nearest" });
  }

  onKey(event) {
    const options = this.options();
    if (!options.length) return;
    const current = options.findIndex((li) => li.classList.contains("active"));
    const moves = { ArrowDown: current + 1, ArrowUp: current - 1, Home: 0, End: options.length - 1, PageDown: current + 10, PageUp: current - 10 };
    if (event.key in moves) {
      event.preventDefault();
      const next = current < 0 && event.key !== "End" ? 0 : moves[event.key];
      this.activate(options[Math.max(0, Math.min(options.length - 1, next))]);
    } else if ((event.key === " " || event.key === "Enter") && current >= 0) {
      event.preventDefault();
      this.toggle(options[current]);
    }
  }

  toggle(li) {
    const point = { name: li.dataset.name, unit: li.dataset.unit, kind: li.dataset.kind, mode: li.dataset.mode };
    if (this.selected.has(point.name)) this.selected.delete(point.name);
    else this.selected.set(point.name, point);
    li.setAttribute("aria-selected", String(this.selected.has(point.name)));
    this.renderSelected();
    this.onChange();
  }

  setSelection(points) {
    this.selected = new Map(points.map((p) => [p.name, p]));
    this.renderSelected();
  }

  renderSelected() {
    const rows = [...this.selected.values()].map((p) => {
      const remove = el("button", { type: "button", textContent: "×", title: `Remove ${p.name}`, className: "remove" });
      remove.setAttribute("aria-label", `Remove ${p.name}`);
      remove.addEventListener("click", () => {
        this.selected.delete(p.name);
        this.resultsList.querySelector(`li[data-name="${CSS.escape(p.name)}"]`)?.setAttribute("aria-selected", "false");
        this.renderSelected();
        this.onChange();
        // keep the keyboard where it was: the next remove button, else the list
        (this.selectedList.querySelector("button.remove") || this.resultsList).focus();
      });
      return el("li", { title: p.name }, el("span", { textContent: `${p.name} ${p.unit ? `(${p.unit})` : ""}` }), remove);
    });
    this.selectedList.replaceChildren(...rows);
  }
}
