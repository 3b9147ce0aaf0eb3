// The segment bar along the top of Users and Companies: "All users" then each segment (predefined
// first, as the API lists them) with its count; the selected one is aria-pressed. Choosing one is
// a navigation (its route), so the address bar and Back follow the selection.

import { h, loadingEl } from "./dom.js";

export class SegmentBar {
  /** `target` "users" or "companies"; `label` the group's name ("Users segments"); `allLabel` "All users". */
  constructor({ target, label, allLabel, navigate }) {
    this.target = target;
    this.allLabel = allLabel;
    this.navigate = navigate;
    this.element = h("div", { class: "segment-bar", role: "group", "aria-label": label });
  }

  loading() {
    this.element.replaceChildren(loadingEl("Loading segments…"));
  }

  clear() {
    this.element.replaceChildren();
  }

  /** The chips for `segments`, `selectedId` (null: everyone) pressed. */
  render(segments, selectedId) {
    const all = h(
      "button",
      {
        type: "button",
        class: "segment-chip",
        "aria-pressed": selectedId ? "false" : "true",
        onclick: () => this.navigate(`#/${this.target}`),
      },
      h("span", { class: "segment-name" }, this.allLabel),
    );
    const chips = segments.map((segment) =>
      h(
        "button",
        {
          type: "button",
          class: segment.predefined ? "segment-chip predefined" : "segment-chip",
          "aria-pressed": selectedId === segment.id ? "true" : "false",
          "data-segment-id": segment.id,
          onclick: () => this.navigate(`#/${this.target}/s/${encodeURIComponent(segment.id)}`),
        },
        h("span", { class: "segment-name" }, segment.name),
        " ",
        h("span", { class: "segment-count" }, String(segment.count)),
      ),
    );
    this.element.replaceChildren(all, ...chips);
    // On a phone the bar scrolls sideways: keep the selected segment in view.
    const bar = this.element;
    const pressed = bar.querySelector('[aria-pressed="true"]');
    if (pressed && bar.scrollWidth > bar.clientWidth) {
      bar.scrollLeft = Math.max(0, pressed.offsetLeft - bar.offsetLeft - 12);
    }
  }
}
