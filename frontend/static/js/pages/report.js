// Report: the original work's table regenerated from runs (/report?runs=a,b) or a sweep (/report/<id>,
// /report?sweep=ID): models with parameters, kNN / 1-NN / 10 % / 30 % labels as mean ± std over seeds,
// measured cells linked to their runs, published rows marked and never mixed in, skipped rows with
// their reason, the protocol and resolution of every number, latency at batch 1 on one thread where it
// was measured here, and accuracy against parameters and against latency.
import { api } from "../api.js";
import { showBanner } from "../banner.js";
import { CONFIG, emptyNote, ensurePlotly, layout } from "../charts.js";
import { copyText, fill, h } from "../dom.js";
import { params as fmtParams } from "../format.js";
import { listParam, params, setParams } from "../url.js";

function shortId(id) {
  return id.length > 8 ? id.slice(0, 8) : id;
}

function fixed(value) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(2) : "–";
}

export function mount(root, sweepFromPath) {
  let stopped = false;
  let report = null;
  const sweep = sweepFromPath || params().get("sweep") || null;
  const ids = listParam("runs");
  const query = new URLSearchParams();
  if (ids.length) query.set("runs", ids.join(","));
  if (sweep) query.set("sweep", sweep);
  const apiUrl = (format) => {
    const q = new URLSearchParams(query);
    if (format) q.set("format", format);
    const text = q.toString();
    return `/api/report${text ? `?${text}` : ""}`;
  };

  const copyButton = h("button", { type: "button", id: "copy-markdown", onclick: copyMarkdown }, "Copy Markdown");
  const copyState = h("span", { class: "muted", id: "copy-state", "aria-live": "polite" });
  const subtitle = h("p", { class: "muted", id: "report-subtitle" });
  const table = h("table", { class: "data report-table", id: "report-table" });
  const body = h("div", { id: "report-body" });
  const columnSelect = h("select", { id: "chart-column" });
  // Plain divs inside labelled figures, not role="img": Plotly's own buttons live inside the chart.
  const chartDiv = h("div", { class: "chart tall", id: "report-chart" });
  const latencyDiv = h("div", { class: "chart tall", id: "report-latency-chart" });

  root.append(
    h("div", { class: "page-head" },
      h("h1", {}, sweep ? `Report · sweep ${sweep}` : "Report"),
      h("span", { class: "spacer" }),
      h("a", { class: "button", id: "export-csv", href: apiUrl("csv"), download: "" }, "Export CSV"),
      h("a", { class: "button", id: "export-md", href: apiUrl("md"), download: "" }, "Export Markdown"),
      copyButton, copyState),
    subtitle, table, body,
  );
  // Skeleton rows while the report loads, so the page does not jump.
  fill(table, h("tbody", {}, Array.from({ length: 4 }, () => h("tr", { class: "skeleton" }, Array.from({ length: 8 }, () => h("td", {}, h("span")))))));

  async function load() {
    try {
      report = await api(apiUrl(null));
      if (stopped) return;
      render();
    } catch (exc) {
      if (!stopped) showBanner(`Could not load the report: ${exc.message}`, { retry: load });
    }
  }

  function cellContent(cell, column, row) {
    if (!cell) return h("span", { class: "muted" }, "–");
    const spread = cell.n > 1 ? ` ± ${fixed(cell.std)}` : "";
    const value = `${fixed(cell.mean)}${spread} %`;
    if (cell.published) {
      return [
        h("span", { class: "value", title: `published: ${cell.source || row.source || ""}` }, value),
        h("span", { class: "badge published" }, "published"),
        h("div", { class: "cell-meta" }, `${cell.protocol}${cell.image_size ? ` · ${cell.image_size} px` : ""}`),
      ];
    }
    const first = cell.run_ids[0];
    const meta = [`n = ${cell.n}`, cell.protocol === column.protocols[0] ? cell.protocol : `${cell.protocol} (fallback)`];
    if (cell.image_size) meta.push(`${cell.image_size} px`);
    return [
      cell.run_ids.length === 1
        ? h("a", { href: `/runs/${first}`, "data-link": true, class: "value", title: `from run ${first}` }, value)
        : h("span", { class: "value" }, value),
      cell.pooled ? h("span", { class: "tag", title: cell.note || "" }, "pooled") : null,
      // Not an evaluation: the training's own monitor, on its validation split, until the run is evaluated.
      cell.protocol === "knn_monitor" ? h("span", { class: "badge monitor", title: cell.note || "" }, "monitor (validation)") : null,
      h("div", { class: "cell-meta", title: cell.note || "" }, meta.join(" · ")),
      cell.run_ids.length > 1
        ? h("div", { class: "cell-meta" }, "runs ", cell.run_ids.map((id, i) => [i ? ", " : "", h("a", { href: `/runs/${id}`, "data-link": true }, shortId(id))]))
        : null,
    ];
  }

  function modelCell(row) {
    const parts = [h("strong", {}, row.model)];
    if (row.published) parts.push(h("span", { class: "badge published" }, "published"));
    if (row.kind === "skipped") parts.push(h("span", { class: "badge skipped" }, "skipped"));
    if (row.labels_used) parts.push(h("span", { class: "tag", title: "the pretraining learned from labels" }, "labels used"));
    if (row.training_run_ids.length) {
      parts.push(h("div", { class: "cell-meta" }, "trained by ", row.training_run_ids.map((id, i) => [i ? ", " : "", h("a", { href: `/runs/${id}`, "data-link": true }, shortId(id))])));
    }
    for (const note of row.notes) parts.push(h("div", { class: "cell-meta" }, note));
    // Figures outside the four columns (e.g. a linear probe on all labels) stay visible, labelled.
    for (const cell of row.other) {
      const labels = cell.label_fraction < 1 ? `${Math.round(cell.label_fraction * 100)} % labels` : "all labels";
      parts.push(h("div", { class: "cell-meta other-figure" }, `also: ${cell.protocol}, ${labels}: ${fixed(cell.mean)} %`,
        cell.image_size ? ` at ${cell.image_size} px` : "", cell.published ? " (published)" : ""));
    }
    return h("td", {}, parts);
  }

  // Latency is always measured here, also on a published row (whose accuracy is the source's).
  function latencyCell(row) {
    const latency = row.latency;
    if (!latency) return h("td", { class: "num", "data-column": "latency" }, h("span", { class: "muted" }, "–"));
    const runs = latency.run_ids;
    const value = `${fixed(latency.median_ms)} ms`;
    const others = Object.entries(latency.runtimes || {}).map(([name, ms]) => `${name}: ${fixed(ms)} ms`).join(", ");
    return h("td", { class: "num", "data-column": "latency", title: `median per image, batch 1, 1 thread${latency.cpu_model ? ` on ${latency.cpu_model}` : ""}; measured: ${others}` },
      runs.length === 1 ? h("a", { href: `/runs/${runs[0]}`, "data-link": true, class: "value" }, value) : h("span", { class: "value" }, value),
      row.published ? h("span", { class: "badge", title: "the accuracy is published; this latency was measured here" }, "timed here") : null,
      h("div", { class: "cell-meta" }, [`${latency.runtime} ${latency.precision}`, latency.image_size ? `${latency.image_size} px` : null].filter(Boolean).join(" · ")),
      latency.note ? h("div", { class: "cell-meta" }, latency.note) : null);
  }

  function sourceCell(row) {
    if (row.kind === "published") return h("td", { title: row.source || "" }, row.citation || row.source);
    if (row.kind === "skipped") return h("td", {}, "skipped");
    return h("td", {}, "measured");
  }

  function renderTable() {
    const columns = report.columns;
    const timed = report.rows.some((row) => row.latency);
    const head = h("thead", {}, h("tr", {},
      h("th", {}, "model"), h("th", { class: "num" }, "params"), h("th", { class: "num" }, "image size"),
      columns.map((column) => h("th", { class: "num", title: column.protocols.join(" / ") }, column.label)),
      timed ? h("th", { class: "num", id: "latency-column", title: "median milliseconds per image at batch 1 on one thread, measured here, in the fastest runtime measured (named)" }, "latency (batch 1, 1 thread)") : null,
      h("th", {}, "source")));
    const rows = report.rows.map((row) => {
      const size = row.image_size ? `${row.image_size} px` : row.published ? "see source" : "–";
      const attrs = { class: row.kind, "data-row": row.key, "data-kind": row.kind };
      if (row.kind === "skipped") {
        return h("tr", attrs, modelCell(row), h("td", { class: "num" }, "–"), h("td", { class: "num" }, "–"),
          h("td", { colspan: columns.length + (timed ? 1 : 0), class: "reason" }, `not evaluated: ${row.reason}`), sourceCell(row));
      }
      return h("tr", attrs, modelCell(row), h("td", { class: "num" }, fmtParams(row.params)), h("td", { class: "num" }, size),
        columns.map((column) => h("td", { class: "num", "data-column": column.key }, cellContent(row.cells[column.key], column, row))),
        timed ? latencyCell(row) : null, sourceCell(row));
    });
    fill(table, head, h("tbody", {}, rows));
  }

  function renderNotes() {
    const labelOf = (key) => report.columns.find((column) => column.key === key)?.label || "other figures";
    const notes = report.protocols.map((note) => h("li", { class: note.published ? "published" : "" },
      h("strong", {}, labelOf(note.column)), ` · ${note.protocol} · `,
      note.published ? h("span", { class: "badge published" }, "published") : "measured",
      note.image_sizes.length ? ` at ${note.image_sizes.join(", ")} px` : " (image size: see source)",
      note.source ? ` · ${note.source}` : "", h("div", { class: "cell-meta" }, note.description)));
    const excluded = report.excluded.map((item) => h("li", {}, h("a", { href: `/runs/${item.run_id}`, "data-link": true }, item.run_id), `: ${item.reason}`));
    return [
      h("h2", {}, "Protocols and resolutions"),
      h("ul", { class: "protocol-notes", id: "protocol-notes" }, notes, report.notes.map((text) => h("li", { class: "muted" }, text))),
      excluded.length ? [h("h3", {}, "Left out"), h("ul", { id: "excluded-runs" }, excluded)] : null,
    ];
  }

  function drawChart(Plotly) {
    const key = columnSelect.value;
    const figure = report.figures[key];
    const label = report.columns.find((column) => column.key === key)?.label || key;
    if (!figure) {
      Plotly.react(chartDiv, [], layout({ title: "", xTitle: "parameters (millions, log scale)", yTitle: "top-1 (%)", extra: emptyNote("no model has both a parameter count and this figure") }), CONFIG);
      return;
    }
    // The server's traces, restyled: x in millions (the shared 1-2-5 tick ladder), published hollow and grey.
    const traces = figure.data.map((trace) => {
      const x = trace.x.map((value) => value / 1e6);
      if (trace.name === "published") {
        return { ...trace, x, textposition: "bottom center", cliponaxis: false, textfont: { size: 10 }, marker: { size: 12, symbol: "diamond-open", color: "#5b636e", line: { width: 2 } },
          hovertemplate: "%{text}<br>%{x:.2f} M parameters<br>top-1 %{y:.2f} %<br>%{customdata}<extra>published</extra>" };
      }
      if (trace.mode === "lines") return { ...trace, x, line: { ...trace.line, color: "#0072B2", width: 1.5 } };
      return { ...trace, x, textposition: "top center", cliponaxis: false, textfont: { size: 10 }, marker: { size: 12, color: "#0072B2", line: { width: 1, color: "#333" } },
        hovertemplate: "%{text}<br>%{x:.2f} M parameters<br>top-1 %{y:.2f} %<br>%{customdata}<extra>measured</extra>" };
    });
    const chartLayout = layout({ title: "", xTitle: "parameters (millions, log scale)", yTitle: `${label} top-1 (%)`, logX: true });
    chartLayout.margin = { ...chartLayout.margin, l: 70, r: 90, t: 40 }; // room for labels at the edges
    Plotly.react(chartDiv, traces, chartLayout, CONFIG);
    drawLatencyChart(Plotly, key, label);
  }

  // The same column against measured latency: the server's figure `<column>:latency`, x in ms per image.
  function drawLatencyChart(Plotly, key, label) {
    const figure = report.figures[`${key}:latency`];
    const xTitle = "ms per image (batch 1, 1 thread, measured here; log scale)";
    if (!figure) {
      Plotly.react(latencyDiv, [], layout({ title: "", xTitle, yTitle: "top-1 (%)", extra: emptyNote("no model has both a latency measured here and this figure: evaluate with the latency protocol") }), CONFIG);
      return;
    }
    const traces = figure.data.map((trace) => {
      if (trace.mode === "lines") return { ...trace, line: { ...trace.line, color: "#0072B2", width: 1.5 } };
      if (trace.name !== "measured") {
        return { ...trace, textposition: "bottom center", cliponaxis: false, textfont: { size: 10 }, marker: { size: 12, symbol: "diamond-open", color: "#5b636e", line: { width: 2 } },
          hovertemplate: "%{text}<br>%{x:.2f} ms per image<br>top-1 %{y:.2f} % (published)<br>%{customdata}<extra>published accuracy</extra>" };
      }
      return { ...trace, textposition: "top center", cliponaxis: false, textfont: { size: 10 }, marker: { size: 12, color: "#0072B2", line: { width: 1, color: "#333" } },
        hovertemplate: "%{text}<br>%{x:.2f} ms per image<br>top-1 %{y:.2f} %<br>%{customdata}<extra>measured</extra>" };
    });
    const chartLayout = layout({ title: "", xTitle, yTitle: `${label} top-1 (%)`, logX: true });
    chartLayout.margin = { ...chartLayout.margin, l: 70, r: 90, t: 40 };
    const ticks = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
    chartLayout.xaxis = { ...chartLayout.xaxis, tickvals: ticks, ticktext: ticks.map(String) };
    Plotly.react(latencyDiv, traces, chartLayout, CONFIG);
  }

  async function renderChart() {
    const keys = Object.keys(report.figures).filter((key) => !key.endsWith(":latency"));
    fill(columnSelect, report.columns.filter((column) => keys.includes(column.key)).map((column) => h("option", { value: column.key }, column.label)));
    const wanted = params().get("chart");
    columnSelect.value = keys.includes(wanted) ? wanted : report.chart_column || keys[0] || "";
    const Plotly = await ensurePlotly();
    if (stopped) return;
    drawChart(Plotly);
    columnSelect.onchange = () => { setParams({ chart: columnSelect.value }); drawChart(Plotly); };
  }

  function render() {
    const measured = report.rows.filter((row) => row.kind === "measured").length;
    const published = report.rows.filter((row) => row.published).length;
    fill(subtitle, `Dataset ${report.dataset} · ${measured} measured model${measured === 1 ? "" : "s"} · ${published} published row${published === 1 ? "" : "s"} (copied from their sources, never measured here) · top-1 % as mean ± std over seeds.`);
    renderTable();
    fill(body,
      measured ? null : h("div", { class: "empty", id: "report-empty" },
        sweep || ids.length ? "None of these runs has evaluation results yet: the table fills in as their eval runs finish."
          : "No runs chosen: select runs on the Runs page (or on Compare) and press Report. The published figures are shown below.",
        h("br"), h("a", { href: "/runs", "data-link": true, class: "button" }, "Go to runs")),
      h("h2", {}, "Accuracy against parameters and against latency"),
      h("div", { class: "chart-head" }, h("label", { for: "chart-column" }, "figure ", columnSelect),
        h("span", { class: "muted" }, "Pareto fronts over measured models only; published models are hollow grey diamonds (on the latency chart: published accuracy, latency measured here).")),
      h("div", { class: "charts" },
        h("figure", { class: "chart-box", "aria-label": "Top-1 against parameters, Pareto front over measured models" }, h("h3", {}, "Against parameters"), chartDiv),
        h("figure", { class: "chart-box", "aria-label": "Top-1 against latency (ms per image, batch 1, one thread), Pareto front over measured models" }, h("h3", {}, "Against latency"), latencyDiv)),
      renderNotes(),
    );
    renderChart();
  }

  async function copyMarkdown() {
    try {
      const response = await fetch(apiUrl("md"), { credentials: "same-origin" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const text = await response.text();
      const ok = await copyText(text);
      copyState.textContent = ok ? "Copied" : "Copy failed: use Export Markdown";
      if (ok) copyState.dataset.copied = text; // what went to the clipboard, for the page's tests
    } catch (exc) {
      copyState.textContent = `Copy failed: ${exc.message}`;
    }
  }

  load();
  return () => {
    stopped = true;
  };
}
