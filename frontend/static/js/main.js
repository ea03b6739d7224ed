// App shell: picks the page from the path, keeps the top bar's health light and the banner.
import { api } from "./api.js";
import { hideBanner } from "./banner.js";
import { ensurePlotly } from "./charts.js";
import { clear, fill, h } from "./dom.js";
import { navigate } from "./url.js";

const ROUTES = [
  [/^\/(runs\/?)?$/, "runs", () => import("./pages/runs.js")],
  [/^\/runs\/([^/]+)$/, "runs", () => import("./pages/run.js")],
  [/^\/launch$/, "launch", () => import("./pages/launch.js")],
  [/^\/compare$/, "compare", () => import("./pages/compare.js")],
  [/^\/sweeps\/?$/, "sweeps", () => import("./pages/sweeps.js")],
  [/^\/sweeps\/([^/]+)$/, "sweeps", () => import("./pages/sweep.js")],
  [/^\/searches\/?$/, "searches", () => import("./pages/searches.js")],
  [/^\/searches\/([^/]+)$/, "searches", () => import("./pages/search.js")],
  // /report?runs=a,b or ?sweep=ID; /report/<sweep id> passes the id to the page as its sweep.
  [/^\/report\/?$/, "report", () => import("./pages/report.js")],
  [/^\/report\/([^/]+)$/, "report", () => import("./pages/report.js")],
];

const app = document.getElementById("app");
const topbar = document.querySelector(".topbar");
const navToggle = document.getElementById("nav-toggle");
let unmount = null;
let renderCount = 0;

function setMenu(open) {
  topbar.classList.toggle("open", open);
  navToggle.setAttribute("aria-expanded", String(open));
}
navToggle.addEventListener("click", () => setMenu(!topbar.classList.contains("open")));

// Wide tables scroll inside their own box (a phone's page never scrolls sideways); the box takes
// focus so that keyboard users can scroll it too. Every page's tables, present and future, get one.
function boxTables(root) {
  for (const table of root.querySelectorAll("table.data")) {
    if (table.parentElement?.closest(".table-scroll, .scroll-box")) continue;
    const name = table.getAttribute("aria-label") || table.querySelector("caption")?.textContent || (table.id || "table").replace(/-/g, " ");
    const box = document.createElement("div");
    box.className = "table-scroll";
    box.tabIndex = 0;
    box.setAttribute("role", "region");
    box.setAttribute("aria-label", `${name} (scrolls sideways)`);
    table.replaceWith(box);
    box.append(table);
  }
}
new MutationObserver(() => boxTables(app)).observe(app, { childList: true, subtree: true });

async function render() {
  const token = ++renderCount;
  unmount?.();
  unmount = null;
  hideBanner();
  setMenu(false);
  const path = location.pathname;
  const match = ROUTES.find(([pattern]) => pattern.test(path));
  const vs = new URLSearchParams(location.search).get("vs");
  for (const link of document.querySelectorAll("[data-nav]")) {
    const active = match && (vs ? link.dataset.nav === "vs" : link.dataset.nav === match[1]);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!match) {
    fill(app, h("div", { class: "empty" }, h("h1", {}, "Page not found"), h("a", { href: "/", "data-link": true, class: "button" }, "Go to runs")));
    return;
  }
  const args = path.match(match[0]).slice(1).map((part) => (part ? decodeURIComponent(part) : part));
  try {
    const page = await match[2]();
    if (token !== renderCount) return; // the user navigated on meanwhile
    clear(app);
    app.dataset.page = match[1];
    unmount = page.mount(app, ...args) || null;
  } catch (exc) {
    fill(app, h("div", { class: "error-box" }, `This page failed to load: ${exc.message}`));
  }
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", render);
window.addEventListener("lowdino:navigate", render);

async function updateHealth() {
  const element = document.getElementById("health");
  const text = element.querySelector(".health-text");
  try {
    const health = await api("/api/health");
    const workers = health.workers.length;
    const problems = [];
    if (!health.database.ok) problems.push(`database: ${health.database.detail}`);
    if (!health.broker.ok) problems.push(`broker: ${health.broker.detail}`);
    if (!workers) problems.push("no live worker: queued runs wait until `lowdino worker` (or `lowdino serve`) runs");
    element.className = problems.length ? "health degraded" : "health ok";
    text.textContent = problems.length ? (workers ? "degraded" : "no worker") : `${workers} worker${workers > 1 ? "s" : ""}`;
    element.title = problems.length ? problems.join("\n") : `database ${health.database.detail}, broker ok, ${workers} live worker(s), v${health.version}`;
  } catch (exc) {
    element.className = "health down";
    text.textContent = "unreachable";
    element.title = exc.message;
  }
}

async function setupLogout() {
  try {
    const session = await api("/api/session");
    const button = document.getElementById("logout");
    button.hidden = !session.auth_required;
    button.addEventListener("click", async () => {
      await api("/api/session", { method: "DELETE" });
      location.assign("/login");
    });
  } catch {
    // The health light already says when the server is unreachable.
  }
}

updateHealth();
setInterval(updateHealth, 10000);
// Parse the chart library while the user reads the first page, so a run's charts appear at once.
(window.requestIdleCallback || setTimeout)(() => ensurePlotly().catch(() => {}));
setupLogout();
render();
