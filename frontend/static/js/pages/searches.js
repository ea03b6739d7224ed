// Searches: every recipe search, newest first, with its trials' states and the best validation kNN so far.
import { api } from "../api.js";
import { showBanner } from "../banner.js";
import { clear, h } from "../dom.js";
import { pct, relativeTime, statusPill } from "../format.js";
import { navigate } from "../url.js";

export function mount(root) {
  let stopped = false;
  let timer = null;
  const tbody = h("tbody");
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Recipe searches"), h("span", { class: "spacer" }),
      h("a", { href: "/launch?search=1", "data-link": true, class: "button primary" }, "New search")),
    h("table", { class: "data", id: "searches-table" },
      h("thead", {}, h("tr", {}, ["Search", "Trials", "State", "Best validation kNN", "Created"].map((t) => h("th", {}, t)))), tbody),
  );

  async function refresh() {
    clearTimeout(timer);
    try {
      const searches = await api("/api/searches?limit=100");
      if (stopped) return;
      clear(tbody);
      if (!searches.data.length) {
        tbody.append(h("tr", {}, h("td", { colspan: 5 }, h("div", { class: "empty" },
          "No searches yet. On the Launch page, mark the fields to search (“Sweep”) and tick “Search”.",
          h("br"), h("a", { href: "/launch?search=1", "data-link": true, class: "button" }, "Open Launch")))));
      }
      for (const search of searches.data) {
        tbody.append(h("tr", { class: "clickable", "data-search-id": search.id, onclick: () => navigate(`/searches/${search.id}`) },
          h("td", {}, h("a", { href: `/searches/${search.id}`, "data-link": true, onclick: (e) => e.stopPropagation() }, search.name || search.id)),
          h("td", { class: "num" }, `${search.trials.length} / ${search.total}`),
          h("td", {}, h("span", { class: `pill search-${search.state}` }, search.state), " ",
            Object.entries(search.state_counts).map(([state, n]) => h("span", { class: "count" }, statusPill(state), ` ${n} `))),
          h("td", { class: "num" }, search.best ? pct(search.best.value) : "–"),
          h("td", {}, relativeTime(search.created_at))));
      }
      timer = setTimeout(refresh, searches.data.some((search) => search.state === "running") ? 3000 : 15000);
    } catch (exc) {
      if (stopped) return;
      showBanner(`Could not load searches: ${exc.message}`, { retry: refresh });
    }
  }

  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
