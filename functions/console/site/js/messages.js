// Messages: the composer (from the user list), the list of every message, and one message with
// its delivery log.

import { api, can } from "./api.js";
import { endpoints } from "./endpoints.js";
import { confirmDialog, openDialog } from "./dialogs.js";
import { announce, errorBox, h, loadingEl, plural, timeEl, uid, withErrors } from "./dom.js";
import { Pager } from "./paging.js";
import { FEEDBACK_STATS, feedbackCell } from "./email.js";

const PAGE_SIZE = 25;
const STATS = ["queued", "sent", "skipped", "failed"];
const CHANNELS = { email: "Email", in_app: "In-app" };
const TYPES = { manual: "Manual", auto: "Auto" };
// The email's own one-click unsubscribe link (API.md, "Email that arrives"); nil in-app.
const UNSUBSCRIBE_VARIABLE = "{{ unsubscribe_url }}";

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

function stateBadge(state) {
  return h("span", { class: `state state-${state}` }, state);
}

/** The marker next to a held message's state. */
function heldBadge(message) {
  if (!message.paused_reason) return null;
  return [" ", h("span", { class: "state state-held", title: message.paused_reason.code }, "paused by SES")];
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

function field(label, control, extra) {
  const id = control.id || uid("f");
  control.id = id;
  return h("div", { class: "control" }, h("label", { for: id }, label), control, extra || null);
}

/**
 * The composer: Name, Type, Channel, Subject, Body, a Preview for one member, then Send (manual)
 * or Put live / Pause (auto). `options`: {audience, description, count, previewUserId}.
 */
export function openComposer(ctx, options) {
  const name = h("input", { type: "text", required: true, maxlength: "255", autocomplete: "off", autofocus: true });
  const type = h(
    "select",
    {},
    h("option", { value: "manual" }, "Manual: once, to who matches now"),
    h("option", { value: "auto" }, "Auto: now and to everyone who matches later"),
  );
  const channel = h("select", {}, h("option", { value: "in_app" }, "In-app"), h("option", { value: "email" }, "Email"));
  const subject = h("input", { type: "text", maxlength: "998", autocomplete: "off", value: "Hi {{ user.name | default: 'there' }}" });
  const body = h("textarea", { rows: "5" }, "");
  body.value = "Hi {{ user.name | default: 'there' }},\n\n";
  const previewUser = h("input", { type: "text", autocomplete: "off", value: options.previewUserId || "" });
  const errors = {};
  const errorSlot = (key) => {
    errors[key] = h("p", { class: "field-error", id: uid("err") });
    errors[key].hidden = true;
    return errors[key];
  };
  const subjectHint = h("p", { class: "hint" }, "Required for email. Liquid: {{ user.name }}, {{ company.name }}.");
  // Email only: every email carries the one-click link in its headers; the body may show it too.
  const insertButton = h("button", { type: "button", class: "button secondary", onclick: () => insertUnsubscribe() }, "Insert unsubscribe link");
  const unsubscribeTools = h(
    "div",
    { class: "body-tools" },
    insertButton,
    h(
      "p",
      { class: "hint" },
      `${UNSUBSCRIBE_VARIABLE} is the email's own one-click unsubscribe link (every email also carries it in its headers). The preview shows a link that leads nowhere.`,
    ),
  );
  const showChannelTools = () => {
    unsubscribeTools.hidden = channel.value !== "email";
  };
  channel.addEventListener("change", showChannelTools);
  showChannelTools();
  const previewOut = h("div", { class: "preview", "aria-live": "polite" }, h("p", { class: "muted" }, "Preview renders the subject and body for one user; nothing is sent."));
  const status = h("div", { class: "dialog-status" });
  const actions = h("div", { class: "dialog-actions" });
  let message = null; // once created

  const audienceCount = h("span", { class: "audience-count" }, " (counting…)");
  const form = h(
    "form",
    { class: "dialog-form composer" },
    h("p", { class: "audience" }, h("strong", {}, "Audience: "), options.description, audienceCount),
    field("Name", name, errorSlot("name")),
    h("div", { class: "row" }, field("Type", type, errorSlot("type")), field("Channel", channel, errorSlot("channel"))),
    field("Subject", subject, [subjectHint, errorSlot("subject")]),
    field("Body", body, [unsubscribeTools, errorSlot("body")]),
    h(
      "div",
      { class: "preview-row" },
      field("Preview as user ID", previewUser, errorSlot("user_id")),
      h("button", { type: "button", class: "button secondary", onclick: () => preview() }, "Preview"),
    ),
    previewOut,
    errorSlot("audience"),
    status,
    actions,
  );
  const handle = openDialog({ title: "New message", content: form, className: "wide" });
  const countFilter = options.audience.segment_id
    ? { field: "segment", op: "in_segment", value: options.audience.segment_id }
    : options.audience.filter;
  api("POST", endpoints.count("users"), { filter: countFilter })
    .then((found) => {
      audienceCount.textContent = ` (${found.exact ? "" : "about "}${plural(found.count, "user", "users")} now)`;
    })
    .catch(() => {
      audienceCount.textContent = "";
    });

  /** Puts the unsubscribe variable at the caret (or over the selection) of Body. */
  function insertUnsubscribe() {
    const start = body.selectionStart ?? body.value.length;
    const end = body.selectionEnd ?? start;
    body.setRangeText(UNSUBSCRIBE_VARIABLE, start, end, "end");
    body.focus();
    announce(`Inserted ${UNSUBSCRIBE_VARIABLE} into the body.`);
  }

  const showErrors = (error) => {
    for (const slot of Object.values(errors)) {
      slot.hidden = true;
      slot.textContent = "";
    }
    const controls = { name, type, channel, subject, body, user_id: previewUser };
    for (const control of Object.values(controls)) control.removeAttribute("aria-invalid");
    let placed = false;
    for (const detail of error.details || []) {
      const key = String(detail.path || "").split(/[.[]/)[0];
      if (errors[key]) {
        errors[key].hidden = false;
        errors[key].textContent = detail.message;
        if (controls[key]) {
          controls[key].setAttribute("aria-invalid", "true");
          controls[key].setAttribute("aria-describedby", errors[key].id);
        }
        placed = true;
      }
    }
    status.replaceChildren(placed ? h("p", { class: "field-error", role: "alert" }, error.message) : errorBox(error));
  };

  const draft = () => {
    const payload = {
      name: name.value.trim(),
      type: type.value,
      channel: channel.value,
      audience: options.audience,
      body: body.value,
    };
    if (subject.value.trim() !== "" || channel.value === "email") payload.subject = subject.value;
    return payload;
  };

  async function preview() {
    previewOut.replaceChildren(loadingEl("Rendering…"));
    const payload = { channel: channel.value, body: body.value, user_id: previewUser.value.trim() };
    if (subject.value.trim() !== "") payload.subject = subject.value;
    await withErrors(
      (box, error) => {
        previewOut.replaceChildren();
        showErrors(error);
      },
      async () => {
        const rendered = await api("POST", endpoints.messagePreview(), payload);
        status.replaceChildren();
        const subjectLine = rendered.subject !== null && rendered.subject !== undefined ? [h("p", { class: "preview-subject" }, rendered.subject)] : [];
        previewOut.replaceChildren(
          h("p", { class: "muted" }, `As ${payload.user_id} would see it:`),
          ...subjectLine,
          h("div", { class: "preview-body" }, rendered.body),
        );
      },
    );
  }

  const renderActions = () => {
    const buttons = [h("button", { type: "button", class: "button secondary", onclick: () => handle.close() }, message ? "Close" : "Cancel")];
    if (!message) {
      buttons.push(h("button", { type: "submit", class: "button" }, type.value === "manual" ? "Send" : "Put live"));
    } else if (message.type === "auto" && message.state === "live") {
      buttons.push(h("button", { type: "button", class: "button secondary", onclick: () => act("pause") }, "Pause"));
    } else if (message.type === "auto" && message.state === "paused" && !message.paused_reason) {
      buttons.push(h("button", { type: "button", class: "button", onclick: () => act("live") }, "Put live"));
    }
    if (message) buttons.push(h("a", { class: "button link", href: `#/messages/${encodeURIComponent(message.id)}`, onclick: () => handle.close() }, "Open its delivery log"));
    actions.replaceChildren(...buttons);
  };
  type.addEventListener("change", renderActions);
  renderActions();

  async function act(action) {
    status.replaceChildren(loadingEl(action === "pause" ? "Pausing…" : "Putting live…"));
    await withErrors(status, async () => {
      message = await api("POST", endpoints.messageAction(message.id, action));
      status.replaceChildren(h("p", { class: "ok", role: "status" }, `“${message.name}” is ${message.state}.`));
      renderActions();
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (message) return;
    const submit = actions.querySelector("button[type=submit]");
    if (submit) submit.disabled = true;
    status.replaceChildren(loadingEl(type.value === "manual" ? "Sending…" : "Putting live…"));
    await withErrors(
      (box, error) => {
        if (submit) submit.disabled = false;
        showErrors(error);
        if (message) renderActions();
      },
      async () => {
        const created = await api("POST", endpoints.messages(), draft());
        message = created;
        message = await api("POST", endpoints.messageAction(created.id, created.type === "manual" ? "send" : "live"));
        for (const control of [name, type, channel, subject, body, insertButton]) control.disabled = true;
        const done = message.type === "manual" ? `“${message.name}” was sent; deliveries go out within seconds.` : `“${message.name}” is live.`;
        status.replaceChildren(h("p", { class: "ok", role: "status" }, done));
        announce(done);
        renderActions();
      },
    );
  });
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

/** One message: what it is, its actions for this role, its stats and its delivery log. */
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
  const status = h("div", { class: "panel-status", role: "status" });
  const summary = h("div", {});
  const log = h("div", { class: "table-wrap", role: "region", "aria-label": "Delivery log", tabindex: "0" }, loadingEl());
  const pager = new Pager({ label: "Pages of deliveries", onMove: () => loadLog() });
  const actions = h("div", { class: "message-actions" });
  let polls = 0;
  let timer = null;

  const email = message.channel === "email";
  const renderSummary = () => {
    const audience = message.audience || {};
    const segment = audience.segment_id ? segments.find((s) => s.id === audience.segment_id) : null;
    // Left-out parts filtered: replaceChildren itself would show a null as the text "null".
    const parts = [
      h("p", { class: "message-meta" }, stateBadge(message.state), heldBadge(message), " ", `${TYPES[message.type] || message.type} · ${CHANNELS[message.channel] || message.channel}`),
      holdBox(message, can.write(ctx.role)),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Audience"),
        h(
          "dd",
          {},
          audience.segment_id
            ? ["Segment ", h("a", { href: `#/users/s/${encodeURIComponent(audience.segment_id)}` }, segment ? segment.name : audience.segment_id)]
            : null,
          audience.segment_id && audience.filter ? " and " : null,
          audience.filter ? h("code", { class: "filter-json" }, JSON.stringify(audience.filter)) : null,
        ),
        message.subject !== null && message.subject !== undefined ? [h("dt", {}, "Subject"), h("dd", {}, h("code", {}, message.subject))] : null,
        h("dt", {}, "Body"),
        h("dd", {}, h("pre", { class: "template" }, message.body)),
        h("dt", {}, "Created"),
        h("dd", {}, timeEl(message.created_at)),
        message.sent_at ? [h("dt", {}, "Sent"), h("dd", {}, timeEl(message.sent_at))] : null,
      ),
      h(
        "ul",
        { class: "stats", "aria-label": "Stats" },
        (email ? [...STATS, ...FEEDBACK_STATS] : STATS).map((stat) =>
          h("li", {}, h("span", { class: "stat-value" }, String((message.stats || {})[stat] ?? 0)), h("span", { class: "stat-label" }, stat)),
        ),
      ),
      email
        ? h("p", { class: "hint" }, "Delivered, bounced and complained are what SES reports back about the emails sent, usually within minutes: Refresh shows the latest.")
        : null,
    ];
    summary.replaceChildren(...parts.filter(Boolean));
    const buttons = [];
    if (can.write(ctx.role)) {
      // A held message only sends again through Resume (/live on it is a 409 message_held).
      if (message.paused_reason) buttons.push(h("button", { type: "button", class: "button", onclick: () => act("resume") }, "Resume"));
      if (message.type === "manual" && message.state === "draft") buttons.push(h("button", { type: "button", class: "button", onclick: () => act("send") }, "Send"));
      if (message.type === "auto" && message.state !== "live" && !message.paused_reason) buttons.push(h("button", { type: "button", class: "button", onclick: () => act("live") }, "Put live"));
      if (message.type === "auto" && message.state === "live") buttons.push(h("button", { type: "button", class: "button secondary", onclick: () => act("pause") }, "Pause"));
    }
    if (can.admin(ctx.role)) {
      buttons.push(h("button", { type: "button", class: "button danger-outline", onclick: () => remove() }, "Delete message"));
    }
    buttons.push(h("button", { type: "button", class: "button link", onclick: () => refresh() }, "Refresh"));
    actions.replaceChildren(...buttons);
  };

  /** The log's current page (the first until Next); refreshed in place while a send is followed. */
  const loadLog = async () => {
    log.setAttribute("aria-busy", "true");
    let page = null;
    await withErrors(
      log,
      async () => {
        page = await api("GET", endpoints.messageDeliveries(message.id, { limit: PAGE_SIZE, cursor: pager.cursor }));
        log.replaceChildren(deliveriesTable(page.data, email));
      },
      { retry: loadLog },
    );
    pager.show(page);
    log.removeAttribute("aria-busy");
    return page;
  };

  const refresh = async () => {
    await withErrors(status, async () => {
      const wasHeld = Boolean(message.paused_reason);
      message = await api("GET", endpoints.message(message.id));
      renderSummary();
      if (message.paused_reason && !wasHeld) announce("SES refused to send: the message is paused by SES.");
    });
    return loadLog();
  };

  // Deliveries go out within seconds of a send: follow them for a short while, then stop. A held
  // message waits for a teammate to fix SES and resume it: nothing to follow until then.
  const follow = () => {
    window.clearTimeout(timer);
    const busy = (message.state === "sent" || message.state === "live") && !message.paused_reason;
    const queued = (message.stats || {}).queued || 0;
    const sentRecently = message.sent_at && Date.now() - new Date(message.sent_at).getTime() < 30000;
    if (busy && (queued > 0 || sentRecently) && polls < 20 && container.isConnected) {
      polls += 1;
      timer = window.setTimeout(async () => {
        if (!container.isConnected) return;
        await refresh();
        follow();
      }, 1500);
    }
  };

  async function act(action) {
    status.replaceChildren(loadingEl("Working…"));
    let conflict = false;
    const done = await withErrors(
      (box, error) => {
        status.replaceChildren(box);
        conflict = error.status === 409;
      },
      async () => {
        message = await api("POST", endpoints.messageAction(message.id, action));
        const text =
          action === "resume"
            ? `Resumed: the message is ${message.state}, and what waited is being sent.`
            : `The message is ${message.state}.`;
        status.replaceChildren(h("p", { class: "ok" }, text));
        announce(text);
        renderSummary();
      },
    );
    // A 409: the message changed meanwhile (sent, resumed or held by someone else): show it as it is.
    if (!done && !conflict) return;
    polls = 0;
    await (done ? loadLog() : refresh());
    follow();
  }

  function remove() {
    confirmDialog({
      title: "Delete message",
      text: `Delete “${message.name}”? Nothing more goes out. This cannot be undone.`,
      confirmLabel: "Delete message",
      onConfirm: ({ status: dialogStatus, close }) =>
        withErrors(dialogStatus, async () => {
          await api("DELETE", endpoints.message(message.id));
          close();
          ctx.navigate("#/messages");
          announce("Message deleted.");
        }),
    });
  }

  renderSummary();
  container.replaceChildren(
    h("p", { class: "back" }, h("a", { href: "#/messages" }, "Back to the list")),
    h("h1", { tabindex: "-1" }, message.name),
    summary,
    actions,
    status,
    h("h2", {}, "Delivery log"),
    log,
    pager.element,
  );
  await loadLog();
  follow();
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
