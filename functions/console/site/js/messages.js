// Messages: the list of every message (#/messages), and the words and badges a message is shown
// with, shared with its page (message-page.js). The composer is composer.js.

import { api, can } from "./api.js";
import { endpoints } from "./endpoints.js";
import { h, loadingEl, timeEl, uid, withErrors } from "./dom.js";
import { Pager } from "./paging.js";
import { FEEDBACK_STATS } from "./email.js";

export const PAGE_SIZE = 25;
export const STATS = ["queued", "sent", "skipped", "failed"];
export const CHANNELS = { email: "Email", in_app: "In-app" };
export const TYPES = { manual: "Manual", auto: "Auto" };

export function stateBadge(state) {
  return h("span", { class: `state state-${state}` }, state);
}

/** The marker next to a held message's state. */
export function heldBadge(message) {
  if (!message.paused_reason) return null;
  return [" ", h("span", { class: "state state-held", title: message.paused_reason.code }, "paused by SES")];
}

/** The Messages view: every message with its state and stats, a page at a time. */
export async function renderMessages(ctx, main) {
  const headingId = uid("h");
  const wrap = h("div", { class: "table-wrap", role: "region", "aria-label": "Messages list", tabindex: "0" }, loadingEl());
  const pager = new Pager({ label: "Pages of messages", onMove: () => load() });
  main.replaceChildren(
    h(
      "div",
      { class: "messages-view" },
      h("h1", { id: headingId, tabindex: "-1" }, "Messages"),
      h("p", { class: "muted" }, can.write(ctx.role) ? "Write a new message from the Users list: its audience is the segment or filter you are looking at." : "Every message, newest first."),
      wrap,
      pager.element,
    ),
  );
  const load = async () => {
    wrap.setAttribute("aria-busy", "true");
    let page = null;
    await withErrors(
      wrap,
      async () => {
        page = await api("GET", endpoints.messages({ limit: PAGE_SIZE, cursor: pager.cursor }));
        wrap.replaceChildren(messagesTable(page.data));
      },
      { retry: load },
    );
    pager.show(page);
    wrap.removeAttribute("aria-busy");
  };
  await load();
}

const capitalized = (word) => word[0].toUpperCase() + word.slice(1);

/** A stat's cell; SES reports on email only, so an in-app message has no feedback counters. */
function statCell(message, stat) {
  if (FEEDBACK_STATS.includes(stat) && message.channel !== "email") {
    return h("td", { class: "num muted", title: "Email only" }, "—");
  }
  return h("td", { class: "num" }, String((message.stats || {})[stat] ?? 0));
}

function messagesTable(messages) {
  if (!messages.length) return h("p", { class: "empty" }, "No messages yet.");
  const counters = [...STATS, ...FEEDBACK_STATS];
  const head = h(
    "tr",
    {},
    ["Name", "Type", "Channel", "State"].map((label) => h("th", { scope: "col" }, label)),
    counters.map((stat) => h("th", { scope: "col", class: "num" }, capitalized(stat))),
    h("th", { scope: "col" }, "Created"),
  );
  const rows = messages.map((message) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, h("a", { href: `#/messages/${encodeURIComponent(message.id)}` }, message.name)),
      h("td", {}, TYPES[message.type] || message.type),
      h("td", {}, CHANNELS[message.channel] || message.channel),
      h("td", {}, stateBadge(message.state), heldBadge(message)),
      counters.map((stat) => statCell(message, stat)),
      h("td", {}, timeEl(message.created_at)),
    ),
  );
  return h("table", { class: "data-table" }, h("caption", { class: "visually-hidden" }, "Messages"), h("thead", {}, head), h("tbody", {}, rows));
}
