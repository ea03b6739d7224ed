// The form as a command a user can paste: curl against the API, or the `lowdino` CLI.

function flag(name) {
  return `--${name.replace(/_/g, "-")}`;
}

export function shellQuote(text) {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${String(text).replace(/'/g, `'\\''`)}'`;
}

/** POST of `body` (what the form submits) to /api/runs, /api/sweeps when it holds a grid, /api/searches with a space. */
export function curlCommand(body, { origin, authRequired }) {
  const auth = authRequired ? ` -H "Authorization: Bearer $LOWDINO_API_TOKEN"` : "";
  const endpoint = body.space ? "searches" : body.grid ? "sweeps" : "runs";
  return `curl -X POST ${origin}/api/${endpoint} -H 'content-type: application/json'${auth} -d ${shellQuote(JSON.stringify(body))}`;
}

/** `lowdino <kind>` with a flag per field that differs from its default. */
export function cliCommand(kind, config) {
  const parts = ["lowdino", kind];
  for (const [name, value] of Object.entries(config)) {
    if (value === null) continue; // a flag cannot unset a default
    if (typeof value === "boolean") parts.push(value ? flag(name) : `--no-${name.replace(/_/g, "-")}`);
    else parts.push(flag(name), shellQuote(Array.isArray(value) ? value.join(",") : String(value)));
  }
  return parts.join(" ");
}
