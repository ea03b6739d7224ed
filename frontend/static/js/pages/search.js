// Search: one recipe search — its trials (parameters, state, validation kNN, steps, run), the optimisation
// history with the best so far, every trial's validation-kNN curve with pruned trials marked where they
// stopped, parallel coordinates and parameter importances; Stop, Promote (full runs with a chained test
// evaluation) and Save as preset. Polls while the search runs.
import { api } from "../api.js";
import { showBanner } from "../banner.js";
import { CONFIG, emptyNote, ensurePlotly, layout } from "../charts.js";
import { clear, fill, h } from "../dom.js";
import { palette } from "../colors.js";
import { duration, pct, relativeTime, statusPill } from "../format.js";

const PRUNED_COLOR = "#b42318";

function shownValue(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(3);
  return String(value);
}

function describeSpace(space) {
  return Object.entries(space).map(([name, spec]) => {
    if (spec.choice) return `${name} ∈ {${spec.choice.join(", ")}}`;
    const [low, high] = spec.float || spec.int;
    return `${name} ∈ [${low}, ${high}]${spec.log ? " log" : ""}`;
  }).join(" · ");
}

/** Optimisation history: each finished trial's value, and the best so far as a step line. */
function historyFigure(trials) {
  const complete = trials.filter((t) => t.state === "complete");
  let best = -Infinity;
  const bestSoFar = complete.map((t) => (best = Math.max(best, t.value)));
  const data = [
    { type: "scatter", mode: "markers", name: "trial value", x: complete.map((t) => t.number), y: complete.map((t) => t.value),
      marker: { color: palette()[0], size: 8 }, hovertemplate: "trial %{x}<br>validation kNN %{y:.2f} %<extra></extra>" },
    { type: "scatter", mode: "lines", name: "best so far", x: complete.map((t) => t.number), y: bestSoFar,
      line: { shape: "hv", color: palette()[2], width: 2 }, hovertemplate: "best after trial %{x}: %{y:.2f} %<extra></extra>" },
  ];
  const pruned = trials.filter((t) => t.state === "pruned" && t.intermediate.length);
  if (pruned.length) {
    data.push({ type: "scatter", mode: "markers", name: "pruned (last report)", x: pruned.map((t) => t.number),
      y: pruned.map((t) => t.intermediate[t.intermediate.length - 1][1]), marker: { symbol: "x", color: PRUNED_COLOR, size: 9 },
      hovertemplate: "trial %{x} pruned<br>last validation kNN %{y:.2f} %<extra></extra>" });
  }
  const extra = complete.length ? {} : emptyNote("No trial has completed yet");
  return { data, layout: layout({ title: "Optimisation history", xTitle: "trial", yTitle: "validation kNN top-1 (%)", extra }) };
}

/** Every trial's reported validation kNN against steps; a pruned trial ends in a red ✕ at its last report. */
function intermediateFigure(trials) {
  const data = [];
  trials.forEach((t, index) => {
    if (!t.intermediate.length) return;
    const color = palette()[index % palette().length]; // trials by position, like runs (colors.js)
    data.push({ type: "scatter", mode: "lines+markers", name: `trial ${t.number}`, x: t.intermediate.map((p) => p[0]),
      y: t.intermediate.map((p) => p[1]), line: { color, width: 1.5, dash: t.state === "pruned" ? "dot" : "solid" },
      hovertemplate: `trial ${t.number} (${t.state})<br>step %{x}<br>validation kNN %{y:.2f} %<extra></extra>` });
    if (t.state === "pruned") {
      const [step, value] = t.intermediate[t.intermediate.length - 1];
      data.push({ type: "scatter", mode: "markers", showlegend: false, x: [step], y: [value],
        marker: { symbol: "x", size: 11, color: PRUNED_COLOR }, hovertemplate: `trial ${t.number} pruned at step ${step}<extra></extra>` });
    }
  });
  const extra = data.length ? {} : emptyNote("No validation kNN reported yet");
  return { data, layout: layout({ title: "Validation kNN during each trial", yTitle: "validation kNN top-1 (%)", extra }) };
}

/** Parallel coordinates over the parameters and the value; choices become indexed ticks. */
function parcoordsFigure(trials, space) {
  const done = trials.filter((t) => t.state === "complete");
  const dimensions = Object.entries(space).map(([name, spec]) => {
    const values = done.map((t) => t.params[name]);
    if (spec.choice) {
      const labels = spec.choice.map(String);
      return { label: name, values: values.map((v) => labels.indexOf(String(v))), tickvals: labels.map((_, i) => i), ticktext: labels, range: [0, Math.max(labels.length - 1, 1)] };
    }
    const [low, high] = spec.float || spec.int;
    if (spec.log) {
      const logs = values.map((v) => Math.log10(v));
      return { label: `log10 ${name}`, values: logs, range: [Math.log10(low), Math.log10(high)] };
    }
    return { label: name, values, range: [low, high] };
  });
  const scores = done.map((t) => t.value);
  dimensions.push({ label: "validation kNN (%)", values: scores });
  const data = [{ type: "parcoords", dimensions, line: { color: scores, colorscale: "Viridis", showscale: true, colorbar: { title: { text: "kNN %" } } } }];
  const extra = done.length ? { margin: { l: 60, r: 60, t: 60, b: 30 } } : emptyNote("Parallel coordinates appear once a trial completes");
  return { data: done.length ? data : [], layout: layout({ title: "Parameters and validation kNN (completed trials)", extra }) };
}

function importanceFigure(importances) {
  const entries = Object.entries(importances.importances).sort((a, b) => a[1] - b[1]);
  const data = entries.length ? [{ type: "bar", orientation: "h", x: entries.map((e) => e[1]), y: entries.map((e) => e[0]),
    marker: { color: palette()[0] }, hovertemplate: "%{y}: %{x:.2f}<extra></extra>" }] : [];
  const extra = entries.length ? { margin: { l: 110, r: 16, t: 34, b: 44 } } : emptyNote(importances.reason || "No importances yet");
  return { data, layout: layout({ title: `Parameter importance (${importances.evaluator})`, xTitle: "importance (sums to 1)", yTitle: "", extra }) };
}

export function mount(root, searchId) {
  let stopped = false;
  let timer = null;
  const title = h("h1", {}, "Search");
  const meta = h("p", { class: "muted", id: "search-meta" });
  const summary = h("div", { class: "sweep-counts", id: "search-summary", "aria-live": "polite" });
  const stopButton = h("button", { type: "button", class: "danger", id: "search-stop" }, "Stop");
  const seedsInput = h("input", { type: "text", id: "promote-seeds", value: "0, 1, 2", size: 8, "aria-label": "seeds of the full runs" });
  const promoteButton = h("button", { type: "button", class: "primary", id: "search-promote" }, "Launch full run");
  const presetLink = h("a", { class: "button", id: "search-preset", href: `/api/searches/${encodeURIComponent(searchId)}/preset`, download: `search-${searchId}.yaml` }, "Save as preset");
  const promoted = h("div", { id: "search-promoted" });
  const tableHead = h("thead");
  const tbody = h("tbody");
  const charts = Object.fromEntries(["history", "intermediate", "parcoords", "importances"].map((name) => [name, h("div", { class: "chart", id: `search-${name}`, role: "img", "aria-label": `${name} chart` })]));

  root.append(
    h("div", { class: "page-head" }, title, h("span", { class: "spacer" }),
      h("label", { for: "promote-seeds" }, "Seeds ", seedsInput), promoteButton, presetLink, stopButton),
    meta, summary, promoted,
    h("div", { class: "charts" }, charts.history, charts.intermediate, charts.parcoords, charts.importances),
    h("div", { class: "scroll-x" }, h("table", { class: "data", id: "search-trials" }, tableHead, tbody)),
  );

  async function plot(element, figure) {
    const Plotly = await ensurePlotly();
    if (!stopped) Plotly.react(element, figure.data, figure.layout, CONFIG);
  }

  function render(search, importances) {
    const options = search.search;
    title.textContent = search.name || `Search ${search.id}`;
    document.title = `${title.textContent} · LowDINO`;
    meta.textContent = `${search.kind} · ${describeSpace(options.space)} · sampler ${options.sampler}, pruner ${options.pruner}, seed ${options.seed} · ` +
      `${options.budget_steps} steps per trial · objective: validation kNN top-1 (never the test split) · created ${new Date(search.created_at).toLocaleString()}`;
    fill(summary,
      h("span", { class: `pill search-${search.state}`, id: "search-state" }, search.state),
      ` ${search.trials.length} of ${search.total} trials `,
      Object.entries(search.state_counts).map(([state, n]) => h("span", { class: "count" }, statusPill(state), ` ${n} `)),
      search.best ? h("strong", { id: "search-best" }, ` · best: trial ${search.best.number}, ${pct(search.best.value)}`) : null,
      search.error ? h("span", { class: "error-box" }, search.error) : null);
    stopButton.disabled = search.state !== "running";
    promoteButton.disabled = !search.best;
    presetLink.toggleAttribute("hidden", !search.best);

    const names = Object.keys(options.space);
    fill(tableHead, h("tr", {}, ["Trial", ...names, "State", "Validation kNN", "Steps", "Duration", "Run"].map((t) => h("th", {}, t))));
    clear(tbody);
    for (const trial of search.trials) {
      tbody.append(h("tr", { "data-trial": trial.number, class: search.best?.number === trial.number ? "best" : "" },
        h("td", { class: "num" }, String(trial.number)),
        ...names.map((name) => h("td", { class: "num" }, shownValue(trial.params[name]))),
        h("td", { title: trial.reason || "" }, statusPill(trial.state), trial.state === "pruned" ? ` at step ${trial.pruned_step}` : ""),
        h("td", { class: "num" }, trial.value === null ? "–" : pct(trial.value)),
        h("td", { class: "num" }, trial.steps === null ? "–" : String(trial.steps)),
        h("td", { class: "num" }, trial.duration_s === null ? "–" : duration(trial.duration_s)),
        h("td", {}, trial.run_id ? h("a", { href: `/runs/${trial.run_id}`, "data-link": true }, trial.run_id) : "–")));
    }
    plot(charts.history, historyFigure(search.trials));
    plot(charts.intermediate, intermediateFigure(search.trials));
    plot(charts.parcoords, parcoordsFigure(search.trials, options.space));
    plot(charts.importances, importanceFigure(importances));
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const id = encodeURIComponent(searchId);
      const [search, importances] = await Promise.all([api(`/api/searches/${id}`), api(`/api/searches/${id}/importances`)]);
      if (stopped) return;
      render(search, importances);
      timer = setTimeout(refresh, search.state === "running" ? 2000 : 15000);
    } catch (exc) {
      if (stopped) return;
      showBanner(`Could not load search ${searchId}: ${exc.message}`, { retry: refresh });
      timer = setTimeout(refresh, 10000);
    }
  }

  stopButton.addEventListener("click", async () => {
    if (!window.confirm("Stop this search? No more trials are asked; running trials stop at their next step.")) return;
    try {
      await api(`/api/searches/${encodeURIComponent(searchId)}/stop`, { method: "POST" });
    } catch (exc) {
      showBanner(`Stop failed: ${exc.message}`);
    }
    refresh();
  });

  promoteButton.addEventListener("click", async () => {
    const seeds = seedsInput.value.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
    try {
      const created = await api(`/api/searches/${encodeURIComponent(searchId)}/promote`, { method: "POST", body: { seeds } });
      fill(promoted, h("div", { class: "notice" }, h("strong", {}, "Full runs queued, each evaluated on the test split when it completes: "),
        created.run_ids.map((id) => h("a", { href: `/runs/${id}`, "data-link": true, class: "tag" }, id))));
    } catch (exc) {
      showBanner(`Promote failed: ${exc.message}`);
    }
  });

  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
