// Search: one recipe search — its trials (parameters, state, validation kNN, steps, run), the optimisation
// history with the best so far, every trial's validation-kNN curve with pruned trials marked where they
// stopped, parallel coordinates and parameter importances; Stop, Promote (full runs with a chained test
// evaluation) and Save as preset. Polls while the search runs.
import { api } from "../api.js";
import { showBanner } from "../banner.js";
import { CONFIG, emptyNote, ensurePlotly, layout } from "../charts.js";
import { clear, fill, h } from "../dom.js";
import { palette, styleAt } from "../colors.js";
import { duration, pct, statusPill } from "../format.js";
import { drawParallel } from "../parcoords.js";

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

const KNN_AXIS = "validation kNN";

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

/**
 * One parallel-coordinates line per trial that has parameters (parcoords.js: Plotly parcoords where it can
 * start, SVG lines under the dashboard's CSP, a linked table). A completed trial keeps the colour it has in
 * the charts above (its position among the trials); a pruned one is grey and dashed at the last validation
 * kNN it reported (a value from an earlier step, so it must not pass for a result); a failed or unfinished
 * one has no value and sits below the kNN axis, a failed one red and dotted.
 */
function parallelRows(trials, space, searchId) {
  return trials.map((t, index) => {
    const last = t.intermediate.length ? t.intermediate[t.intermediate.length - 1][1] : null;
    const value = t.state === "complete" ? t.value : t.state === "pruned" ? last : null;
    const style = t.state === "pruned" ? { color: cssVar("--muted", "#5b636e"), dash: "dash" }
      : t.state === "fail" ? { color: cssVar("--danger", "#b42318"), dash: "dot" }
      : { color: styleAt(index).color, dash: "solid" };
    const state = t.state === "pruned" ? `pruned at step ${t.pruned_step}` : t.state;
    return { id: `${searchId}:${t.number}`, label: `trial ${t.number} · ${state}`, ...style, href: t.run_id ? `/runs/${t.run_id}` : null,
      values: { ...Object.fromEntries(Object.keys(space).map((name) => [name, t.params[name]])), [KNN_AXIS]: value } };
  });
}

async function drawTrials(container, trials, space, searchId) {
  const Plotly = await ensurePlotly();
  const params = Object.keys(space);
  const log = params.filter((name) => space[name].log);
  return drawParallel(Plotly, container, parallelRows(trials, space, searchId), {
    params, metrics: [KNN_AXIS], log, title: "Parameters against validation kNN, one line per trial",
    labels: { [KNN_AXIS]: "validation kNN top-1 (%)", ...Object.fromEntries(log.map((name) => [name, `${name} (log)`])) },
  });
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
  const charts = Object.fromEntries(["history", "intermediate", "importances"].map((name) => [name, h("div", { class: "chart", id: `search-${name}`, role: "img", "aria-label": `${name} chart` })]));
  const parallel = h("div", { id: "search-parcoords" });
  let parallelDrawn = null; // what the parallel coordinates show: redrawn only when a trial changes

  root.append(
    h("div", { class: "page-head" }, title, h("span", { class: "spacer" }),
      h("label", { for: "promote-seeds" }, "Seeds ", seedsInput), promoteButton, presetLink, stopButton),
    meta, summary, promoted,
    h("div", { class: "charts" }, charts.history, charts.intermediate),
    // Parameters against the value, beside how much each parameter explains it: read together.
    h("section", { id: "search-parameters" }, h("h2", {}, "Parameters"),
      h("p", { class: "muted" }, "One line per trial: its parameters, then its validation kNN. Completed trials in their colours above; ",
        "pruned trials grey and dashed, at the last validation kNN they reported before the pruner stopped them; failed trials red and dotted, below the axis (no value)."),
      h("div", { class: "search-parameters" }, parallel, charts.importances)),
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
      `${options.budget_steps} steps${options.trial_minutes ? ` or ${options.trial_minutes} min` : ""} per trial · objective: validation kNN top-1 (never the test split) · created ${new Date(search.created_at).toLocaleString()}`;
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
    const shown = JSON.stringify(search.trials.map((t) => [t.number, t.state, t.value, t.params, t.intermediate.length]));
    if (shown !== parallelDrawn) {
      parallelDrawn = shown;
      drawTrials(parallel, search.trials, options.space, search.id)
        .catch((exc) => fill(parallel, h("p", { class: "field-error" }, `Could not draw the parallel coordinates: ${exc.message}`)));
    }
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
