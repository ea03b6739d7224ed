// Compare: overlaid curves (per run, or per group with a mean ± std band), the hyperparameter diff,
// accuracy against parameters and latency with the Pareto front, grouped bars per label budget and
// parallel coordinates; measured runs and published figures never look alike. Every run keeps one
// style (colour, dash, marker) in every chart and table of the page: its position in the URL's list.
import { api } from "../api.js";
import { hideBanner, showBanner } from "../banner.js";
import { getCatalog, paramsOf } from "../catalog.js";
import { CONFIG, X_TITLES, emptyNote, ensurePlotly, layout, paretoFront } from "../charts.js";
import { runStyles, swatch } from "../colors.js";
import { CURVES, curveLayout, curveSource, curveTraces } from "../compare/curves.js";
import { NO_GROUPING, defaultGrouping, differingKeys, groupRuns, groupingChoices, valueText } from "../compare/groups.js";
import { resolveRun } from "../compare/resolve.js";
import { clear, csvLine, download, fill, h } from "../dom.js";
import { params as fmtParams, pct, runLabel, statusPill } from "../format.js";
import { drawParallel } from "../parcoords.js";
import { listParam, navigate, params, setParams } from "../url.js";

const DINOV2 = "dinov2_vits14";
const PUBLISHED_COLOR = "#5b636e";

function isBaseline(run) {
  return run.kind === "eval" && !run.config?.checkpoint && Boolean(run.config?.pretrained || run.config?.weights);
}

function family(run) {
  if (run.backbone === DINOV2) return "DINOv2 (measured)";
  return isBaseline(run) ? "baseline (measured)" : "LowDINO (measured)";
}

/** Axis range padded so that text labels beside the first and last points are not cut off. */
function padded(values, { log = false, fraction = 0.12 } = {}) {
  const finite = values.filter((v) => Number.isFinite(v) && (!log || v > 0)).map((v) => (log ? Math.log10(v) : v));
  if (!finite.length) return null;
  const low = Math.min(...finite);
  const high = Math.max(...finite);
  const pad = (high - low || Math.abs(high) || 1) * fraction + (log ? 0.1 : 0);
  return [low - pad, high + pad];
}

export function mount(root) {
  let stopped = false;
  let Plotly = null;
  let data = null; // /api/compare answer
  let runs = []; // full run objects, in the order of the URL
  let styles = runStyles([]);
  let catalog = null;
  const source = curveSource();
  const vs = params().get("vs") === "dinov2";
  const xSelect = h("select", { id: "x-axis" }, Object.keys(X_TITLES).map((x) => h("option", { value: x }, x === "time" ? "wall time" : x)));
  xSelect.value = params().get("x") || "step";
  const smoothing = h("input", { type: "range", id: "smoothing", min: 0, max: 0.99, step: 0.01, value: params().get("smooth") || 0 });
  const smoothingValue = h("output", { for: "smoothing" }, smoothing.value);
  const groupSelect = h("select", { id: "group-by" });
  const hideSame = h("input", { type: "checkbox", id: "hide-same", checked: params().get("same") !== "show" });
  const addInput = h("input", { type: "text", id: "add-run", list: "add-run-choices", placeholder: "run id or name", "aria-describedby": "add-run-error" });
  const addError = h("p", { class: "field-error", id: "add-run-error", "aria-live": "polite" });
  const addList = h("datalist", { id: "add-run-choices" });
  const chips = h("div", { class: "toolbar", id: "compare-runs" });
  const curveGrid = h("div", { class: "charts wide" });
  const groupList = h("div", { id: "compare-groups" });
  const summaryGrid = h("div", { class: "charts wide" });
  const diffTable = h("table", { class: "data", id: "diff-table" });
  const scoreTable = h("table", { class: "data", id: "score-table" });
  const versus = h("div", { id: "versus-dinov2" });
  const parallel = h("div", { id: "parcoords" });
  const body = h("div", { id: "compare-body" });
  const addForm = h("form", { class: "add-run", onsubmit: (event) => { event.preventDefault(); addRun(); } },
    h("label", { for: "add-run" }, "Add run"), addInput, addList, h("button", { type: "submit", id: "add-run-button" }, "Add"), addError);

  root.append(
    h("div", { class: "page-head" }, h("h1", {}, vs ? "LowDINO vs DINOv2" : "Compare runs"),
      h("span", { class: "spacer" }),
      h("button", { type: "button", id: "open-report", title: "These runs' evaluations as the original work's table", onclick: () => navigate(`/report?runs=${listParam("runs").join(",")}`) }, "Report"),
      h("button", { type: "button", id: "export-csv", onclick: exportCsv }, "Export CSV")),
    chips, addForm, body,
  );

  function chartBox(id, title) {
    // A figure, not role="img": Plotly's own buttons live inside the chart and must stay reachable.
    const div = h("div", { class: "chart tall", id });
    const button = h("button", { type: "button", class: "link-button", id: `png-${id}`, "aria-label": `${title} as PNG`, onclick: () => Plotly.downloadImage(div, { format: "png", filename: `lowdino-${id}`, width: 1200, height: 700 }) }, "PNG");
    return [h("figure", { class: "chart-box", "aria-label": title }, h("div", { class: "chart-head" }, h("h3", {}, title), button), div), div];
  }

  /** The runs of the URL that exist, names resolved to ids; unknown entries are dropped and said so. */
  async function loadRuns(entries) {
    const found = await Promise.all(entries.map((entry) => resolveRun(entry).then((result) => ({ entry, ...result }))));
    const missing = found.filter((item) => !item.run).map((item) => `“${item.entry}” (${item.error})`);
    const unique = [];
    for (const item of found) if (item.run && !unique.some((run) => run.id === item.run.id)) unique.push(item.run);
    if (missing.length) showBanner(`Left out of the comparison: ${missing.join("; ")}.`, { level: "warn" });
    const ids = unique.map((run) => run.id);
    if (ids.join(",") !== entries.join(",")) setParams({ runs: ids });
    return unique;
  }

  async function chooseDefaultRuns() {
    // The most recent completed run per small backbone, plus the newest DINOv2 evaluation if any.
    const found = await api("/api/runs?status=completed&limit=200&sort=-finished_at");
    const chosen = new Map();
    for (const run of found.data) {
      if (!run.backbone || chosen.has(run.backbone)) continue;
      if (run.backbone === DINOV2 && run.kind !== "eval") continue;
      chosen.set(run.backbone, run.id);
    }
    return [...chosen.values()].slice(0, 20);
  }

  async function load() {
    let ids = listParam("runs");
    try {
      if (!ids.length && vs) {
        ids = await chooseDefaultRuns();
        setParams({ runs: ids });
      }
      fillChoices();
      catalog = await getCatalog().catch(() => null);
      runs = ids.length ? await loadRuns(ids) : [];
      styles = runStyles(runs.map((run) => run.id));
      if (stopped) return;
      renderChips();
      if (!runs.length) {
        await renderNoRuns();
        return;
      }
      Plotly = await ensurePlotly();
      data = await api(`/api/compare?runs=${runs.map((run) => encodeURIComponent(run.id)).join(",")}`);
      if (stopped) return;
      renderBody();
    } catch (exc) {
      if (!stopped) showBanner(`Could not load the comparison: ${exc.message}`, { retry: load });
    }
  }

  function publishedDinov2(dataset) {
    return (catalog?.references || []).filter((row) => /dinov2/i.test(row.model) && (!dataset || row.dataset === dataset));
  }

  function publishedTable(rows, id) {
    return h("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": "published figures" },
      h("table", { class: "data", id },
        h("thead", {}, h("tr", {}, ["model", "protocol", "labels", "top-1", "source"].map((t, i) => h("th", { class: i >= 2 && i <= 3 ? "num" : "" }, t)))),
        h("tbody", {}, rows.map((row) => h("tr", { class: "published" }, h("td", {}, `${row.model} [published]`), h("td", {}, row.protocol),
          h("td", { class: "num" }, `${Math.round(row.label_fraction * 100)} %`), h("td", { class: "num" }, pct(row.top1)), h("td", {}, row.source))))));
  }

  /** Queue DINOv2 ViT-S/14's evaluation here (kNN and latency), then follow it in this comparison. */
  function queueDinov2Button(dataset) {
    const state = h("span", { class: "field-error", id: "queue-dinov2-error", "aria-live": "polite" });
    const button = h("button", { type: "button", class: "primary", id: "queue-dinov2", onclick: async () => {
      button.disabled = true;
      state.textContent = "";
      try {
        const run = await api("/api/runs", { method: "POST", body: { kind: "eval", name: "DINOv2 ViT-S/14 (for LowDINO vs DINOv2)",
          config: { backbone: DINOV2, pretrained: true, dataset: dataset || "cifar10", protocols: ["knn", "latency"] } } });
        setParams({ runs: [...runs.map((r) => r.id), run.id] }, { replace: false });
        load();
      } catch (exc) {
        button.disabled = false;
        state.textContent = `The evaluation was not queued: ${exc.message}`;
      }
    } }, "Queue the DINOv2 evaluation");
    return h("p", {}, button, " ", h("a", { href: `/launch?kind=eval`, "data-link": true }, "or set it up in the launch form"), " ", state);
  }

  function dinov2Block() {
    if (!vs || runs.some((run) => run.backbone === DINOV2)) return null;
    const dataset = data?.dataset || "cifar10";
    const rows = publishedDinov2(dataset);
    return h("section", { id: "dinov2-missing", class: "notice" },
      h("h2", {}, "DINOv2 ViT-S/14 has not been evaluated here yet"),
      h("p", {}, "Until it is, only its published figures (not measured here) stand beside your runs. Evaluating it measures its kNN top-1 and its latency on this machine."),
      queueDinov2Button(dataset),
      rows.length ? publishedTable(rows, "dinov2-published") : h("p", { class: "muted" }, `No published DINOv2 figure for ${dataset}.`));
  }

  async function renderNoRuns() {
    const { references } = catalog || (await getCatalog());
    const shown = references.filter((row) => row.dataset === "cifar10" && (/dinov2|lowdino/i.test(row.model)));
    fill(body, h("div", { class: "empty", id: "compare-empty" },
      vs ? "No completed run yet: pretrain a LowDINO backbone, and evaluate DINOv2 here, then come back."
        : "Select runs to compare on the Runs page, or add one above.",
      h("br"), h("a", { href: vs ? "/launch" : "/runs", "data-link": true, class: "button" }, vs ? "Launch a run" : "Go to runs")),
    vs ? dinov2Block() : null,
    shown.length ? h("section", {}, h("h2", {}, "Published figures on CIFAR-10 (not measured here)"), publishedTable(shown, "published-table")) : null);
  }

  async function fillChoices() {
    try {
      const recent = await api("/api/runs?limit=100");
      fill(addList, ...recent.data.map((run) => h("option", { value: run.id }, `${runLabel(run)} · ${run.kind} · ${run.backbone || ""} · ${run.status}`)));
    } catch {
      // Typing an id still works without suggestions.
    }
  }

  function setRuns(ids) {
    setParams({ runs: ids }, { replace: false });
    load();
  }

  async function addRun() {
    const text = addInput.value.trim();
    if (!text) return;
    const found = await resolveRun(text);
    if (!found.run) {
      // Refused at the input: the comparison on screen and in the URL stays as it was.
      addError.textContent = `Not added: ${found.error}.`;
      addInput.setAttribute("aria-invalid", "true");
      return;
    }
    addError.textContent = "";
    addInput.removeAttribute("aria-invalid");
    addInput.value = "";
    if (runs.some((run) => run.id === found.run.id)) return;
    hideBanner();
    setRuns([...runs.map((r) => r.id), found.run.id]);
  }
  addInput.addEventListener("input", () => { addError.textContent = ""; addInput.removeAttribute("aria-invalid"); });

  function renderChips() {
    fill(chips,
      ...runs.map((run) => h("span", { class: "tag", "data-run": run.id },
        swatch(styles.get(run.id)), h("a", { href: `/runs/${run.id}`, "data-link": true }, runLabel(run)), " ",
        h("button", { type: "button", class: "link-button", "aria-label": `remove ${runLabel(run)}`, onclick: () => setRuns(runs.filter((r) => r.id !== run.id).map((r) => r.id)) }, "×"))));
  }

  function ignoredKeys() {
    // The fields the server sets itself (output_dir differs for every run) are no hyperparameters.
    return new Set(catalog?.server_owned_fields || []);
  }

  function grouping() {
    const chosen = params().get("group");
    const choices = groupingChoices(runs, ignoredKeys()).map((choice) => choice.value);
    if (chosen && choices.includes(chosen)) return chosen;
    return defaultGrouping(runs, ignoredKeys());
  }

  function renderGroupSelect() {
    const current = grouping();
    fill(groupSelect, groupingChoices(runs, ignoredKeys()).map((choice) => h("option", { value: choice.value }, choice.label)));
    groupSelect.value = current;
  }

  function renderBody() {
    const boxes = Object.fromEntries(CURVES.map((curve) => [curve.key, chartBox(`curve-${curve.key === "loss" ? "loss" : "knn"}`, curve.title)]));
    const [scatterBox, scatterDiv] = chartBox("accuracy-vs-params", "Accuracy against parameters (log scale) · Pareto front");
    const [latencyBox, latencyDiv] = chartBox("accuracy-vs-latency", "Accuracy against latency (ms per image, batch 1, 1 thread) · Pareto front");
    const [barsBox, barsDiv] = chartBox("label-bars", "Top-1 by labels used");
    renderGroupSelect();
    fill(curveGrid, ...CURVES.map((curve) => boxes[curve.key][0]));
    fill(summaryGrid, scatterBox, latencyBox, barsBox);
    fill(body,
      dinov2Block(),
      h("section", {}, h("h2", {}, "Training curves"),
        h("div", { class: "chart-head controls" },
          h("label", { for: "x-axis" }, "x axis ", xSelect),
          h("label", { for: "smoothing" }, "smoothing ", smoothing, " ", smoothingValue),
          h("label", { for: "group-by" }, "group ", groupSelect)),
        curveGrid, groupList),
      versus,
      h("section", {}, h("h2", {}, "Results"), scoreTable, summaryGrid),
      h("section", {}, h("h2", {}, "Parallel coordinates"), parallel),
      h("section", {}, h("div", { class: "chart-head" }, h("h2", {}, "Hyperparameters"), h("label", { for: "hide-same" }, hideSame, " hide identical rows")),
        diffTable),
    );
    drawCurves(Object.fromEntries(CURVES.map((curve) => [curve.key, boxes[curve.key][1]])));
    renderGroups();
    drawScatter(scatterDiv);
    drawLatency(latencyDiv);
    drawBars(barsDiv);
    renderVersus();
    renderScores();
    renderDiff();
    drawParcoords();
  }

  function currentGroups() {
    const chosen = grouping();
    return { grouped: chosen !== NO_GROUPING, groups: groupRuns(runs, chosen, ignoredKeys()) };
  }

  function renderGroups() {
    const { grouped, groups } = currentGroups();
    if (!grouped) {
      clear(groupList);
      return;
    }
    fill(groupList, h("h3", {}, "Groups (one line each: the mean, its band ± one standard deviation)"),
      h("ul", { class: "group-list", id: "group-members" }, groups.map((group) => h("li", { "data-group": group.id },
        swatch(styles.get(group.members[0].id)), h("strong", {}, group.label), ` · ${group.members.length} run${group.members.length > 1 ? "s" : ""}: `,
        group.members.map((run, i) => [i ? ", " : "", h("a", { href: `/runs/${run.id}`, "data-link": true }, runLabel(run)),
          run.config?.seed !== undefined ? h("span", { class: "muted" }, ` (seed ${run.config.seed})`) : null])))));
  }

  async function drawCurves(divs, range = null, onlyKey = null) {
    const x = xSelect.value;
    const weight = Number(smoothing.value);
    const keys = onlyKey ? [onlyKey] : CURVES.map((curve) => curve.key);
    const fetched = await source.fetch(runs, keys, x, range);
    if (stopped) return;
    const seriesByRun = new Map(runs.map((run, i) => [run.id, fetched[i]]));
    const { grouped, groups } = currentGroups();
    for (const curve of CURVES) {
      if (!keys.includes(curve.key)) continue;
      const traces = curveTraces({ key: curve.key, groups, seriesByRun, styleOf: styles.get, weight, x, grouped });
      const div = divs[curve.key];
      await Plotly.react(div, traces, curveLayout({ traces, x, yTitle: curve.y, range }), CONFIG);
      if (!div.dataset.zoomable) {
        div.dataset.zoomable = "1";
        // Zooming asks for a finer downsample of the visible range; double-click goes back to all of it.
        div.on("plotly_relayout", (event) => {
          if (event["xaxis.range[0]"] !== undefined) drawCurves(divs, [event["xaxis.range[0]"], event["xaxis.range[1]"]], curve.key);
          else if (event["xaxis.autorange"]) drawCurves(divs, null, curve.key);
        });
      }
    }
  }

  function measuredPoints() {
    const byId = new Map(runs.map((run) => [run.id, run]));
    return (data?.runs || []).map((row) => ({ row, run: byId.get(row.id) })).filter(({ run }) => run);
  }

  function scoreGroups() {
    const groups = new Set();
    for (const row of data?.runs || []) Object.keys(row.scores || {}).forEach((g) => groups.add(g));
    for (const row of data?.references || []) Object.keys(row.scores || {}).forEach((g) => groups.add(g));
    return [...groups];
  }

  function headline(scores) {
    return scores?.kNN ?? Object.values(scores || {}).find((value) => typeof value === "number") ?? null;
  }

  const SYMBOL_OF = { "LowDINO (measured)": "circle", "baseline (measured)": "square", "DINOv2 (measured)": "star" };

  /** One trace per measured run (its colour in the legend too), then published points and the front. */
  function accuracyTraces(points, xOf, { xLabel }) {
    const traces = [];
    const all = [];
    for (const { row, run } of points) {
      const y = headline(row.scores);
      const x = xOf(row, run);
      if (typeof x !== "number" || typeof y !== "number") continue;
      const style = styles.get(run.id);
      const kind = family(run);
      traces.push({ type: "scatter", mode: "markers+text", name: `${runLabel(run)} (measured)`, x: [x], y: [y], text: [runLabel(run)], textposition: "top center", cliponaxis: false,
        marker: { size: 12, symbol: SYMBOL_OF[kind], color: style.color, line: { width: 1, color: "#333" } }, meta: { run: run.id },
        hovertemplate: `${runLabel(run)} · ${run.backbone}<br>%{x:.2f} ${xLabel}<br>top-1 %{y:.2f} %<extra>${kind}</extra>` });
      all.push({ x, y });
    }
    return { traces, all };
  }

  function frontTrace(all) {
    const front = paretoFront(all);
    return front.length > 1 ? [{ type: "scatter", mode: "lines", name: "Pareto front (measured)", x: front.map((p) => p.x), y: front.map((p) => p.y),
      line: { shape: "hv", dash: "dash", color: PUBLISHED_COLOR, width: 1.5 }, hoverinfo: "skip" }] : [];
  }

  function publishedTrace(rows, xOf, xLabel) {
    const shown = rows.filter((row) => typeof xOf(row) === "number" && typeof headline(row.scores) === "number");
    if (!shown.length) return [];
    return [{ type: "scatter", mode: "markers+text", name: "published (not measured here)", cliponaxis: false,
      x: shown.map(xOf), y: shown.map((row) => headline(row.scores)),
      text: shown.map((row) => `${row.model} [published]`), textposition: "bottom center",
      customdata: shown.map((row) => row.source || ""),
      marker: { size: 12, symbol: shown.map((row) => (/dinov2/i.test(row.model) ? "star-open" : "diamond-open")), color: PUBLISHED_COLOR, line: { width: 2 } },
      hovertemplate: `%{text}<br>%{x:.2f} ${xLabel}<br>top-1 %{y:.2f} %<br>source: %{customdata}<extra>published</extra>` }];
  }

  function drawAccuracy(div, { xOf, refX, xTitle, xLabel, empty, ticks }) {
    const { traces, all } = accuracyTraces(measuredPoints(), xOf, { xLabel });
    const published = publishedTrace(data?.references || [], refX, xLabel);
    const chartTraces = [...traces, ...published, ...frontTrace(all)];
    if (!traces.length && !published.length) {
      Plotly.react(div, [], layout({ title: "", xTitle, yTitle: "kNN top-1 (%)", extra: emptyNote(empty) }), CONFIG);
      return;
    }
    const chartLayout = layout({ title: "", xTitle, yTitle: "kNN top-1 (%)", logX: true, extra: { legend: { orientation: "h", y: -0.3, yanchor: "top", font: { size: 10 } } } });
    const xs = chartTraces.flatMap((trace) => trace.x);
    const ys = chartTraces.flatMap((trace) => trace.y);
    chartLayout.xaxis = { ...chartLayout.xaxis, range: padded(xs, { log: true }), autorange: false, ...(ticks ? { tickvals: ticks, ticktext: ticks.map(String) } : {}) };
    chartLayout.yaxis = { ...chartLayout.yaxis, range: padded(ys, { fraction: 0.2 }), autorange: false };
    Plotly.react(div, chartTraces, chartLayout, CONFIG);
  }

  function drawScatter(div) {
    drawAccuracy(div, {
      xOf: (row, run) => { const count = paramsOf(run, catalog); return count ? count / 1e6 : null; },
      refX: (row) => row.params_millions || null,
      xTitle: "parameters (millions, log scale)", xLabel: "M parameters",
      empty: "no run has both a parameter count and a kNN figure yet",
    });
  }

  function drawLatency(div) {
    drawAccuracy(div, {
      xOf: (row) => row.latency?.median_ms ?? null,
      refX: (row) => row.latency?.median_ms ?? null,
      xTitle: "ms per image (batch 1, 1 thread, measured here; log scale)", xLabel: "ms per image",
      empty: "no run has both a kNN figure and a latency measured here: evaluate with protocols knn,latency",
      ticks: [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
    });
  }

  // The DINOv2 sentence(s): measured speed ratio and kNN difference, written by the server, shown
  // whenever DINOv2 and a small model were both timed here (always on /compare?vs=dinov2).
  function renderVersus() {
    const sentences = data?.versus_dinov2 || [];
    if (!sentences.length) {
      fill(versus, vs && runs.some((run) => run.backbone === DINOV2)
        ? h("p", { class: "muted", id: "versus-missing" }, "No speed comparison yet: evaluate DINOv2 ViT-S/14 and a small backbone with the latency protocol (protocols: latency) on this machine.")
        : null);
      return;
    }
    fill(versus, h("h2", {}, "Against DINOv2 ViT-S/14"),
      h("ul", { class: "versus" }, sentences.map((sentence) => h("li", {}, sentence))));
  }

  function latencyText(latency) {
    return latency ? `${latency.median_ms.toFixed(2)} ms` : "–";
  }

  function drawBars(div) {
    const groups = scoreGroups();
    const traces = measuredPoints().map(({ row, run }) => {
      const style = styles.get(run.id);
      return {
        type: "bar", name: `${runLabel(run)}${row.image_size ? ` @${row.image_size}px` : ""}${row.labels_used ? " [labels]" : ""}`,
        x: groups, y: groups.map((g) => row.scores?.[g] ?? null), meta: { run: run.id },
        // Past the palette, a pattern tells two bars of one colour apart (lines use the dash).
        marker: { color: style.color, ...(style.dash !== "solid" ? { pattern: { shape: "x", fgcolor: "#ffffff" } } : {}) },
        customdata: groups.map((g) => protocolOf(row, g) || "–"),
        hovertemplate: `${runLabel(run)} (measured)<br>%{x}: %{y:.2f} %<br>protocol: %{customdata}<extra></extra>`,
      };
    });
    for (const row of data?.references || []) {
      if (!groups.some((g) => typeof row.scores?.[g] === "number")) continue;
      traces.push({ type: "bar", name: `${row.model} [published]`, x: groups, y: groups.map((g) => row.scores?.[g] ?? null),
        marker: { color: "rgba(91,99,110,0.25)", line: { color: PUBLISHED_COLOR, width: 1.5 }, pattern: { shape: "/" } },
        hovertemplate: `${row.model} [published]<br>%{x}: %{y:.2f} %<br>source: ${row.source || ""}<extra></extra>` });
    }
    const hasValues = traces.some((trace) => trace.y.some((value) => typeof value === "number"));
    const extra = hasValues ? { barmode: "group" } : emptyNote("no kNN or label-fraction results yet: evaluate a run (kind eval) to fill this chart");
    Plotly.react(div, hasValues ? traces : [], layout({ title: "", xTitle: "protocol / labels used", yTitle: "top-1 (%)", extra }), CONFIG);
  }

  function protocolOf(row, group) {
    return row.score_protocols?.[group] || null;
  }

  function sizeText(row) {
    return typeof row.image_size === "number" ? `${row.image_size} px` : "–";
  }

  function latencyCell(row) {
    const latency = row.latency;
    return h("td", { class: "num", "data-column": "latency", title: latency ? `${latency.runtime} ${latency.precision}, batch 1, 1 thread${latency.cpu_model ? `, ${latency.cpu_model}` : ""}` : "" },
      latencyText(latency),
      latency ? h("div", { class: "muted protocol" }, `${latency.runtime} ${latency.precision}${latency.image_size ? ` · ${latency.image_size} px` : ""}${row.published ? " · timed here" : ""}`) : null);
  }

  function renderScores() {
    const groups = scoreGroups();
    const cell = (value, protocol) => h("td", { class: "num", title: protocol ? `protocol: ${protocol}` : "" }, pct(value),
      protocol ? h("div", { class: "muted protocol" }, protocol) : null);
    fill(scoreTable,
      h("thead", {}, h("tr", {}, h("th", {}, "model"), h("th", {}, "source"), h("th", { class: "num" }, "params"), h("th", { class: "num" }, "image size"),
        groups.map((g) => h("th", { class: "num" }, g)), h("th", { class: "num", title: "median ms per image at batch 1, one thread, measured here" }, "latency (batch 1, 1 thread)"))),
      h("tbody", {},
        measuredPoints().map(({ row, run }) => h("tr", { "data-run": run.id },
          h("td", {}, swatch(styles.get(run.id)), h("a", { href: `/runs/${run.id}`, "data-link": true }, runLabel(run)), " ", statusPill(run.status),
            row.labels_used ? h("span", { class: "tag", title: "this run learned from labels: its label-fraction figures are not a fair comparison" }, "labels used") : null),
          h("td", {}, family(run)), h("td", { class: "num" }, fmtParams(paramsOf(run, catalog))), h("td", { class: "num" }, sizeText(row)),
          groups.map((g) => {
            const td = cell(row.scores?.[g], protocolOf(row, g));
            // The monitor's best is shown beside the final figure, labelled: it is a best of many looks.
            if (g === "kNN" && typeof row.best_val_knn_top1 === "number") td.append(h("div", { class: "muted protocol" }, `best on validation: ${pct(row.best_val_knn_top1)}`));
            return td;
          }), latencyCell(row))),
        (data?.references || []).map((row) => h("tr", { class: "published" }, h("td", {}, `${row.model} [published]`), h("td", { title: row.source || "" }, "published"),
          h("td", { class: "num" }, row.params_millions ? `${row.params_millions} M` : "–"), h("td", { class: "num" }, sizeText(row)),
          groups.map((g) => cell(row.scores?.[g], protocolOf(row, g))), latencyCell(row)))),
    );
  }

  function drawParcoords() {
    const scores = new Map((data?.runs || []).map((row) => [row.id, row]));
    const params_ = differingKeys(runs, ignoredKeys());
    const metricNames = ["kNN top-1", "training loss"];
    const rows = runs.map((run) => ({
      id: run.id, label: runLabel(run), color: styles.get(run.id).color, href: `/runs/${run.id}`,
      values: { ...Object.fromEntries(params_.map((key) => [key, run.config?.[key]])),
        "kNN top-1": headline(scores.get(run.id)?.scores), "training loss": run.latest_metrics?.loss ?? null },
    }));
    drawParallel(Plotly, parallel, rows, { params: params_, metrics: metricNames.filter((name) => rows.some((row) => typeof row.values[name] === "number")) })
      .catch((exc) => fill(parallel, h("p", { class: "field-error" }, `Could not draw the parallel coordinates: ${exc.message}`)));
  }

  function renderDiff() {
    const ignored = ignoredKeys();
    const keys = [...new Set(runs.flatMap((run) => Object.keys(run.config || {})))].filter((key) => !ignored.has(key)).sort();
    const rows = keys.map((key) => {
      const values = runs.map((run) => JSON.stringify(run.config?.[key] ?? null));
      return { key, values: runs.map((run) => run.config?.[key]), differs: new Set(values).size > 1 };
    });
    const shown = hideSame.checked ? rows.filter((row) => row.differs) : rows;
    fill(diffTable,
      h("thead", {}, h("tr", {}, h("th", {}, "option"), runs.map((run) => h("th", {}, swatch(styles.get(run.id)), runLabel(run))))),
      h("tbody", {}, shown.length ? shown.map((row) => h("tr", { class: row.differs ? "differs" : "", "data-key": row.key }, h("td", {}, row.key),
        row.values.map((value) => h("td", { class: "mono" }, valueText(value)))))
        : h("tr", {}, h("td", { colspan: runs.length + 1, class: "muted" }, runs.length > 1 ? "Every option is the same in these runs." : "Add a second run to see what differs."))),
    );
  }

  function exportCsv() {
    const groups = scoreGroups();
    const lines = [csvLine(["model", "run_id", "kind", "source", "backbone", "params", "dataset", "image_size", "labels_used",
      ...groups.flatMap((g) => [g, `${g} protocol`])])];
    for (const { row, run } of measuredPoints()) {
      lines.push(csvLine([runLabel(run), run.id, run.kind, family(run), run.backbone, paramsOf(run, catalog), run.config?.dataset, row.image_size ?? "", row.labels_used ?? "",
        ...groups.flatMap((g) => [row.scores?.[g] ?? "", protocolOf(row, g) ?? ""])]));
    }
    for (const row of data?.references || []) {
      lines.push(csvLine([row.model, "", "", `published: ${row.source || ""}`, "", row.params_millions ? row.params_millions * 1e6 : "", data.dataset, row.image_size ?? "", "",
        ...groups.flatMap((g) => [row.scores?.[g] ?? "", protocolOf(row, g) ?? ""])]));
    }
    download("lowdino-compare.csv", `${lines.join("\n")}\n`);
  }

  xSelect.addEventListener("change", () => { setParams({ x: xSelect.value }); renderBody(); });
  groupSelect.addEventListener("change", () => { setParams({ group: groupSelect.value }); renderBody(); });
  let smoothTimer = null;
  smoothing.addEventListener("input", () => {
    smoothingValue.textContent = smoothing.value;
    clearTimeout(smoothTimer);
    smoothTimer = setTimeout(() => { setParams({ smooth: smoothing.value === "0" ? null : smoothing.value }); renderBody(); }, 150);
  });
  hideSame.addEventListener("change", () => { setParams({ same: hideSame.checked ? null : "show" }); renderDiff(); });

  load();
  return () => {
    stopped = true;
    clearTimeout(smoothTimer);
  };
}
