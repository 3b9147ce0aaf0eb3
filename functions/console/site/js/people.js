// Users and Companies: segments along the top, filters on the left, the matching list on the right.
// The list is one page at a time (the API's cursors); the count comes from POST /v1/<target>/count.

import { api, can } from "./api.js";
import { endpoints } from "./endpoints.js";
import { openExportDialog, openImportDialog } from "./csv.js";
import { segmentActivity } from "./changes.js";
import { confirmDialog, openDialog } from "./dialogs.js";
import { announce, debounce, errorBox, formatTime, h, loadingEl, plural, timeEl, uid } from "./dom.js";
import { emailStatusMarker } from "./email.js";
import { FilterEditor, fieldLabel } from "./filters.js";
import { openComposer } from "./messages.js";
import { UserSelection, listTags, openTagDialog } from "./tags.js";

const PAGE_SIZE = 25;
const COUNT_DEBOUNCE_MS = 350;
// "Everyone": the API has no unfiltered list, and every record has its id.
const EVERYONE = {
  users: { field: "user_id", op: "exists" },
  companies: { field: "company_id", op: "exists" },
};
const NOUN = {
  users: ["user", "users", "User", "Users", "All users"],
  companies: ["company", "companies", "Company", "Companies", "All companies"],
};
const BASE_COLUMNS = {
  users: [
    { key: "name", label: "Name" },
    { key: "email", label: "Email" },
    { key: "signed_up_at", label: "Signed up (UTC)", time: true },
    { key: "last_seen_at", label: "Last seen (UTC)", time: true },
    { key: "session_count", label: "Sessions", numeric: true },
  ],
  companies: [
    { key: "name", label: "Name" },
    { key: "plan", label: "Plan" },
    { key: "monthly_spend", label: "Monthly spend", numeric: true },
    { key: "size", label: "Size", numeric: true },
    { key: "industry", label: "Industry" },
    { key: "user_count", label: "Users", numeric: true },
  ],
};

const views = {};

/** The view of a target, kept while the console is open so a detail page and back keeps the filter. */
export function peopleView(ctx, target) {
  if (!views[target] || views[target].ctx.role !== ctx.role) views[target] = new PeopleView(ctx, target);
  return views[target];
}

export function forgetViews() {
  for (const key of Object.keys(views)) delete views[key];
}

class PeopleView {
  constructor(ctx, target) {
    this.ctx = ctx;
    this.target = target;
    this.noun = NOUN[target];
    this.fields = new Map();
    this.segments = [];
    this.tags = [];
    this.segment = null;
    this.baseline = "null";
    this.customColumns = [];
    this.cursors = [null];
    this.page = null;
    this.token = 0;
    this.pageToken = 0;
    this.lastQuery = null;
    this.loaded = false;
    this.mounts = 0;
    this.scheduleRefresh = debounce(() => this.refresh(false), COUNT_DEBOUNCE_MS);
    this.build();
  }

  build() {
    const [, many, , Many] = this.noun;
    this.headingId = uid("heading");
    this.segmentBar = h("div", { class: "segment-bar", role: "group", "aria-label": `${Many} segments` });
    this.editor = new FilterEditor({
      fields: this.fields,
      segments: [],
      onChange: () => this.filterChanged(),
    });
    // Tagging from the list: the rows get checkboxes for those who may tag.
    this.selection = this.target === "users" && can.write(this.ctx.role) ? new UserSelection({ onTag: () => this.tagUsers() }) : null;
    this.panelActions = h("div", { class: "panel-actions" });
    this.panelStatus = h("div", { class: "panel-status", role: "status" });
    this.segmentNote = h("p", { class: "segment-note muted" });
    this.panel = h(
      "aside",
      { class: "filter-panel", "aria-labelledby": `${this.headingId}-filters` },
      h("h2", { id: `${this.headingId}-filters` }, "Filters"),
      this.segmentNote,
      this.editor.element,
      this.panelActions,
      this.panelStatus,
    );
    this.countLine = h("p", { class: "match-count", role: "status", "aria-live": "polite" }, " ");
    this.resultActions = h("div", { class: "result-actions" });
    this.tableWrap = h("div", { class: "table-wrap", role: "region", "aria-label": `${Many} list`, tabindex: "0" });
    this.pager = h("nav", { class: "pager", "aria-label": `Pages of ${many}` });
    const results = h(
      "section",
      { class: "results", "aria-labelledby": `${this.headingId}-results` },
      h("h2", { id: `${this.headingId}-results`, class: "visually-hidden" }, `Matching ${many}`),
      h("div", { class: "results-head" }, this.countLine, this.resultActions),
      this.tableWrap,
      this.pager,
    );
    this.topError = h("div", { class: "top-error" });
    this.activitySlot = h("div", { class: "activity-slot" });
    this.element = h(
      "div",
      { class: "people-view" },
      h("h1", { id: this.headingId, tabindex: "-1" }, Many),
      this.topError,
      this.segmentBar,
      this.activitySlot,
      h("div", { class: "people-layout" }, this.panel, results),
    );
  }

  /** Shows the view for `segmentId` (null: everyone). */
  async mount(main, segmentId) {
    main.replaceChildren(this.element);
    if (!this.loaded) {
      // Only the latest mount selects once loaded: an earlier one finishing late would reset the
      // filter begun since.
      const mount = (this.mounts += 1);
      this.segmentBar.replaceChildren(loadingEl("Loading segments…"));
      this.tableWrap.replaceChildren(loadingEl());
      // Until the fields and segments are known the filters cannot be edited: a condition begun
      // now would be reset when the view selects its segment below.
      this.element.setAttribute("aria-busy", "true");
      this.panel.inert = true;
      try {
        await Promise.all([this.loadFields(), this.loadSegments(), this.loadTags()]);
        this.loaded = true;
      } catch (error) {
        if (mount !== this.mounts) return;
        this.segmentBar.replaceChildren();
        this.topError.replaceChildren(errorBox(error, () => this.mount(main, segmentId)));
        this.tableWrap.replaceChildren();
        return;
      } finally {
        if (mount === this.mounts) {
          this.element.removeAttribute("aria-busy");
          this.panel.inert = false;
        }
      }
      if (mount !== this.mounts) return;
      this.topError.replaceChildren();
      this.selectSegment(segmentId, true);
      return;
    }
    // Back on the view: new custom attributes and segment counts may have appeared meanwhile.
    this.loadFields().catch(() => {});
    this.loadSegments().catch(() => {});
    this.loadTags().catch(() => {});
    if ((this.segment ? this.segment.id : null) !== (segmentId || null)) this.selectSegment(segmentId, true);
    else this.showActivity();
  }

  /** The selected segment's size a day and latest changes (changes.js); nothing for everyone. */
  showActivity() {
    this.activity?.dispose();
    this.activity = this.segment ? segmentActivity(this.segment) : null;
    this.activitySlot.replaceChildren(...(this.activity ? [this.activity.element] : []));
  }

  async loadFields() {
    const answer = await api("GET", endpoints.fields(this.target));
    const before = JSON.stringify([...this.fields.values()]);
    this.fields.clear();
    for (const field of answer.data) this.fields.set(field.field, field);
    this.customColumns = this.customColumns.filter((key) => this.fields.has(`custom_attributes.${key}`));
    this.renderColumnsPicker();
    // A condition added while the fields were loading offers the new ones too.
    if (JSON.stringify(answer.data) !== before) this.editor.render();
  }

  async loadSegments() {
    const answer = await api("GET", endpoints.segments({ target: this.target }));
    this.segments = answer.data;
    this.editor.segments = this.segments;
    if (this.segment) this.segment = this.segments.find((s) => s.id === this.segment.id) || null;
    this.renderSegmentBar();
  }

  /** The tags, for the filter builder's tag conditions and the Tag dialog (users only). */
  async loadTags() {
    if (this.target !== "users") return;
    this.setTags(await listTags());
  }

  setTags(tags) {
    const changed = JSON.stringify(tags.map((t) => [t.id, t.name])) !== JSON.stringify(this.tags.map((t) => [t.id, t.name]));
    this.tags = tags;
    this.editor.tags = tags;
    if (changed) this.editor.render();
  }

  renderSegmentBar() {
    const all = h(
      "button",
      {
        type: "button",
        class: "segment-chip",
        "aria-pressed": this.segment ? "false" : "true",
        onclick: () => this.ctx.navigate(`#/${this.target}`),
      },
      h("span", { class: "segment-name" }, this.noun[4]),
    );
    const chips = this.segments.map((segment) =>
      h(
        "button",
        {
          type: "button",
          class: segment.predefined ? "segment-chip predefined" : "segment-chip",
          "aria-pressed": this.segment && this.segment.id === segment.id ? "true" : "false",
          "data-segment-id": segment.id,
          onclick: () => this.ctx.navigate(`#/${this.target}/s/${encodeURIComponent(segment.id)}`),
        },
        h("span", { class: "segment-name" }, segment.name),
        " ",
        h("span", { class: "segment-count" }, String(segment.count)),
      ),
    );
    this.segmentBar.replaceChildren(all, ...chips);
    // On a phone the bar scrolls sideways: keep the selected segment in view.
    const pressed = this.segmentBar.querySelector('[aria-pressed="true"]');
    if (pressed && this.segmentBar.scrollWidth > this.segmentBar.clientWidth) {
      this.segmentBar.scrollLeft = Math.max(0, pressed.offsetLeft - this.segmentBar.offsetLeft - 12);
    }
  }

  selectSegment(segmentId, fromRoute) {
    const segment = segmentId ? this.segments.find((s) => s.id === segmentId) : null;
    if (segmentId && !segment) {
      this.topError.replaceChildren(errorBox({ message: `No ${this.noun[0]} segment ${segmentId}: it may have been deleted.` }));
    } else {
      this.topError.replaceChildren();
    }
    this.segment = segment || null;
    this.editor.setFilter(segment ? segment.filter : null);
    this.baseline = JSON.stringify(this.editor.build().filter);
    this.panelStatus.replaceChildren();
    this.renderSegmentBar();
    this.renderPanel();
    this.renderResultActions();
    this.showActivity();
    this.cursors = [null];
    this.lastQuery = null;
    this.refresh();
    if (!fromRoute) announce(segment ? `Segment ${segment.name}` : this.noun[4]);
  }

  modified() {
    return JSON.stringify(this.editor.build().filter) !== this.baseline;
  }

  filterChanged() {
    // Busy from the first keystroke: the count and list follow once typing pauses.
    this.countLine.setAttribute("aria-busy", "true");
    this.tableWrap.setAttribute("aria-busy", "true");
    this.renderPanel();
    this.renderResultActions();
    this.scheduleRefresh();
  }

  /** What the list shows now: a stored segment's members, or a search by the current filter. */
  query() {
    if (this.segment && !this.modified()) return { kind: "members", segmentId: this.segment.id };
    return { kind: "search", filter: this.editor.build().filter || EVERYONE[this.target] };
  }

  async refresh(force = true) {
    this.scheduleRefresh.cancel();
    const query = this.query();
    const key = JSON.stringify(query);
    if (!force && key === this.lastQuery) {
      // An edit that changes nothing the API sees (a condition still without a value).
      this.countLine.removeAttribute("aria-busy");
      this.tableWrap.removeAttribute("aria-busy");
      return;
    }
    if (key !== this.lastQuery) {
      this.cursors = [null];
      this.selection?.clear();
    }
    this.lastQuery = key;
    this.token += 1;
    this.pageToken += 1;
    const token = this.token;
    const pageToken = this.pageToken;
    this.countLine.setAttribute("aria-busy", "true");
    this.tableWrap.setAttribute("aria-busy", "true");
    if (!this.page) this.tableWrap.replaceChildren(loadingEl());
    else this.tableWrap.classList.add("stale");
    const countFilter = query.kind === "members" ? { field: "segment", op: "in_segment", value: query.segmentId } : query.filter;
    // The page and the count are shown as each arrives: an exact count of a large table can take
    // longer than a page. An answer to an older filter is dropped.
    const stale = () => token !== this.token;
    const pageStale = () => pageToken !== this.pageToken;
    const invalid = (error) => {
      this.editor.showErrors(error.details);
      this.countLine.replaceChildren(h("span", { class: "count-error" }, "Fix the filter marked below to see who matches."));
    };
    const counted = api("POST", endpoints.count(this.target), { filter: countFilter }).then(
      (result) => {
        if (stale()) return;
        this.countLine.removeAttribute("aria-busy");
        this.editor.clearErrors();
        this.renderCount(result);
      },
      (error) => {
        if (stale()) return;
        this.countLine.removeAttribute("aria-busy");
        if (error.status === 422) invalid(error);
        else this.countLine.replaceChildren(h("span", { class: "count-error" }, `Could not count: ${error.message}`));
      },
    );
    const listed = this.fetchPage(query, this.cursors.at(-1)).then(
      (page) => {
        if (pageStale()) return;
        this.editor.clearErrors();
        this.page = page;
        this.renderTable();
      },
      (error) => {
        if (pageStale()) return;
        this.page = null;
        if (error.status === 422) invalid(error);
        this.tableWrap.replaceChildren(errorBox(error, error.status === 422 ? null : () => this.refresh()));
      },
    );
    await Promise.all([
      counted,
      listed.finally(() => {
        if (pageStale()) return;
        this.tableWrap.removeAttribute("aria-busy");
        this.tableWrap.classList.remove("stale");
        this.renderPager();
      }),
    ]);
  }

  fetchPage(query, cursor) {
    if (query.kind === "members") {
      return api("GET", endpoints.segmentMembers(query.segmentId, { limit: PAGE_SIZE, cursor }));
    }
    return api("POST", endpoints.search(this.target), { filter: query.filter, limit: PAGE_SIZE, cursor });
  }

  async goToPage(direction) {
    if (direction > 0 && this.page && this.page.next_cursor) this.cursors.push(this.page.next_cursor);
    else if (direction < 0 && this.cursors.length > 1) this.cursors.pop();
    else return;
    const token = ++this.pageToken;
    this.tableWrap.setAttribute("aria-busy", "true");
    this.tableWrap.classList.add("stale");
    try {
      const page = await this.fetchPage(this.query(), this.cursors.at(-1));
      if (token !== this.pageToken) return;
      this.page = page;
      this.renderTable();
      announce(`Page ${this.cursors.length}`);
    } catch (error) {
      if (token !== this.pageToken) return;
      this.tableWrap.replaceChildren(errorBox(error, () => this.refresh()));
    } finally {
      if (token === this.pageToken) {
        this.tableWrap.removeAttribute("aria-busy");
        this.tableWrap.classList.remove("stale");
        this.renderPager();
      }
    }
  }

  renderCount(result) {
    const [one, many] = this.noun;
    const verb = result.count === 1 ? "matches" : "match";
    const text = result.exact
      ? `${plural(result.count, one, many)} ${verb}`
      : `About ${plural(result.count, one, many)} ${verb} (± ${result.margin}, estimated)`;
    this.countLine.replaceChildren(h("strong", {}, text));
    this.countLine.title = `As of ${formatTime(result.as_of)}`;
    this.lastCount = result;
  }

  renderPager() {
    const index = this.cursors.length;
    const hasNext = Boolean(this.page && this.page.next_cursor);
    this.pager.replaceChildren(
      h("button", { type: "button", class: "button secondary", disabled: index <= 1, onclick: () => this.goToPage(-1) }, "Previous page"),
      h("span", { class: "page-number" }, `Page ${index}`),
      h("button", { type: "button", class: "button secondary", disabled: !hasNext, onclick: () => this.goToPage(1) }, "Next page"),
    );
  }

  columns() {
    const custom = this.customColumns.map((key) => ({ key, label: key, custom: true }));
    return [...BASE_COLUMNS[this.target], ...custom];
  }

  renderTable() {
    const rows = this.page ? this.page.data : [];
    if (!rows.length) {
      this.tableWrap.replaceChildren(h("p", { class: "empty" }, `No ${this.noun[1]} match.`));
      return;
    }
    const columns = this.columns();
    const select = this.selection;
    const head = h(
      "tr",
      {},
      select ? select.headerCell(rows) : null,
      columns.map((column) => h("th", { scope: "col", class: column.numeric ? "num" : null }, column.label)),
    );
    const body = rows.map((row) =>
      h("tr", {}, select ? select.rowCell(row) : null, columns.map((column, index) => this.cell(row, column, index === 0))),
    );
    this.tableWrap.replaceChildren(
      h("table", { class: "data-table" }, h("caption", { class: "visually-hidden" }, `${this.noun[3]}, page ${this.cursors.length}`), h("thead", {}, head), h("tbody", {}, body)),
    );
  }

  cell(row, column, first) {
    const value = column.custom ? (row.custom_attributes || {})[column.key] : row[column.key];
    if (first) {
      const id = this.target === "users" ? row.user_id : row.company_id;
      const href = `#/${this.target}/${this.target === "users" ? "u" : "c"}/${encodeURIComponent(id)}`;
      return h("th", { scope: "row" }, h("a", { href }, row.name || id), row.name ? h("span", { class: "sub" }, id) : null);
    }
    if (column.time) return h("td", {}, timeEl(value, true, false));
    // An address SES reported (bounced, complained) is marked where the email is read.
    if (this.target === "users" && column.key === "email" && !column.custom) {
      return h("td", {}, value || "—", emailStatusMarker(row));
    }
    let text = value;
    if (value === null || value === undefined || value === "") text = "—";
    else if (typeof value === "boolean") text = value ? "true" : "false";
    else if (column.custom && typeof value === "string" && /^\d{4}-\d{2}-\d{2}T/.test(value)) return h("td", {}, timeEl(value));
    return h("td", { class: column.numeric || typeof value === "number" ? "num" : null }, String(text));
  }

  renderColumnsPicker() {
    this.renderResultActions();
  }

  renderResultActions() {
    const role = this.ctx.role;
    const custom = [...this.fields.values()].filter((field) => field.source === "custom");
    const picker = custom.length
      ? h(
          "details",
          { class: "columns-picker" },
          h("summary", {}, "Columns"),
          h(
            "fieldset",
            {},
            h("legend", {}, "Custom attribute columns"),
            custom.map((field) => {
              const key = field.field.slice("custom_attributes.".length);
              const id = uid("col");
              return h(
                "div",
                { class: "check" },
                h("input", {
                  type: "checkbox",
                  id,
                  checked: this.customColumns.includes(key),
                  onchange: (event) => {
                    if (event.target.checked) this.customColumns.push(key);
                    else this.customColumns = this.customColumns.filter((k) => k !== key);
                    this.renderTable();
                  },
                }),
                h("label", { for: id }, fieldLabel(field.field)),
              );
            }),
          ),
        )
      : null;
    const wasOpen = this.resultActions.querySelector("details")?.open;
    if (picker && wasOpen) picker.open = true;
    const message =
      this.target === "users" && can.write(role)
        ? h("button", { type: "button", class: "button", onclick: () => this.compose() }, "New message")
        : null;
    const admin = can.admin(role);
    const importCsv =
      this.target === "users" && admin
        ? h("button", { type: "button", class: "button secondary", onclick: () => this.importCsv() }, "Import CSV")
        : null;
    const exportCsv = admin ? h("button", { type: "button", class: "button secondary", onclick: () => this.exportCsv() }, "Export CSV") : null;
    this.resultActions.replaceChildren(...[message, this.selection?.toolbar, importCsv, exportCsv, picker].filter(Boolean));
  }

  renderPanel() {
    const role = this.ctx.role;
    const segment = this.segment;
    const modified = this.modified();
    if (segment) {
      const state = segment.predefined
        ? "Predefined segment: it cannot be edited or deleted."
        : modified
          ? "Showing your changes, not yet saved."
          : "Showing the segment's filter.";
      this.segmentNote.replaceChildren(h("strong", {}, segment.name), " — ", state);
    } else {
      this.segmentNote.replaceChildren(`Filter the ${this.noun[1]}, then save the filter as a segment.`);
    }
    const buttons = [];
    if (can.write(role)) {
      buttons.push(h("button", { type: "button", class: "button", onclick: () => this.saveSegment() }, "Save segment"));
    }
    if (segment && !segment.predefined && can.admin(role)) {
      buttons.push(h("button", { type: "button", class: "button secondary", onclick: () => this.saveChanges() }, "Save changes"));
      buttons.push(h("button", { type: "button", class: "button danger-outline", onclick: () => this.deleteSegment() }, "Delete segment"));
    }
    if (segment && modified) {
      buttons.push(
        h(
          "button",
          { type: "button", class: "button link", onclick: () => this.selectSegment(segment.id, false) },
          "Discard changes",
        ),
      );
    }
    this.panelActions.replaceChildren(...buttons);
  }

  currentFilter() {
    return this.editor.build().filter || EVERYONE[this.target];
  }

  saveSegment() {
    const nameId = uid("name");
    const status = h("div", { class: "dialog-status" });
    const input = h("input", { id: nameId, type: "text", required: true, maxlength: "255", autocomplete: "off", autofocus: true });
    const form = h(
      "form",
      { class: "dialog-form" },
      h("div", { class: "control" }, h("label", { for: nameId }, "Name"), input),
      h("p", { class: "muted" }, `The segment keeps the current filter; its ${this.noun[1]} are kept up to date.`),
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
      try {
        const created = await api("POST", endpoints.segments(), { name, target: this.target, filter: this.currentFilter() });
        handle.close();
        await this.loadSegments();
        this.ctx.navigate(`#/${this.target}/s/${encodeURIComponent(created.id)}`);
        announce(`Segment ${created.name} saved with ${plural(created.count, this.noun[0], this.noun[1])}.`);
      } catch (error) {
        submit.disabled = false;
        if (error.status === 422 && error.details.some((d) => String(d.path).startsWith("filter"))) {
          handle.close();
          this.editor.showErrors(error.details);
          this.panelStatus.replaceChildren(errorBox(error));
          return;
        }
        status.replaceChildren(errorBox(error));
      }
    });
  }

  async saveChanges() {
    const segment = this.segment;
    this.panelStatus.replaceChildren(loadingEl("Saving changes…"));
    try {
      const saved = await api("PUT", endpoints.segment(segment.id), { filter: this.currentFilter() });
      await this.loadSegments();
      this.segment = this.segments.find((s) => s.id === saved.id) || saved;
      this.editor.setFilter(saved.filter);
      this.baseline = JSON.stringify(this.editor.build().filter);
      this.renderPanel();
      this.renderSegmentBar();
      this.refresh();
      this.showActivity();
      this.panelStatus.replaceChildren(h("p", { class: "ok" }, `Saved: ${saved.name} has ${plural(saved.count, this.noun[0], this.noun[1])}.`));
    } catch (error) {
      if (error.status === 422) this.editor.showErrors(error.details);
      this.panelStatus.replaceChildren(errorBox(error));
    }
  }

  deleteSegment() {
    const segment = this.segment;
    confirmDialog({
      title: "Delete segment",
      text: `Delete the segment “${segment.name}”? Messages and segments that use it must be changed first. This cannot be undone.`,
      confirmLabel: "Delete segment",
      onConfirm: async ({ status, close }) => {
        try {
          await api("DELETE", endpoints.segment(segment.id));
          close();
          await this.loadSegments();
          this.ctx.navigate(`#/${this.target}`);
          announce(`Segment ${segment.name} deleted.`);
        } catch (error) {
          status.replaceChildren(await this.conflictBox(error));
        }
      },
    });
  }

  /** A 409's reason, with the dependents it names as links (segments and messages by name). */
  async conflictBox(error) {
    const box = errorBox(error);
    const dependents = (error.details || []).filter((d) => d.segment_id || d.message_id);
    if (!dependents.length) return box;
    // Name each dependent message (a few at most); an id stays an id if it cannot be read.
    const messageIds = [...new Set(dependents.filter((d) => d.message_id).map((d) => d.message_id))].slice(0, 20);
    const found = await Promise.allSettled(messageIds.map((id) => api("GET", endpoints.message(id))));
    const messages = found.filter((r) => r.status === "fulfilled").map((r) => r.value);
    const items = dependents.map((d) => {
      if (d.segment_id) {
        const other = this.segments.find((s) => s.id === d.segment_id);
        return h("li", {}, "Segment ", h("a", { href: `#/${this.target}/s/${encodeURIComponent(d.segment_id)}` }, other ? other.name : d.segment_id), ` — ${d.message}`);
      }
      const message = messages.find((m) => m.id === d.message_id);
      return h("li", {}, "Message ", h("a", { href: `#/messages/${encodeURIComponent(d.message_id)}` }, message ? message.name : d.message_id), ` — ${d.message}`);
    });
    box.appendChild(h("p", {}, "Depends on it:"));
    box.appendChild(h("ul", { class: "dependents" }, items));
    return box;
  }

  /** Who the list shows, in words: a segment's members, a filter's matches, or everyone. */
  describeList() {
    const Many = this.noun[3];
    if (this.query().kind === "members") return `Members of the segment “${this.segment.name}”`;
    if (this.segment) return `${Many} matching the edited filter of “${this.segment.name}”`;
    return this.editor.build().filter ? `${Many} matching the current filter` : this.noun[4];
  }

  compose() {
    const query = this.query();
    const firstUser = this.page && this.page.data.length ? this.page.data[0].user_id : "";
    const audience =
      query.kind === "members"
        ? { segment_id: query.segmentId }
        : { filter: query.filter };
    openComposer(this.ctx, { audience, description: this.describeList(), previewUserId: firstUser });
  }

  /** After tags, an import or a job: the fields, segments, tags and the list as they now are. */
  reloadAll() {
    this.loadFields().catch(() => {});
    this.loadSegments().catch(() => {});
    this.loadTags().catch(() => {});
    this.refresh();
  }

  tagUsers() {
    const query = this.query();
    const filter = query.kind === "members" ? { field: "segment", op: "in_segment", value: query.segmentId } : query.filter;
    const counted = this.lastCount;
    const count = !counted ? "" : counted.exact ? String(counted.count) : `about ${counted.count}`;
    openTagDialog({
      selected: this.selection.selected(),
      matching: { filter, description: this.describeList(), count },
      tags: this.tags,
      onTagsChanged: (tags) => this.setTags(tags),
      onDone: (text) => {
        this.selection.clear();
        this.selection.note(text);
        this.reloadAll();
      },
    });
  }

  importCsv() {
    openImportDialog({ onImported: () => this.reloadAll() });
  }

  exportCsv() {
    const query = this.query();
    const source = query.kind === "members" ? { segmentId: query.segmentId } : { target: this.target, filter: query.filter };
    openExportDialog({ source, description: this.describeList() });
  }
}
