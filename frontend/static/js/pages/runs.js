// Runs: every run with its status, progress and headline figure; filter, sort, select, act in bulk.
import { api } from "../api.js";
import { clear, fill, h } from "../dom.js";
import { knnOf, params as fmtParams, pct, progressBar, relativeTime, runLabel, statusPill } from "../format.js";
import { runStyles, swatch } from "../colors.js";
import { NO_GROUPING, groupRuns, groupingChoices } from "../compare/groups.js";
import { showBanner } from "../banner.js";
import { getCatalog, paramsOf } from "../catalog.js";
import { queryBox } from "../query.js";
import { listParam, navigate, params, setParams } from "../url.js";

const PAGE_SIZE = 25;
const COLUMNS = [
  ["name", "Run", "name"], ["status", "Status", "status"], ["kind", "Kind", "kind"], ["method", "Method"],
  ["backbone", "Backbone", "backbone"], ["params", "Params", "params", "num"], ["dataset", "Dataset"],
  ["knn", "kNN top-1", null, "num", "pretrain / distill: the training monitor's latest value, on the validation split; eval: the evaluation's kNN"], ["tags", "Tags"], ["created", "Created", "created_at"],
];

// The chain in one line under the name: an evaluation names the run it measures, a training run its evaluation.
function chainNote(run) {
  const link = (id) => h("a", { href: `/runs/${id}`, "data-link": true, class: "mono", onclick: (e) => e.stopPropagation() }, id);
  if (run.kind === "eval" && run.parent_id) return h("div", { class: "muted chain" }, "evaluates ", link(run.parent_id));
  if (run.evaluation_id) return h("div", { class: "muted chain" }, "evaluated by ", link(run.evaluation_id));
  if (run.evaluate) return h("div", { class: "muted chain" }, "evaluated when it completes");
  return null;
}

export function mount(root) {
  let timer = null;
  let stopped = false;
  let lastRuns = [];
  let catalog = null;
  const selected = new Set(listParam("sel"));

  const where = queryBox({ value: params().get("where"), onApply: (text) => { setParams({ where: text, page: null }); refresh(); } });
  const search = h("input", { type: "search", id: "runs-search", placeholder: "name, id or notes", value: params().get("q") || "" });
  const status = h("select", { id: "runs-status" });
  const kind = h("select", { id: "runs-kind" });
  // The choices are the server's (catalog.statuses, catalog.kinds); until it answers, only the URL's.
  const setChoices = (select, anyLabel, choices) => {
    const current = params().get(select === kind ? "kind" : "status") || "";
    const values = choices || (current ? [current] : []);
    fill(select, h("option", { value: "" }, anyLabel), ...values.map((value) => h("option", { value }, value)));
    select.value = current;
  };
  setChoices(status, "any status");
  setChoices(kind, "any kind");
  const tag = h("input", { type: "text", id: "runs-tag", placeholder: "tag", value: params().get("tag") || "", size: 10 });
  // Rows grouped by a config key (or seeds pooled), each group a header row that folds its runs away.
  const groupBy = h("select", { id: "runs-group" });
  const collapsed = new Set();
  const compareButton = h("button", { type: "button", class: "primary", id: "compare-selected" }, "Compare");
  const reportButton = h("button", { type: "button", id: "report-selected", title: "The table of the selected runs' evaluations, beside the published figures" }, "Report");
  const cancelButton = h("button", { type: "button", id: "cancel-selected" }, "Cancel");
  const deleteButton = h("button", { type: "button", class: "danger", id: "delete-selected" }, "Delete");
  const countText = h("span", { class: "muted", "aria-live": "polite" });
  const tbody = h("tbody");
  const pager = h("div", { class: "pager" });
  const thead = h("thead");

  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Runs"), countText, h("span", { class: "spacer" }),
      h("a", { href: "/launch", "data-link": true, class: "button primary" }, "New run")),
    where.element,
    h("div", { class: "toolbar" },
      h("label", { for: "runs-search" }, "Search", search),
      h("label", { for: "runs-status" }, "Status", status),
      h("label", { for: "runs-kind" }, "Kind", kind),
      h("label", { for: "runs-tag" }, "Tag", tag),
      h("label", { for: "runs-group" }, "Group", groupBy),
      h("span", { class: "spacer" }),
      compareButton, reportButton, cancelButton, deleteButton),
    h("table", { class: "data", id: "runs-table" }, thead, tbody),
    pager,
  );

  function sortValue() {
    return params().get("sort") || "-created_at";
  }

  function renderHead() {
    const sort = sortValue();
    const all = h("input", { type: "checkbox", "aria-label": "select all runs on this page", onchange: (e) => {
      for (const run of lastRuns) e.target.checked ? selected.add(run.id) : selected.delete(run.id);
      syncSelection();
      renderRows(lastRuns);
    } });
    all.checked = lastRuns.length > 0 && lastRuns.every((run) => selected.has(run.id));
    fill(thead, h("tr", {}, h("th", {}, all), COLUMNS.map(([, title, field, cls, hint]) => {
      if (!field) return h("th", { class: cls || "", title: hint || null }, title);
      const active = sort.replace("-", "") === field;
      const descending = sort.startsWith("-");
      const next = active && !descending ? `-${field}` : field;
      return h("th", { class: cls || "", "aria-sort": active ? (descending ? "descending" : "ascending") : "none" },
        h("button", { type: "button", class: "sort", onclick: () => { setParams({ sort: next, page: null }); refresh(); } },
          title, active ? (descending ? " ▼" : " ▲") : ""));
    })));
  }

  function syncSelection() {
    setParams({ sel: [...selected] });
    const n = selected.size;
    compareButton.textContent = n ? `Compare ${n}` : "Compare";
    compareButton.disabled = n < 1;
    reportButton.disabled = n < 1;
    cancelButton.disabled = n < 1;
    deleteButton.disabled = n < 1;
  }

  function renderRows(runs) {
    renderHead();
    clear(tbody);
    if (!runs.length) {
      const filtered = ["q", "status", "kind", "tag", "where"].some((name) => params().get(name));
      const empty = h("div", { class: "empty", id: "runs-empty" });
      tbody.append(h("tr", {}, h("td", { colspan: COLUMNS.length + 1 }, empty)));
      if (filtered) {
        empty.append("No run matches these filters.", h("br"), h("a", { href: "/runs", "data-link": true, class: "button" }, "Clear filters"));
        return;
      }
      // A new user's first screen: the presets themselves, so a run is two clicks away (preset, Queue).
      empty.append(h("p", {}, "No runs yet. Pick a preset to open it in the launch form, then press “Queue 1 run”."));
      const cards = h("div", { class: "preset-grid" });
      empty.append(cards, h("p", {}, h("a", { href: "/launch", "data-link": true }, "Or start from an empty form")));
      for (const preset of (catalog?.presets || []).slice().sort((a, b) => (a.name === "quickstart" ? -1 : b.name === "quickstart" ? 1 : a.name.localeCompare(b.name)))) {
        cards.append(h("a", { class: "button preset", href: `/launch?kind=${preset.kind}&preset=${encodeURIComponent(preset.name)}`, "data-link": true, "data-preset": preset.name },
          h("strong", {}, preset.name), h("span", {}, preset.description || "")));
      }
      return;
    }
    const styles = runStyles(runs.map((run) => run.id));
    const grouping = params().get("group") || NO_GROUPING;
    renderGroupChoices(runs, grouping);
    if (grouping === NO_GROUPING) {
      for (const run of runs) tbody.append(rowFor(run, styles.get(run.id)));
      return;
    }
    for (const group of groupRuns(runs, grouping, new Set(catalog?.server_owned_fields || []))) {
      const open = !collapsed.has(group.id);
      const rows = group.members.map((run) => rowFor(run, styles.get(run.id)));
      for (const row of rows) row.hidden = !open;
      const toggle = h("button", { type: "button", class: "group-toggle", "aria-expanded": String(open), onclick: () => {
        const opening = collapsed.has(group.id);
        if (opening) collapsed.delete(group.id);
        else collapsed.add(group.id);
        toggle.setAttribute("aria-expanded", String(opening));
        for (const row of rows) row.hidden = !opening;
      } }, `${group.label} · ${group.members.length} run${group.members.length > 1 ? "s" : ""}`);
      tbody.append(h("tr", { class: "group-row", "data-group": group.id }, h("td", { colspan: COLUMNS.length + 1 }, toggle)), ...rows);
    }
  }

  function renderGroupChoices(runs, grouping) {
    const choices = groupingChoices(runs, new Set(catalog?.server_owned_fields || []));
    if (!choices.some((choice) => choice.value === grouping)) choices.push({ value: grouping, label: `by ${grouping}` });
    fill(groupBy, choices.map((choice) => h("option", { value: choice.value }, choice.value === NO_GROUPING ? "no grouping" : choice.label)));
    groupBy.value = grouping;
  }

  function rowFor(run, style) {
    const config = run.config || {};
    const box = h("input", { type: "checkbox", "aria-label": `select ${runLabel(run)}`, onclick: (e) => e.stopPropagation(), onchange: (e) => {
      e.target.checked ? selected.add(run.id) : selected.delete(run.id);
      syncSelection();
      renderHead();
    } });
    box.checked = selected.has(run.id);
    const knn = knnOf(run);
    return h("tr", { class: "clickable", "data-run-id": run.id, onclick: () => navigate(`/runs/${run.id}`) },
      h("td", {}, box),
      h("td", {}, swatch(style),
        h("a", { href: `/runs/${run.id}`, "data-link": true, onclick: (e) => e.stopPropagation() }, runLabel(run)),
        run.name ? h("div", { class: "muted mono" }, run.id) : null,
        chainNote(run)),
      h("td", {}, statusPill(run.status), " ", progressBar(run)),
      h("td", {}, run.kind),
      h("td", {}, config.method || config.loss || (run.kind === "eval" ? (config.protocols || []).join(", ") : "–")),
      h("td", {}, run.backbone || "–"),
      h("td", { class: "num" }, fmtParams(paramsOf(run, catalog))),
      h("td", {}, config.dataset || "–"),
      h("td", { class: "num" }, pct(knn)),
      h("td", {}, (run.tags || []).map((t) => h("span", { class: "tag" }, t))),
      h("td", {}, relativeTime(run.created_at)),
    );
  }

  function renderPager(count) {
    const page = Number(params().get("page") || 1);
    const pages = Math.max(1, Math.ceil(count / PAGE_SIZE));
    countText.textContent = `${count} run${count === 1 ? "" : "s"}${selected.size ? ` · ${selected.size} selected` : ""}`;
    fill(pager, 
      h("button", { type: "button", disabled: page <= 1, onclick: () => { setParams({ page: page - 1 }); refresh(); } }, "← Previous"),
      h("span", { class: "muted" }, `page ${page} of ${pages}`),
      h("button", { type: "button", disabled: page >= pages, onclick: () => { setParams({ page: page + 1 }); refresh(); } }, "Next →"),
    );
  }

  async function refresh() {
    clearTimeout(timer);
    const query = new URLSearchParams({ sort: sortValue(), limit: String(PAGE_SIZE) });
    const page = Number(params().get("page") || 1);
    query.set("offset", String((page - 1) * PAGE_SIZE));
    for (const name of ["q", "kind", "tag", "status", "where"]) {
      const value = params().get(name);
      if (value) query.set(name, value);
    }
    try {
      if (!catalog) {
        catalog = await getCatalog().catch(() => null);
        if (catalog) {
          setChoices(status, "any status", catalog.statuses);
          setChoices(kind, "any kind", catalog.kinds);
        }
      }
      const result = await api(`/api/runs?${query}`);
      if (stopped) return;
      where.showError(null);
      lastRuns = result.data;
      renderRows(result.data);
      renderPager(result.count);
      // Poll fast while a run shown can still change (catalog.active_statuses; without the catalog, always).
      const active = result.data.some((run) => !catalog || catalog.active_statuses.includes(run.status));
      timer = setTimeout(refresh, active ? 2000 : 10000);
    } catch (exc) {
      if (stopped) return;
      if ((exc.status === 409 || exc.status === 422) && params().get("where")) {
        // The query is the user's to fix (409: the grammar refused it; 422: too long or unprintable): say
        // where, under the box, and show no stale rows.
        where.showError(exc.message);
        lastRuns = [];
        renderRows([]);
        renderPager(0);
        return;
      }
      showBanner(`Could not load runs: ${exc.message}`, { retry: refresh });
      timer = setTimeout(refresh, 10000);
    }
  }

  async function bulk(action) {
    const ids = [...selected];
    const verb = action === "delete" ? "Delete" : "Cancel";
    const warning = action === "delete" ? " Their metrics, logs and run directories are removed; this cannot be undone." : "";
    if (!ids.length || !window.confirm(`${verb} ${ids.length} run${ids.length > 1 ? "s" : ""}?${warning}`)) return;
    const failures = [];
    for (const id of ids) {
      try {
        await api(action === "delete" ? `/api/runs/${id}` : `/api/runs/${id}/cancel`, { method: action === "delete" ? "DELETE" : "POST" });
        if (action === "delete") selected.delete(id);
      } catch (exc) {
        failures.push(`${id}: ${exc.message}`);
      }
    }
    syncSelection();
    if (failures.length) showBanner(`${verb} failed for ${failures.length}: ${failures.join("; ")}`);
    refresh();
  }

  let searchTimer = null;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { setParams({ q: search.value.trim(), page: null }); refresh(); }, 250);
  });
  tag.addEventListener("change", () => { setParams({ tag: tag.value.trim(), page: null }); refresh(); });
  status.addEventListener("change", () => { setParams({ status: status.value, page: null }); refresh(); });
  kind.addEventListener("change", () => { setParams({ kind: kind.value, page: null }); refresh(); });
  groupBy.addEventListener("change", () => { setParams({ group: groupBy.value === NO_GROUPING ? null : groupBy.value }); renderRows(lastRuns); });
  compareButton.addEventListener("click", () => navigate(`/compare?runs=${[...selected].join(",")}`));
  reportButton.addEventListener("click", () => navigate(`/report?runs=${[...selected].join(",")}`));
  cancelButton.addEventListener("click", () => bulk("cancel"));
  deleteButton.addEventListener("click", () => bulk("delete"));

  tbody.append(...Array.from({ length: 5 }, () => h("tr", { class: "skeleton" }, Array.from({ length: COLUMNS.length + 1 }, () => h("td", {}, h("span"))))));
  syncSelection();
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(searchTimer);
  };
}
