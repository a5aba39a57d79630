// The site selector and the point picker (search by name and tags, showing units).

import { getJson } from "./api.js";

const SEARCH_DELAY_MS = 250;

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

export class Picker {
  constructor({ site, search, tags, results, selected, onChange, onError }) {
    Object.assign(this, { siteSelect: site, searchInput: search, tagsInput: tags, resultsList: results, selectedList: selected });
    this.onChange = onChange;
    this.onError = onError;
    this.selected = new Map(); // name -> {name, unit}
    this.timer = null;
    this.searches = 0; // answers to older searches are dropped
    this.siteSelect.addEventListener("change", () => {
      this.selected.clear();
      this.renderSelected();
      this.search();
      this.onChange();
    });
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

  renderResults(items) {
    const rows = items.map((p) => {
      const li = el(
        "li",
        { title: p.name, className: this.selected.has(p.name) ? "on" : "" },
        el("span", {}, el("span", { className: "name", textContent: p.name }), el("br"), el("span", { className: "tags", textContent: (p.tags || []).join(" ") })),
        el("span", { className: "unit", textContent: p.unit || "" }),
      );
      li.dataset.name = p.name;
      li.addEventListener("click", () => this.toggle({ name: p.name, unit: p.unit || "" }, li));
      return li;
    });
    this.resultsList.replaceChildren(...rows);
    if (!rows.length) this.resultsList.append(el("li", { textContent: "No matching points" }));
  }

  toggle(point, li) {
    if (this.selected.has(point.name)) this.selected.delete(point.name);
    else this.selected.set(point.name, point);
    li?.classList.toggle("on", this.selected.has(point.name));
    this.renderSelected();
    this.onChange();
  }

  setSelection(points) {
    this.selected = new Map(points.map((p) => [p.name, p]));
    this.renderSelected();
  }

  renderSelected() {
    const rows = [...this.selected.values()].map((p) => {
      const remove = el("button", { type: "button", textContent: "×", title: "Remove" });
      remove.addEventListener("click", () => {
        this.selected.delete(p.name);
        this.resultsList.querySelector(`li[data-name="${CSS.escape(p.name)}"]`)?.classList.remove("on");
        this.renderSelected();
        this.onChange();
      });
      return el("li", { title: p.name }, el("span", { textContent: `${p.name} ${p.unit ? `(${p.unit})` : ""}` }), remove);
    });
    this.selectedList.replaceChildren(...rows);
  }
}
