// Page state lives in the URL (query string), so reload and shared links show the same view.

export function params() {
  return new URLSearchParams(location.search);
}

export function setParams(updates, { replace = true } = {}) {
  const next = params();
  for (const [key, value] of Object.entries(updates)) {
    if (value === null || value === undefined || value === "" || (Array.isArray(value) && value.length === 0)) next.delete(key);
    else next.set(key, Array.isArray(value) ? value.join(",") : String(value));
  }
  const query = next.toString();
  const url = location.pathname + (query ? `?${query}` : "");
  if (url === location.pathname + location.search) return;
  history[replace ? "replaceState" : "pushState"](history.state, "", url);
}

export function listParam(name) {
  const raw = params().get(name);
  return raw ? raw.split(",").filter(Boolean) : [];
}

export function navigate(url) {
  history.pushState(null, "", url);
  window.dispatchEvent(new Event("lowdino:navigate"));
}
