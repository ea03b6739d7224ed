// Studies (GET /api/studies): a named set of pretrainings, their evaluations and baselines, queued as
// one sweep. Picking one replaces the Launch form with its own short panel: scale, data, name.
import { api } from "../api.js";
import { clear, fill, h } from "../dom.js";
import { navigate, setParams } from "../url.js";

/** The study cards of the side bar; `onPick(name)` opens one. */
export function renderStudyList(list, studies, current, onPick) {
  clear(list);
  for (const study of studies || []) {
    list.append(h("button", {
      type: "button", class: "preset", "data-study": study.name, "aria-pressed": String(study.name === current),
      onclick: () => onPick(study.name),
    }, h("strong", {}, study.title), h("span", {}, study.description)));
  }
}

/** Fills `panel` with the study's form (`scaleName` checked); queueing it opens the sweep it became. */
export function renderStudyPanel(panel, study, { datasets, scaleName }) {
  const scales = study.scales.map((scale) => {
    const radio = h("input", { type: "radio", name: "study-scale", value: scale.name, id: `study-scale-${scale.name}` });
    radio.checked = scale.name === scaleName;
    radio.addEventListener("change", () => setParams({ scale: scale.name }));
    return h("label", { for: radio.id }, radio, " ", h("strong", {}, scale.name.replace("_", " ")), h("div", { class: "muted" }, scale.description));
  });
  const dataset = h("select", { id: "study-dataset" }, datasets.map((item) => h("option", { value: item }, item)));
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
    const scale = panel.querySelector("input[name=study-scale]:checked").value;
    try {
      const sweep = await api("/api/studies", { method: "POST", body: { study: study.name, scale, name: studyName.value.trim() || null, pretrain } });
      navigate(`/sweeps/${sweep.id}`);
    } catch (exc) {
      error.hidden = false;
      error.textContent = `The server refused this study: ${exc.message}`;
    } finally {
      go.disabled = false;
    }
  });
  fill(panel,
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
