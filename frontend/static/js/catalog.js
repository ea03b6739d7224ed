// The server's catalog (backbones, presets, published rows), fetched once per page load.
import { api } from "./api.js";

let catalogPromise = null;

export function getCatalog() {
  catalogPromise = catalogPromise || api("/api/catalog").catch((exc) => {
    catalogPromise = null;
    throw exc;
  });
  return catalogPromise;
}

/** Parameter count of a run: reported by the run itself, else the registry's count for its backbone. */
export function paramsOf(run, catalog) {
  if (typeof run.params === "number") return run.params;
  const info = catalog?.backbones.find((item) => item.name === run.backbone);
  return info ? info.params : null;
}
