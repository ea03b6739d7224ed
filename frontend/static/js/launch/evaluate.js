// "Then evaluate": a training run can carry an `evaluate` block, queued as a linked eval run when it
// completes. The block's fields come from the eval kind's schema.
import { clear, h } from "../dom.js";
import { baseSchema } from "./form.js";

/** Renders the block into `root` from eval's schema; returns read(): the block, or null when it is off. */
export function renderEvaluate(root, evalSchema) {
  clear(root);
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
  root.append(h("fieldset", { "data-group": "evaluate" }, h("legend", {}, "Then evaluate"),
    h("label", { for: toggle.id }, toggle, " Evaluate the final checkpoint when the run completes (a linked eval run, on the same dataset)"),
    body));
  return () => (toggle.checked ? {
    protocols: protocols.filter((box) => box.checked).map((box) => box.value),
    knn_protocol: knnProtocol.value,
    label_fractions: numbers(fractions),
    seeds: numbers(seeds),
  } : null);
}
