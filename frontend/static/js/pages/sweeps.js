// Sweeps: every sweep and study, newest first, with how far each has got.
import { api } from "../api.js";
import { showBanner } from "../banner.js";
import { clear, h } from "../dom.js";
import { relativeTime, statusPill } from "../format.js";
import { navigate } from "../url.js";

export function mount(root) {
  let stopped = false;
  let timer = null;
  const tbody = h("tbody");
  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Sweeps and studies"), h("span", { class: "spacer" }),
      h("a", { href: "/launch?study=reproduce_original_table", "data-link": true, class: "button primary" }, "New study")),
    h("table", { class: "data", id: "sweeps-table" },
      h("thead", {}, h("tr", {}, ["Sweep", "Runs", "Status", "Created"].map((t) => h("th", {}, t)))), tbody),
  );

  async function refresh() {
    clearTimeout(timer);
    try {
      const sweeps = await api("/api/sweeps?limit=100");
      if (stopped) return;
      clear(tbody);
      if (!sweeps.data.length) {
        tbody.append(h("tr", {}, h("td", { colspan: 4 }, h("div", { class: "empty" },
          "No sweeps yet. On the Launch page, turn any field into a list of values (“Sweep”), or start a study.",
          h("br"), h("a", { href: "/launch", "data-link": true, class: "button" }, "Open Launch")))));
      }
      for (const sweep of sweeps.data) {
        tbody.append(h("tr", { class: "clickable", "data-sweep-id": sweep.id, onclick: () => navigate(`/sweeps/${sweep.id}`) },
          h("td", {}, h("a", { href: `/sweeps/${sweep.id}`, "data-link": true, onclick: (e) => e.stopPropagation() }, sweep.name || sweep.id),
            sweep.study ? h("span", { class: "tag" }, "study") : null),
          h("td", { class: "num" }, String(sweep.total)),
          h("td", {}, Object.entries(sweep.status_counts).map(([status, n]) => h("span", { class: "count" }, statusPill(status), ` ${n} `)),
            // "done" only when every run completed; a cancelled or failed sweep says it stopped.
            sweep.done ? h("strong", {}, (sweep.status_counts.completed || 0) === sweep.total ? " done" : " stopped") : null),
          h("td", {}, relativeTime(sweep.created_at))));
      }
      timer = setTimeout(refresh, sweeps.data.some((sweep) => !sweep.done) ? 3000 : 15000);
    } catch (exc) {
      if (stopped) return;
      showBanner(`Could not load sweeps: ${exc.message}`, { retry: refresh });
    }
  }

  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
