// Lists read a page at a time with the API's cursors. `Pager` is the one previous/next pager: it
// keeps the cursors of the pages read so far and draws Previous / "Page N" / Next; the list that
// owns it reads pages. `pagedList` is a whole region built on it: it reads, renders, and drops an
// answer to an older request.

import { announce, h, loadingEl, withErrors } from "./dom.js";

/**
 * new Pager({label, onMove, hideAlone}): `element` is the <nav> (its aria-label `label`, "Pages of
 * messages"); `cursor` is the page to read now and `number` its number. Previous / Next move and
 * call onMove(); once the page is read the list calls show(page) (its next_cursor enables Next;
 * show(null) after a failure). `hideAlone` hides the pager while one page is all there is.
 */
export class Pager {
  constructor({ label, onMove, hideAlone = false }) {
    this.element = h("nav", { class: "pager", "aria-label": label });
    this.onMove = onMove;
    this.hideAlone = hideAlone;
    this.cursors = [null];
    this.nextCursor = null;
  }

  get cursor() {
    return this.cursors.at(-1);
  }

  get number() {
    return this.cursors.length;
  }

  /** Back to the first page (a new filter, a reload); draws nothing until show(). */
  reset() {
    this.cursors = [null];
  }

  /** Draws the pager for `page`, the page just read (null when it could not be read). */
  show(page) {
    this.nextCursor = (page && page.next_cursor) || null;
    // One page and nothing after it: no pager to read past.
    if (this.hideAlone && this.number <= 1 && !this.nextCursor) {
      this.element.replaceChildren();
      this.element.hidden = true;
      return;
    }
    this.element.hidden = false;
    this.element.replaceChildren(
      h("button", { type: "button", class: "button secondary", disabled: this.number <= 1, onclick: () => this.move(-1) }, "Previous page"),
      h("span", { class: "page-number" }, `Page ${this.number}`),
      h("button", { type: "button", class: "button secondary", disabled: !this.nextCursor, onclick: () => this.move(1) }, "Next page"),
    );
  }

  move(direction) {
    if (direction > 0 && this.nextCursor) this.cursors.push(this.nextCursor);
    else if (direction < 0 && this.cursors.length > 1) this.cursors.pop();
    else return;
    this.onMove(direction);
  }
}

/**
 * pagedList({label, fetchPage, render, className}) → {element, reload}
 *   fetchPage(cursor) → Promise<{data, next_cursor}>; render(data) → a node (an empty page too);
 *   className: the region's ("table-wrap" for a table that scrolls sideways in its own box).
 * `label` names the region ("Delivery attempts") and its pager ("Pages of delivery attempts").
 */
export function pagedList({ label, fetchPage, render, className = "" }) {
  // A table scrolls sideways in its box (table-wrap): the keyboard must reach it, so it takes focus.
  const scrolls = className.split(" ").includes("table-wrap");
  const region = h("div", { class: `paged-region ${className}`.trim(), role: "region", "aria-label": label, tabindex: scrolls ? "0" : null }, loadingEl());
  const pager = new Pager({ label: `Pages of ${label.toLowerCase()}`, onMove: () => load(true), hideAlone: true });
  let token = 0;

  const load = async (moved) => {
    const mine = ++token;
    const current = () => mine === token;
    let page = null;
    region.setAttribute("aria-busy", "true");
    await withErrors(
      (box) => current() && region.replaceChildren(box),
      async () => {
        const answer = await fetchPage(pager.cursor);
        if (!current()) return;
        page = answer;
        region.replaceChildren(render(answer.data));
        if (moved) announce(`${label}, page ${pager.number}`);
      },
      { retry: () => load(false) },
    );
    if (!current()) return;
    region.removeAttribute("aria-busy");
    pager.show(page);
  };

  /** Reads the first page again (after a change, or on Refresh). */
  const reload = () => {
    pager.reset();
    return load(false);
  };

  load(false);
  return { element: h("div", { class: "paged-list" }, region, pager.element), reload };
}
