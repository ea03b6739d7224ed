// The Run page's export parts: the "Export…" form of a completed training run (POST an `export` run of
// it, then open that run) and the summary of an export run's manifest (artifact, input, parity).
import { api } from "./api.js";
import { h, fill } from "./dom.js";
import { navigate } from "./url.js";

// The size an export takes by default is the run's evaluation size (the library's own default too).
function trainedSize(run) {
  const config = run.config || {};
  const size = config.global_crop_size ?? config.crop_size ?? config.image_size;
  return Number.isInteger(size) ? size : null;
}

function field(label, input, help, name) {
  return h("div", { class: "field", "data-field": name },
    h("label", { for: input.id }, label), input,
    help ? h("div", { class: "help" }, help) : null,
    h("div", { class: "field-error", id: `${input.id}-error`, role: "alert" }));
}

function select(id, options, value) {
  return h("select", { id, name: id }, options.map(([optionValue, text]) => h("option", { value: optionValue, selected: optionValue === value }, text)));
}

/** The form that exports `run` (a completed pretrain / distill run); `onClose` hides it. */
export function exportForm(run, { onClose }) {
  const size = trainedSize(run);
  const format = select("export-format", [["onnx", "ONNX (ONNX Runtime)"], ["executorch", "ExecuTorch (XNNPACK .pte)"], ["torchscript", "TorchScript (torch.jit)"]], "onnx");
  const quantize = select("export-quantize", [["none", "none (fp32)"], ["int8", "int8 (static, calibrated)"]], "none");
  const imageSize = h("input", { type: "number", id: "export-image-size", min: 8, max: 1024, step: 1, value: size ?? "", placeholder: "the backbone's" });
  const network = select("export-which", [["teacher", "teacher (what evaluation uses)"], ["student", "student"]], run.kind === "distill" ? "student" : "teacher");
  const calibrationImages = h("input", { type: "number", id: "export-calibration-images", min: 1, max: 100000, step: 1, value: 128 });
  const calibrationData = h("input", { type: "text", id: "export-calibration-data", placeholder: run.config?.data_path || "the run's own image folder" });
  const calibration = h("div", { class: "fields", id: "export-calibration", hidden: true },
    field("Calibration images", calibrationImages, "Training images (never test) that calibrate the int8 activations.", "calibration_images"),
    field("Calibration data", calibrationData, "Image folder whose training split calibrates; empty: the run's own.", "calibration_data"));
  const formError = h("div", { class: "field-error", id: "export-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary", id: "export-submit" }, "Queue the export");
  const inputs = { format, quantize, image_size: imageSize, which: network, calibration_images: calibrationImages, calibration_data: calibrationData };

  function sync() {
    // int8 is ONNX Runtime's static quantization or ExecuTorch's XNNPACK one (PT2E): not TorchScript; it
    // needs calibration images.
    const quantizable = format.value === "onnx" || format.value === "executorch";
    if (!quantizable) quantize.value = "none";
    quantize.disabled = !quantizable;
    calibration.hidden = quantize.value !== "int8";
    const label = { onnx: "ONNX", executorch: "ExecuTorch", torchscript: "TorchScript" }[format.value];
    submit.textContent = `Queue the ${label}${quantize.value === "int8" ? " int8" : ""} export`;
  }
  format.addEventListener("change", sync);
  quantize.addEventListener("change", sync);

  async function onSubmit(event) {
    event.preventDefault();
    for (const element of form.querySelectorAll(".field-error")) element.textContent = "";
    const config = { source: run.id, format: format.value, quantize: quantize.value, which: network.value };
    if (imageSize.value) config.image_size = Number(imageSize.value);
    if (quantize.value === "int8") {
      config.calibration_images = Number(calibrationImages.value);
      if (calibrationData.value.trim()) config.calibration_data = calibrationData.value.trim();
    }
    const name = `${run.name || run.id} · ${format.value}${quantize.value === "int8" ? " int8" : ""}`;
    submit.disabled = true;
    try {
      const created = await api("/api/runs", { method: "POST", body: { kind: "export", name, tags: run.tags || [], config } });
      navigate(`/runs/${created.id}`);
    } catch (exc) {
      let placed = false;
      for (const [key, message] of Object.entries(exc.fieldErrors || {})) {
        const target = document.getElementById(`${inputs[key]?.id}-error`);
        if (target) { target.textContent = message; placed = true; }
      }
      if (!placed) formError.textContent = exc.message;
    } finally {
      submit.disabled = false;
    }
  }

  const form = h("form", { class: "export-form", id: "export-form", novalidate: true, onsubmit: onSubmit },
    h("fieldset", {},
      h("legend", {}, "Export for deployment"),
      h("p", { class: "help" }, "Writes the run's backbone as a deployable file with a manifest, after checking it against PyTorch on real images (parity). Evaluate the file afterwards with ",
        h("code", {}, "lowdino eval --artifact"), " to measure its accuracy and latency."),
      h("div", { class: "fields" },
        field("Format", format, null, "format"),
        field("Quantize", quantize, "int8 needs ONNX or ExecuTorch.", "quantize"),
        field("Image size (px)", imageSize, size ? `Default ${size} px: the run's evaluation size.` : "Default: the backbone's resolution.", "image_size"),
        field("Network", network, "Which network of the checkpoint.", "which")),
      calibration,
      h("div", { class: "submit-bar" }, submit, h("button", { type: "button", id: "export-cancel", onclick: onClose }, "Close"), formError)));
  sync();
  return form;
}

function scientific(value) {
  return typeof value === "number" ? value.toExponential(1) : "–";
}

/** The manifest of an export run's artifact, fetched and summarised into `box`. */
export async function renderManifest(box, runId, manifestName) {
  const base = `/api/runs/${encodeURIComponent(runId)}/artifacts/`;
  const response = await fetch(base + manifestName.split("/").map(encodeURIComponent).join("/"), { credentials: "same-origin" });
  if (!response.ok) return;
  const manifest = await response.json();
  const parity = manifest.parity || {};
  const artifactName = manifestName.replace(/\.manifest\.json$/, "");
  const precision = parity.precision || (manifest.quantization ? "int8" : "fp32");
  const parityText = parity.tolerance != null && precision === "fp32"
    ? `max |Δ| ${scientific(parity.max_abs_diff)} against PyTorch (tolerance ${scientific(parity.tolerance)})`
    : `max |Δ| ${scientific(parity.max_abs_diff)}, cosine ≥ ${typeof parity.cosine_min === "number" ? parity.cosine_min.toFixed(4) : "–"} against PyTorch fp32`;
  const facts = [
    ["Artifact", h("a", { href: base + artifactName.split("/").map(encodeURIComponent).join("/"), download: true, id: "export-artifact" }, artifactName)],
    ["Format", `${manifest.format}${manifest.exporter ? ` (${manifest.exporter}${manifest.opset ? `, opset ${manifest.opset}` : ""})` : ""}`],
    ["Precision", precision],
    ["Backbone", manifest.backbone],
    ["Input", `${manifest.image_size} × ${manifest.image_size} px, ${manifest.input?.layout || "NCHW"}`],
    ["Feature dim", String(manifest.feature_dim ?? "–")],
    ["Size", typeof manifest.artifact_bytes === "number" ? `${(manifest.artifact_bytes / 2 ** 20).toFixed(1)} MiB` : "–"],
  ];
  fill(box,
    h("h2", {}, "Exported model"),
    h("div", { class: "summary-grid", id: "export-summary" }, facts.map(([label, value]) => h("div", {}, h("span", {}, label), value))),
    h("p", { id: "export-parity" }, h("strong", {}, "Parity: "), parityText,
      ` on ${parity.images ?? "?"} images`, parity.image_source ? ` (${parity.image_source})` : "", "."),
    manifest.parity_images_are_random ? h("p", { class: "notice" }, "Parity was checked on random inputs: the run had no image folder. Give the export parity data to check it on real images.") : null,
    h("p", { class: "muted" }, "Measure its accuracy and latency: ",
      h("code", {}, `lowdino eval --artifact ${artifactName} --protocols knn,latency`)));
}
