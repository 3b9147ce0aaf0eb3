// The composer (New message, from the Users list): its audience, the template's fields, a preview
// for one member, then Send (manual) or Put live / Pause (auto). Each part is built by its own
// function; `Composer` puts them in the dialog and keeps the message once it is created.

import { api } from "./api.js";
import { openDialog } from "./dialogs.js";
import { announce, errorBox, h, loadingEl, plural, uid, withErrors } from "./dom.js";
import { endpoints } from "./endpoints.js";

// The email's own one-click unsubscribe link (API.md, "Email that arrives"); nil in-app.
const UNSUBSCRIBE_VARIABLE = "{{ unsubscribe_url }}";
const GREETING = "Hi {{ user.name | default: 'there' }}";

/**
 * Opens the composer. `options`: {audience, description, previewUserId}: the audience as the API
 * takes it (`{segment_id}` or `{filter}`), the list's words for it, and who to preview as.
 */
export function openComposer(ctx, options) {
  return new Composer(options);
}

function field(label, control, extra) {
  const id = control.id || uid("f");
  control.id = id;
  return h("div", { class: "control" }, h("label", { for: id }, label), control, extra || null);
}

/**
 * The error slot under each field, and a 422 placed at the fields its details name (the first
 * part of each path); what names no field is shown in `status`.
 */
class FieldErrors {
  constructor(status) {
    this.status = status;
    this.slots = {};
    this.controls = {};
  }

  /** A hidden slot for the errors at `key`, marking `control` invalid when there are some. */
  slot(key, control) {
    this.slots[key] = h("p", { class: "field-error", id: uid("err") });
    this.slots[key].hidden = true;
    if (control) this.controls[key] = control;
    return this.slots[key];
  }

  show(error) {
    for (const slot of Object.values(this.slots)) {
      slot.hidden = true;
      slot.textContent = "";
    }
    for (const control of Object.values(this.controls)) control.removeAttribute("aria-invalid");
    let placed = false;
    for (const detail of error.details || []) {
      const key = String(detail.path || "").split(/[.[]/)[0];
      const slot = this.slots[key];
      if (!slot) continue;
      slot.hidden = false;
      slot.textContent = detail.message;
      const control = this.controls[key];
      if (control) {
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", slot.id);
      }
      placed = true;
    }
    this.status.replaceChildren(placed ? h("p", { class: "field-error", role: "alert" }, error.message) : errorBox(error));
  }
}

/** "Audience: <what the list shows>" and, once counted (`count()`), how many users that is now. */
function audienceLine({ audience, description }) {
  const counted = h("span", { class: "audience-count" }, " (counting…)");
  const element = h("p", { class: "audience" }, h("strong", {}, "Audience: "), description, counted);
  const count = () => {
    const filter = audience.segment_id ? { field: "segment", op: "in_segment", value: audience.segment_id } : audience.filter;
    api("POST", endpoints.count("users"), { filter })
      .then((found) => {
        counted.textContent = ` (${found.exact ? "" : "about "}${plural(found.count, "user", "users")} now)`;
      })
      .catch(() => {
        counted.textContent = "";
      });
  };
  return { element, count };
}

/** Email only: Insert unsubscribe link, which puts the variable at Body's caret (or over its selection). */
function unsubscribeTools(body) {
  const insert = () => {
    const start = body.selectionStart ?? body.value.length;
    const end = body.selectionEnd ?? start;
    body.setRangeText(UNSUBSCRIBE_VARIABLE, start, end, "end");
    body.focus();
    announce(`Inserted ${UNSUBSCRIBE_VARIABLE} into the body.`);
  };
  const button = h("button", { type: "button", class: "button secondary", onclick: insert }, "Insert unsubscribe link");
  const element = h(
    "div",
    { class: "body-tools" },
    button,
    h(
      "p",
      { class: "hint" },
      `${UNSUBSCRIBE_VARIABLE} is the email's own one-click unsubscribe link (every email also carries it in its headers). The preview shows a link that leads nowhere.`,
    ),
  );
  return { element, button };
}

/** Name, Type, Channel, Subject and Body; the unsubscribe tools follow Channel. */
function templateFields(errors) {
  const name = h("input", { type: "text", required: true, maxlength: "255", autocomplete: "off", autofocus: true });
  const type = h(
    "select",
    {},
    h("option", { value: "manual" }, "Manual: once, to who matches now"),
    h("option", { value: "auto" }, "Auto: now and to everyone who matches later"),
  );
  const channel = h("select", {}, h("option", { value: "in_app" }, "In-app"), h("option", { value: "email" }, "Email"));
  const subject = h("input", { type: "text", maxlength: "998", autocomplete: "off", value: GREETING });
  const body = h("textarea", { rows: "5" }, "");
  body.value = `${GREETING},\n\n`;
  const unsubscribe = unsubscribeTools(body);
  const showChannelTools = () => {
    unsubscribe.element.hidden = channel.value !== "email";
  };
  channel.addEventListener("change", showChannelTools);
  showChannelTools();
  const subjectHint = h("p", { class: "hint" }, "Required for email. Liquid: {{ user.name }}, {{ company.name }}.");
  const elements = [
    field("Name", name, errors.slot("name", name)),
    h("div", { class: "row" }, field("Type", type, errors.slot("type", type)), field("Channel", channel, errors.slot("channel", channel))),
    field("Subject", subject, [subjectHint, errors.slot("subject", subject)]),
    field("Body", body, [unsubscribe.element, errors.slot("body", body)]),
  ];
  // Disabled once the message is made: it is sent as it was.
  const lock = () => {
    for (const control of [name, type, channel, subject, body, unsubscribe.button]) control.disabled = true;
  };
  return { name, type, channel, subject, body, elements, lock };
}

/** Preview as user ID, Preview, and the subject and body the API rendered for that user. */
function templatePreview({ fields, userId, errors, status }) {
  const user = h("input", { type: "text", autocomplete: "off", value: userId || "" });
  const out = h("div", { class: "preview", "aria-live": "polite" }, h("p", { class: "muted" }, "Preview renders the subject and body for one user; nothing is sent."));
  const render = async () => {
    out.replaceChildren(loadingEl("Rendering…"));
    const payload = { channel: fields.channel.value, body: fields.body.value, user_id: user.value.trim() };
    if (fields.subject.value.trim() !== "") payload.subject = fields.subject.value;
    await withErrors(
      (box, error) => {
        out.replaceChildren();
        errors.show(error);
      },
      async () => {
        const rendered = await api("POST", endpoints.messagePreview(), payload);
        status.replaceChildren();
        out.replaceChildren(h("p", { class: "muted" }, `As ${payload.user_id} would see it:`), ...renderedTemplate(rendered));
      },
    );
  };
  const row = h(
    "div",
    { class: "preview-row" },
    field("Preview as user ID", user, errors.slot("user_id", user)),
    h("button", { type: "button", class: "button secondary", onclick: render }, "Preview"),
  );
  return { elements: [row, out] };
}

/** A preview's subject (when the template has one) and body. */
function renderedTemplate(rendered) {
  const subject = rendered.subject !== null && rendered.subject !== undefined ? [h("p", { class: "preview-subject" }, rendered.subject)] : [];
  return [...subject, h("div", { class: "preview-body" }, rendered.body)];
}

/** The dialog: its parts, then Send / Put live, and what the made message allows after. */
class Composer {
  constructor(options) {
    this.audience = options.audience;
    this.message = null; // once created
    this.status = h("div", { class: "dialog-status" });
    this.actions = h("div", { class: "dialog-actions" });
    this.errors = new FieldErrors(this.status);
    this.fields = templateFields(this.errors);
    const audience = audienceLine(options);
    const preview = templatePreview({ fields: this.fields, userId: options.previewUserId, errors: this.errors, status: this.status });
    this.form = h(
      "form",
      { class: "dialog-form composer" },
      audience.element,
      ...this.fields.elements,
      ...preview.elements,
      this.errors.slot("audience"),
      this.status,
      this.actions,
    );
    this.handle = openDialog({ title: "New message", content: this.form, className: "wide" });
    audience.count();
    this.fields.type.addEventListener("change", () => this.renderActions());
    this.renderActions();
    this.form.addEventListener("submit", (event) => this.submit(event));
  }

  /** The message as POST /v1/messages takes it; an in-app message's empty subject is left out. */
  draft() {
    const { name, type, channel, subject, body } = this.fields;
    const payload = { name: name.value.trim(), type: type.value, channel: channel.value, audience: this.audience, body: body.value };
    if (subject.value.trim() !== "" || channel.value === "email") payload.subject = subject.value;
    return payload;
  }

  /** Cancel and Send / Put live before; Close, Pause or Put live, and its delivery log after. */
  renderActions() {
    const message = this.message;
    const button = (label, onclick, secondary = false) => h("button", { type: "button", class: secondary ? "button secondary" : "button", onclick }, label);
    const buttons = [button(message ? "Close" : "Cancel", () => this.handle.close(), true)];
    if (!message) {
      buttons.push(h("button", { type: "submit", class: "button" }, this.fields.type.value === "manual" ? "Send" : "Put live"));
    } else if (message.type === "auto" && message.state === "live") {
      buttons.push(button("Pause", () => this.act("pause"), true));
    } else if (message.type === "auto" && message.state === "paused" && !message.paused_reason) {
      buttons.push(button("Put live", () => this.act("live")));
    }
    if (message) buttons.push(h("a", { class: "button link", href: `#/messages/${encodeURIComponent(message.id)}`, onclick: () => this.handle.close() }, "Open its delivery log"));
    this.actions.replaceChildren(...buttons);
  }

  async act(action) {
    this.status.replaceChildren(loadingEl(action === "pause" ? "Pausing…" : "Putting live…"));
    await withErrors(this.status, async () => {
      this.message = await api("POST", endpoints.messageAction(this.message.id, action));
      this.status.replaceChildren(h("p", { class: "ok", role: "status" }, `“${this.message.name}” is ${this.message.state}.`));
      this.renderActions();
    });
  }

  /** Makes the message, then sends it (manual) or puts it live (auto); a 422 goes to its field. */
  async submit(event) {
    event.preventDefault();
    if (this.message) return;
    const submit = this.actions.querySelector("button[type=submit]");
    if (submit) submit.disabled = true;
    this.status.replaceChildren(loadingEl(this.fields.type.value === "manual" ? "Sending…" : "Putting live…"));
    await withErrors(
      (box, error) => {
        if (submit) submit.disabled = false;
        this.errors.show(error);
        if (this.message) this.renderActions();
      },
      async () => {
        const created = await api("POST", endpoints.messages(), this.draft());
        this.message = created;
        this.message = await api("POST", endpoints.messageAction(created.id, created.type === "manual" ? "send" : "live"));
        this.fields.lock();
        const done = this.message.type === "manual" ? `“${this.message.name}” was sent; deliveries go out within seconds.` : `“${this.message.name}” is live.`;
        this.status.replaceChildren(h("p", { class: "ok", role: "status" }, done));
        announce(done);
        this.renderActions();
      },
    );
  }
}
