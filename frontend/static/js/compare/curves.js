// Compare's training curves: one line per run, or per group with its mean ± std band; the wall-time
// axis counts seconds since each run's start (the records carry Unix seconds: 1.79e9 says nothing).
import { api } from "../api.js";
import { X_TITLES, emptyNote, layout, smooth, traceType, withFlatRange } from "../charts.js";
import { translucent } from "../colors.js";
import { meanBand } from "./groups.js";

export const CURVES = [
  { key: "loss", title: "Training loss", y: "loss" },
  { key: "knn_top1", title: "kNN top-1 during training", y: "top-1 (%)" },
];

/**
 * Follows the curves of a set of runs: fetches each run's series (finer for a zoomed window),
 * remembers each run's time origin, and draws either runs or groups.
 */
export function curveSource() {
  const origins = new Map(); // run id -> Unix seconds of its start

  function originOf(run, series) {
    const first = series?.x?.find((x) => typeof x === "number");
    const started = run.started_at ? Date.parse(run.started_at) / 1000 : null;
    // The server's start stamp and the trainer's clock can differ by a little: never start after the first point.
    const candidates = [first, started].filter((value) => typeof value === "number" && Number.isFinite(value));
    return candidates.length ? Math.min(...candidates) : 0;
  }

  async function fetch(runs, keys, x, range) {
    return Promise.all(runs.map(async (run) => {
      const query = new URLSearchParams({ keys: keys.join(","), x, max_points: "1500" });
      const origin = origins.get(run.id) ?? 0;
      const shift = x === "time" ? origin : 0;
      if (range) {
        query.set("start", String(Math.floor(range[0] + shift)));
        query.set("end", String(Math.ceil(range[1] + shift)));
      }
      let found;
      try {
        found = await api(`/api/runs/${encodeURIComponent(run.id)}/metrics?${query}`);
      } catch {
        found = { series: [] };
      }
      if (x === "time" && !range) {
        const origin = Math.min(...found.series.map((series) => originOf(run, series)));
        if (Number.isFinite(origin)) origins.set(run.id, origin);
      }
      const relative = x === "time" ? origins.get(run.id) ?? 0 : 0;
      return found.series.map((series) => ({ ...series, x: series.x.map((value) => (typeof value === "number" ? value - relative : value)) }));
    }));
  }

  return { fetch };
}

/** Plotly traces for one metric: each group's mean line (and its band when it has two members or more). */
export function curveTraces({ key, groups, seriesByRun, styleOf, weight, x, grouped }) {
  const traces = [];
  for (const group of groups) {
    const members = group.members
      .map((run) => ({ run, series: seriesByRun.get(run.id)?.find((item) => item.key === key) }))
      .filter(({ series }) => series && series.y.length);
    if (!members.length) continue;
    const style = styleOf(group.members[0].id);
    if (!grouped) {
      const { run, series } = members[0];
      const name = group.label;
      const hover = `${name}<br>${x} %{x:.4~g}<br>${key} %{y:.4g}<extra>${series.downsampled ? "each point stands for a bucket" : ""}</extra>`;
      if (weight > 0) {
        // The raw series faintly behind the smoothed one, so smoothing hides nothing.
        traces.push({ type: traceType(series.y.length), mode: "lines", x: series.x, y: series.y, name: `${name} (raw)`, showlegend: false,
          line: { color: style.color, width: 1, dash: style.dash }, opacity: 0.25, hoverinfo: "skip", meta: { run: run.id } });
      }
      traces.push({ type: traceType(series.y.length), mode: series.y.length < 3 ? "lines+markers" : "lines", x: series.x, y: smooth(series.y, weight), name,
        line: { color: style.color, width: 2, dash: style.dash }, marker: { symbol: style.symbol, color: style.color }, hovertemplate: hover, meta: { run: run.id } });
      continue;
    }
    const band = meanBand(members.map(({ series }) => ({ x: series.x, y: smooth(series.y, weight) })));
    const n = members.length;
    const name = `${group.label} (mean of ${n})`;
    if (n > 1) {
      traces.push({ type: "scatter", mode: "lines", x: [...band.x, ...band.x.slice().reverse()], y: [...band.upper, ...band.lower.slice().reverse()],
        fill: "toself", fillcolor: translucent(style.color, 0.18), line: { width: 0, color: style.color }, hoverinfo: "skip", showlegend: false,
        name: `${group.label} ± std`, meta: { band: group.id } });
    }
    traces.push({ type: traceType(band.x.length), mode: band.x.length < 3 ? "lines+markers" : "lines", x: band.x, y: band.mean, name,
      customdata: band.x.map((_, i) => [band.upper[i] - band.mean[i], band.count[i]]),
      line: { color: style.color, width: 2.5, dash: style.dash }, marker: { symbol: style.symbol, color: style.color },
      hovertemplate: `${group.label}<br>${x} %{x:.4~g}<br>${key} %{y:.4g} ± %{customdata[0]:.3g} (std, %{customdata[1]} runs)<extra>mean over ${n}</extra>`,
      meta: { group: group.id } });
  }
  return traces;
}

/** The layout of one curve chart: the x title, an empty note, a readable axis for a flat series. */
export function curveLayout({ traces, x, yTitle, range }) {
  const extra = traces.length ? {} : emptyNote("no selected run has this metric");
  const chartLayout = withFlatRange(layout({ title: "", xTitle: X_TITLES[x], yTitle, extra }), traces);
  if (range) chartLayout.xaxis = { ...chartLayout.xaxis, range, autorange: false };
  return chartLayout;
}
