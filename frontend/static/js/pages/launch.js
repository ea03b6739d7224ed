// Launch: a form generated from the kind's config schema, filled from a preset or a cloned run.
// Any field can become a list of values ("Sweep"): the form then queues one run per combination
// (POST /api/sweeps). A study preset (?study=) replaces the form with its own short one.
import { api, ApiError } from "../api.js";
import { showBanner } from "../banner.js";
import { getCatalog } from "../catalog.js";
import { clear, copyText, fill, h } from "../dom.js";
import { params as fmtParams } from "../format.js";
import { navigate, params, setParams } from "../url.js";

// Most used first; "monitor", "runtime" and ungrouped fields are folded (dashboard conventions).
const GROUPS = [
  ["model", "Model"], ["data", "Data"], ["optimisation", "Optimisation"], ["method", "DINO / method"],
  ["augmentation", "Augmentation"], ["protocol", "Evaluation protocol"], ["runtime", "Devices & runtime"],
  ["monitor", "Monitoring", true], ["", "Advanced", true],
];
const SERVER_OWNED = new Set(["output_dir", "resume"]);
const BACKBONE_FIELDS = new Set(["backbone", "student", "teacher"]);
const cache = { catalog: null, schemas: {}, session: null, studies: null };
const CHAINABLE = new Set(["pretrain", "distill"]);

function baseSchema(prop) {
  if (Array.isArray(prop.anyOf)) {
    const real = prop.anyOf.filter((item) => item.type !== "null");
    return { schema: { ...real[0], ...prop, anyOf: undefined }, nullable: real.length < prop.anyOf.length };
  }
  return { schema: prop, nullable: false };
}

function same(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function flag(name) {
  return `--${name.replace(/_/g, "-")}`;
}

function shellQuote(text) {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${String(text).replace(/'/g, `'\\''`)}'`;
}

export function mount(root) {
  let stopped = false;
  // The kinds are the server's (catalog.kinds, its config models); an unknown ?kind= falls back to the first.
  const state = { kind: params().get("kind"), values: {}, preset: params().get("preset"), source: null, study: params().get("study") };
  const inputs = new Map(); // field -> {read(), write(value), parse(text), element, error, wrapper}
  const swept = new Map(); // field -> the text input holding its list of values
  const studyList = h("div", { class: "preset-list", id: "studies" });
  const studyPanel = h("section", { id: "study-panel", hidden: true });
  const evaluateRoot = h("div", { id: "evaluate-after" });
  const formError = h("div", { class: "error-box", role: "alert", hidden: true });
  const kindBar = h("div", { class: "kinds", role: "group", "aria-label": "Run kind" });
  const presetList = h("div", { class: "preset-list", id: "presets" });
  const form = h("form", { id: "launch-form", novalidate: true });
  const nameInput = h("input", { type: "text", id: "run-name", name: "name", maxlength: 200, placeholder: "optional" });
  const tagsInput = h("input", { type: "text", id: "run-tags", name: "tags", placeholder: "comma, separated" });
  const submit = h("button", { type: "submit", class: "primary", id: "submit-run" }, "Queue 1 run");
  const copyCurl = h("button", { type: "button", id: "copy-curl" }, "Copy as curl");
  const copyCli = h("button", { type: "button", id: "copy-cli" }, "Copy as CLI command");
  const copied = h("span", { class: "muted", role: "status", "aria-live": "polite" });
  const fieldsRoot = h("div");
  const sourceNote = h("p", { class: "muted", id: "form-source" });

  root.append(
    h("div", { class: "page-head" }, h("h1", {}, "Launch a run")),
    h("div", { class: "launch" },
      h("aside", {}, kindBar, h("h2", {}, "Studies"), studyList, h("h2", {}, "Presets"), presetList),
      h("section", { id: "form-section" }, sourceNote, form),
      studyPanel),
  );
  form.append(
    h("div", { class: "meta-fields" },
      h("label", { for: "run-name" }, "Name", nameInput),
      h("label", { for: "run-tags" }, "Tags", tagsInput)),
    fieldsRoot,
    evaluateRoot,
    // In the sticky bar: the refusal stays in view wherever the field it names is scrolled to.
    h("div", { class: "submit-bar" }, formError, submit, copyCurl, copyCli, copied),
  );

  async function load() {
    try {
      const [catalog, session] = await Promise.all([
        getCatalog(),
        cache.session || api("/api/session"),
      ]);
      cache.catalog = catalog;
      cache.session = session;
      if (!catalog.kinds.includes(state.kind)) state.kind = catalog.kinds[0];
      loadStudies();
      const cloneId = params().get("clone");
      if (cloneId) {
        const run = await api(`/api/runs/${encodeURIComponent(cloneId)}`);
        state.kind = run.kind;
        state.source = { type: "clone", run };
      }
      await showKind(state.kind, { keepSource: true });
    } catch (exc) {
      if (!stopped) showBanner(`Could not load the launch form: ${exc.message}`, { retry: load });
    }
  }

  async function schemaFor(kind) {
    cache.schemas[kind] = cache.schemas[kind] || (await api(`/api/schema/${kind}`));
    return cache.schemas[kind];
  }

  async function showKind(kind, { keepSource = false } = {}) {
    if (state.study) { showStudy(state.study); return; }
    state.kind = kind;
    if (!keepSource) state.source = null;
    const schema = await schemaFor(kind);
    if (stopped) return;
    state.schema = schema;
    state.defaults = Object.fromEntries(Object.entries(schema.properties).map(([name, prop]) => [name, prop.default ?? null]));
    let values = { ...state.defaults };
    const preset = cache.catalog.presets.find((item) => item.name === state.preset && item.kind === kind);
    if (state.source?.type === "clone") {
      const run = state.source.run;
      values = { ...values, ...Object.fromEntries(Object.entries(run.config).filter(([key]) => key in values && !SERVER_OWNED.has(key))) };
      nameInput.value = `${run.name || run.id} (copy)`;
      tagsInput.value = (run.tags || []).join(", ");
      sourceNote.textContent = `Prefilled from run ${run.name || run.id} (${run.id}); edit anything, then queue it as a new run.`;
    } else if (preset) {
      values = { ...values, ...preset.config };
      if (!nameInput.value) nameInput.value = preset.name;
      sourceNote.textContent = `Preset “${preset.name}”: ${preset.description || ""} Edit anything before queueing.`;
    } else {
      state.preset = null;
      sourceNote.textContent = "Defaults of the config model. Pick a preset on the left to start from a tested recipe.";
    }
    state.values = values;
    setParams({ kind, preset: state.preset, clone: state.source?.type === "clone" ? state.source.run.id : null, study: null, scale: null });
    studyPanel.hidden = true;
    document.getElementById("form-section").hidden = false;
    renderKinds();
    renderPresets();
    renderStudies();
    renderFields();
    await renderEvaluate();
    updateCount();
  }

  function renderKinds() {
    fill(kindBar, ...cache.catalog.kinds.map((kind) => h("button", {
      type: "button", "aria-pressed": String(!state.study && kind === state.kind), onclick: () => { state.preset = null; state.study = null; showKind(kind); },
    }, kind)));
  }

  function renderPresets() {
    const presets = cache.catalog.presets
      .filter((item) => item.kind === state.kind)
      .sort((a, b) => (a.name === "quickstart" ? -1 : b.name === "quickstart" ? 1 : a.name.localeCompare(b.name)));
    clear(presetList);
    if (!presets.length) {
      presetList.append(h("p", { class: "muted" }, `No ${state.kind} presets; the form starts from the defaults.`));
      return;
    }
    for (const preset of presets) {
      const config = preset.config;
      presetList.append(h("button", {
        type: "button", class: "preset", "data-preset": preset.name, "aria-pressed": String(preset.name === state.preset),
        onclick: () => { state.preset = preset.name; state.source = null; state.study = null; nameInput.value = preset.name; showKind(state.kind); },
      },
      h("strong", {}, preset.name),
      h("span", {}, preset.description || ""),
      h("span", {}, ` ${[config.backbone || config.student, config.dataset, config.n_epochs && `${config.n_epochs} epochs`].filter(Boolean).join(" · ")}`)));
    }
  }

  function backboneInfo(name) {
    const info = cache.catalog.backbones.find((item) => item.name === name);
    return info ? `${fmtParams(info.params)} params · ${info.num_features} features` : "";
  }

  function makeInput(name, prop) {
    const { schema, nullable } = baseSchema(prop);
    const id = `field-${name}`;
    let element;
    let read;
    let write;
    let parse = (text) => text;
    const describedBy = `${id}-help ${id}-error`;
    const backboneNames = cache.catalog.backbones.map((item) => item.name);
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
      element = h("input", { type: "text", id, name, placeholder: nullable ? "none" : "", list: ["teacher", "checkpoint"].includes(name) ? listId : null, "aria-describedby": describedBy });
      read = () => (element.value.trim() === "" && nullable ? null : element.value.trim());
      write = (value) => { element.value = value ?? ""; };
    }
    return { element, read, write, parse, isList: schema.type === "array" };
  }

  function renderFields() {
    inputs.clear();
    swept.clear();
    clear(fieldsRoot);
    formError.hidden = true;
    const properties = state.schema.properties;
    const byGroup = new Map(GROUPS.map(([group]) => [group, []]));
    for (const [name, prop] of Object.entries(properties)) {
      if (SERVER_OWNED.has(name)) continue;
      const group = byGroup.has(prop.group) ? prop.group : "";
      byGroup.get(group).push([name, prop]);
    }
    for (const [group, title, folded] of GROUPS) {
      const fields = byGroup.get(group);
      if (!fields.length) continue;
      const grid = h("div", { class: "fields" });
      for (const [name, prop] of fields) grid.append(renderField(name, prop));
      const legendText = group === "method" && state.kind === "distill" ? "Distillation" : title;
      if (folded) {
        fieldsRoot.append(h("details", { class: "advanced", "data-group": group || "advanced" }, h("summary", {}, `${legendText} (${fields.length})`), h("fieldset", {}, grid)));
      } else {
        fieldsRoot.append(h("fieldset", { "data-group": group }, h("legend", {}, legendText), grid));
      }
    }
    fillChoiceLists();
  }

  function renderField(name, prop) {
    const { element, read, write, parse, isList } = makeInput(name, prop);
    const id = `field-${name}`;
    const error = h("p", { class: "field-error", id: `${id}-error`, role: "alert" });
    const aside = h("div", { class: "aside", id: `${id}-aside` });
    const defaultValue = state.defaults[name];
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
    if (name === "teacher" || name === "checkpoint") wrapper.append(h("datalist", { id: `${id}-choices` }));
    write(state.values[name]);
    const entry = { read, write, parse, isList, element, error, wrapper, aside };
    sweepToggle.addEventListener("click", () => toggleSweep(name, entry, sweepToggle));
    inputs.set(name, entry);
    const update = () => {
      wrapper.classList.toggle("changed", !same(read(), defaultValue));
      error.textContent = "";
      element.removeAttribute("aria-invalid");
      if (BACKBONE_FIELDS.has(name)) aside.textContent = backboneInfo(read());
    };
    element.addEventListener("input", update);
    element.addEventListener("change", update);
    update();
    return wrapper;
  }

  function sweepSeparator(entry) {
    return entry.isList ? ";" : ",";
  }

  function toggleSweep(name, entry, toggle) {
    const on = !swept.has(name);
    toggle.setAttribute("aria-pressed", String(on));
    entry.wrapper.classList.toggle("swept", on);
    if (entry.element.tagName === "DIV") for (const box of entry.element.querySelectorAll("input")) box.disabled = on;
    else entry.element.disabled = on;
    if (on) {
      const current = entry.read();
      const separator = sweepSeparator(entry);
      const shown = Array.isArray(current) ? current.join(", ") : current ?? "";
      const box = h("input", {
        type: "text", class: "sweep-values", id: `field-${name}-sweep`, name: `${name}-sweep`,
        placeholder: entry.isList ? "lists separated by ; e.g. 0.1, 0.3 ; 0.5" : "values separated by , e.g. 0, 1, 2",
        "aria-label": `${name.replace(/_/g, " ")}: values to sweep, separated by ${separator}`,
      });
      box.value = String(shown);
      box.addEventListener("input", updateCount);
      entry.wrapper.insertBefore(box, entry.wrapper.querySelector(".help"));
      swept.set(name, box);
      box.focus();
    } else {
      swept.get(name).remove();
      swept.delete(name);
    }
    updateCount();
  }

  function sweepGrid() {
    const grid = {};
    for (const [name, box] of swept) {
      const entry = inputs.get(name);
      grid[name] = box.value.split(sweepSeparator(entry)).map((part) => part.trim()).filter((part) => part !== "").map(entry.parse);
    }
    return grid;
  }

  function runCount() {
    return Object.values(sweepGrid()).reduce((total, values) => total * Math.max(values.length, 0), 1);
  }

  function updateCount() {
    const n = runCount();
    submit.textContent = `Queue ${n} run${n === 1 ? "" : "s"}`;
    submit.disabled = n < 1;
  }

  async function renderEvaluate() {
    clear(evaluateRoot);
    if (!CHAINABLE.has(state.kind)) return;
    const evalSchema = await schemaFor("eval");
    const props = evalSchema.properties;
    const toggle = h("input", { type: "checkbox", id: "evaluate-toggle" });
    const protocols = baseSchema(props.protocols).schema.items.enum.map((choice) => h("input", { type: "checkbox", value: choice, id: `evaluate-protocol-${choice}` }));
    const knnProtocol = h("select", { id: "evaluate-knn-protocol" }, props.knn_protocol.enum.map((choice) => h("option", { value: choice }, choice)));
    const fractions = h("input", { type: "text", id: "evaluate-label-fractions" });
    const seeds = h("input", { type: "text", id: "evaluate-seeds" });
    for (const box of protocols) box.checked = props.protocols.default.includes(box.value);
    knnProtocol.value = props.knn_protocol.default;
    fractions.value = props.label_fractions.default.join(", ");
    seeds.value = props.seeds.default.join(", ");
    const body = h("div", { class: "fields", hidden: true },
      h("div", { class: "field" }, h("label", {}, "protocols"), h("div", { class: "checks" }, protocols.map((box) => h("label", { for: box.id }, box, ` ${box.value}`))),
        h("p", { class: "help" }, props.protocols.description)),
      h("div", { class: "field" }, h("label", { for: knnProtocol.id }, "knn protocol"), knnProtocol, h("p", { class: "help" }, props.knn_protocol.description)),
      h("div", { class: "field" }, h("label", { for: fractions.id }, "label fractions"), fractions, h("p", { class: "help" }, props.label_fractions.description)),
      h("div", { class: "field" }, h("label", { for: seeds.id }, "seeds"), seeds, h("p", { class: "help" }, props.seeds.description)));
    toggle.addEventListener("change", () => { body.hidden = !toggle.checked; });
    const numbers = (input) => input.value.split(",").map((part) => part.trim()).filter(Boolean).map(Number);
    evaluateRoot.read = () => (toggle.checked ? {
      protocols: protocols.filter((box) => box.checked).map((box) => box.value),
      knn_protocol: knnProtocol.value,
      label_fractions: numbers(fractions),
      seeds: numbers(seeds),
    } : null);
    evaluateRoot.append(h("fieldset", { "data-group": "evaluate" }, h("legend", {}, "Then evaluate"),
      h("label", { for: toggle.id }, toggle, " Evaluate the final checkpoint when the run completes (a linked eval run, on the same dataset)"),
      body));
  }

  async function loadStudies() {
    try {
      cache.studies = cache.studies || (await api("/api/studies")).data;
    } catch {
      cache.studies = [];
    }
    if (stopped) return;
    renderStudies();
    if (state.study) showStudy(state.study);
  }

  function renderStudies() {
    clear(studyList);
    for (const study of cache.studies || []) {
      studyList.append(h("button", {
        type: "button", class: "preset", "data-study": study.name, "aria-pressed": String(study.name === state.study),
        onclick: () => showStudy(study.name),
      }, h("strong", {}, study.title), h("span", {}, study.description)));
    }
  }

  function showStudy(name) {
    const study = (cache.studies || []).find((item) => item.name === name);
    if (!study) {
      if (cache.studies) { state.study = null; setParams({ study: null }); }
      return;
    }
    state.study = name;
    const scaleName = study.scales.some((scale) => scale.name === params().get("scale")) ? params().get("scale") : study.scales[0].name;
    setParams({ study: name, scale: scaleName, kind: null, preset: null, clone: null });
    renderKinds();
    renderStudies();
    for (const button of presetList.querySelectorAll(".preset")) button.setAttribute("aria-pressed", "false");
    document.getElementById("form-section").hidden = true;
    studyPanel.hidden = false;
    const scales = study.scales.map((scale) => {
      const radio = h("input", { type: "radio", name: "study-scale", value: scale.name, id: `study-scale-${scale.name}` });
      radio.checked = scale.name === scaleName;
      radio.addEventListener("change", () => setParams({ scale: scale.name }));
      return h("label", { for: radio.id }, radio, " ", h("strong", {}, scale.name.replace("_", " ")), h("div", { class: "muted" }, scale.description));
    });
    const dataset = h("select", { id: "study-dataset" }, cache.catalog.datasets.map((item) => h("option", { value: item }, item)));
    dataset.value = study.pretrain.dataset || study.dataset;
    const dataPath = h("input", { type: "text", id: "study-data-path", value: study.pretrain.data_path || "" });
    // An image folder or shards holding the study's dataset say so, so the report sets them beside its published rows.
    const dataName = h("input", { type: "text", id: "study-dataset-name", placeholder: "same as dataset", size: 12 });
    const syncDataName = () => {
      const container = ["imagefolder", "webdataset"].includes(dataset.value);
      dataName.value = container ? dataName.value || study.dataset : "";
      dataName.disabled = !container;
    };
    dataset.addEventListener("change", syncDataName);
    syncDataName();
    const maxSteps = h("input", { type: "number", id: "study-max-steps", min: 1, placeholder: "the scale's" });
    const studyName = h("input", { type: "text", id: "study-name", maxlength: 200, placeholder: `${study.title} (<scale>)` });
    const available = study.baselines.filter((item) => item.available);
    const total = study.backbones.length * 2 + available.length;
    const error = h("div", { class: "error-box", role: "alert", hidden: true });
    const go = h("button", { type: "button", class: "primary", id: "submit-study" }, `Queue study (${total} runs)`);
    go.addEventListener("click", async () => {
      error.hidden = true;
      go.disabled = true;
      const pretrain = { dataset: dataset.value, data_path: dataPath.value.trim() || undefined };
      if (dataName.value.trim()) pretrain.dataset_name = dataName.value.trim();
      if (maxSteps.value) pretrain.max_steps = Number(maxSteps.value);
      const scale = studyPanel.querySelector("input[name=study-scale]:checked").value;
      try {
        const sweep = await api("/api/studies", { method: "POST", body: { study: name, scale, name: studyName.value.trim() || null, pretrain } });
        navigate(`/sweeps/${sweep.id}`);
      } catch (exc) {
        error.hidden = false;
        error.textContent = `The server refused this study: ${exc.message}`;
      } finally {
        go.disabled = false;
      }
    });
    fill(studyPanel,
      h("div", { class: "study-card panel" },
        h("h2", {}, study.title),
        h("p", {}, study.description),
        h("h3", {}, "Scale"), h("div", { class: "scales", role: "radiogroup", "aria-label": "Scale" }, scales),
        h("h3", {}, "Data"),
        h("div", { class: "meta-fields" },
          h("label", { for: dataset.id }, "Dataset", dataset),
          h("label", { for: dataPath.id }, "Data path", dataPath),
          h("label", { for: dataName.id, title: "For an image folder or shards: which dataset the images are (their train / test split), so the report compares them with that dataset's published figures" }, "Data is", dataName),
          h("label", { for: maxSteps.id }, "Steps per pretraining (optional)", maxSteps),
          h("label", { for: studyName.id }, "Name", studyName)),
        h("h3", {}, "What it queues"),
        h("ul", {},
          h("li", {}, `${study.backbones.length} DINO pretrainings: ${study.backbones.join(", ")}`),
          h("li", {}, `each evaluated when it completes: ${study.evaluate.protocols.join(" + ")} (kNN protocol ${study.evaluate.knn_protocol}), label fractions ${study.evaluate.label_fractions.map((f) => `${f * 100} %`).join(" / ")}, seeds ${study.evaluate.seeds.join(", ")}`),
          h("li", {}, `${available.length} of ${study.baselines.length} baselines, evaluated directly:`),
          h("ul", { class: "baseline-list" }, study.baselines.map((item) => h("li", { class: item.available ? "" : "unavailable" },
            h("strong", {}, item.label), item.available ? " — weights found, evaluated" : ` — skipped: ${item.reason}`)))),
        h("div", { class: "submit-bar" }, error, go)));
  }

  async function fillChoiceLists() {
    const lists = ["teacher", "checkpoint"].map((name) => [name, document.getElementById(`field-${name}-choices`)]).filter(([, list]) => list);
    if (!lists.length) return;
    try {
      const runs = await api("/api/runs?status=completed&limit=100&sort=-finished_at");
      for (const [name, list] of lists) {
        clear(list);
        if (name === "teacher") for (const item of cache.catalog.backbones) list.append(h("option", { value: item.name }, `${item.name} (${fmtParams(item.params)})`));
        for (const run of runs.data.filter((item) => item.kind !== "eval")) {
          list.append(h("option", { value: run.id }, `run ${run.name || run.id} · ${run.backbone || ""}`));
        }
      }
    } catch {
      // The choices are a convenience; typing a run id or a path still works.
    }
  }

  function collect() {
    const config = {};
    const grid = swept.size ? sweepGrid() : null;
    for (const [name, entry] of inputs) {
      // A swept option's first value stands in the base config, which must be valid by itself (the API's schema).
      const value = swept.has(name) ? grid[name][0] : entry.read();
      if (value !== undefined && !same(value, state.defaults[name])) config[name] = value;
    }
    const tags = tagsInput.value.split(",").map((tag) => tag.trim()).filter(Boolean);
    const body = { kind: state.kind, name: nameInput.value.trim() || null, tags, config };
    const evaluate = evaluateRoot.read?.() ?? null;
    if (evaluate) body.evaluate = evaluate;
    if (grid) body.grid = grid;
    return body;
  }

  function showErrors(exc) {
    const fieldErrors = exc instanceof ApiError ? exc.fieldErrors : {};
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
    formError.hidden = false;
    formError.textContent = `The server refused this run: ${exc.message}`;
    (first?.element || formError).focus?.();
    first?.wrapper.scrollIntoView({ block: "center" });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.hidden = true;
    for (const entry of inputs.values()) entry.error.textContent = "";
    submit.disabled = true;
    submit.textContent = "Queueing…";
    try {
      const body = collect();
      if (body.grid) {
        const sweep = await api("/api/sweeps", { method: "POST", body });
        navigate(`/sweeps/${sweep.id}`);
      } else {
        const run = await api("/api/runs", { method: "POST", body });
        navigate(`/runs/${run.id}`);
      }
    } catch (exc) {
      showErrors(exc);
    } finally {
      updateCount();
    }
  });

  copyCurl.addEventListener("click", async () => {
    const collected = collect();
    const body = JSON.stringify(collected);
    const auth = cache.session?.auth_required ? ` -H "Authorization: Bearer $LOWDINO_API_TOKEN"` : "";
    const endpoint = collected.grid ? "sweeps" : "runs";
    const command = `curl -X POST ${location.origin}/api/${endpoint} -H 'content-type: application/json'${auth} -d ${shellQuote(body)}`;
    copied.textContent = (await copyText(command)) ? "curl command copied" : "copy failed";
    copied.dataset.copied = command;
  });

  copyCli.addEventListener("click", async () => {
    const { config, grid } = collect();
    if (grid) {
      copied.textContent = "a sweep is many commands: use “Copy as curl” (POST /api/sweeps)";
      return;
    }
    const parts = ["lowdino", state.kind];
    for (const [name, value] of Object.entries(config)) {
      if (value === null) continue; // a flag cannot unset a default
      if (typeof value === "boolean") parts.push(value ? flag(name) : `--no-${name.replace(/_/g, "-")}`);
      else parts.push(flag(name), shellQuote(Array.isArray(value) ? value.join(",") : String(value)));
    }
    const command = parts.join(" ");
    copied.textContent = (await copyText(command)) ? "CLI command copied" : "copy failed";
    copied.dataset.copied = command;
  });

  load();
  return () => { stopped = true; };
}
