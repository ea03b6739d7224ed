// Compare: overlaid curves, the hyperparameter diff, accuracy against parameters with the Pareto
// front, and grouped bars per label budget; measured runs and published figures never look alike.
import { api } from "../api.js";
import { showBanner } from "../banner.js";
import { getCatalog, paramsOf } from "../catalog.js";
import { CONFIG, X_TITLES, emptyNote, ensurePlotly, layout, paretoFront, smooth, traceType } from "../charts.js";
import { clear, csvLine, download, fill, h } from "../dom.js";
import { params as fmtParams, pct, runColor, runLabel, statusPill } from "../format.js";
import { listParam, navigate, params, setParams } from "../url.js";

const CURVES = [["loss", "Training loss", "loss"], ["knn_top1", "kNN top-1 during training", "top-1 (%)"]];
const DINOV2 = "dinov2_vits14";

function isBaseline(run) {
  return run.kind === "eval" && !run.config?.checkpoint && Boolean(run.config?.pretrained || run.config?.weights);
}

function family(run) {
  if (run.backbone === DINOV2) return "DINOv2 (measured)";
  return isBaseline(run) ? "baseline (measured)" : "LowDINO (measured)";
}

export function mount(root) {
  let stopped = false;
  let Plotly = null;
  let data = null; // /api/compare answer
  let runs = []; // full run objects, in the order of the URL
  let catalog = null;
  const xSelect = h("select", { id: "x-axis" }, Object.keys(X_TITLES).map((x) => h("option", { value: x }, x)));
  xSelect.value = params().get("x") || "step";
  const smoothing = h("input", { type: "range", id: "smoothing", min: 0, max: 0.99, step: 0.01, value: params().get("smooth") || 0 });
  const smoothingValue = h("output", { for: "smoothing" }, smoothing.value);
  const hideSame = h("input", { type: "checkbox", id: "hide-same", checked: params().get("same") !== "show" });
  const addInput = h("input", { type: "text", id: "add-run", list: "add-run-choices", placeholder: "run id or name" });
  const addList = h("datalist", { id: "add-run-choices" });
  const chips = h("div", { class: "toolbar", id: "compare-runs" });
  const curveGrid = h("div", { class: "charts" });
  const summaryGrid = h("div", { class: "charts" });
  const diffTable = h("table", { class: "data", id: "diff-table" });
  const scoreTable = h("table", { class: "data", id: "score-table" });
  const versus = h("div", { id: "versus-dinov2" });
  const body = h("div", { id: "compare-body" });

  root.append(
    h("div", { class: "page-head" }, h("h1", {}, params().get("vs") === "dinov2" ? "LowDINO vs DINOv2" : "Compare runs"),
      h("span", { class: "spacer" }),
      h("button", { type: "button", id: "open-report", title: "These runs' evaluations as the original work's table", onclick: () => navigate(`/report?runs=${listParam("runs").join(",")}`) }, "Report"),
      h("button", { type: "button", id: "export-csv", onclick: exportCsv }, "Export CSV")),
    chips, body,
  );

  function chartBox(id, title) {
    const div = h("div", { class: "chart tall", id, role: "img", "aria-label": title });
    const button = h("button", { type: "button", class: "link-button", id: `png-${id}`, "aria-label": `${title} as PNG`, onclick: () => Plotly.downloadImage(div, { format: "png", filename: `lowdino-${id}`, width: 1200, height: 700 }) }, "PNG");
    return [h("div", {}, h("div", { class: "chart-head" }, h("h3", {}, title), button), div), div];
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
      if (!ids.length && params().get("vs") === "dinov2") {
        ids = await chooseDefaultRuns();
        setParams({ runs: ids });
      }
      fillChoices();
      if (!ids.length) {
        renderChips();
        await renderNoRuns();
        return;
      }
      Plotly = await ensurePlotly();
      catalog = await getCatalog().catch(() => null);
      [data, runs] = await Promise.all([
        api(`/api/compare?runs=${ids.map(encodeURIComponent).join(",")}`),
        Promise.all(ids.map((id) => api(`/api/runs/${encodeURIComponent(id)}`))),
      ]);
      if (stopped) return;
      renderChips();
      renderBody();
    } catch (exc) {
      if (!stopped) showBanner(`Could not load the comparison: ${exc.message}`, { retry: load });
    }
  }

  async function renderNoRuns() {
    const vs = params().get("vs") === "dinov2";
    const { references } = await getCatalog();
    const shown = references.filter((row) => row.dataset === "cifar10" && (/dinov2|lowdino/i.test(row.model)));
    fill(body, h("div", { class: "empty", id: "compare-empty" },
      vs ? "No completed run yet: pretrain a LowDINO backbone (and evaluate DINOv2 where its weights are local), then come back."
        : "Select runs to compare on the Runs page, or add one above.",
      h("br"), h("a", { href: vs ? "/launch" : "/runs", "data-link": true, class: "button primary" }, vs ? "Launch a run" : "Go to runs")),
    shown.length ? h("div", {}, h("h2", {}, "Published figures on CIFAR-10 (not measured here)"),
      h("table", { class: "data" }, h("thead", {}, h("tr", {}, ["model", "protocol", "labels", "top-1", "source"].map((t) => h("th", {}, t)))),
        h("tbody", {}, shown.map((row) => h("tr", {}, h("td", {}, `${row.model} [published]`), h("td", {}, row.protocol),
          h("td", { class: "num" }, `${Math.round(row.label_fraction * 100)} %`), h("td", { class: "num" }, pct(row.top1)), h("td", {}, row.source))))))
      : null);
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

  function renderChips() {
    fill(chips, 
      ...runs.map((run) => h("span", { class: "tag", "data-run": run.id },
        h("span", { class: "swatch", style: `background:${runColor(run.id)}` }), h("a", { href: `/runs/${run.id}`, "data-link": true }, runLabel(run)), " ",
        h("button", { type: "button", class: "link-button", "aria-label": `remove ${runLabel(run)}`, onclick: () => setRuns(runs.filter((r) => r.id !== run.id).map((r) => r.id)) }, "×"))),
      h("label", { for: "add-run" }, "Add run ", addInput, addList),
      h("button", { type: "button", onclick: () => { const id = addInput.value.trim(); if (id) setRuns([...runs.map((r) => r.id), id]); } }, "Add"),
    );
  }

  function renderBody() {
    const [lossBox, lossDiv] = chartBox("curve-loss", "Training loss");
    const [knnBox, knnDiv] = chartBox("curve-knn", "kNN top-1 during training");
    const [scatterBox, scatterDiv] = chartBox("accuracy-vs-params", "Accuracy against parameters (log scale) · Pareto front");
    const [latencyBox, latencyDiv] = chartBox("accuracy-vs-latency", "Accuracy against latency (ms per image, batch 1, 1 thread) · Pareto front");
    const [barsBox, barsDiv] = chartBox("label-bars", "Top-1 by labels used");
    fill(curveGrid, lossBox, knnBox);
    fill(summaryGrid, scatterBox, latencyBox, barsBox);
    fill(body, 
      h("div", { class: "chart-head" },
        h("label", { for: "x-axis" }, "x axis ", xSelect),
        h("label", { for: "smoothing" }, "smoothing ", smoothing, " ", smoothingValue)),
      curveGrid,
      versus,
      h("h2", {}, "Results"), scoreTable,
      summaryGrid,
      h("div", { class: "chart-head" }, h("h2", {}, "Hyperparameters"), h("label", { for: "hide-same" }, hideSame, " hide identical rows")),
      diffTable,
    );
    drawCurves({ loss: lossDiv, knn_top1: knnDiv });
    drawScatter(scatterDiv);
    drawLatency(latencyDiv);
    drawBars(barsDiv);
    renderVersus();
    renderScores();
    renderDiff();
  }

  async function drawCurves(divs, range = null, onlyKey = null) {
    const x = xSelect.value;
    const weight = Number(smoothing.value);
    const keys = onlyKey ? [onlyKey] : CURVES.map(([key]) => key);
    const window_ = range ? `&start=${Math.floor(range[0])}&end=${Math.ceil(range[1])}` : "";
    const fetched = await Promise.all(runs.map((run) =>
      api(`/api/runs/${run.id}/metrics?keys=${keys.join(",")}&x=${x}&max_points=1500${window_}`).catch(() => ({ series: [] }))));
    if (stopped) return;
    for (const [key, , yTitle] of CURVES) {
      if (!keys.includes(key)) continue;
      const traces = [];
      runs.forEach((run, i) => {
        const series = fetched[i].series.find((item) => item.key === key);
        if (!series || !series.y.length) return;
        const color = runColor(run.id);
        const name = runLabel(run);
        const hover = `${name}<br>${x} %{x}<br>${key} %{y:.4g}<extra>${series.downsampled ? "each point stands for a bucket" : ""}</extra>`;
        if (weight > 0) {
          // Raw series faintly behind the smoothed one, so smoothing hides nothing.
          traces.push({ type: traceType(series.y.length), mode: "lines", x: series.x, y: series.y, name: `${name} (raw)`, showlegend: false, line: { color, width: 1 }, opacity: 0.25, hoverinfo: "skip" });
        }
        traces.push({ type: traceType(series.y.length), mode: series.y.length < 3 ? "lines+markers" : "lines", x: series.x, y: smooth(series.y, weight), name, line: { color, width: 2 }, hovertemplate: hover });
      });
      const extra = traces.length ? {} : emptyNote("no selected run has this metric");
      const chartLayout = layout({ title: "", xTitle: X_TITLES[x], yTitle, extra });
      if (range) chartLayout.xaxis = { ...chartLayout.xaxis, range, autorange: false };
      const div = divs[key];
      await Plotly.react(div, traces, chartLayout, CONFIG);
      if (!div.dataset.zoomable) {
        div.dataset.zoomable = "1";
        // Zooming asks for a finer downsample of the visible range; double-click goes back to all of it.
        div.on("plotly_relayout", (event) => {
          if (event["xaxis.range[0]"] !== undefined) drawCurves(divs, [event["xaxis.range[0]"], event["xaxis.range[1]"]], key);
          else if (event["xaxis.autorange"]) drawCurves(divs, null, key);
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

  function drawScatter(div) {
    const traces = [];
    const families = new Map();
    const all = [];
    for (const { row, run } of measuredPoints()) {
      const y = headline(row.scores);
      const count = paramsOf(run, catalog);
      if (!count || typeof y !== "number") continue;
      const name = family(run);
      if (!families.has(name)) families.set(name, { x: [], y: [], text: [], color: [] });
      const item = families.get(name);
      item.x.push(count / 1e6);
      item.y.push(y);
      item.text.push(`${runLabel(run)} · ${run.backbone}`);
      item.color.push(runColor(run.id));
      all.push({ x: count / 1e6, y });
    }
    const symbols = { "LowDINO (measured)": "circle", "baseline (measured)": "square", "DINOv2 (measured)": "star" };
    for (const [name, item] of families) {
      traces.push({ type: "scatter", mode: "markers+text", name, x: item.x, y: item.y, text: item.text, textposition: "top center",
        marker: { size: 12, symbol: symbols[name], color: item.color, line: { width: 1, color: "#333" } },
        hovertemplate: `%{text}<br>%{x:.2f} M parameters<br>top-1 %{y:.2f} %<extra>${name}</extra>` });
    }
    const published = (data?.references || []).filter((row) => row.params_millions && typeof headline(row.scores) === "number");
    if (published.length) {
      traces.push({ type: "scatter", mode: "markers+text", name: "published (not measured here)",
        x: published.map((row) => row.params_millions), y: published.map((row) => headline(row.scores)),
        text: published.map((row) => `${row.model} [published]`), textposition: "bottom center",
        customdata: published.map((row) => row.source),
        marker: { size: 12, symbol: published.map((row) => (/dinov2/i.test(row.model) ? "star-open" : "diamond-open")), color: "#5b636e", line: { width: 2 } },
        hovertemplate: "%{text}<br>%{x:.2f} M parameters<br>top-1 %{y:.2f} %<br>source: %{customdata}<extra>published</extra>" });
    }
    const front = paretoFront(all);
    if (front.length > 1) {
      traces.push({ type: "scatter", mode: "lines", name: "Pareto front (measured)", x: front.map((p) => p.x), y: front.map((p) => p.y),
        line: { shape: "hv", dash: "dash", color: "#0072B2", width: 1.5 }, hoverinfo: "skip" });
    }
    const extra = traces.length ? {} : emptyNote("no run has both a parameter count and a kNN figure yet");
    Plotly.react(div, traces, layout({ title: "", xTitle: "parameters (millions, log scale)", yTitle: "kNN top-1 (%)", logX: true, extra }), CONFIG);
  }

  // The DINOv2 sentence(s): measured speed ratio and kNN difference, written by the server, shown
  // whenever DINOv2 and a small model were both timed here (always on /compare?vs=dinov2).
  function renderVersus() {
    const sentences = data?.versus_dinov2 || [];
    if (!sentences.length) {
      fill(versus, params().get("vs") === "dinov2"
        ? h("p", { class: "muted", id: "versus-missing" }, "No speed comparison yet: evaluate DINOv2 ViT-S/14 and a small backbone with the latency protocol (protocols: latency) on this machine.")
        : null);
      return;
    }
    fill(versus, h("h2", {}, "Against DINOv2 ViT-S/14"),
      h("ul", { class: "versus" }, sentences.map((sentence) => h("li", {}, sentence))));
  }

  function drawLatency(div) {
    const figure = data?.figures?.accuracy_vs_latency;
    const hasPoints = figure && figure.data.some((trace) => trace.mode !== "lines" && trace.x.length);
    const xTitle = "ms per image (batch 1, 1 thread, measured here; log scale)";
    if (!hasPoints) {
      Plotly.react(div, [], layout({ title: "", xTitle, yTitle: "kNN top-1 (%)", extra: emptyNote("no run has both a kNN figure and a latency measured here: evaluate with protocols knn,latency") }), CONFIG);
      return;
    }
    const traces = figure.data.map((trace) => {
      if (trace.mode === "lines") return { ...trace, line: { ...trace.line, color: "#0072B2", width: 1.5 } };
      if (trace.name.startsWith("published")) {
        return { ...trace, textposition: "bottom center", marker: { size: 12, symbol: trace.text.map((t) => (/dinov2/i.test(t) ? "star-open" : "diamond-open")), color: "#5b636e", line: { width: 2 } },
          hovertemplate: "%{text}<br>%{x:.2f} ms per image<br>top-1 %{y:.2f} % (published)<br>%{customdata}<extra>published accuracy</extra>" };
      }
      return { ...trace, textposition: "top center", marker: { size: 12, color: "#0072B2", line: { width: 1, color: "#333" } },
        hovertemplate: "%{text}<br>%{x:.2f} ms per image<br>kNN top-1 %{y:.2f} %<br>%{customdata}<extra>measured</extra>" };
    });
    const chartLayout = layout({ title: "", xTitle, yTitle: "kNN top-1 (%)", logX: true });
    const ticks = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
    chartLayout.xaxis = { ...chartLayout.xaxis, tickvals: ticks, ticktext: ticks.map(String) };
    Plotly.react(div, traces, chartLayout, CONFIG);
  }

  function latencyText(latency) {
    return latency ? `${latency.median_ms.toFixed(2)} ms` : "–";
  }

  function drawBars(div) {
    const groups = scoreGroups();
    const traces = measuredPoints().map(({ row, run }) => ({
      type: "bar", name: `${runLabel(run)}${row.image_size ? ` @${row.image_size}px` : ""}${row.labels_used ? " [labels]" : ""}`,
      x: groups, y: groups.map((g) => row.scores?.[g] ?? null), marker: { color: runColor(run.id) },
      customdata: groups.map((g) => protocolOf(row, g) || "–"),
      hovertemplate: `${runLabel(run)} (measured)<br>%{x}: %{y:.2f} %<br>protocol: %{customdata}<extra></extra>`,
    }));
    for (const row of data?.references || []) {
      if (!groups.some((g) => typeof row.scores?.[g] === "number")) continue;
      traces.push({ type: "bar", name: `${row.model} [published]`, x: groups, y: groups.map((g) => row.scores?.[g] ?? null),
        marker: { color: "rgba(91,99,110,0.25)", line: { color: "#5b636e", width: 1.5 }, pattern: { shape: "/" } },
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
          h("td", {}, h("span", { class: "swatch", style: `background:${runColor(run.id)}` }), h("a", { href: `/runs/${run.id}`, "data-link": true }, runLabel(run)), " ", statusPill(run.status),
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

  function renderDiff() {
    // The fields the server sets itself (output_dir differs for every run) are no hyperparameters.
    const ignored = new Set(catalog?.server_owned_fields || []);
    const keys = [...new Set(runs.flatMap((run) => Object.keys(run.config || {})))].filter((key) => !ignored.has(key)).sort();
    const rows = keys.map((key) => {
      const values = runs.map((run) => JSON.stringify(run.config?.[key] ?? null));
      return { key, values: runs.map((run) => run.config?.[key]), differs: new Set(values).size > 1 };
    });
    const shown = hideSame.checked ? rows.filter((row) => row.differs) : rows;
    fill(diffTable, 
      h("thead", {}, h("tr", {}, h("th", {}, "option"), runs.map((run) => h("th", {}, h("span", { class: "swatch", style: `background:${runColor(run.id)}` }), runLabel(run))))),
      h("tbody", {}, shown.length ? shown.map((row) => h("tr", { class: row.differs ? "differs" : "", "data-key": row.key }, h("td", {}, row.key),
        row.values.map((value) => h("td", { class: "mono" }, Array.isArray(value) ? value.join(", ") : value === undefined ? "–" : value === null ? "none" : String(value)))))
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
