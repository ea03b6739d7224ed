// Launch: a form generated from the kind's config schema, filled from a preset or a cloned run.
// Any field can become a list of values ("Sweep"): the form then queues one run per combination
// (POST /api/sweeps). A study preset (?study=) replaces the form with its own short one.
// With "Search" ticked, the swept fields are a search space instead (POST /api/searches, ../launch/search.js).
// This page wires the pieces in ../launch/: form (schema -> fields), sweep, search, evaluate, study, commands.
import { api, ApiError } from "../api.js";
import { showBanner } from "../banner.js";
import { getCatalog } from "../catalog.js";
import { clear, copyText, fill, h } from "../dom.js";
import { cliCommand, curlCommand } from "../launch/commands.js";
import { renderEvaluate } from "../launch/evaluate.js";
import { clearFieldErrors, defaultsOf, readConfig, renderFields, showFieldErrors, unreadableNumbers } from "../launch/form.js";
import { renderStudyList, renderStudyPanel } from "../launch/study.js";
import { renderSearchOptions, spaceOf } from "../launch/search.js";
import { createSweep } from "../launch/sweep.js";
import { navigate, params, setParams } from "../url.js";

const cache = { catalog: null, schemas: {}, session: null, studies: null };

export function mount(root) {
  let stopped = false;
  // The kinds are the server's (catalog.kinds, its config models); an unknown ?kind= falls back to the first.
  const state = { kind: params().get("kind"), values: {}, preset: params().get("preset"), source: null, study: params().get("study") };
  let inputs = new Map(); // field -> {read(), write(value), parse(text), element, error, wrapper}
  let readEvaluate = () => null; // the "Then evaluate" block, on kinds that leave a checkpoint
  const sweep = createSweep(updateCount);
  const studyList = h("div", { class: "preset-list", id: "studies" });
  const studyPanel = h("section", { id: "study-panel", hidden: true });
  const evaluateRoot = h("div", { id: "evaluate-after" });
  const searchToggle = h("input", { type: "checkbox", id: "search-mode", name: "search-mode" });
  const searchOptionsRoot = h("div", { id: "search-options", hidden: true });
  const searchRoot = h("fieldset", { id: "search-block", class: "search-block" },
    h("legend", {}, h("label", { for: "search-mode" }, searchToggle, " Search instead of a grid")),
    searchOptionsRoot);
  let search = null; // {read(), summary()} once the search options are shown
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
    searchRoot,
    evaluateRoot,
    // In the sticky bar: the refusal stays in view wherever the field it names is scrolled to.
    h("div", { class: "submit-bar" }, formError, submit, copyCurl, copyCli, copied),
  );

  // The config fields the server sets itself (catalog.server_owned_fields): never in the form, never cloned.
  const serverOwned = () => new Set(cache.catalog.server_owned_fields);

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
    state.defaults = defaultsOf(schema);
    let values = { ...state.defaults };
    const preset = cache.catalog.presets.find((item) => item.name === state.preset && item.kind === kind);
    if (state.source?.type === "clone") {
      const run = state.source.run;
      const owned = serverOwned();
      values = { ...values, ...Object.fromEntries(Object.entries(run.config).filter(([key]) => key in values && !owned.has(key))) };
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
    // ?evaluate=<run id> (the Run page's "Evaluate…"): that run's checkpoint, on a kind that reads one.
    const evaluated = "checkpoint" in values && !state.source ? params().get("evaluate") : null;
    if (evaluated) {
      values = { ...values, checkpoint: evaluated };
      if (!nameInput.value) nameInput.value = `evaluation of ${evaluated}`;
      sourceNote.textContent = `Evaluates the final checkpoint of run ${evaluated}; pick the protocols, then queue it.`;
    }
    state.values = values;
    setParams({ kind, preset: state.preset, clone: state.source?.type === "clone" ? state.source.run.id : null, study: null, scale: null, evaluate: evaluated });
    studyPanel.hidden = true;
    document.getElementById("form-section").hidden = false;
    renderKinds();
    renderPresets();
    renderStudies();
    sweep.clear();
    formError.hidden = true;
    inputs = renderFields(fieldsRoot, {
      schema, kind, values, defaults: state.defaults, catalog: cache.catalog, hidden: serverOwned(),
      onSweep: sweep.toggle,
    });
    await showEvaluate();
    searchRoot.hidden = !cache.catalog.training_kinds.includes(state.kind);
    await setSearchMode(!searchRoot.hidden && (searchToggle.checked || params().get("search") === "1"));
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

  function searching() {
    return searchToggle.checked && cache.catalog?.training_kinds.includes(state.kind);
  }

  async function setSearchMode(on) {
    searchToggle.checked = on;
    searchOptionsRoot.hidden = !on;
    evaluateRoot.hidden = on; // a search never evaluates on the test split; Promote does, later
    setParams({ search: on ? "1" : null });
    if (on && !search) {
      try {
        search = await renderSearchOptions(searchOptionsRoot, updateCount);
      } catch (exc) {
        showBanner(`Could not load the search options: ${exc.message}`);
      }
    }
    updateCount();
  }

  searchToggle.addEventListener("change", () => setSearchMode(searchToggle.checked));

  function updateCount() {
    if (searching() && search) {
      submit.textContent = search.summary();
      submit.disabled = sweep.size < 1;
      submit.title = sweep.size < 1 ? "mark at least one field “Sweep” to search it" : "";
      return;
    }
    const n = sweep.count(inputs);
    submit.textContent = `Queue ${n} run${n === 1 ? "" : "s"}`;
    submit.disabled = n < 1;
  }

  // Only the kinds that leave a checkpoint (catalog.training_kinds) can chain an evaluation.
  async function showEvaluate() {
    clear(evaluateRoot);
    readEvaluate = () => null;
    if (!cache.catalog.training_kinds.includes(state.kind)) return;
    const evalSchema = await schemaFor("eval");
    if (stopped) return;
    readEvaluate = renderEvaluate(evaluateRoot, evalSchema);
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
    renderStudyList(studyList, cache.studies, state.study, showStudy);
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
    renderStudyPanel(studyPanel, study, { datasets: cache.catalog.datasets, scaleName });
  }

  /** The request body the form stands for: POST /api/runs, or /api/sweeps when a field is swept. */
  function collect() {
    if (searching() && search) {
      const texts = sweep.texts();
      const config = readConfig(inputs, state.defaults);
      for (const name of Object.keys(texts)) delete config[name];
      const tags = tagsInput.value.split(",").map((tag) => tag.trim()).filter(Boolean);
      return { kind: state.kind, name: nameInput.value.trim() || null, tags, config, space: spaceOf(texts, inputs), ...search.read() };
    }
    const grid = sweep.size ? sweep.grid(inputs) : null;
    const config = readConfig(inputs, state.defaults, grid);
    const tags = tagsInput.value.split(",").map((tag) => tag.trim()).filter(Boolean);
    const body = { kind: state.kind, name: nameInput.value.trim() || null, tags, config };
    const evaluate = readEvaluate();
    if (evaluate) body.evaluate = evaluate;
    if (grid) body.grid = grid;
    return body;
  }

  function showErrors(exc) {
    // A search's refusals name space.<field>: shown under that field of the form.
    const errors = Object.fromEntries(Object.entries(exc instanceof ApiError ? exc.fieldErrors : {}).map(([key, message]) => [key.replace(/^space\./, ""), message]));
    const first = showFieldErrors(inputs, errors);
    if (searching() && search) search.showErrors(exc instanceof ApiError ? exc.fieldErrors : {});
    formError.hidden = false;
    formError.textContent = `The server refused this run: ${exc.message}`;
    (first?.element || formError).focus?.();
    first?.wrapper.scrollIntoView({ block: "center" });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.hidden = true;
    clearFieldErrors(inputs);
    // A number field holding text reads as "" in the browser: say so here, not "(got '')" from the server.
    const unreadable = unreadableNumbers(inputs);
    if (Object.keys(unreadable).length) {
      const first = showFieldErrors(inputs, unreadable);
      formError.hidden = false;
      formError.textContent = `Not a number in ${Object.keys(unreadable).join(", ")}: fix the marked field${Object.keys(unreadable).length > 1 ? "s" : ""}.`;
      first?.element.focus();
      first?.wrapper.scrollIntoView({ block: "center" });
      return;
    }
    submit.disabled = true;
    submit.textContent = "Queueing…";
    try {
      const body = collect();
      if (body.space) {
        const created = await api("/api/searches", { method: "POST", body });
        navigate(`/searches/${created.id}`);
      } else if (body.grid) {
        const created = await api("/api/sweeps", { method: "POST", body });
        navigate(`/sweeps/${created.id}`);
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

  async function copyCommand(command, what) {
    copied.textContent = (await copyText(command)) ? `${what} copied` : "copy failed";
    copied.dataset.copied = command;
  }

  copyCurl.addEventListener("click", () => {
    copyCommand(curlCommand(collect(), { origin: location.origin, authRequired: cache.session?.auth_required }), "curl command");
  });

  copyCli.addEventListener("click", () => {
    const { config, grid, space } = collect();
    if (space) {
      copied.textContent = "a search runs from `lowdino search --config base.yaml --space space.yaml`; use “Copy as curl” (POST /api/searches)";
      return;
    }
    if (grid) {
      copied.textContent = "a sweep is many commands: use “Copy as curl” (POST /api/sweeps)";
      return;
    }
    copyCommand(cliCommand(state.kind, config), "CLI command");
  });

  load();
  return () => { stopped = true; };
}
