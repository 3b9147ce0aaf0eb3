// A list read a page at a time with the API's cursors: Previous / Next, "Page N", and an answer
// to an older request dropped.

import { announce, errorBox, h, loadingEl } from "./dom.js";

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
  const pager = h("nav", { class: "pager", "aria-label": `Pages of ${label.toLowerCase()}` });
  const cursors = [null];
  let token = 0;
  let page = null;

  const renderPager = () => {
    const hasNext = Boolean(page && page.next_cursor);
    // One page and nothing after it: no pager to read past.
    if (cursors.length <= 1 && !hasNext) {
      pager.replaceChildren();
      pager.hidden = true;
      return;
    }
    pager.hidden = false;
    pager.replaceChildren(
      h("button", { type: "button", class: "button secondary", disabled: cursors.length <= 1, onclick: () => go(-1) }, "Previous page"),
      h("span", { class: "page-number" }, `Page ${cursors.length}`),
      h("button", { type: "button", class: "button secondary", disabled: !hasNext, onclick: () => go(1) }, "Next page"),
    );
  };

  const load = async (moved) => {
    const mine = ++token;
    region.setAttribute("aria-busy", "true");
    try {
      const answer = await fetchPage(cursors.at(-1));
      if (mine !== token) return;
      page = answer;
      region.replaceChildren(render(answer.data));
      if (moved) announce(`${label}, page ${cursors.length}`);
    } catch (error) {
      if (mine !== token) return;
      page = null;
      region.replaceChildren(errorBox(error, () => load(false)));
    } finally {
      if (mine === token) {
        region.removeAttribute("aria-busy");
        renderPager();
      }
    }
  };

  function go(direction) {
    if (direction > 0 && page && page.next_cursor) cursors.push(page.next_cursor);
    else if (direction < 0 && cursors.length > 1) cursors.pop();
    else return;
    load(true);
  }

  /** Reads the first page again (after a change, or on Refresh). */
  const reload = () => {
    cursors.splice(1);
    return load(false);
  };

  load(false);
  return { element: h("div", { class: "paged-list" }, region, pager), reload };
}
