// The results of Users and Companies: how many match (POST /v1/<target>/count), the actions on the
// list (New message, Tag, Import CSV, Export CSV, Columns), and the list itself a page at a time
// (the API's cursors, paging.js's Pager). The page and the count are shown as each arrives; an
// answer to an older query is dropped.

import { api, can } from "./api.js";
import { announce, errorBox, formatTime, h, loadingEl, plural, timeEl, uid, withErrors } from "./dom.js";
import { emailStatusMarker } from "./email.js";
import { endpoints } from "./endpoints.js";
import { fieldLabel } from "./filters.js";
import { Pager } from "./paging.js";

const PAGE_SIZE = 25;
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

/** The filter that counts what a query lists: a segment's members are those "in" it. */
export function queryFilter(query) {
  return query.kind === "members" ? { field: "segment", op: "in_segment", value: query.segmentId } : query.filter;
}

export class PeopleTable {
  /**
   * `noun` [one, many, One, Many, All]; `fields` the view's Map of fields; `selection` the
   * UserSelection (or null); `onInvalid(error)` / `onValid()` when the API refuses the filter (a
   * 422, shown at its conditions) or takes it; `actions` {compose, importCsv, exportCsv}.
   */
  constructor({ target, noun, role, headingId, fields, selection, onInvalid, onValid, actions }) {
    this.target = target;
    this.noun = noun;
    this.role = role;
    this.fields = fields;
    this.selection = selection;
    this.onInvalid = onInvalid;
    this.onValid = onValid;
    this.actions = actions;
    this.customColumns = [];
    this.page = null;
    this.lastCount = null;
    this.query = null;
    this.token = 0;
    this.pageToken = 0;
    const [, many, , Many] = noun;
    this.countLine = h("p", { class: "match-count", role: "status", "aria-live": "polite" }, " ");
    this.resultActions = h("div", { class: "result-actions" });
    this.tableWrap = h("div", { class: "table-wrap", role: "region", "aria-label": `${Many} list`, tabindex: "0" });
    this.pager = new Pager({ label: `Pages of ${many}`, onMove: () => this.turnPage() });
    this.element = h(
      "section",
      { class: "results", "aria-labelledby": `${headingId}-results` },
      h("h2", { id: `${headingId}-results`, class: "visually-hidden" }, `Matching ${many}`),
      h("div", { class: "results-head" }, this.countLine, this.resultActions),
      this.tableWrap,
      this.pager.element,
    );
  }

  loading() {
    this.tableWrap.replaceChildren(loadingEl());
  }

  clear() {
    this.tableWrap.replaceChildren();
  }

  /** Busy from the first keystroke: the count and list follow once typing pauses. */
  set busy(on) {
    for (const el of [this.countLine, this.tableWrap]) {
      if (on) el.setAttribute("aria-busy", "true");
      else el.removeAttribute("aria-busy");
    }
  }

  /** Whether `query` is the one shown (an edit the API does not see, such as an empty value). */
  showing(query) {
    return JSON.stringify(query) === JSON.stringify(this.query);
  }

  /** The next show() starts afresh (first page, no selection), even for the same query. */
  restart() {
    this.query = null;
  }

  /**
   * Counts and lists `query` ({kind: "members", segmentId} or {kind: "search", filter}); a new
   * query starts at its first page and forgets the selection, the same one is read again in place.
   */
  async show(query) {
    if (!this.showing(query)) {
      this.pager.reset();
      this.selection?.clear();
    }
    this.query = query;
    const token = ++this.token;
    const pageToken = ++this.pageToken;
    this.busy = true;
    if (!this.page) this.tableWrap.replaceChildren(loadingEl());
    else this.tableWrap.classList.add("stale");
    const stale = () => token !== this.token;
    const pageStale = () => pageToken !== this.pageToken;
    const invalid = (error) => {
      this.onInvalid(error);
      this.countLine.replaceChildren(h("span", { class: "count-error" }, "Fix the filter marked below to see who matches."));
    };
    // An exact count of a large table can take longer than a page: each is shown as it arrives.
    const counted = api("POST", endpoints.count(this.target), { filter: queryFilter(query) }).then(
      (result) => {
        if (stale()) return;
        this.countLine.removeAttribute("aria-busy");
        this.onValid();
        this.renderCount(result);
      },
      (error) => {
        if (stale()) return;
        this.countLine.removeAttribute("aria-busy");
        if (error.status === 422) invalid(error);
        else this.countLine.replaceChildren(h("span", { class: "count-error" }, `Could not count: ${error.message}`));
      },
    );
    const listed = this.fetchPage().then(
      (page) => {
        if (pageStale()) return;
        this.onValid();
        this.page = page;
        this.renderTable();
      },
      (error) => {
        if (pageStale()) return;
        this.page = null;
        if (error.status === 422) invalid(error);
        this.tableWrap.replaceChildren(errorBox(error, error.status === 422 ? null : () => this.show(this.query)));
      },
    );
    await Promise.all([counted, listed.finally(() => pageStale() || this.settlePage())]);
  }

  fetchPage() {
    const cursor = this.pager.cursor;
    if (this.query.kind === "members") {
      return api("GET", endpoints.segmentMembers(this.query.segmentId, { limit: PAGE_SIZE, cursor }));
    }
    return api("POST", endpoints.search(this.target), { filter: this.query.filter, limit: PAGE_SIZE, cursor });
  }

  /** Previous or Next: the same query, the page the pager moved to. */
  async turnPage() {
    const token = ++this.pageToken;
    this.tableWrap.setAttribute("aria-busy", "true");
    this.tableWrap.classList.add("stale");
    const current = () => token === this.pageToken;
    await withErrors(
      (box) => current() && this.tableWrap.replaceChildren(box),
      async () => {
        const page = await this.fetchPage();
        if (!current()) return;
        this.page = page;
        this.renderTable();
        announce(`Page ${this.pager.number}`);
      },
      { retry: () => this.show(this.query) },
    );
    if (current()) this.settlePage();
  }

  settlePage() {
    this.tableWrap.removeAttribute("aria-busy");
    this.tableWrap.classList.remove("stale");
    this.pager.show(this.page);
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

  /** The first listed user, for the composer's preview ("" when none). */
  firstUserId() {
    return this.page && this.page.data.length ? this.page.data[0].user_id : "";
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
      h("table", { class: "data-table" }, h("caption", { class: "visually-hidden" }, `${this.noun[3]}, page ${this.pager.number}`), h("thead", {}, head), h("tbody", {}, body)),
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

  /** After the fields changed: custom columns that are gone are dropped, the picker drawn again. */
  fieldsChanged() {
    this.customColumns = this.customColumns.filter((key) => this.fields.has(`custom_attributes.${key}`));
    this.renderActions();
  }

  renderActions() {
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
    const users = this.target === "users";
    const admin = can.admin(this.role);
    const button = (className, label, onclick) => h("button", { type: "button", class: className, onclick }, label);
    const message = users && can.write(this.role) ? button("button", "New message", () => this.actions.compose()) : null;
    const importCsv = users && admin ? button("button secondary", "Import CSV", () => this.actions.importCsv()) : null;
    const exportCsv = admin ? button("button secondary", "Export CSV", () => this.actions.exportCsv()) : null;
    this.resultActions.replaceChildren(...[message, this.selection?.toolbar, importCsv, exportCsv, picker].filter(Boolean));
  }
}
