// The segment actions of Users and Companies: Save segment (a dialog with Name), Save changes (a
// PUT of the edited filter, answered in the filter panel) and Delete segment (a confirmation; a 409
// shows the API's message and what depends on the segment, by name and linked). The view
// (people.js) says what to save and what to do after; these make the calls and show the outcome.

import { api } from "./api.js";
import { confirmDialog, openDialog } from "./dialogs.js";
import { announce, errorBox, h, loadingEl, plural, uid, withErrors } from "./dom.js";
import { endpoints } from "./endpoints.js";

/**
 * Save segment: asks for a Name and POSTs `filter()` as a new segment of `target`. A 422 on the
 * filter closes the dialog and goes to refusedFilter(box, error) (the panel shows it at its
 * conditions); anything else stays in the dialog. `saved(created)` runs before the announcement.
 * `noun` is [one, many] ("user", "users").
 */
export function openSaveSegmentDialog({ target, noun, filter, refusedFilter, saved }) {
  const nameId = uid("name");
  const status = h("div", { class: "dialog-status" });
  const input = h("input", { id: nameId, type: "text", required: true, maxlength: "255", autocomplete: "off", autofocus: true });
  const form = h(
    "form",
    { class: "dialog-form" },
    h("div", { class: "control" }, h("label", { for: nameId }, "Name"), input),
    h("p", { class: "muted" }, `The segment keeps the current filter; its ${noun[1]} are kept up to date.`),
    status,
    h(
      "div",
      { class: "dialog-actions" },
      h("button", { type: "button", class: "button secondary", onclick: () => handle.close() }, "Cancel"),
      h("button", { type: "submit", class: "button" }, "Save segment"),
    ),
  );
  const handle = openDialog({ title: "Save segment", content: form });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = input.value.trim();
    if (!name) {
      status.replaceChildren(h("p", { class: "field-error", role: "alert" }, "Give the segment a name."));
      input.focus();
      return;
    }
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    status.replaceChildren(loadingEl("Saving…"));
    const refused = (box, error) => {
      submit.disabled = false;
      if (error.status === 422 && error.details.some((d) => String(d.path).startsWith("filter"))) {
        handle.close();
        refusedFilter(box, error);
        return;
      }
      status.replaceChildren(box);
    };
    await withErrors(refused, async () => {
      const created = await api("POST", endpoints.segments(), { name, target, filter: filter() });
      handle.close();
      await saved(created);
      announce(`Segment ${created.name} saved with ${plural(created.count, noun[0], noun[1])}.`);
    });
  });
}

/**
 * Save changes: PUTs `filter` on `segment`, the outcome in `status` (the panel's). A 422 also goes
 * to refusedFilter(details), at the conditions; `saved(segment)` updates the view before "Saved".
 */
export async function saveSegmentChanges({ segment, filter, noun, status, refusedFilter, saved }) {
  status.replaceChildren(loadingEl("Saving changes…"));
  const refused = (box, error) => {
    if (error.status === 422) refusedFilter(error.details);
    status.replaceChildren(box);
  };
  await withErrors(refused, async () => {
    const answer = await api("PUT", endpoints.segment(segment.id), { filter });
    await saved(answer);
    status.replaceChildren(h("p", { class: "ok" }, `Saved: ${answer.name} has ${plural(answer.count, noun[0], noun[1])}.`));
  });
}

/**
 * Delete segment: a confirmation, then the DELETE; `deleted()` runs before the announcement. A 409
 * stays in the dialog with what depends on the segment (`segments()` names the segments).
 */
export function openDeleteSegmentDialog({ segment, target, segments, deleted }) {
  confirmDialog({
    title: "Delete segment",
    text: `Delete the segment “${segment.name}”? Messages and segments that use it must be changed first. This cannot be undone.`,
    confirmLabel: "Delete segment",
    onConfirm: async ({ status, close }) => {
      let refusal = null;
      await withErrors(
        (box, error) => {
          refusal = error;
        },
        async () => {
          await api("DELETE", endpoints.segment(segment.id));
          close();
          await deleted();
          announce(`Segment ${segment.name} deleted.`);
        },
      );
      // A 409 names what depends on the segment: those are read (by name) before it is shown.
      if (refusal) status.replaceChildren(await conflictBox(refusal, target, segments));
    },
  });
}

/** A 409's reason, with the dependents it names as links (segments and messages by name). */
async function conflictBox(error, target, segments) {
  // `segments()`: the view's list as it is once the messages are read.
  const box = errorBox(error);
  const dependents = (error.details || []).filter((d) => d.segment_id || d.message_id);
  if (!dependents.length) return box;
  // Name each dependent message (a few at most); an id stays an id if it cannot be read.
  const messageIds = [...new Set(dependents.filter((d) => d.message_id).map((d) => d.message_id))].slice(0, 20);
  const found = await Promise.allSettled(messageIds.map((id) => api("GET", endpoints.message(id))));
  const messages = found.filter((r) => r.status === "fulfilled").map((r) => r.value);
  const items = dependents.map((d) => {
    if (d.segment_id) {
      const other = segments().find((s) => s.id === d.segment_id);
      return h("li", {}, "Segment ", h("a", { href: `#/${target}/s/${encodeURIComponent(d.segment_id)}` }, other ? other.name : d.segment_id), ` — ${d.message}`);
    }
    const message = messages.find((m) => m.id === d.message_id);
    return h("li", {}, "Message ", h("a", { href: `#/messages/${encodeURIComponent(d.message_id)}` }, message ? message.name : d.message_id), ` — ${d.message}`);
  });
  box.appendChild(h("p", {}, "Depends on it:"));
  box.appendChild(h("ul", { class: "dependents" }, items));
  return box;
}
