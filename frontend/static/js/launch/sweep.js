// Sweep fields: any field of the form can become a list of values; the form then queues one run
// per combination (the grid POST /api/sweeps expands), and the submit button counts them.
import { h } from "../dom.js";

// A list field's values are themselves comma-separated, so its lists are separated by ";".
function separator(entry) {
  return entry.isList ? ";" : ",";
}

/** The swept fields of one form; `onChange` runs whenever the number of runs may have changed. */
export function createSweep(onChange) {
  const swept = new Map(); // field -> the text input holding its list of values

  function toggle(name, entry, button) {
    const on = !swept.has(name);
    button.setAttribute("aria-pressed", String(on));
    entry.wrapper.classList.toggle("swept", on);
    if (entry.element.tagName === "DIV") for (const box of entry.element.querySelectorAll("input")) box.disabled = on;
    else entry.element.disabled = on;
    if (on) {
      const current = entry.read();
      const shown = Array.isArray(current) ? current.join(", ") : current ?? "";
      const box = h("input", {
        type: "text", class: "sweep-values", id: `field-${name}-sweep`, name: `${name}-sweep`,
        placeholder: entry.isList ? "lists separated by ; e.g. 0.1, 0.3 ; 0.5" : "values separated by , e.g. 0, 1, 2",
        "aria-label": `${name.replace(/_/g, " ")}: values to sweep, separated by ${separator(entry)}`,
      });
      box.value = String(shown);
      box.addEventListener("input", onChange);
      entry.wrapper.insertBefore(box, entry.wrapper.querySelector(".help"));
      swept.set(name, box);
      box.focus();
    } else {
      swept.get(name).remove();
      swept.delete(name);
    }
    onChange();
  }

  /** field -> its parsed values, for the swept fields of `inputs` (the form's entries). */
  function grid(inputs) {
    const result = {};
    for (const [name, box] of swept) {
      const entry = inputs.get(name);
      result[name] = box.value.split(separator(entry)).map((part) => part.trim()).filter((part) => part !== "").map(entry.parse);
    }
    return result;
  }

  /** field -> the raw text of its values (a search reads ranges such as "0.0001..0.01 log" from it). */
  function texts() {
    return Object.fromEntries([...swept].map(([name, box]) => [name, box.value]));
  }

  /** How many runs the form queues: the product of the swept fields' value counts (1 when none). */
  function count(inputs) {
    return Object.values(grid(inputs)).reduce((total, values) => total * Math.max(values.length, 0), 1);
  }

  return {
    toggle, grid, count, texts,
    has: (name) => swept.has(name),
    get size() { return swept.size; },
    clear: () => swept.clear(),
  };
}
