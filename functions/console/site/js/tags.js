// Tags on the users list: a checkbox on each row (and one for the page), and the "Tag" dialog that
// tags or untags the selected users (POST / DELETE /v1/tags/{id}/users with their ids, answered at
// once) or every user matching the list's filter (the same routes with the filter: a job, followed).

import { api } from "./api.js";
import { endpoints } from "./endpoints.js";
import { openDialog } from "./dialogs.js";
import { announce, errorBox, h, loadingEl, plural, uid, withErrors } from "./dom.js";
import { followJob, jobFailure, jobProgress } from "./jobs.js";

const NEW_TAG = "__new__";
// The API takes up to 1,000 ids a call; more are tagged by the filter (a job).
const MAX_IDS = 1000;

/** Every tag, by name, with its count (GET /v1/tags: one answer, tags are hand-made lists). */
export async function listTags() {
  const answer = await api("GET", endpoints.tags());
  return answer.data;
}

/**
 * The users picked on the list: kept across its pages, forgotten when the list's query changes.
 * `toolbar` holds the "Tag" button and how many are selected.
 */
export class UserSelection {
  constructor({ onTag }) {
    this.picked = new Map(); // user id → its name (or id), for the dialog
    this.rows = [];
    this.headBox = null;
    this.countText = h("span", { class: "selection-count", role: "status" });
    this.toolbar = h(
      "div",
      { class: "selection-bar" },
      h("button", { type: "button", class: "button secondary", onclick: () => onTag() }, "Tag"),
      this.countText,
    );
    this.renderCount();
  }

  get size() {
    return this.picked.size;
  }

  selected() {
    return [...this.picked.entries()].map(([id, name]) => ({ id, name }));
  }

  clear() {
    this.picked.clear();
    this.renderCount();
    this.syncPage();
  }

  renderCount() {
    this.countText.textContent = this.picked.size ? `${plural(this.picked.size, "user", "users")} selected` : "";
  }

  /** Says what was just done (until the selection changes). */
  note(text) {
    this.countText.textContent = text;
  }

  /** The header cell: select every user of the page shown. */
  headerCell(rows) {
    this.rows = rows;
    this.headBox = h("input", {
      type: "checkbox",
      "aria-label": "Select every user on this page",
      onchange: (event) => {
        for (const row of this.rows) {
          if (event.target.checked) this.picked.set(row.user_id, row.name || row.user_id);
          else this.picked.delete(row.user_id);
        }
        this.renderCount();
        this.syncPage();
      },
    });
    this.syncHead();
    return h("td", { class: "select-cell" }, this.headBox);
  }

  /** A row's cell: its checkbox, named after the user. */
  rowCell(row) {
    const box = h("input", {
      type: "checkbox",
      "data-user-id": row.user_id,
      "aria-label": `Select ${row.name || row.user_id}`,
      checked: this.picked.has(row.user_id),
      onchange: (event) => {
        if (event.target.checked) this.picked.set(row.user_id, row.name || row.user_id);
        else this.picked.delete(row.user_id);
        this.renderCount();
        this.syncHead();
      },
    });
    return h("td", { class: "select-cell" }, box);
  }

  syncPage() {
    const table = this.headBox && this.headBox.closest("table");
    if (table) {
      for (const box of table.querySelectorAll("tbody input[data-user-id]")) box.checked = this.picked.has(box.dataset.userId);
    }
    this.syncHead();
  }

  syncHead() {
    if (!this.headBox) return;
    const on = this.rows.filter((row) => this.picked.has(row.user_id)).length;
    this.headBox.checked = on > 0 && on === this.rows.length;
    this.headBox.indeterminate = on > 0 && on < this.rows.length;
  }
}

function radio(name, value, label, checked, extra = {}) {
  const id = uid("radio");
  return h(
    "div",
    { class: "check" },
    h("input", { type: "radio", id, name, value, checked, ...extra }),
    h("label", { for: id }, label),
  );
}

/**
 * The "Tag" dialog. `selected`: [{id, name}] picked on the list; `matching`: {filter, description,
 * count} what the list shows; `tags`: the known tags. `onTagsChanged(tags)` after a tag is made,
 * `onDone(text)` after users were tagged or untagged (the list then reloads).
 */
export function openTagDialog({ selected, matching, tags, onTagsChanged, onDone }) {
  const group = uid("tag");
  const status = h("div", { class: "dialog-status" });
  const progressSlot = h("div", { class: "progress-slot" });
  const who = [];
  if (selected.length) {
    const names = selected.slice(0, 3).map((user) => user.name).join(", ") + (selected.length > 3 ? ", …" : "");
    who.push(radio(`${group}-who`, "selected", `The ${plural(selected.length, "selected user", "selected users")} (${names})`, true));
  }
  const all = matching.count ? `All ${matching.count} users of the list` : "All the users of the list";
  who.push(radio(`${group}-who`, "matching", `${all}: ${matching.description} (a job)`, !selected.length));
  const action = [
    radio(`${group}-action`, "tag", "Add the tag", true),
    radio(`${group}-action`, "untag", "Remove the tag", false),
  ];
  const tagId = uid("tag-select");
  const nameId = uid("tag-name");
  const tagSelect = h("select", { id: tagId, autofocus: true });
  const nameInput = h("input", { id: nameId, type: "text", maxlength: "255", autocomplete: "off" });
  const nameControl = h("div", { class: "control" }, h("label", { for: nameId }, "New tag name"), nameInput);
  const submit = h("button", { type: "submit", class: "button" }, "Tag users");
  const cancel = h("button", { type: "button", class: "button secondary", onclick: () => handle.close() }, "Cancel");
  const form = h(
    "form",
    { class: "dialog-form tag-form" },
    h("fieldset", { class: "choice" }, h("legend", {}, "Users"), who),
    h("fieldset", { class: "choice" }, h("legend", {}, "Action"), action),
    h("div", { class: "control" }, h("label", { for: tagId }, "Tag"), tagSelect),
    nameControl,
    status,
    progressSlot,
    h("div", { class: "dialog-actions" }, cancel, submit),
  );
  const chosen = (name) => form.querySelector(`input[name="${group}-${name}"]:checked`).value;
  const renderTags = () => {
    const untag = chosen("action") === "untag";
    const current = tagSelect.value;
    tagSelect.replaceChildren(
      ...tags.map((tag) => h("option", { value: tag.id, selected: tag.id === current }, `${tag.name} (${tag.count})`)),
      untag ? null : h("option", { value: NEW_TAG, selected: current === NEW_TAG || !tags.length }, "New tag…"),
    );
    if (untag && !tags.length) tagSelect.appendChild(h("option", { value: "" }, "No tags yet"));
    nameControl.hidden = tagSelect.value !== NEW_TAG;
    submit.textContent = untag ? "Untag users" : "Tag users";
  };
  form.addEventListener("change", (event) => {
    if (event.target === tagSelect || event.target.name === `${group}-action`) renderTags();
    if (event.target === tagSelect && tagSelect.value === NEW_TAG) nameInput.focus();
  });
  renderTags();

  const controller = new AbortController();
  const handle = openDialog({ title: "Tag users", content: form, className: "wide", onClose: () => controller.abort() });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const untag = chosen("action") === "untag";
    const byFilter = chosen("who") === "matching" || selected.length > MAX_IDS;
    let tag = tags.find((t) => t.id === tagSelect.value);
    if (!tag && tagSelect.value !== NEW_TAG) {
      status.replaceChildren(h("p", { class: "field-error", role: "alert" }, "Choose a tag."));
      tagSelect.focus();
      return;
    }
    const newName = nameInput.value.trim();
    if (!tag && !newName) {
      status.replaceChildren(h("p", { class: "field-error", role: "alert" }, "Give the new tag a name."));
      nameInput.setAttribute("aria-invalid", "true");
      nameInput.focus();
      return;
    }
    nameInput.removeAttribute("aria-invalid");
    submit.disabled = true;
    status.replaceChildren(loadingEl(untag ? "Untagging…" : "Tagging…"));
    const failed = (box) => {
      status.replaceChildren(box);
      submit.disabled = false;
    };
    await withErrors(failed, async () => {
      if (!tag) {
        tag = await api("POST", endpoints.tags(), { name: newName });
        tags = [...tags, tag].sort((a, b) => a.name.localeCompare(b.name));
        onTagsChanged(tags);
        renderTags();
        tagSelect.value = tag.id;
        nameControl.hidden = true;
      }
      const body = byFilter ? { filter: matching.filter } : { user_ids: selected.map((user) => user.id) };
      const answer = await api(untag ? "DELETE" : "POST", endpoints.tagUsers(tag.id), body);
      if (!byFilter) {
        const text = untag
          ? `Removed “${tag.name}” from ${plural(answer.untagged, "user", "users")}.`
          : `Tagged ${plural(answer.tagged, "user", "users")} with “${tag.name}”.`;
        handle.close();
        onDone(text);
        return;
      }
      status.replaceChildren();
      const progress = jobProgress(untag ? "Untagging progress" : "Tagging progress", (job) =>
        job.state === "running" ? `${job.done} of about ${Math.max(job.total, job.done)} users read` : `${job.done} users read`,
      );
      progressSlot.replaceChildren(progress.element);
      const job = await followJob(answer.job_id, progress.update, controller.signal);
      if (job.state === "failed") {
        status.replaceChildren(errorBox(jobFailure(job)));
        submit.disabled = false;
        return;
      }
      const count = untag ? job.result.untagged : job.result.tagged;
      const text = untag
        ? `Removed “${tag.name}” from ${plural(count, "user", "users")}.`
        : `Tagged ${plural(count, "user", "users")} with “${tag.name}”.`;
      status.replaceChildren(h("p", { class: "ok" }, text));
      announce(text);
      submit.hidden = true;
      cancel.textContent = "Close";
      cancel.focus();
      onDone(text);
    });
  });
  return handle;
}
