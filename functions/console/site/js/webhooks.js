// Webhooks (admin): the endpoints that receive membership changes, signed by the Standard Webhooks
// specification. The list, a new one (its secret shown once), one webhook with its actions
// (re-enable, disable, rotate the secret, delete) and its delivery attempts.
//   #/webhooks, #/webhooks/<id>

import { api, can } from "./api.js";
import { endpoints } from "./endpoints.js";
import { confirmDialog, openDialog } from "./dialogs.js";
import { announce, h, loadingEl, timeEl, uid, withErrors } from "./dom.js";
import { pagedList } from "./paging.js";

const PAGE_SIZE = 25;

/** Every segment by id, users' and companies', for names and the picker. */
async function allSegments() {
  const [users, companies] = await Promise.all(
    ["users", "companies"].map((target) => api("GET", endpoints.segments({ target })).then((answer) => answer.data)),
  );
  return { users, companies, byId: new Map([...users, ...companies].map((segment) => [segment.id, segment])) };
}

function segmentsText(hook, byId) {
  if (hook.segment_ids === null || hook.segment_ids === undefined) return "Every segment";
  return hook.segment_ids.map((id) => (byId.get(id) ? byId.get(id).name : id)).join(", ");
}

function stateBadge(hook) {
  return h("span", { class: `state state-${hook.state === "enabled" ? "live" : "failed"}` }, hook.state);
}

function notForThisRole(main, ctx) {
  main.replaceChildren(
    h(
      "div",
      { class: "webhooks-view" },
      h("h1", { tabindex: "-1" }, "Webhooks"),
      h("p", { class: "error-box", role: "alert" }, `Webhooks are managed with an admin key; this key is ${ctx.role}.`),
    ),
  );
}

// ---- the list ---------------------------------------------------------------------------------

export async function renderWebhooks(ctx, main) {
  if (!can.admin(ctx.role)) {
    notForThisRole(main, ctx);
    return;
  }
  const container = h("div", { class: "webhooks-view" }, loadingEl());
  main.replaceChildren(container);
  let segments;
  const loaded = await withErrors(
    (box) => container.replaceChildren(h("h1", { tabindex: "-1" }, "Webhooks"), box),
    async () => {
      segments = await allSegments();
    },
    { retry: () => renderWebhooks(ctx, main) },
  );
  if (!loaded) return;
  const list = pagedList({
    label: "Webhooks",
    fetchPage: (cursor) => {
      return api("GET", endpoints.webhooks({ limit: PAGE_SIZE, cursor }));
    },
    render: (hooks) => webhooksTable(hooks, segments.byId),
    className: "table-wrap",
  });
  container.replaceChildren(
    h("h1", { tabindex: "-1" }, "Webhooks"),
    h(
      "p",
      { class: "intro" },
      "Each time a user or company enters or leaves a segment, the change is POSTed to these URLs (up to 100 changes a request), signed by the ",
      h("a", { href: "https://www.standardwebhooks.com/", rel: "noreferrer", target: "_blank" }, "Standard Webhooks"),
      " specification. A webhook that fails for 3 days is disabled.",
    ),
    h("div", { class: "message-actions" }, h("button", { type: "button", class: "button", onclick: () => createDialog(ctx, segments) }, "New webhook")),
    list.element,
  );
}

function webhooksTable(hooks, byId) {
  if (!hooks.length) return h("p", { class: "empty" }, "No webhook yet.");
  const head = h("tr", {}, ["URL", "Segments", "State", "Created"].map((label) => h("th", { scope: "col" }, label)));
  const rows = hooks.map((hook) =>
    h(
      "tr",
      { "data-webhook-id": hook.id },
      h(
        "th",
        { scope: "row" },
        h("a", { href: `#/webhooks/${encodeURIComponent(hook.id)}`, class: "webhook-url" }, hook.url),
        hook.description ? h("span", { class: "sub" }, hook.description) : null,
      ),
      h("td", {}, segmentsText(hook, byId)),
      h("td", {}, stateBadge(hook), hook.disabled_reason ? h("span", { class: "disabled-reason" }, hook.disabled_reason) : null),
      h("td", {}, timeEl(hook.created_at)),
    ),
  );
  return h("table", { class: "data-table" }, h("caption", { class: "visually-hidden" }, "Webhooks"), h("thead", {}, head), h("tbody", {}, rows));
}

// ---- a new webhook ----------------------------------------------------------------------------

function segmentPicker(segments) {
  const everyId = uid("every");
  const someId = uid("some");
  const name = uid("scope");
  const every = h("input", { type: "radio", id: everyId, name, value: "every", checked: true });
  const some = h("input", { type: "radio", id: someId, name, value: "some" });
  const boxes = [];
  const group = (target, title) => {
    const items = segments[target];
    if (!items.length) return null;
    return h(
      "fieldset",
      { class: "segment-choices" },
      h("legend", {}, title),
      items.map((segment) => {
        const id = uid("seg");
        // Checking a segment means "only these" (the list stays usable, and reachable when it scrolls).
        const box = h("input", { type: "checkbox", id, value: segment.id, onchange: () => (some.checked = true) });
        boxes.push(box);
        return h("div", { class: "check" }, box, h("label", { for: id }, segment.name));
      }),
    );
  };
  const choices = h("div", { class: "segment-choice-list" }, group("users", "User segments"), group("companies", "Company segments"));
  every.addEventListener("change", () => {
    for (const box of boxes) box.checked = false;
  });
  const status = h("div", { class: "dialog-status" });
  const element = h(
    "fieldset",
    { class: "webhook-scope" },
    h("legend", {}, "Segments"),
    h("div", { class: "check" }, every, h("label", { for: everyId }, "Every segment (users and companies)")),
    h("div", { class: "check" }, some, h("label", { for: someId }, "Only these segments")),
    choices,
    status,
  );
  return {
    element,
    status,
    /** null: every segment; else the ids checked (an empty list when none is). */
    value: () => (some.checked ? boxes.filter((box) => box.checked).map((box) => box.value) : null),
    focus: () => (boxes[0] || some).focus(),
  };
}

function createDialog(ctx, segments) {
  const urlId = uid("url");
  const descriptionId = uid("description");
  const urlError = h("p", { class: "field-error", id: `${urlId}-error`, role: "alert", hidden: true });
  const url = h("input", { id: urlId, type: "url", required: true, maxlength: "2048", autocomplete: "off", spellcheck: "false", autofocus: true, placeholder: "https://hooks.example.com/segments", "aria-describedby": `${urlId}-hint` });
  const description = h("input", { id: descriptionId, type: "text", maxlength: "255", autocomplete: "off" });
  const picker = segmentPicker(segments);
  const status = h("div", { class: "dialog-status" });
  const submit = h("button", { type: "submit", class: "button" }, "Create webhook");
  const form = h(
    "form",
    { class: "dialog-form", novalidate: true },
    h(
      "div",
      { class: "control" },
      h("label", { for: urlId }, "URL"),
      url,
      h("p", { class: "hint", id: `${urlId}-hint` }, "https, to a public address."),
      urlError,
    ),
    picker.element,
    h("div", { class: "control" }, h("label", { for: descriptionId }, "Description (optional)"), description),
    status,
    h(
      "div",
      { class: "dialog-actions" },
      h("button", { type: "button", class: "button secondary", onclick: () => handle.close() }, "Cancel"),
      submit,
    ),
  );
  const handle = openDialog({ title: "New webhook", content: form, className: "wide" });
  const showUrlError = (message) => {
    urlError.textContent = message;
    urlError.hidden = false;
    url.setAttribute("aria-invalid", "true");
    url.setAttribute("aria-describedby", `${urlId}-hint ${urlId}-error`);
    url.focus();
  };
  const clearErrors = () => {
    urlError.hidden = true;
    url.removeAttribute("aria-invalid");
    url.setAttribute("aria-describedby", `${urlId}-hint`);
    picker.status.replaceChildren();
    status.replaceChildren();
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const address = url.value.trim();
    if (!address) {
      showUrlError("Enter the URL that receives the changes.");
      return;
    }
    const segmentIds = picker.value();
    if (segmentIds && !segmentIds.length) {
      picker.status.replaceChildren(h("p", { class: "field-error", role: "alert" }, "Check at least one segment, or choose every segment."));
      picker.focus();
      return;
    }
    const body = { url: address };
    if (segmentIds) body.segment_ids = segmentIds;
    if (description.value.trim()) body.description = description.value.trim();
    submit.disabled = true;
    status.replaceChildren(loadingEl("Creating…"));
    // A refused URL (422 at "url") is shown at the URL field; anything else above the buttons.
    const refused = (box, error) => {
      submit.disabled = false;
      status.replaceChildren();
      const atUrl = error.status === 422 && error.details.find((detail) => detail.path === "url");
      if (atUrl) showUrlError(`${error.message}${atUrl.message && !error.message.includes(atUrl.message) ? ` (${atUrl.message})` : ""}`);
      else status.replaceChildren(box);
    };
    await withErrors(refused, async () => {
      const created = await api("POST", endpoints.webhooks(), body);
      handle.close();
      showSecret(created, "Webhook created", () => ctx.navigate(`#/webhooks/${encodeURIComponent(created.id)}`));
    });
  });
}

/** The secret, once: a read-only field, Copy, and a warning that it is not shown again. */
function showSecret(hook, title, onDone) {
  const secretId = uid("secret");
  const copied = h("p", { class: "copy-status", role: "status" });
  const field = h("input", { id: secretId, type: "text", readonly: true, value: hook.secret, class: "secret", spellcheck: "false", autocomplete: "off" });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(hook.secret);
    } catch {
      // No clipboard API (an insecure origin) or no permission: the page's own copy.
      field.select();
      if (!document.execCommand("copy")) {
        copied.textContent = "Could not copy: select the secret and copy it by hand.";
        return;
      }
    }
    copied.textContent = "Copied to the clipboard.";
  };
  const form = h(
    "form",
    { class: "dialog-form", method: "dialog" },
    h(
      "div",
      { class: "secret-warning", role: "note" },
      h("strong", {}, "Copy this secret now: it is not shown again. "),
      "Your receiver verifies each POST's webhook-signature with it. If it is lost, rotate the secret.",
    ),
    h("div", { class: "control" }, h("label", { for: secretId }, "Signing secret"), h("div", { class: "secret-row" }, field, h("button", { type: "button", class: "button secondary", onclick: copy }, "Copy secret"))),
    copied,
    h("p", { class: "muted" }, "For ", h("code", {}, hook.url)),
    h("div", { class: "dialog-actions" }, h("button", { type: "submit", class: "button" }, "Done")),
  );
  openDialog({ title, content: form, onClose: onDone });
  field.focus();
  field.select();
  announce(`${title}. Copy its secret now: it is not shown again.`);
}

// ---- one webhook ------------------------------------------------------------------------------

export async function renderWebhook(ctx, main, webhookId) {
  if (!can.admin(ctx.role)) {
    notForThisRole(main, ctx);
    return;
  }
  const container = h("div", { class: "webhooks-view" }, loadingEl());
  main.replaceChildren(container);
  const back = h("p", { class: "back" }, h("a", { href: "#/webhooks" }, "Back to the webhooks"));
  let hook;
  let segments;
  const loaded = await withErrors(
    (box) => container.replaceChildren(back, h("h1", { tabindex: "-1" }, "Webhook"), box),
    async () => {
      [hook, segments] = await Promise.all([api("GET", endpoints.webhook(webhookId)), allSegments()]);
    },
    { retry: () => renderWebhook(ctx, main, webhookId) },
  );
  if (!loaded) return;
  const path = endpoints.webhook(hook.id);
  const summary = h("div", {});
  const actions = h("div", { class: "message-actions" });
  const status = h("div", { class: "panel-status", role: "status" });
  const attempts = pagedList({
    label: "Delivery attempts",
    fetchPage: (cursor) => {
      return api("GET", endpoints.webhookDeliveries(hook.id, { limit: PAGE_SIZE, cursor }));
    },
    render: attemptsTable,
    className: "table-wrap",
  });

  const render = () => {
    const disabledId = uid("disabled");
    summary.replaceChildren(
      h("p", { class: "message-meta" }, stateBadge(hook)),
      h("div", {}, hook.state === "disabled"
        ? h(
            "section",
            { class: "hold-box", "aria-labelledby": disabledId },
            h("h2", { id: disabledId }, "Disabled"),
            h("p", { class: "disabled-reason" }, hook.disabled_reason || "Disabled."),
            h("p", {}, "Nothing is sent to it, and changes made while it is disabled are not sent later. Re-enable it once the receiver answers again."),
          )
        : null),
      h(
        "dl",
        { class: "facts webhook-facts" },
        h("dt", {}, "URL"),
        h("dd", {}, h("code", { class: "webhook-url" }, hook.url)),
        h("dt", {}, "Segments"),
        h(
          "dd",
          {},
          hook.segment_ids
            ? h(
                "ul",
                { class: "tag-list" },
                hook.segment_ids.map((id) => {
                  const segment = segments.byId.get(id);
                  return h("li", {}, segment ? h("a", { href: `#/${segment.target}/s/${encodeURIComponent(id)}` }, segment.name) : id);
                }),
              )
            : "Every segment",
        ),
        h("dt", {}, "Description"),
        h("dd", {}, hook.description || h("span", { class: "muted" }, "—")),
        h("dt", {}, "Created"),
        h("dd", {}, timeEl(hook.created_at)),
        h("dt", {}, "Updated"),
        h("dd", {}, timeEl(hook.updated_at)),
      ),
    );
    actions.replaceChildren(
      hook.state === "disabled"
        ? h("button", { type: "button", class: "button", onclick: () => setState("enabled") }, "Re-enable")
        : h("button", { type: "button", class: "button secondary", onclick: () => setState("disabled") }, "Disable"),
      h("button", { type: "button", class: "button secondary", onclick: rotate }, "Rotate secret"),
      h("button", { type: "button", class: "button danger-outline", onclick: remove }, "Delete webhook"),
      h("button", { type: "button", class: "button link", onclick: refresh }, "Refresh"),
    );
  };

  async function refresh() {
    await withErrors(status, async () => {
      hook = await api("GET", path);
      render();
    });
    await attempts.reload();
  }

  async function setState(state) {
    status.replaceChildren(loadingEl("Working…"));
    await withErrors(status, async () => {
      hook = await api("PUT", path, { state });
      render();
      const done = state === "enabled" ? "Re-enabled: new changes are sent to it." : "Disabled: nothing is sent to it.";
      status.replaceChildren(h("p", { class: "ok" }, done));
      announce(done);
    });
  }

  function rotate() {
    confirmDialog({
      title: "Rotate secret",
      text: "A new secret replaces the current one at once: the next POSTs are signed with it only, so the receiver must switch to it.",
      confirmLabel: "Rotate secret",
      onConfirm: ({ status: dialogStatus, close }) =>
        withErrors(dialogStatus, async () => {
          const rotated = await api("POST", endpoints.webhookRotateSecret(hook.id));
          close();
          hook = { ...rotated, secret: undefined }; // shown in its dialog only
          render();
          showSecret(rotated, "New secret");
        }),
    });
  }

  function remove() {
    confirmDialog({
      title: "Delete webhook",
      text: `Delete the webhook to ${hook.url}? Nothing more is sent to it. This cannot be undone.`,
      confirmLabel: "Delete webhook",
      onConfirm: ({ status: dialogStatus, close }) =>
        withErrors(dialogStatus, async () => {
          await api("DELETE", path);
          close();
          ctx.navigate("#/webhooks");
          announce("Webhook deleted.");
        }),
    });
  }

  render();
  container.replaceChildren(
    back,
    h("h1", { tabindex: "-1" }, hook.description || "Webhook"),
    summary,
    actions,
    status,
    h("h2", {}, "Delivery attempts"),
    h("p", { class: "muted" }, "Newest first. A failed attempt is retried with backoff for about a day; each attempt of a delivery has the same webhook-id."),
    attempts.element,
  );
}

function attemptsTable(attempts) {
  if (!attempts.length) return h("p", { class: "empty" }, "No delivery attempt yet.");
  const head = h("tr", {}, ["At", "Outcome", "Status code", "Duration", "Changes", "webhook-id"].map((label, index) => h("th", { scope: "col", class: index === 2 || index === 3 || index === 4 ? "num" : null }, label)));
  const rows = attempts.map((attempt) =>
    h(
      "tr",
      { "data-attempt-id": attempt.id },
      h("th", { scope: "row" }, timeEl(attempt.at)),
      h(
        "td",
        {},
        h("span", { class: `state state-${attempt.outcome === "delivered" ? "sent" : "failed"}` }, attempt.outcome),
        attempt.error ? h("span", { class: "sub" }, attempt.error) : null,
      ),
      h("td", { class: "num" }, attempt.status_code === null ? h("span", { class: "muted", title: "No answer" }, "none") : String(attempt.status_code)),
      h("td", { class: "num" }, `${attempt.duration_ms} ms`),
      h("td", { class: "num" }, String(attempt.changes)),
      h("td", {}, h("code", {}, attempt.webhook_id_header)),
    ),
  );
  return h("table", { class: "data-table" }, h("caption", { class: "visually-hidden" }, "Delivery attempts"), h("thead", {}, head), h("tbody", {}, rows));
}
