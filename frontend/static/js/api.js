// The only door to the server: same-origin fetches to /api and EventSource streams, errors made visible.

export class ApiError extends Error {
  constructor(status, detail, fieldErrors) {
    super(detail);
    this.status = status;
    this.fieldErrors = fieldErrors || {};
  }
}

function describe(body, response) {
  if (typeof body?.detail === "string") return body.detail;
  if (Array.isArray(body?.detail)) {
    // FastAPI's request validation errors: a list of {loc, msg}.
    return body.detail.map((item) => `${(item.loc || []).slice(1).join(".") || "request"}: ${item.msg}`).join("; ");
  }
  return `HTTP ${response.status} ${response.statusText}`;
}

function goToLogin() {
  const next = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

export async function api(path, { method = "GET", body, signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      signal,
      credentials: "same-origin",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (exc) {
    if (exc.name === "AbortError") throw exc;
    throw new ApiError(0, `the server did not answer (${exc.message}); check that \`lowdino serve\` is running`);
  }
  if (response.status === 401) {
    goToLogin();
    throw new ApiError(401, "login needed");
  }
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    throw new ApiError(response.status, describe(data, response), data?.field_errors);
  }
  if (response.status === 204) return null;
  return response.json();
}

/**
 * Follows a run's Server-Sent Events. EventSource reconnects by itself with Last-Event-ID; when the
 * browser gives up (an HTTP error), this reconnects with a backoff from the last id it saw.
 * `onState` gets "connecting" | "live" | "reconnecting" | "paused" so the page can show it.
 *
 * A tab that stays hidden closes its stream and catches up from its last id when shown again:
 * browsers allow ~6 HTTP/1.1 connections per server, and every open stream holds one, so a few
 * background tabs would otherwise stall every other request to the dashboard.
 */
export function followEvents(runId, { after = 0, types, onEvent, onState, hiddenGraceMs = 30000 }) {
  let lastId = after;
  let source = null;
  let closed = false;
  let retryTimer = null;
  let hiddenTimer = null;
  let failures = 0;

  const open = () => {
    if (closed || source) return;
    const params = new URLSearchParams();
    if (lastId) params.set("last_event_id", String(lastId));
    if (types) params.set("types", types.join(","));
    onState?.(failures ? "reconnecting" : "connecting");
    const current = new EventSource(`/api/runs/${encodeURIComponent(runId)}/events?${params}`);
    source = current;
    current.onopen = () => {
      failures = 0;
      onState?.("live");
    };
    current.onerror = () => {
      if (closed || source !== current) return;
      onState?.("reconnecting");
      if (current.readyState === EventSource.CLOSED) {
        failures += 1;
        source = null;
        clearTimeout(retryTimer);
        retryTimer = setTimeout(open, Math.min(10000, 500 * 2 ** Math.min(failures, 5)));
      }
    };
    for (const type of ["metric", "status", "log"]) {
      current.addEventListener(type, (message) => {
        const id = Number(message.lastEventId);
        if (id && id <= lastId) return; // a replay after reconnect: already applied
        if (id) lastId = id;
        let data;
        try {
          data = JSON.parse(message.data);
        } catch {
          return;
        }
        onEvent?.(type, data, id);
      });
    }
  };

  const pause = () => {
    source?.close();
    source = null;
    onState?.("paused");
  };

  const onVisibility = () => {
    clearTimeout(hiddenTimer);
    if (document.visibilityState === "hidden") hiddenTimer = setTimeout(pause, hiddenGraceMs);
    else open();
  };
  document.addEventListener("visibilitychange", onVisibility);
  open();
  return {
    close() {
      closed = true;
      clearTimeout(retryTimer);
      clearTimeout(hiddenTimer);
      document.removeEventListener("visibilitychange", onVisibility);
      source?.close();
    },
  };
}
