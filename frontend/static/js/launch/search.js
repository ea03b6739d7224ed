// The Launch form's "Search" mode: the swept fields become a search space (a range "low..high", with
// "log" for a log scale, or a list of choices), and the search's own options (trials, budget per trial,
// sampler, pruner...) come with their defaults and help from the API's SearchCreate schema. Submitting
// POSTs /api/searches; a search scores trials on the validation split only, so no evaluation is chained.
import { api } from "../api.js";
import { h } from "../dom.js";

// Every option of SearchCreate gets a field, in the model's order, but these: the space comes from the
// swept fields, the base config from the form, name and tags from the form's own; first_trials (a list of
// parameter sets) is a REST / CLI option; the objective has one value, which the text below names.
const NOT_FIELDS = new Set(["kind", "space", "first_trials", "objective", "name", "tags", "config"]);
const RANGE = /^\s*(-?[\d.]+(?:e-?\d+)?)\s*\.\.\s*(-?[\d.]+(?:e-?\d+)?)\s*(log)?\s*$/i;
let schemaPromise = null;

// SearchCreate is one variant per kind (each states its kind's base config); the search options the form
// shows are the same in every variant, so the first one serves.
function searchSchema() {
  schemaPromise = schemaPromise || api("/openapi.json").then((doc) => {
    const body = doc.components.schemas.SearchCreate;
    const ref = body.oneOf?.[0]?.$ref;
    return ref ? doc.components.schemas[ref.split("/").pop()] : body;
  });
  return schemaPromise;
}

function choicesOf(property) {
  return property.enum || (property.anyOf || []).flatMap((item) => item.enum || []);
}

/** The non-null branch of an optional option ({anyOf: [{type: "number", ...}, {type: "null"}]}). */
function typeOf(property) {
  return (property.anyOf || []).find((item) => item.type && item.type !== "null") || property;
}

/** The space of the swept fields: {field: {float|int: [low, high], log} | {choice: [...]}}. */
export function spaceOf(texts, inputs) {
  const space = {};
  for (const [name, text] of Object.entries(texts)) {
    const entry = inputs.get(name);
    const range = text.match(RANGE);
    if (range) {
      const [low, high] = [Number(range[1]), Number(range[2])];
      // "2..8" is an int range, "0.1..0.5" or "1e-4..1e-2" a float one.
      const integer = !/[.e]/i.test(`${range[1]}${range[2]}`);
      space[name] = { [integer ? "int" : "float"]: [low, high], ...(range[3] ? { log: true } : {}) };
    } else {
      space[name] = { choice: text.split(entry.isList ? ";" : ",").map((part) => part.trim()).filter(Boolean).map(entry.parse) };
    }
  }
  return space;
}

/** Renders the search options into `root`; returns {read(), summary()} once the schema is loaded. */
export async function renderSearchOptions(root, onChange) {
  const schema = await searchSchema();
  const fields = new Map();
  const errors = new Map(); // option -> the element under its field that shows the API's refusal
  const grid = h("div", { class: "search-options" });
  const names = Object.keys(schema.properties).filter((name) => !NOT_FIELDS.has(name));
  for (const name of names) {
    const property = schema.properties[name];
    const type = typeOf(property);
    const id = `search-${name.replace(/_/g, "-")}`;
    let input;
    const choices = choicesOf(property);
    if (choices.length) {
      input = h("select", { id, name }, choices.map((choice) => h("option", { value: choice }, choice)));
      input.value = property.default;
    } else if (type.type === "boolean") {
      input = h("input", { type: "checkbox", id, name });
      input.checked = Boolean(property.default);
    } else if (type.type === "integer" || type.type === "number") {
      // An optional number left empty is not sent: the model's default (none: no limit) applies.
      input = h("input", { type: "number", id, name, min: type.minimum ?? type.exclusiveMinimum ?? 0, max: type.maximum ?? null,
        step: type.type === "integer" ? 1 : "any", placeholder: property.default === null ? "none" : null });
      if (property.default !== undefined && property.default !== null) input.value = property.default;
    } else {
      continue; // a structured option the form cannot state: REST or the CLI sets it
    }
    input.addEventListener("input", onChange);
    fields.set(name, input);
    const error = h("span", { class: "field-error", id: `${id}-error`, "aria-live": "polite" });
    errors.set(name, error);
    input.addEventListener("input", () => { // an edited value is no longer the one refused
      error.textContent = "";
      input.removeAttribute("aria-invalid");
    });
    grid.append(h("label", { for: id, title: property.description || "" }, name.replace(/_/g, " "), input,
      h("span", { class: "help" }, property.description || ""), error));
  }
  root.append(
    h("p", { class: "muted" }, "Tunes the swept fields with Optuna instead of running every combination. Mark the fields to search with “Sweep” and give a range (",
      h("code", {}, "0.0001..0.01 log"), ", ", h("code", {}, "2..8"), ") or choices (", h("code", {}, "64, 128"),
      "). Trials are scored by the kNN monitor on the validation split; the test split is only measured by the full runs you promote."),
    grid,
  );
  const read = () => Object.fromEntries([...fields].flatMap(([name, input]) => {
    if (input.type === "checkbox") return [[name, input.checked]];
    if (input.tagName === "SELECT") return [[name, input.value]];
    return input.value === "" ? [] : [[name, Number(input.value)]];
  }));
  return {
    read,
    /** The API's refusals of search options (field_errors keyed by the option's name) under their fields. */
    showErrors: (fieldErrors) => {
      for (const [name, error] of errors) {
        error.textContent = fieldErrors[name] || "";
        if (fieldErrors[name]) fields.get(name).setAttribute("aria-invalid", "true");
        else fields.get(name).removeAttribute("aria-invalid");
      }
    },
    summary: () => {
      const options = read();
      const minutes = options.trial_minutes ? ` (at most ${options.trial_minutes} min each)` : "";
      return `Queue search: ${options.n_trials ?? "?"} trials × ${options.budget_steps ?? "?"} steps${minutes}`;
    },
  };
}
