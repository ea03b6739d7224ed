// The Launch form's fields, generated from a kind's JSON schema: one input per property, in the
// schema's groups, each with its default, help text and the API's error message under it.
import { api } from "../api.js";
import { clear, h } from "../dom.js";
import { params as fmtParams } from "../format.js";

// Most used first; "monitor", "runtime" and ungrouped fields are folded (dashboard conventions).
const GROUPS = [
  ["model", "Model"], ["data", "Data"], ["optimisation", "Optimisation"], ["method", "DINO / method"],
  ["augmentation", "Augmentation"], ["protocol", "Evaluation protocol"], ["runtime", "Devices & runtime"],
  ["monitor", "Monitoring", true], ["", "Advanced", true],
];
const BACKBONE_FIELDS = new Set(["backbone", "student", "teacher"]);
// Fields that take a run id or a path; a datalist offers recent training runs (and, for a teacher, backbones).
const RUN_FIELDS = ["teacher", "checkpoint"];

export function baseSchema(prop) {
  if (Array.isArray(prop.anyOf)) {
    const real = prop.anyOf.filter((item) => item.type !== "null");
    return { schema: { ...real[0], ...prop, anyOf: undefined }, nullable: real.length < prop.anyOf.length };
  }
  return { schema: prop, nullable: false };
}

export function same(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** field -> its default in the schema (null where it has none). */
export function defaultsOf(schema) {
  return Object.fromEntries(Object.entries(schema.properties).map(([name, prop]) => [name, prop.default ?? null]));
}

function backboneInfo(catalog, name) {
  const info = catalog.backbones.find((item) => item.name === name);
  return info ? `${fmtParams(info.params)} params · ${info.num_features} features` : "";
}

function makeInput(name, prop, catalog) {
  const { schema, nullable } = baseSchema(prop);
  const id = `field-${name}`;
  let element;
  let read;
  let write;
  let parse = (text) => text;
  const describedBy = `${id}-help ${id}-error`;
  const backboneNames = catalog.backbones.map((item) => item.name);
  if (schema.type === "boolean") {
    element = h("input", { type: "checkbox", id, name, "aria-describedby": describedBy });
    read = () => element.checked;
    write = (value) => { element.checked = Boolean(value); };
    parse = (text) => ({ true: true, false: false, yes: true, no: false }[text.toLowerCase()] ?? text);
  } else if (schema.enum || (BACKBONE_FIELDS.has(name) && name !== "teacher")) {
    const choices = schema.enum || backboneNames;
    element = h("select", { id, name, "aria-describedby": describedBy },
      nullable ? h("option", { value: "" }, "(none)") : null,
      choices.map((choice) => h("option", { value: choice }, choice)));
    read = () => (element.value === "" ? null : element.value);
    write = (value) => { element.value = value ?? ""; };
  } else if (schema.type === "array" && schema.items?.enum) {
    const boxes = schema.items.enum.map((choice) => h("input", { type: "checkbox", value: choice, id: `${id}-${choice}`, name }));
    element = h("div", { class: "checks", role: "group", "aria-labelledby": `${id}-label`, "aria-describedby": describedBy },
      boxes.map((box) => h("label", { for: box.id }, box, ` ${box.value}`)));
    read = () => boxes.filter((box) => box.checked).map((box) => box.value);
    write = (value) => { for (const box of boxes) box.checked = (value || []).includes(box.value); };
    parse = (text) => text.split(",").map((part) => part.trim()).filter(Boolean);
  } else if (schema.type === "array") {
    element = h("input", { type: "text", id, name, placeholder: "comma-separated", "aria-describedby": describedBy });
    const numeric = ["number", "integer"].includes(schema.items?.type);
    read = () => {
      const parts = element.value.split(",").map((part) => part.trim()).filter(Boolean);
      if (!parts.length && nullable) return null;
      return numeric ? parts.map((part) => (Number.isNaN(Number(part)) ? part : Number(part))) : parts;
    };
    write = (value) => { element.value = Array.isArray(value) ? value.join(", ") : ""; };
    parse = (text) => {
      const parts = text.split(",").map((part) => part.trim()).filter(Boolean);
      return numeric ? parts.map((part) => (Number.isNaN(Number(part)) ? part : Number(part))) : parts;
    };
  } else if (schema.type === "integer" || schema.type === "number") {
    element = h("input", {
      type: "number", id, name, step: schema.type === "integer" ? 1 : "any",
      min: schema.minimum ?? schema.exclusiveMinimum, max: schema.maximum ?? schema.exclusiveMaximum,
      placeholder: nullable ? "none" : "", "aria-describedby": describedBy,
    });
    read = () => {
      if (element.value.trim() === "") return nullable ? null : "";
      const parsed = Number(element.value);
      return Number.isNaN(parsed) ? element.value : parsed;
    };
    write = (value) => { element.value = value ?? ""; };
    parse = (text) => (text === "" || Number.isNaN(Number(text)) ? text : Number(text));
  } else {
    const listId = `${id}-choices`;
    element = h("input", { type: "text", id, name, placeholder: nullable ? "none" : "", list: RUN_FIELDS.includes(name) ? listId : null, "aria-describedby": describedBy });
    read = () => (element.value.trim() === "" && nullable ? null : element.value.trim());
    write = (value) => { element.value = value ?? ""; };
  }
  return { element, read, write, parse, isList: schema.type === "array" };
}

function renderField(name, prop, { values, defaults, catalog, onSweep }) {
  const { element, read, write, parse, isList } = makeInput(name, prop, catalog);
  const id = `field-${name}`;
  const error = h("p", { class: "field-error", id: `${id}-error`, role: "alert" });
  const aside = h("div", { class: "aside", id: `${id}-aside` });
  const defaultValue = defaults[name];
  const shownDefault = defaultValue === null ? "none" : Array.isArray(defaultValue) ? defaultValue.join(", ") : String(defaultValue);
  const isCheck = element.tagName === "INPUT" && element.type === "checkbox";
  const label = h("label", { for: element.tagName === "DIV" ? null : id, id: `${id}-label` }, isCheck ? element : null, isCheck ? " " : null, name.replace(/_/g, " "));
  const sweepToggle = h("button", {
    type: "button", class: "sweep-toggle", "aria-pressed": "false", id: `${id}-sweep-toggle`,
    title: "Try several values: one run per value (per combination with other swept fields)",
  }, "Sweep");
  const wrapper = h("div", { class: "field", "data-field": name },
    label, sweepToggle,
    isCheck ? null : element,
    h("p", { class: "help", id: `${id}-help` }, prop.description || ""),
    h("span", { class: "default" }, `default: ${shownDefault}`),
    aside, error);
  if (RUN_FIELDS.includes(name)) wrapper.append(h("datalist", { id: `${id}-choices` }));
  write(values[name]);
  const entry = { read, write, parse, isList, element, error, wrapper, aside };
  sweepToggle.addEventListener("click", () => onSweep(name, entry, sweepToggle));
  const update = () => {
    wrapper.classList.toggle("changed", !same(read(), defaultValue));
    error.textContent = "";
    element.removeAttribute("aria-invalid");
    if (BACKBONE_FIELDS.has(name)) aside.textContent = backboneInfo(catalog, read());
  };
  element.addEventListener("input", update);
  element.addEventListener("change", update);
  update();
  return [wrapper, entry];
}

/**
 * Renders the schema's fields into `root`, grouped, each holding `values[field]`; `hidden` fields (the
 * server's own) get none. Returns field -> entry {read(), write(value), parse(text), isList, element, error, wrapper, aside}.
 * `onSweep(name, entry, button)` runs when a field's Sweep toggle is pressed.
 */
export function renderFields(root, { schema, kind, values, defaults, catalog, hidden, onSweep }) {
  const inputs = new Map();
  clear(root);
  const byGroup = new Map(GROUPS.map(([group]) => [group, []]));
  for (const [name, prop] of Object.entries(schema.properties)) {
    if (hidden.has(name)) continue;
    const group = byGroup.has(prop.group) ? prop.group : "";
    byGroup.get(group).push([name, prop]);
  }
  for (const [group, title, folded] of GROUPS) {
    const fields = byGroup.get(group);
    if (!fields.length) continue;
    const grid = h("div", { class: "fields" });
    for (const [name, prop] of fields) {
      const [wrapper, entry] = renderField(name, prop, { values, defaults, catalog, onSweep });
      inputs.set(name, entry);
      grid.append(wrapper);
    }
    const legendText = group === "method" && kind === "distill" ? "Distillation" : title;
    if (folded) {
      root.append(h("details", { class: "advanced", "data-group": group || "advanced" }, h("summary", {}, `${legendText} (${fields.length})`), h("fieldset", {}, grid)));
    } else {
      root.append(h("fieldset", { "data-group": group }, h("legend", {}, legendText), grid));
    }
  }
  fillChoiceLists(catalog);
  return inputs;
}

/** Recent completed training runs (the kinds that leave a checkpoint) as choices for teacher / checkpoint. */
async function fillChoiceLists(catalog) {
  const lists = RUN_FIELDS.map((name) => [name, document.getElementById(`field-${name}-choices`)]).filter(([, list]) => list);
  if (!lists.length) return;
  const training = new Set(catalog.training_kinds);
  try {
    const runs = await api("/api/runs?status=completed&limit=100&sort=-finished_at");
    for (const [name, list] of lists) {
      clear(list);
      if (name === "teacher") for (const item of catalog.backbones) list.append(h("option", { value: item.name }, `${item.name} (${fmtParams(item.params)})`));
      for (const run of runs.data.filter((item) => training.has(item.kind))) {
        list.append(h("option", { value: run.id }, `run ${run.name || run.id} · ${run.backbone || ""}`));
      }
    }
  } catch {
    // The choices are a convenience; typing a run id or a path still works.
  }
}

/** The fields that differ from their defaults, leaving out those `skip(name)` claims (the swept ones). */
/** The options that differ from the defaults; a swept option's first value stands in the base config,
 * which must be valid by itself (the API's schema says so). */
export function readConfig(inputs, defaults, grid = null) {
  const config = {};
  for (const [name, entry] of inputs) {
    const value = grid && name in grid ? grid[name][0] : entry.read();
    if (value !== undefined && !same(value, defaults[name])) config[name] = value;
  }
  return config;
}

/** field -> message for number fields whose text the browser could not read as a number (its value is
 * then "", so the typed text is lost to the page: the message asks for digits instead of quoting it). */
export function unreadableNumbers(inputs) {
  const found = {};
  for (const [name, entry] of inputs) {
    if (entry.element.type === "number" && entry.element.validity?.badInput) {
      found[name] = "is not a number; type digits, e.g. 0.0005 or 5e-4";
    }
  }
  return found;
}

export function clearFieldErrors(inputs) {
  for (const entry of inputs.values()) entry.error.textContent = "";
}

/** Puts each of the API's messages under its field (opening a folded group); returns the first such field. */
export function showFieldErrors(inputs, fieldErrors) {
  let first = null;
  for (const [field, message] of Object.entries(fieldErrors)) {
    const entry = inputs.get(field.split(".")[0]);
    if (!entry) continue;
    entry.error.textContent = message;
    entry.element.setAttribute("aria-invalid", "true");
    const fold = entry.wrapper.closest("details");
    if (fold) fold.open = true;
    first = first || entry;
  }
  return first;
}
