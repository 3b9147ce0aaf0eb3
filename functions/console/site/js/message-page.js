// One message's page (#/messages/<id>): its state and kind, why SES holds it (if it does), what it
// is (audience, templates, times), its stats, the actions this role may take and its delivery log,
// followed for a while after a send. Each part is drawn by its own function; `MessagePage` keeps
// the message as it last read it and redraws them.

import { api, can } from "./api.js";
import { confirmDialog } from "./dialogs.js";
import { announce, h, loadingEl, timeEl, uid, withErrors } from "./dom.js";
import { FEEDBACK_STATS, feedbackCell } from "./email.js";
import { endpoints } from "./endpoints.js";
import { CHANNELS, PAGE_SIZE, STATS, TYPES, heldBadge, stateBadge } from "./messages.js";
import { Pager } from "./paging.js";

// A message SES refused to send for the whole account is "held" (`paused_reason`): what fixes
// each refusal (the API's snake_case code of SES's error); others get the general advice.
const HOLD_FIXES = {
  sending_paused: "Sending is paused for the SES account: deal with what made AWS pause it, then re-enable sending in the SES console.",
  account_sending_paused: "Sending is paused for the SES account: re-enable it in the SES console.",
  configuration_set_sending_paused: "Sending is paused for the stack's SES configuration set: re-enable it in the SES console.",
  account_suspended: "AWS suspended SES sending for the account: ask AWS Support to reinstate it.",
  sender_not_verified: "The sender address is not verified in SES: verify it (or its domain) in the SES console.",
  mail_from_domain_not_verified: "The MAIL FROM domain is not verified in SES: fix its DNS records.",
  daily_quota_exceeded: "The account's 24-hour sending quota is used up: wait for it to free up, or ask AWS for a higher quota.",
  not_found: "The stack's SES configuration set or sender identity is gone: deploy the stack again.",
  access_denied: "The stack may not send with SES: check its role's ses:SendEmail permission.",
  no_credentials: "The stack has no AWS credentials to send with: check its role.",
};
// After a send, the log is read again every FOLLOW_MS, at most FOLLOW_READS times.
const FOLLOW_MS = 1500;
const FOLLOW_READS = 20;
const RECENT_SEND_MS = 30000;

/** Reads the message (and the segments, to name its audience), then shows its page. */
export async function renderMessage(ctx, main, messageId) {
  const container = h("div", { class: "message-view" }, loadingEl());
  main.replaceChildren(container);
  let message;
  let segments = [];
  const loaded = await withErrors(
    (box) => container.replaceChildren(h("h1", { tabindex: "-1" }, "Message"), box),
    async () => {
      [message, segments] = await Promise.all([
        api("GET", endpoints.message(messageId)),
        api("GET", endpoints.segments({ target: "users" })).then((answer) => answer.data, () => []),
      ]);
    },
    { retry: () => renderMessage(ctx, main, messageId) },
  );
  if (!loaded) return;
  await new MessagePage(ctx, container, message, segments).show();
}

/** "draft · Manual · Email", with the held marker. */
function messageMeta(message) {
  return h("p", { class: "message-meta" }, stateBadge(message.state), heldBadge(message), " ", `${TYPES[message.type] || message.type} · ${CHANNELS[message.channel] || message.channel}`);
}

/** The warning on a held message's page: why SES refused, since when, and what to do. */
function holdBox(message, mayResume) {
  const reason = message.paused_reason;
  if (!reason) return null;
  const headingId = uid("h");
  const fix = HOLD_FIXES[reason.code] || "Fix the cause in SES (the AWS console, Amazon SES).";
  const next = mayResume
    ? "Then press Resume: what waits is sent, each user once."
    : "Then a teammate with a write or admin key resumes it.";
  const waiting = message.type === "auto" ? "It is paused and sends nothing new" : "It stopped sending";
  return h(
    "section",
    { class: "hold-box", "aria-labelledby": headingId },
    h("h2", { id: headingId }, "Paused by SES"),
    h("p", {}, `SES refused to send for the whole account. ${waiting}; its deliveries wait, queued, and nobody was failed.`),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Code"),
      h("dd", {}, h("code", {}, reason.code)),
      h("dt", {}, "SES said"),
      h("dd", {}, reason.message),
      h("dt", {}, "Since"),
      h("dd", {}, timeEl(reason.at)),
    ),
    h("p", { class: "hold-fix" }, h("strong", {}, "What to do: "), `${fix} ${next}`),
  );
}

/** The audience: its segment (linked, by name when known), its filter, or both. */
function audienceFact(audience, segments) {
  const segment = audience.segment_id ? segments.find((s) => s.id === audience.segment_id) : null;
  return h(
    "dd",
    {},
    audience.segment_id
      ? ["Segment ", h("a", { href: `#/users/s/${encodeURIComponent(audience.segment_id)}` }, segment ? segment.name : audience.segment_id)]
      : null,
    audience.segment_id && audience.filter ? " and " : null,
    audience.filter ? h("code", { class: "filter-json" }, JSON.stringify(audience.filter)) : null,
  );
}

/** Audience, Subject (when it has one), Body, Created and Sent (once sent). */
function messageFacts(message, segments) {
  return h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Audience"),
    audienceFact(message.audience || {}, segments),
    message.subject !== null && message.subject !== undefined ? [h("dt", {}, "Subject"), h("dd", {}, h("code", {}, message.subject))] : null,
    h("dt", {}, "Body"),
    h("dd", {}, h("pre", { class: "template" }, message.body)),
    h("dt", {}, "Created"),
    h("dd", {}, timeEl(message.created_at)),
    message.sent_at ? [h("dt", {}, "Sent"), h("dd", {}, timeEl(message.sent_at))] : null,
  );
}

/** The stats; an email's also count what SES reported back (and say when it does). */
function messageStats(message) {
  const email = message.channel === "email";
  const stats = h(
    "ul",
    { class: "stats", "aria-label": "Stats" },
    (email ? [...STATS, ...FEEDBACK_STATS] : STATS).map((stat) =>
      h("li", {}, h("span", { class: "stat-value" }, String((message.stats || {})[stat] ?? 0)), h("span", { class: "stat-label" }, stat)),
    ),
  );
  const hint = email
    ? h("p", { class: "hint" }, "Delivered, bounced and complained are what SES reports back about the emails sent, usually within minutes: Refresh shows the latest.")
    : null;
  return [stats, hint];
}

/**
 * What this role may do to the message as it is: `on` {act(action), remove(), refresh()}.
 * A held message only sends again through Resume (/live on it is a 409 message_held).
 */
function messageActions(message, role, on) {
  const button = (label, onclick, className = "button") => h("button", { type: "button", class: className, onclick }, label);
  const held = Boolean(message.paused_reason);
  const buttons = [];
  if (can.write(role)) {
    if (held) buttons.push(button("Resume", () => on.act("resume")));
    if (message.type === "manual" && message.state === "draft") buttons.push(button("Send", () => on.act("send")));
    if (message.type === "auto" && message.state !== "live" && !held) buttons.push(button("Put live", () => on.act("live")));
    if (message.type === "auto" && message.state === "live") buttons.push(button("Pause", () => on.act("pause"), "button secondary"));
  }
  if (can.admin(role)) buttons.push(button("Delete message", () => on.remove(), "button danger-outline"));
  buttons.push(button("Refresh", () => on.refresh(), "button link"));
  return buttons;
}

/** The delivery log, a page at a time; `load()` reads the current page again. */
class DeliveryLog {
  constructor(messageId, email) {
    this.messageId = messageId;
    this.email = email;
    this.element = h("div", { class: "table-wrap", role: "region", "aria-label": "Delivery log", tabindex: "0" }, loadingEl());
    this.pager = new Pager({ label: "Pages of deliveries", onMove: () => this.load() });
  }

  /** The log's current page (the first until Next); refreshed in place while a send is followed. */
  async load() {
    this.element.setAttribute("aria-busy", "true");
    let page = null;
    await withErrors(
      this.element,
      async () => {
        page = await api("GET", endpoints.messageDeliveries(this.messageId, { limit: PAGE_SIZE, cursor: this.pager.cursor }));
        this.element.replaceChildren(deliveriesTable(page.data, this.email));
      },
      { retry: () => this.load() },
    );
    this.pager.show(page);
    this.element.removeAttribute("aria-busy");
    return page;
  }
}

/** The delivery log; an email's rows also say what SES reported about each email (`feedback`). */
function deliveriesTable(deliveries, email) {
  if (!deliveries.length) return h("p", { class: "empty" }, "No deliveries yet.");
  const labels = ["User", "Status", "Reason", "At", ...(email ? ["Feedback"] : [])];
  const head = h("tr", {}, labels.map((label) => h("th", { scope: "col" }, label)));
  const rows = deliveries.map((delivery) =>
    h(
      "tr",
      {},
      h("th", { scope: "row" }, h("a", { href: `#/users/u/${encodeURIComponent(delivery.user_id)}` }, delivery.user_id)),
      h("td", {}, h("span", { class: `state state-${delivery.status}` }, delivery.status)),
      h("td", {}, delivery.reason || "—"),
      h("td", {}, timeEl(delivery.at)),
      email ? h("td", {}, feedbackCell(delivery.feedback)) : null,
    ),
  );
  return h("table", { class: "data-table" }, h("caption", { class: "visually-hidden" }, "Deliveries"), h("thead", {}, head), h("tbody", {}, rows));
}

/** The page of one message: its parts, its actions, and following a send. */
class MessagePage {
  constructor(ctx, container, message, segments) {
    this.ctx = ctx;
    this.container = container;
    this.message = message;
    this.segments = segments;
    this.status = h("div", { class: "panel-status", role: "status" });
    this.summary = h("div", {});
    this.actions = h("div", { class: "message-actions" });
    this.log = new DeliveryLog(message.id, message.channel === "email");
    this.polls = 0;
    this.timer = null;
  }

  async show() {
    this.render();
    this.container.replaceChildren(
      h("p", { class: "back" }, h("a", { href: "#/messages" }, "Back to the list")),
      h("h1", { tabindex: "-1" }, this.message.name),
      this.summary,
      this.actions,
      this.status,
      h("h2", {}, "Delivery log"),
      this.log.element,
      this.log.pager.element,
    );
    await this.log.load();
    this.follow();
  }

  /** The summary and the actions for the message as last read. */
  render() {
    const message = this.message;
    // Left-out parts filtered: replaceChildren itself would show a null as the text "null".
    const parts = [messageMeta(message), holdBox(message, can.write(this.ctx.role)), messageFacts(message, this.segments), ...messageStats(message)];
    this.summary.replaceChildren(...parts.filter(Boolean));
    this.actions.replaceChildren(...messageActions(message, this.ctx.role, this));
  }

  /** Reads the message and its log again (Refresh, and while a send is followed). */
  async refresh() {
    await withErrors(this.status, async () => {
      const wasHeld = Boolean(this.message.paused_reason);
      this.message = await api("GET", endpoints.message(this.message.id));
      this.render();
      if (this.message.paused_reason && !wasHeld) announce("SES refused to send: the message is paused by SES.");
    });
    return this.log.load();
  }

  // Deliveries go out within seconds of a send: follow them for a short while, then stop. A held
  // message waits for a teammate to fix SES and resume it: nothing to follow until then.
  follow() {
    window.clearTimeout(this.timer);
    const message = this.message;
    const busy = (message.state === "sent" || message.state === "live") && !message.paused_reason;
    const queued = (message.stats || {}).queued || 0;
    const sentRecently = message.sent_at && Date.now() - new Date(message.sent_at).getTime() < RECENT_SEND_MS;
    if (busy && (queued > 0 || sentRecently) && this.polls < FOLLOW_READS && this.container.isConnected) {
      this.polls += 1;
      this.timer = window.setTimeout(async () => {
        if (!this.container.isConnected) return;
        await this.refresh();
        this.follow();
      }, FOLLOW_MS);
    }
  }

  /** Send, Put live, Pause or Resume; then the log, followed again. */
  async act(action) {
    this.status.replaceChildren(loadingEl("Working…"));
    let conflict = false;
    const done = await withErrors(
      (box, error) => {
        this.status.replaceChildren(box);
        conflict = error.status === 409;
      },
      async () => {
        this.message = await api("POST", endpoints.messageAction(this.message.id, action));
        const text =
          action === "resume"
            ? `Resumed: the message is ${this.message.state}, and what waited is being sent.`
            : `The message is ${this.message.state}.`;
        this.status.replaceChildren(h("p", { class: "ok" }, text));
        announce(text);
        this.render();
      },
    );
    // A 409: the message changed meanwhile (sent, resumed or held by someone else): show it as it is.
    if (!done && !conflict) return;
    this.polls = 0;
    await (done ? this.log.load() : this.refresh());
    this.follow();
  }

  remove() {
    const message = this.message;
    confirmDialog({
      title: "Delete message",
      text: `Delete “${message.name}”? Nothing more goes out. This cannot be undone.`,
      confirmLabel: "Delete message",
      onConfirm: ({ status, close }) =>
        withErrors(status, async () => {
          await api("DELETE", endpoints.message(message.id));
          close();
          this.ctx.navigate("#/messages");
          announce("Message deleted.");
        }),
    });
  }
}
