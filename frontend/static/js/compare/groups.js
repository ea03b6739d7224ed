// Grouping runs by their config, and the mean ± std of a group's curves.
//
// Two ways to group: by a config key (one group per value of it, as W&B's "group by"), or
// POOL_SEED: runs whose configs are identical but for the seed form one group, the repeat of one
// recipe over seeds whose mean ± std is what a researcher reports.

export const POOL_SEED = "pool:seed";
export const NO_GROUPING = "none";
const SEED = "seed";

function comparable(config, ignored, without = null) {
  const kept = Object.keys(config || {}).filter((key) => !ignored.has(key) && key !== without).sort();
  return JSON.stringify(kept.map((key) => [key, config[key] ?? null]));
}

export function valueText(value) {
  if (value === undefined) return "–";
  if (value === null) return "none";
  return Array.isArray(value) ? value.join(", ") : String(value);
}

/** Config keys whose values differ between `runs` (the diff's rows), minus the server-owned `ignored`. */
export function differingKeys(runs, ignored) {
  const keys = [...new Set(runs.flatMap((run) => Object.keys(run.config || {})))].filter((key) => !ignored.has(key));
  return keys.filter((key) => new Set(runs.map((run) => JSON.stringify(run.config?.[key] ?? null))).size > 1).sort();
}

/** True when two of `runs` differ in nothing but their seed: then seeds are pooled by default. */
export function hasSeedRepeats(runs, ignored) {
  const seen = new Set();
  for (const run of runs) {
    if (run.config?.[SEED] === undefined) continue;
    const key = comparable(run.config, ignored, SEED);
    if (seen.has(key)) return true;
    seen.add(key);
  }
  return false;
}

export function defaultGrouping(runs, ignored) {
  return hasSeedRepeats(runs, ignored) ? POOL_SEED : NO_GROUPING;
}

/** The select's choices: none, seeds pooled (when seeds differ), then every differing key. */
export function groupingChoices(runs, ignored) {
  const keys = differingKeys(runs, ignored);
  const choices = [{ value: NO_GROUPING, label: "no grouping (one line per run)" }];
  if (keys.includes(SEED)) choices.push({ value: POOL_SEED, label: "seeds pooled (configs identical but for seed)" });
  for (const key of keys) choices.push({ value: key, label: `by ${key}` });
  return choices;
}

/**
 * Groups of `runs` in the order their first member appears: [{id, label, members}].
 * No grouping gives one group per run, so callers draw both the same way.
 */
export function groupRuns(runs, grouping, ignored) {
  const groups = new Map();
  const others = differingKeys(runs, ignored).filter((key) => key !== SEED);
  for (const run of runs) {
    let id;
    let label;
    if (grouping === POOL_SEED) {
      id = comparable(run.config, ignored, SEED);
      label = others.length ? others.map((key) => `${key}=${valueText(run.config?.[key])}`).join(" · ") : run.backbone || "all runs";
    } else if (grouping && grouping !== NO_GROUPING) {
      id = JSON.stringify(run.config?.[grouping] ?? null);
      label = `${grouping}=${valueText(run.config?.[grouping])}`;
    } else {
      id = run.id;
      label = run.name || run.id;
    }
    if (!groups.has(id)) groups.set(id, { id, label, members: [] });
    groups.get(id).members.push(run);
  }
  return [...groups.values()];
}

function interpolate(xs, ys, x) {
  // xs ascending; linear between the neighbours, undefined outside the member's own range.
  if (!xs.length || x < xs[0] || x > xs[xs.length - 1]) return undefined;
  let low = 0;
  let high = xs.length - 1;
  while (high - low > 1) {
    const middle = (low + high) >> 1;
    if (xs[middle] <= x) low = middle;
    else high = middle;
  }
  if (xs[low] === x) return ys[low];
  if (xs[high] === x) return ys[high];
  const t = (x - xs[low]) / (xs[high] - xs[low]);
  return ys[low] + t * (ys[high] - ys[low]);
}

/**
 * Mean and sample standard deviation of members' series {x, y} at every x any member has, each
 * member interpolated linearly within its own range (downsampled series rarely share their x).
 * Returns {x, mean, lower, upper, count} with count = members present at that x.
 */
export function meanBand(seriesList) {
  const clean = seriesList.map((series) => {
    const pairs = series.x.map((x, i) => [x, series.y[i]]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0]);
    return { x: pairs.map((p) => p[0]), y: pairs.map((p) => p[1]) };
  });
  const xs = [...new Set(clean.flatMap((series) => series.x))].sort((a, b) => a - b);
  const out = { x: [], mean: [], lower: [], upper: [], count: [] };
  for (const x of xs) {
    const values = clean.map((series) => interpolate(series.x, series.y, x)).filter((v) => v !== undefined);
    if (!values.length) continue;
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const variance = values.length > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1) : 0;
    const std = Math.sqrt(variance);
    out.x.push(x);
    out.mean.push(mean);
    out.lower.push(mean - std);
    out.upper.push(mean + std);
    out.count.push(values.length);
  }
  return out;
}
