// Plotly helpers shared by the Run and Compare pages: loading, metric groups, styling, smoothing.
import { palette } from "./colors.js";

let plotlyPromise = null;

export function ensurePlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  plotlyPromise = plotlyPromise || new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/static/vendor/plotly.min.js";
    script.onload = () => resolve(window.Plotly);
    script.onerror = () => {
      plotlyPromise = null;
      reject(new Error("could not load the chart library from the server"));
    };
    document.head.append(script);
  });
  return plotlyPromise;
}

// Metric key -> the chart it belongs on. Keys the trainer does not document get a chart of their own.
const GROUPS = [
  { id: "loss", title: "Loss", y: "loss", match: (key) => key === "loss" || key.endsWith("_loss") },
  { id: "accuracy", title: "kNN / probe top-1", y: "top-1 (%)", match: (key) => /top1|top_1|accuracy/.test(key) },
  { id: "lr", title: "Learning rate", y: "learning rate", match: (key) => key === "lr" },
  { id: "weight_decay", title: "Weight decay", y: "weight decay", match: (key) => key === "weight_decay" },
  { id: "teacher_temp", title: "Teacher temperature", y: "temperature", match: (key) => key === "teacher_temp" },
  { id: "momentum", title: "Teacher EMA momentum", y: "momentum", match: (key) => key === "momentum" },
  { id: "throughput", title: "Throughput", y: "images / s", match: (key) => key === "images_per_sec" },
  { id: "entropy", title: "Teacher entropy", y: "entropy (nats)", match: (key) => key.includes("entropy") },
  // System metrics (lowdino.contract.metrics, sys_*): drawn apart, under "System" on the Run page.
  { id: "sys_cpu", title: "CPU", y: "CPU % (100 = one core)", section: "system", match: (key) => key === "sys_cpu_percent" },
  { id: "sys_memory", title: "Resident memory", y: "MiB", section: "system", match: (key) => key === "sys_rss_mb" },
  { id: "sys_data_wait", title: "Waiting for data", y: "% of step time", section: "system", match: (key) => key === "sys_data_wait_percent" },
  { id: "sys_gpu_util", title: "GPU utilisation", y: "%", section: "system", match: (key) => key === "sys_gpu_util_percent" },
  { id: "sys_gpu_memory", title: "GPU memory", y: "MiB", section: "system", match: (key) => key === "sys_gpu_memory_mb" },
  { id: "sys_gpu_power", title: "GPU power", y: "W", section: "system", match: (key) => key === "sys_gpu_power_w" },
  { id: "sys_other", title: "System", y: "value", section: "system", match: (key) => key.startsWith("sys_") },
];
export const DATA_WAIT_KEY = "sys_data_wait_percent";
export const COLLAPSE_KEY = "collapse_warning";
export const X_TITLES = { step: "optimiser step", epoch: "epoch", time: "wall time (s since the run's start)" };

export function groupFor(key) {
  const found = GROUPS.find((group) => group.match(key));
  return found || { id: `key:${key}`, title: key, y: key, match: (other) => other === key };
}

export function groupKeys(keys) {
  const groups = new Map();
  for (const key of keys) {
    if (key === COLLAPSE_KEY) continue;
    const group = groupFor(key);
    if (!groups.has(group.id)) groups.set(group.id, { ...group, keys: [] });
    groups.get(group.id).keys.push(key);
  }
  const order = GROUPS.map((group) => group.id);
  return [...groups.values()].sort((a, b) => {
    const ia = order.indexOf(a.id), ib = order.indexOf(b.id);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.id.localeCompare(b.id);
  });
}

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

export function layout({ title, xTitle = X_TITLES.step, yTitle, logX = false, extra = {} }) {
  const text = cssVar("--text", "#1f2328");
  const grid = cssVar("--border", "#d6dae0");
  return {
    title: { text: title, font: { size: 13 }, x: 0.02 },
    margin: { l: 58, r: 16, t: 34, b: 54 },
    // Tick labels, titles and legends push the margins out rather than being cut at the edges.
    colorway: palette(),
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 11, color: text },
    xaxis: {
      title: { text: xTitle }, gridcolor: grid, zeroline: false, automargin: true, ...(logX ? { type: "log" } : {}),
      // Parameter counts span 0.4-25 M: a 1-2-5 ladder reads better than Plotly's dense log minor ticks.
      ...(logX ? { tickvals: [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100], ticktext: ["0.1", "0.2", "0.5", "1", "2", "5", "10", "20", "50", "100"] } : {}),
    },
    yaxis: { title: { text: yTitle }, gridcolor: grid, zeroline: false, automargin: true },
    legend: { orientation: "h", y: -0.22, font: { size: 10 } },
    hovermode: "closest",
    uirevision: "keep", // keeps zoom and legend choices when data is replaced
    ...extra,
  };
}

export function emptyNote(text) {
  return { annotations: [{ text, showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { size: 13 } }], xaxis: { visible: false }, yaxis: { visible: false } };
}

export const CONFIG = { responsive: true, displaylogo: false, toImageButtonOptions: { format: "png", scale: 2 } };

// A trace is WebGL once a series is long: SVG slows down past a few thousand points.
export function traceType(length) {
  return length > 2000 ? "scattergl" : "scatter";
}

/** Exponential moving average with TensorBoard's debiasing, so early points are not pulled to 0. */
export function smooth(values, weight) {
  if (!weight) return values.slice();
  const out = [];
  let last = 0;
  let count = 0;
  for (const value of values) {
    if (value === null || !Number.isFinite(value)) {
      out.push(value);
      continue;
    }
    last = last * weight + (1 - weight) * value;
    count += 1;
    out.push(last / (1 - weight ** count));
  }
  return out;
}

/** Vertical dashed lines with a label, e.g. where the collapse detector fired. */
export function markerShapes(xs, label, color = "#b42318") {
  const shapes = xs.map((x) => ({ type: "line", x0: x, x1: x, yref: "paper", y0: 0, y1: 1, line: { color, width: 1, dash: "dot" } }));
  const annotations = xs.slice(0, 20).map((x) => ({ x, yref: "paper", y: 1, text: label, showarrow: false, font: { size: 9, color }, yanchor: "bottom" }));
  return { shapes, annotations };
}

/** Pareto front (fewest parameters for the best accuracy) of {x, y} points, left to right. */
export function paretoFront(points) {
  const sorted = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x || b.y - a.y);
  const front = [];
  for (const point of sorted) if (!front.length || point.y > front[front.length - 1].y) front.push(point);
  return front;
}

/**
 * A y range for traces whose values are all the same (a constant teacher temperature): Plotly would
 * centre 0.02 on a -0.5...1 axis; this keeps it readable, ±10 % around the value. Null otherwise.
 */
export function flatRange(traces) {
  let low = Infinity;
  let high = -Infinity;
  for (const trace of traces) {
    for (const y of trace.y || []) {
      if (typeof y !== "number" || !Number.isFinite(y)) continue;
      low = Math.min(low, y);
      high = Math.max(high, y);
    }
  }
  if (!Number.isFinite(low)) return null;
  const scale = Math.max(Math.abs(low), Math.abs(high));
  if (high - low > 1e-9 * (scale || 1)) return null;
  const pad = scale ? scale * 0.1 : 1;
  return [low - pad, high + pad];
}

/** Apply flatRange to a layout in place (Plotly's autorange otherwise); returns the layout. */
export function withFlatRange(chartLayout, traces) {
  const range = flatRange(traces);
  if (range) chartLayout.yaxis = { ...chartLayout.yaxis, range, autorange: false };
  return chartLayout;
}

/**
 * Traces of one chart whose values repeat an earlier trace's (`loss` equal to `dino_loss` when
 * DINO is the only term) would hide it: each later trace is dashed and its legend names the twin.
 */
export function revealTwins(traces) {
  traces.forEach((trace, i) => {
    const twin = traces.slice(0, i).find((other) => other.y.length === trace.y.length && other.y.length > 0 && other.y.every((v, j) => v === trace.y[j]));
    if (!twin) return;
    trace.name = `${trace.name} (same values as ${twin.name})`;
    trace.line = { ...(trace.line || {}), dash: "dash", width: 2 };
    twin.line = { ...(twin.line || {}), width: 4 };
  });
  return traces;
}
