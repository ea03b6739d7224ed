// The page-wide message line under the top bar: failed requests say so here, with a retry.
import { clear, h } from "./dom.js";

const banner = () => document.getElementById("banner");

export function showBanner(message, { retry, level = "error" } = {}) {
  const element = banner();
  clear(element);
  element.className = level === "warn" ? "banner warn" : "banner";
  element.append(message);
  if (retry) element.append(h("button", { type: "button", onclick: () => { hideBanner(); retry(); } }, "Retry"));
  element.hidden = false;
}

export function hideBanner() {
  banner().hidden = true;
}
