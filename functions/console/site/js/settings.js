// The workspace's settings (GET /v1/settings, read and up; PUT /v1/settings, admin): the email
// frequency cap, which an admin sets or removes here, and the time zone, set at deploy and shown.

import { api, can } from "./api.js";
import { endpoints } from "./endpoints.js";
import { announce, errorBox, h, loadingEl, plural, uid, withErrors } from "./dom.js";

// The API's bounds (API notes, "Email that arrives"): the API checks them; the form only says so.
const MAX_EMAILS = 100;
const MAX_DAYS = 90;

function capText(cap) {
  if (!cap) return "No cap: a user gets every email their messages send them.";
  return `At most ${plural(cap.max, "email", "emails")} per user in any ${plural(cap.days, "day", "days")}.`;
}

function numberOf(input) {
  const text = input.value.trim();
  // Sent as typed: the API is the judge of what a valid cap is, and says so field by field.
  return text === "" ? null : Number(text);
}

export async function renderSettings(ctx, main) {
  const container = h("div", { class: "settings-view" }, loadingEl());
  main.replaceChildren(container);
  let settings;
  const loaded = await withErrors(
    (box) => container.replaceChildren(h("h1", { tabindex: "-1" }, "Settings"), box),
    async () => {
      settings = await api("GET", endpoints.settings());
    },
    { retry: () => renderSettings(ctx, main) },
  );
  if (!loaded) return;
  const capHeading = uid("h");
  const zoneHeading = uid("h");
  const current = h("p", { class: "current-cap" }, capText(settings.email_frequency_cap));
  const capSection = h(
    "section",
    { class: "card settings-card", "aria-labelledby": capHeading },
    h("h2", { id: capHeading }, "Email frequency cap"),
    h(
      "p",
      { class: "muted" },
      "How many emails one user may get, across all messages, in a sliding window of days. An email past the cap is skipped with reason frequency_cap (for an auto message, for good). In-app messages are not capped.",
    ),
    current,
  );
  if (can.admin(ctx.role)) capSection.appendChild(capForm(settings, current));
  else capSection.appendChild(h("p", { class: "hint" }, "Only an admin key can change the cap."));

  container.replaceChildren(
    h("h1", { tabindex: "-1" }, "Settings"),
    h(
      "div",
      { class: "settings-grid" },
      capSection,
      h(
        "section",
        { class: "card settings-card", "aria-labelledby": zoneHeading },
        h("h2", { id: zoneHeading }, "Time zone"),
        h("dl", { class: "facts" }, h("dt", {}, "Time zone"), h("dd", { class: "timezone" }, settings.timezone)),
        h(
          "p",
          { class: "hint" },
          "Calendar days in filters (“on”, “exactly N days ago”) are days of this zone. It is set when the stack is deployed (template parameter TimeZone): redeploy to change it.",
        ),
      ),
    ),
  );
}

/** The admin's form: set max and days, or remove the cap; a 422 is shown at the field it names. */
function capForm(settings, current) {
  const cap = settings.email_frequency_cap;
  const max = h("input", { type: "number", min: "1", max: String(MAX_EMAILS), step: "1", inputmode: "numeric", value: cap ? String(cap.max) : "" });
  const days = h("input", { type: "number", min: "1", max: String(MAX_DAYS), step: "1", inputmode: "numeric", value: cap ? String(cap.days) : "" });
  const status = h("div", { class: "form-status" });
  const errors = {};
  const controls = { max, days };
  const fieldOf = (key, label, input, hintText) => {
    const id = uid("f");
    const hintId = uid("hint");
    input.id = id;
    input.setAttribute("aria-describedby", hintId);
    errors[key] = h("p", { class: "field-error", id: uid("err") });
    errors[key].hidden = true;
    return h("div", { class: "control" }, h("label", { for: id }, label), input, h("p", { class: "hint", id: hintId }, hintText), errors[key]);
  };
  const save = h("button", { type: "submit", class: "button" }, "Save cap");
  const remove = h("button", { type: "button", class: "button danger-outline", onclick: () => put(null) }, "Remove cap");
  // The browser's own checks are off: the API's 422 names each bad field, and is shown there.
  const form = h(
    "form",
    { class: "cap-form", novalidate: true },
    h(
      "div",
      { class: "row" },
      fieldOf("max", "Maximum emails per user", max, `A whole number from 1 to ${MAX_EMAILS}.`),
      fieldOf("days", "Window in days", days, `A whole number from 1 to ${MAX_DAYS}: the last N × 24 hours.`),
    ),
    status,
    h("div", { class: "form-actions" }, save, remove),
  );
  const showRemove = (value) => {
    remove.hidden = !value;
  };
  showRemove(cap);

  const clearErrors = () => {
    for (const [key, slot] of Object.entries(errors)) {
      slot.hidden = true;
      slot.textContent = "";
      controls[key].removeAttribute("aria-invalid");
      controls[key].setAttribute("aria-describedby", controls[key].getAttribute("aria-describedby").split(" ")[0]);
    }
  };

  const showErrors = (error) => {
    let placed = false;
    for (const detail of error.details || []) {
      // "email_frequency_cap.max" → the Maximum field; "email_frequency_cap" alone → the form.
      const key = String(detail.path || "").split(".")[1];
      if (!errors[key]) continue;
      errors[key].hidden = false;
      errors[key].textContent = detail.message;
      controls[key].setAttribute("aria-invalid", "true");
      const hint = controls[key].getAttribute("aria-describedby").split(" ")[0];
      controls[key].setAttribute("aria-describedby", `${hint} ${errors[key].id}`);
      placed = true;
    }
    status.replaceChildren(placed ? h("p", { class: "field-error", role: "alert" }, error.message) : errorBox(error));
    const firstInvalid = form.querySelector("[aria-invalid=true]");
    if (firstInvalid) firstInvalid.focus();
  };

  async function put(value) {
    clearErrors();
    save.disabled = true;
    remove.disabled = true;
    status.replaceChildren(loadingEl(value ? "Saving the cap…" : "Removing the cap…"));
    // A 422 is shown at the field its path names.
    const refused = (box, error) => (error.status === 422 ? showErrors(error) : status.replaceChildren(box));
    await withErrors(refused, async () => {
      const saved = await api("PUT", endpoints.settings(), { email_frequency_cap: value });
      const now = saved.email_frequency_cap;
      current.textContent = capText(now);
      max.value = now ? String(now.max) : "";
      days.value = now ? String(now.days) : "";
      showRemove(now);
      const done = now ? `Saved. ${capText(now)} Senders apply it within 30 seconds.` : "The cap is removed.";
      status.replaceChildren(h("p", { class: "ok" }, done));
      announce(done);
    });
    save.disabled = false;
    remove.disabled = false;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    put({ max: numberOf(max), days: numberOf(days) });
  });
  return form;
}
