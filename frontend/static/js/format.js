// How numbers, times and statuses look on every page.
import { h } from "./dom.js";

// Run colours live in colors.js: assigned by position within a view, not hashed from the id.

export function pct(value, digits = 2) {
  return typeof value === "number" && Number.isFinite(value) ? `${value.toFixed(digits)} %` : "–";
}

export function params(count) {
  if (typeof count !== "number") return "–";
  return count >= 1e5 ? `${(count / 1e6).toFixed(2)} M` : `${(count / 1e3).toFixed(1)} k`;
}

export function rate(value) {
  return typeof value === "number" ? `${Math.round(value).toLocaleString("en-US")} img/s` : "–";
}

export function number(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return value === null || value === undefined ? "–" : String(value);
  if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e5)) return value.toExponential(3);
  return Number.isInteger(value) ? String(value) : value.toPrecision(4).replace(/\.?0+$/, "");
}

export function duration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "–";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

export function relativeTime(iso) {
  if (!iso) return h("span", { class: "muted" }, "–");
  const date = new Date(iso);
  const seconds = (Date.now() - date.getTime()) / 1000;
  let text;
  if (seconds < 45) text = "just now";
  else if (seconds < 3600) text = `${Math.round(seconds / 60)} min ago`;
  else if (seconds < 86400) text = `${Math.round(seconds / 3600)} h ago`;
  else text = `${Math.round(seconds / 86400)} d ago`;
  return h("time", { datetime: iso, title: date.toLocaleString() }, text);
}

export function statusPill(status) {
  return h("span", { class: `pill ${status}`, "data-status": status }, status);
}

export function progressBar(run, big = false) {
  const fraction = run.progress?.fraction;
  if (run.status !== "running" || typeof fraction !== "number") return null;
  const eta = run.progress.eta_seconds;
  return h(
    "span",
    { class: big ? "progress big" : "progress", title: `step ${run.progress.step} of ${run.progress.total_steps}` },
    h("span", { class: "bar", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(fraction * 100), "aria-label": "progress" },
      h("span", { style: `width:${(fraction * 100).toFixed(1)}%` })),
    `${Math.round(fraction * 100)} %`,
    typeof eta === "number" ? ` · ETA ${duration(eta)}` : "",
  );
}

export function runLabel(run) {
  return run.name || run.id;
}

// The kNN figure a run is known by: the final monitor value (never a best-of-many over test looks).
export function knnOf(run) {
  const latest = run.latest_metrics || {};
  for (const key of ["knn_top1", "knn_weighted_top1", "knn_seed_top1"]) {
    if (typeof latest[key] === "number") return latest[key];
  }
  return null;
}
