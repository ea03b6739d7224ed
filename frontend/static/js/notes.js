// The Run page's "Notes" panel: the run's name, tags and Markdown notes, edited after the fact
// (PATCH /api/runs/{id}) and rendered by markdown.js, which never turns user text into markup.
import { api } from "./api.js";
import { clear, fill, h } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

export function notesPanel(initialRun, { onSaved }) {
  let run = initialRun;
  let editing = false;
  const root = h("section", { class: "notes-panel", id: "notes-panel", "aria-labelledby": "notes-title" });

  function splitTags(text) {
    return [...new Set(text.split(",").map((tag) => tag.trim()).filter(Boolean))];
  }

  function show() {
    editing = false;
    const body = h("div", { class: "notes-body", id: "run-notes" });
    if (run.notes) body.append(renderMarkdown(run.notes));
    else body.append(h("p", { class: "muted" }, "No notes yet: what this run tried, what it showed, what to do next."));
    fill(root,
      h("div", { class: "chart-head" }, h("h2", { id: "notes-title" }, "Notes"),
        h("button", { type: "button", id: "edit-notes", onclick: edit }, "Edit name, tags and notes")),
      body);
  }

  function edit() {
    editing = true;
    const name = h("input", { type: "text", id: "name-input", maxlength: 200, value: run.name || "", placeholder: run.id });
    const tags = h("input", { type: "text", id: "tags-input", value: (run.tags || []).join(", "), placeholder: "baseline, seed-sweep" });
    const notes = h("textarea", { id: "notes-text", rows: 8, maxlength: 20000, placeholder: "Markdown: # heading, **bold**, *italic*, `code`, - lists, [links](https://…)" });
    notes.value = run.notes || "";
    const errors = { name: h("p", { class: "field-error", id: "name-error" }), tags: h("p", { class: "field-error", id: "tags-error" }), notes: h("p", { class: "field-error", id: "notes-error" }) };
    const status = h("span", { class: "muted", role: "status", "aria-live": "polite" });
    const save = h("button", { type: "submit", class: "primary", id: "save-notes" }, "Save");
    const form = h("form", { class: "notes-form", id: "notes-form" },
      h("label", { for: "name-input" }, "Name", name), errors.name,
      h("label", { for: "tags-input" }, "Tags (comma-separated)", tags), errors.tags,
      h("label", { for: "notes-text" }, "Notes (Markdown)", notes), errors.notes,
      h("div", { class: "submit-bar" }, save, h("button", { type: "button", id: "cancel-notes", onclick: show }, "Cancel"), status));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      for (const box of Object.values(errors)) clear(box);
      for (const input of [name, tags, notes]) input.removeAttribute("aria-invalid");
      save.disabled = true;
      status.textContent = "Saving…";
      try {
        run = await api(`/api/runs/${encodeURIComponent(run.id)}`, {
          method: "PATCH",
          body: { name: name.value.trim() || null, tags: splitTags(tags.value), notes: notes.value.trim() ? notes.value : null },
        });
        onSaved?.(run);
        show();
      } catch (exc) {
        save.disabled = false;
        status.textContent = "";
        // FastAPI names the field in its 422 ("body.tags.0"): the message goes under that field.
        const field = ["name", "tags", "notes"].find((key) => exc.message.startsWith(`${key}`) || exc.message.includes(`${key}.`) || exc.message.includes(`${key}:`)) || "notes";
        errors[field].textContent = exc.message;
        ({ name, tags, notes })[field].setAttribute("aria-invalid", "true");
      }
    });
    fill(root, h("h2", { id: "notes-title" }, "Notes"), form);
    notes.focus();
  }

  show();
  return {
    element: root,
    // A refreshed run (status event) re-renders the panel, unless the user is typing in it.
    update(next) {
      run = next;
      if (!editing) show();
    },
  };
}
