// The filter panel on the left of Users and Companies: the filter builder (filters.js), a note on
// what it shows (a segment's filter, edited or not, or a new filter), and the segment actions this
// role may take (Save segment, Save changes, Delete segment, Discard changes) with their status.

import { can } from "./api.js";
import { h } from "./dom.js";
import { FilterEditor } from "./filters.js";

export class FilterPanel {
  /**
   * `fields` the Map the view keeps up to date; `onChange` after each edit; `actions`
   * {save, saveChanges, remove, discard}: what the buttons do (the view does it).
   */
  constructor({ headingId, many, role, fields, onChange, actions }) {
    this.many = many;
    this.role = role;
    this.actions = actions;
    this.editor = new FilterEditor({ fields, segments: [], onChange });
    this.note = h("p", { class: "segment-note muted" });
    this.buttons = h("div", { class: "panel-actions" });
    this.status = h("div", { class: "panel-status", role: "status" });
    this.element = h(
      "aside",
      { class: "filter-panel", "aria-labelledby": `${headingId}-filters` },
      h("h2", { id: `${headingId}-filters` }, "Filters"),
      this.note,
      this.editor.element,
      this.buttons,
      this.status,
    );
  }

  /** The filter as the API takes it, null when empty (a condition without a value is left out). */
  filter() {
    return this.editor.build().filter;
  }

  /** Until the fields and segments are known the filters cannot be edited. */
  set editable(on) {
    this.element.inert = !on;
  }

  /** The note and the buttons for `segment` (null: a new filter), `modified` or not. */
  render(segment, modified) {
    if (segment) {
      const state = segment.predefined
        ? "Predefined segment: it cannot be edited or deleted."
        : modified
          ? "Showing your changes, not yet saved."
          : "Showing the segment's filter.";
      this.note.replaceChildren(h("strong", {}, segment.name), " — ", state);
    } else {
      this.note.replaceChildren(`Filter the ${this.many}, then save the filter as a segment.`);
    }
    const button = (className, label, onclick) => h("button", { type: "button", class: className, onclick }, label);
    const buttons = [];
    if (can.write(this.role)) buttons.push(button("button", "Save segment", () => this.actions.save()));
    if (segment && !segment.predefined && can.admin(this.role)) {
      buttons.push(button("button secondary", "Save changes", () => this.actions.saveChanges()));
      buttons.push(button("button danger-outline", "Delete segment", () => this.actions.remove()));
    }
    if (segment && modified) buttons.push(button("button link", "Discard changes", () => this.actions.discard()));
    this.buttons.replaceChildren(...buttons);
  }
}
