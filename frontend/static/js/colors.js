import { h } from "./dom.js";

// Run colours: assigned by position within the current view, never hashed from an id (eight hashed
// colours collide for four runs more often than not). Beyond the palette the dash and marker change,
// so run 11 is the colour of run 1 drawn dashed with squares: every run in a view stays distinct.

// Every light-theme colour has at least 3:1 contrast against white (WCAG 1.4.11 for graphics), no
// yellow; the order puts the most distinct hues first (Okabe-Ito's, then darker companions).
const LIGHT = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#1F2328", "#7C3AED", "#8C564B", "#0E7490", "#BE185D", "#4D7C0F"];
// The same hues lifted for the dark theme's panel (#171b21): near-black would vanish there.
const DARK = ["#56B4E9", "#E69F00", "#34D399", "#F0A3CB", "#E6E9EE", "#A78BFA", "#D4A373", "#22D3EE", "#F472B6", "#A3E635"];
export const DASHES = ["solid", "dash", "dot", "dashdot", "longdash"];
export const SYMBOLS = ["circle", "square", "diamond", "triangle-up", "cross"];

export function palette() {
  const dark = typeof matchMedia === "function" && matchMedia("(prefers-color-scheme: dark)").matches;
  return dark ? DARK : LIGHT;
}

/** The style of the run at `index` in the view: {color, dash, symbol}. */
export function styleAt(index) {
  const colors = palette();
  const round = Math.floor(index / colors.length);
  return { color: colors[index % colors.length], dash: DASHES[round % DASHES.length], symbol: SYMBOLS[round % SYMBOLS.length] };
}

/**
 * One style per id, in the order given (the page's order: the URL's runs, the table's rows).
 * A repeated id keeps its first style, so every chart and table of a page agrees on a run's colour.
 */
export function runStyles(ids) {
  const styles = new Map();
  for (const id of ids) if (!styles.has(id)) styles.set(id, styleAt(styles.size));
  return {
    get: (id) => styles.get(id) || styleAt(styles.size),
    color: (id) => (styles.get(id) || styleAt(0)).color,
    ids: () => [...styles.keys()],
  };
}

/** `#rrggbb` at `alpha` as rgba(), for the translucent bands behind group means. */
export function translucent(hex, alpha) {
  const value = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(value >> 16) & 255},${(value >> 8) & 255},${value & 255},${alpha})`;
}

/** The table's key to a run's line: its colour, striped once the palette repeats with a dash. */
export function swatch(style, label) {
  const span = h("span", { class: "swatch", "data-color": style.color, "data-dash": style.dash, title: label || null });
  span.style.background = style.dash === "solid" ? style.color : `repeating-linear-gradient(90deg, ${style.color} 0 3px, transparent 3px 5px)`;
  span.style.borderColor = style.color;
  return span;
}
