// Users and Companies: the segment bar along the top (segment-bar.js), the filter panel on the
// left (filter-panel.js), the count and the list on the right (people-table.js), and the segment
// dialogs (segment-dialogs.js). The view wires them: it loads the fields, segments and tags, knows
// the selected segment, and turns the filter into what the list shows.

import { api, can } from "./api.js";
import { openExportDialog, openImportDialog } from "./csv.js";
import { segmentActivity } from "./changes.js";
import { announce, debounce, errorBox, h, uid, withErrors } from "./dom.js";
import { endpoints } from "./endpoints.js";
import { FilterPanel } from "./filter-panel.js";
import { openComposer } from "./composer.js";
import { PeopleTable, queryFilter } from "./people-table.js";
import { openDeleteSegmentDialog, openSaveSegmentDialog, saveSegmentChanges } from "./segment-dialogs.js";
import { SegmentBar } from "./segment-bar.js";
import { UserSelection, listTags, openTagDialog } from "./tags.js";

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
    this.loaded = false;
    this.mounts = 0;
    this.scheduleRefresh = debounce(() => this.refresh(false), COUNT_DEBOUNCE_MS);
    this.build();
  }

  build() {
    const [, many, , Many, all] = this.noun;
    const headingId = uid("heading");
    const role = this.ctx.role;
    this.bar = new SegmentBar({ target: this.target, label: `${Many} segments`, allLabel: all, navigate: this.ctx.navigate });
    this.panel = new FilterPanel({
      headingId,
      many,
      role,
      fields: this.fields,
      onChange: () => this.filterChanged(),
      actions: {
        save: () => this.saveSegment(),
        saveChanges: () => this.saveChanges(),
        remove: () => this.deleteSegment(),
        discard: () => this.selectSegment(this.segment.id, false),
      },
    });
    this.editor = this.panel.editor;
    // Tagging from the list: the rows get checkboxes for those who may tag.
    this.selection = this.target === "users" && can.write(role) ? new UserSelection({ onTag: () => this.tagUsers() }) : null;
    this.table = new PeopleTable({
      target: this.target,
      noun: this.noun,
      role,
      headingId,
      fields: this.fields,
      selection: this.selection,
      onInvalid: (error) => this.editor.showErrors(error.details),
      onValid: () => this.editor.clearErrors(),
      actions: { compose: () => this.compose(), importCsv: () => this.importCsv(), exportCsv: () => this.exportCsv() },
    });
    this.topError = h("div", { class: "top-error" });
    this.activitySlot = h("div", { class: "activity-slot" });
    this.element = h(
      "div",
      { class: "people-view" },
      h("h1", { id: headingId, tabindex: "-1" }, Many),
      this.topError,
      this.bar.element,
      this.activitySlot,
      h("div", { class: "people-layout" }, this.panel.element, this.table.element),
    );
  }

  /** Shows the view for `segmentId` (null: everyone). */
  async mount(main, segmentId) {
    main.replaceChildren(this.element);
    if (!this.loaded) {
      // Only the latest mount selects once loaded: an earlier one finishing late would reset the
      // filter begun since.
      const mount = (this.mounts += 1);
      const latest = () => mount === this.mounts;
      this.bar.loading();
      this.table.loading();
      // Until the fields and segments are known the filters cannot be edited: a condition begun
      // now would be reset when the view selects its segment below.
      this.element.setAttribute("aria-busy", "true");
      this.panel.editable = false;
      const failed = (box) => {
        if (!latest()) return;
        this.bar.clear();
        this.topError.replaceChildren(box);
        this.table.clear();
      };
      const loaded = await withErrors(failed, () => Promise.all([this.loadFields(), this.loadSegments(), this.loadTags()]), {
        retry: () => this.mount(main, segmentId),
      });
      if (loaded) this.loaded = true;
      if (!latest()) return;
      this.element.removeAttribute("aria-busy");
      this.panel.editable = true;
      if (!loaded) return;
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
    this.table.fieldsChanged();
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
    this.bar.render(this.segments, this.segment ? this.segment.id : null);
  }

  renderPanel() {
    this.panel.render(this.segment, this.modified());
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
    this.baseline = JSON.stringify(this.panel.filter());
    this.panel.status.replaceChildren();
    this.renderSegmentBar();
    this.renderPanel();
    this.showActivity();
    this.table.restart();
    this.refresh();
    if (!fromRoute) announce(segment ? `Segment ${segment.name}` : this.noun[4]);
  }

  modified() {
    return JSON.stringify(this.panel.filter()) !== this.baseline;
  }

  filterChanged() {
    // Busy from the first keystroke: the count and list follow once typing pauses.
    this.table.busy = true;
    this.renderPanel();
    this.scheduleRefresh();
  }

  /** What the list shows now: a stored segment's members, or a search by the current filter. */
  query() {
    if (this.segment && !this.modified()) return { kind: "members", segmentId: this.segment.id };
    return { kind: "search", filter: this.panel.filter() || EVERYONE[this.target] };
  }

  /** Counts and lists the current query; `force` false skips an edit that changes nothing the API sees. */
  refresh(force = true) {
    this.scheduleRefresh.cancel();
    const query = this.query();
    if (!force && this.table.showing(query)) {
      this.table.busy = false;
      return Promise.resolve();
    }
    return this.table.show(query);
  }

  currentFilter() {
    return this.panel.filter() || EVERYONE[this.target];
  }

  saveSegment() {
    openSaveSegmentDialog({
      target: this.target,
      noun: this.noun,
      filter: () => this.currentFilter(),
      // A filter the API refuses is shown at its conditions, in the panel.
      refusedFilter: (box, error) => {
        this.editor.showErrors(error.details);
        this.panel.status.replaceChildren(box);
      },
      saved: async (created) => {
        await this.loadSegments();
        this.ctx.navigate(`#/${this.target}/s/${encodeURIComponent(created.id)}`);
      },
    });
  }

  saveChanges() {
    return saveSegmentChanges({
      segment: this.segment,
      filter: this.currentFilter(),
      noun: this.noun,
      status: this.panel.status,
      refusedFilter: (details) => this.editor.showErrors(details),
      saved: async (saved) => {
        await this.loadSegments();
        this.segment = this.segments.find((s) => s.id === saved.id) || saved;
        this.editor.setFilter(saved.filter);
        this.baseline = JSON.stringify(this.panel.filter());
        this.renderPanel();
        this.renderSegmentBar();
        this.refresh();
        this.showActivity();
      },
    });
  }

  deleteSegment() {
    openDeleteSegmentDialog({
      segment: this.segment,
      target: this.target,
      segments: () => this.segments,
      deleted: async () => {
        await this.loadSegments();
        this.ctx.navigate(`#/${this.target}`);
      },
    });
  }

  /** Who the list shows, in words: a segment's members, a filter's matches, or everyone. */
  describeList() {
    const Many = this.noun[3];
    if (this.query().kind === "members") return `Members of the segment “${this.segment.name}”`;
    if (this.segment) return `${Many} matching the edited filter of “${this.segment.name}”`;
    return this.panel.filter() ? `${Many} matching the current filter` : this.noun[4];
  }

  compose() {
    const query = this.query();
    const audience = query.kind === "members" ? { segment_id: query.segmentId } : { filter: query.filter };
    openComposer(this.ctx, { audience, description: this.describeList(), previewUserId: this.table.firstUserId() });
  }

  /** After tags, an import or a job: the fields, segments, tags and the list as they now are. */
  reloadAll() {
    this.loadFields().catch(() => {});
    this.loadSegments().catch(() => {});
    this.loadTags().catch(() => {});
    this.refresh();
  }

  tagUsers() {
    const filter = queryFilter(this.query());
    const counted = this.table.lastCount;
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
