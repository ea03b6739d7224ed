// The Runs page's query box: GET /api/runs?where= (grammar in the README, "Notes, tags and queries").
// A refused query is shown under the box with the offending token marked, from the position that the
// server's 422 names ("at position 12").
import { clear, h } from "./dom.js";

const TOKEN_AT = /^('[^']*'?|"[^"]*"?|[A-Za-z_][\w.]*|-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|<=|>=|!=|[\s\S])/;
export const EXAMPLE = "backbone = 'resnet5m' and knn_top1 > 30";

export function queryBox({ value, onApply }) {
  const input = h("input", { type: "search", id: "runs-where", value: value || "", placeholder: EXAMPLE, "aria-describedby": "where-help where-error", spellcheck: "false", autocomplete: "off" });
  const error = h("p", { class: "field-error where-error", id: "where-error", "aria-live": "polite" });
  const form = h("form", { role: "search", "aria-label": "query runs" }, input, h("button", { type: "submit", id: "apply-where" }, "Apply"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onApply(input.value.trim());
  });
  const element = h("div", { class: "where-box" },
    h("label", { for: "runs-where" }, "Query"), form,
    h("p", { class: "muted", id: "where-help" },
      "Keys: config options, metrics (knn_top1, metrics.<name>), status, kind, tags, name, notes, created_at; ",
      "= != < <= > >= in (…) contains; and, or, not, parentheses; 'text' in quotes."),
    error);
  return {
    element,
    /** Show the server's message with the token it names marked in the query; null clears it. */
    showError(message) {
      clear(error);
      input.removeAttribute("aria-invalid");
      if (!message) return;
      input.setAttribute("aria-invalid", "true");
      const text = input.value;
      const at = /at position (\d+)/.exec(message);
      error.append(message.replace(/^where: /, ""));
      if (!at) return;
      const position = Math.min(Number(at[1]), text.length);
      const token = (TOKEN_AT.exec(text.slice(position)) || [""])[0];
      error.append(h("br"), text.slice(0, position), h("mark", { id: "where-token" }, token || " "), text.slice(position + token.length));
    },
  };
}
