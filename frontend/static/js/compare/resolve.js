// "Add run" takes an id or a name: resolved here through the runs search, so a name never reaches a
// URL or an API path as if it were an id (a page reloaded with a name in ?runs= used to break).
import { api } from "../api.js";

/** {run} for an exact id or a unique exact name; {run: null, error} saying why otherwise. */
export async function resolveRun(text) {
  const wanted = text.trim();
  if (!wanted) return { run: null, error: "type a run id or name" };
  let found;
  try {
    found = await api(`/api/runs?q=${encodeURIComponent(wanted)}&limit=100`);
  } catch (exc) {
    return { run: null, error: `the runs could not be searched (${exc.message})` };
  }
  const byId = found.data.find((run) => run.id === wanted);
  if (byId) return { run: byId };
  const named = found.data.filter((run) => run.name === wanted);
  const loose = named.length ? named : found.data.filter((run) => (run.name || "").toLowerCase() === wanted.toLowerCase());
  if (loose.length === 1) return { run: loose[0] };
  if (loose.length > 1) return { run: null, error: `${loose.length} runs are named “${wanted}”: add one by its id (${loose.slice(0, 4).map((run) => run.id).join(", ")})` };
  return { run: null, error: `no run has the id or name “${wanted}”; pick one from the suggestions` };
}
