// Parallel coordinates of runs: the parameters that differ between them, then their final metrics,
// one line per run in the run's colour (Plotly parcoords, or SVG lines where parcoords cannot start).
// Plotly's parcoords names no line on hover, so a linked table beside it does: hovering or focusing a row (or a line, where the browser can pick it) highlights
// that run and names it in the readout; brushing an axis dims the rows outside the brushed ranges.
//
// Reusable: drawParallel(Plotly, container, rows, {params, metrics, labels, log}) with rows =
// [{id, label, color, dash, href, values: {name: value}}]; any page (Compare, Sweep, Search) passes its runs.
// `labels` names an axis other than "<key>" / "<key> (final)"; `log` lists the keys drawn on a log10 axis
// (ticks still read in the option's own units); `dash` (SVG drawing only: WebGL lines have none) sets a
// row's line apart beyond its colour, as a pruned trial's.
import { CONFIG } from "./charts.js";
import { swatch } from "./colors.js";
import { fill, h } from "./dom.js";
import { number } from "./format.js";

const DIMMED = "rgba(150,150,150,0.25)";

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function isNumber(value) {
  return typeof value === "number" && Number.isFinite(value);
}

function cellText(value) {
  if (value === undefined || value === null) return "–";
  if (isNumber(value)) return number(value);
  return Array.isArray(value) ? value.join(", ") : String(value);
}

/** Ticks of a log10 axis from `low` to `high` (log10 units): both ends and the decades between. */
function logTicks(low, high) {
  const ticks = [low];
  for (let decade = Math.ceil(low); decade < high; decade += 1) if (decade - low > 0.15 && high - decade > 0.15) ticks.push(decade);
  ticks.push(high);
  return { tickvals: ticks, ticktext: ticks.map((tick) => number(10 ** tick)) };
}

/** One parcoords dimension: numbers as they are (or as log10), anything else as evenly spaced named ticks. */
function dimension(name, values, metric, { label: given, log = false } = {}) {
  const label = given || (metric ? `${name} (final)` : name);
  if (values.every((value) => value === null || value === undefined || isNumber(value))) {
    const present = values.filter(isNumber).filter((value) => !log || value > 0);
    if (!present.length) return null;
    if (log) {
      const logs = values.map((value) => (isNumber(value) && value > 0 ? Math.log10(value) : null));
      const [low, high] = [Math.log10(Math.min(...present)), Math.log10(Math.max(...present))];
      const span = high > low ? [low, high] : [low - 0.5, high + 0.5];
      const floor = logs.some((value) => value === null) ? span[0] - (span[1] - span[0]) * 0.1 : null;
      return { label, values: logs.map((value) => (value === null ? floor : value)), range: [floor ?? span[0], span[1]], missingAt: floor, ...logTicks(span[0], span[1]) };
    }
    // A missing value sits just below the axis' range (missingAt), labelled, rather than vanishing the line.
    const low = Math.min(...present);
    const high = Math.max(...present);
    const missing = values.some((value) => !isNumber(value));
    const floor = missing ? low - (high - low || Math.abs(low) || 1) * 0.1 : null;
    return { label, values: values.map((value) => (isNumber(value) ? value : floor)), missingAt: floor, ...(missing ? { range: [floor, high] } : {}) };
  }
  const texts = values.map(cellText);
  const names = [...new Set(texts)].sort();
  return { label, values: texts.map((text) => names.indexOf(text)), tickvals: names.map((_, i) => i), ticktext: names, range: [0, Math.max(1, names.length - 1)] };
}

/** A stepped colour scale: line i gets exactly rows[i].color. */
function colorscale(colors) {
  if (colors.length === 1) return [[0, colors[0]], [1, colors[0]]];
  const scale = [];
  colors.forEach((color, i) => {
    scale.push([i / colors.length, color], [(i + 1) / colors.length, color]);
  });
  return scale;
}

function lineColors(rows, highlight) {
  const colors = rows.map((row) => (highlight === null || highlight === row.id ? row.color : DIMMED));
  return { color: rows.map((_, i) => i + 0.5), colorscale: colorscale(colors), cmin: 0, cmax: rows.length, showscale: false };
}

/** Where a dimension's value sits on its axis, 0 (bottom) to 1 (top). */
function position(dim, value) {
  const [low, high] = dim.range || [Math.min(...dim.values), Math.max(...dim.values)];
  return high > low ? (value - low) / (high - low) : 0.5;
}

/** Axis ends (numbers) or every category (text) written beside each vertical axis; "no value" at the
 * bottom where lines without one sit (missingAt), the lowest real value above it. */
function axisLabels(dim, x) {
  const note = (y, text, anchor) => ({ x, y, xref: "x", yref: "y", text, showarrow: false, font: { size: 10 }, yanchor: anchor, bgcolor: cssVar("--panel", "#ffffff") });
  const none = dim.missingAt === null || dim.missingAt === undefined ? [] : [note(-0.02, "no value", "top")];
  if (dim.ticktext) return [...dim.ticktext.slice(0, 12).map((text, i) => note(position(dim, dim.tickvals[i]), text, "middle")), ...none];
  const [low, high] = dim.range || [Math.min(...dim.values), Math.max(...dim.values)];
  const lowest = none.length ? Math.min(...dim.values.filter((value) => value !== dim.missingAt)) : low;
  return [note(1.02, number(high), "bottom"), note(none.length ? position(dim, lowest) : -0.02, number(lowest), "top"), ...none];
}

/** The dimension as Plotly's parcoords takes it (without this module's own keys). */
function plotlyDimension({ missingAt, ...dim }) {
  return dim;
}

/** The parallel coordinates as SVG: one scatter trace per run across the axes, hovered point by point. */
function svgFigure(rows, axes, base) {
  const xs = axes.map((_, i) => i);
  const traces = rows.map((row, r) => ({
    type: "scatter", mode: "lines+markers", name: row.label, x: xs, y: axes.map(({ dim }) => position(dim, dim.values[r])),
    line: { color: row.color, width: 2, dash: row.dash || "solid" }, marker: { color: row.color, size: 6 }, showlegend: false, meta: { run: row.id },
    customdata: axes.map(({ key, dim }) => `${dim.label}: ${cellText(row.values[key])}`),
    hovertemplate: `<b>${row.label}</b><br>%{customdata}<extra></extra>`,
  }));
  const layout = {
    ...base, hovermode: "closest", margin: { l: 30, r: 30, t: 30, b: 60 },
    xaxis: { tickvals: xs, ticktext: axes.map(({ dim }) => dim.label), range: [-0.25, axes.length - 0.75], showgrid: true, gridcolor: cssVar("--muted", "#5b636e"), gridwidth: 1.5, zeroline: false, fixedrange: true, automargin: true },
    yaxis: { visible: false, range: [-0.1, 1.1], fixedrange: true },
    annotations: axes.flatMap(({ dim }, i) => axisLabels(dim, i)),
  };
  return [traces, layout];
}

/** The parameters worth an axis: config keys whose values differ between rows. */
export function varyingKeys(rows, keys) {
  return keys.filter((key) => new Set(rows.map((row) => JSON.stringify(row.values[key] ?? null))).size > 1);
}

/**
 * Draw into `container` (emptied): the chart (#parcoords-chart), a readout and the linked table
 * (#parcoords-table, one row per run). Returns {chart, table} or null when nothing can be drawn.
 */
export async function drawParallel(Plotly, container, rows, { params, metrics, title = "Parameters against final metrics", labels = {}, log = [] }) {
  const axis = (key, metric) => ({ key, dim: dimension(key, rows.map((row) => row.values[key]), metric, { label: labels[key], log: log.includes(key) }) });
  const axes = [...params.map((key) => axis(key, false)), ...metrics.map((key) => axis(key, true))].filter(({ dim }) => dim);
  if (rows.length < 2 || axes.length < 2) {
    fill(container, h("p", { class: "muted", id: "parcoords-empty" },
      rows.length < 2 ? "Parallel coordinates need two runs or more." : "These runs have too few differing parameters and final metrics for two axes."));
    return null;
  }
  const chart = h("div", { class: "chart tall", id: "parcoords-chart" });
  const readout = h("p", { class: "muted", id: "parcoords-readout", "aria-live": "polite" }, "Hover or focus a run below (or a line) to pick it out.");
  const tbody = h("tbody");
  const table = h("table", { class: "data", id: "parcoords-table" },
    h("caption", { class: "sr-only" }, `${title}: the values of each line`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "run"), axes.map(({ dim }) => h("th", { scope: "col", class: "num" }, dim.label)))),
    tbody);
  fill(container, h("figure", { class: "figure", "aria-label": title }, chart, h("figcaption", { class: "sr-only" }, title)), readout, table);

  let highlight = null;
  const trace = () => ({ type: "parcoords", line: lineColors(rows, highlight), dimensions: axes.map(({ dim }) => plotlyDimension(dim)), labelangle: -20, labelside: "bottom" });
  const chartLayout = { margin: { l: 70, r: 70, t: 30, b: 70 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: cssVar("--text", "#1f2328") } };

  const rowElements = rows.map((row) => {
    const tr = h("tr", { "data-run": row.id },
      h("td", {}, swatch({ color: row.color, dash: row.dash || "solid" }), row.href ? h("a", { href: row.href, "data-link": true }, row.label) : row.label),
      axes.map(({ key }) => h("td", { class: "num" }, cellText(row.values[key]))));
    const pick = () => setHighlight(row.id);
    tr.addEventListener("mouseenter", pick);
    tr.addEventListener("focusin", pick);
    tr.addEventListener("mouseleave", () => setHighlight(null));
    tr.addEventListener("focusout", () => setHighlight(null));
    return tr;
  });
  tbody.append(...rowElements);

  function setHighlight(id) {
    if (highlight === id) return;
    highlight = id;
    const row = rows.find((item) => item.id === id);
    readout.textContent = row ? `${row.label}: ${axes.map(({ key, dim }) => `${dim.label} ${cellText(row.values[key])}`).join(" · ")}` : "Hover or focus a run below (or a line) to pick it out.";
    for (const tr of rowElements) tr.classList.toggle("picked", tr.dataset.run === id);
    if (chart.dataset.mode === "parcoords") Plotly.restyle(chart, { line: [lineColors(rows, highlight)] }, [0]);
    else Plotly.restyle(chart, { opacity: rows.map((item) => (highlight === null || item.id === highlight ? 1 : 0.15)) });
  }

  chart.dataset.mode = "parcoords";
  await Plotly.react(chart, [trace()], chartLayout, CONFIG);
  if (chart.querySelector(".no-webgl")) {
    // parcoords draws through regl, whose shaders are compiled from generated code at run time; the
    // dashboard's Content-Security-Policy (script-src 'self', no 'unsafe-eval') refuses that, as do
    // browsers without WebGL. The same axes as SVG lines then, which Plotly can hover one by one.
    Plotly.purge(chart);
    chart.dataset.mode = "svg";
    await Plotly.react(chart, ...svgFigure(rows, axes, chartLayout), CONFIG);
  }
  // A hovered line names its run (SVG: each line is a trace; parcoords: where WebGL can pick it).
  chart.on("plotly_hover", (event) => {
    const index = chart.dataset.mode === "svg" ? event?.points?.[0]?.curveNumber : event?.curveNumber;
    if (Number.isInteger(index) && rows[index]) setHighlight(rows[index].id);
  });
  chart.on("plotly_unhover", () => setHighlight(null));
  // Brushing: rows whose line leaves a brushed range are dimmed in the table too.
  chart.on("plotly_restyle", () => {
    const dims = chart.data?.[0]?.dimensions || [];
    rowElements.forEach((tr, i) => {
      const inside = dims.every((dim) => {
        const ranges = dim.constraintrange;
        if (!ranges) return true;
        const list = Array.isArray(ranges[0]) ? ranges : [ranges];
        return list.some(([low, high]) => dim.values[i] >= low && dim.values[i] <= high);
      });
      tr.classList.toggle("filtered-out", !inside);
    });
  });
  return { chart, table };
}
