// Membership changes: a segment's activity (its size a day as a chart, its latest changes) and a
// user's or company's segment history (API.md, Changes and webhooks).

import { api } from "./api.js";
import { endpoints } from "./endpoints.js";
import { sizeChart, formatNumber } from "./chart.js";
import { h, loadingEl, timeEl, uid, withErrors } from "./dom.js";
import { pagedList } from "./paging.js";

export const CHART_DAYS = 30;
export const LATEST_CHANGES = 8;
const HISTORY_PAGE = 10;
const FEED_PAGE = 100; // the feed's largest page
const DAY_MS = 86_400_000;
const MAX_PROBES = 30;
const MAX_TAIL_PAGES = 20;

/** What made a change, in words (API.md's causes). */
export const CAUSES = {
  attributes: "Attributes changed",
  login: "Login",
  event: "Event",
  company: "Company changed",
  time: "Time passed",
  segment_created: "Segment created",
  segment_edited: "Segment edited",
  rebuild: "Nightly rebuild",
  deleted: "Deleted",
};

function changeBadge(change) {
  return h("span", { class: `change change-${change}` }, change === "entered" ? "Entered" : "Exited");
}

function memberHref(change) {
  return change.target === "companies" ? `#/companies/c/${encodeURIComponent(change.member_id)}` : `#/users/u/${encodeURIComponent(change.member_id)}`;
}

function segmentHref(target, segmentId) {
  return `#/${target}/s/${encodeURIComponent(segmentId)}`;
}

/** One change as a list item: `lead` (a member or a segment), the change, its cause, its time. */
function changeItem(change, lead) {
  return h(
    "li",
    { class: "change-item", "data-member-id": change.member_id, "data-segment-id": change.segment_id, "data-change": change.change, "data-cause": change.cause },
    h("div", { class: "change-line" }, changeBadge(change.change), " ", lead),
    h("div", { class: "change-meta" }, h("span", { class: "change-cause" }, CAUSES[change.cause] || change.cause), " · ", timeEl(change.at)),
  );
}

// ---- the latest changes of a segment ----------------------------------------------------------

/** The feed from `sinceMs`, one page (oldest first): a page shorter than FEED_PAGE is the end. */
function feedFrom(segmentId, sinceMs, cursor) {
  const since = cursor ? null : new Date(sinceMs).toISOString();
  return api("GET", endpoints.segmentChanges(segmentId, { limit: FEED_PAGE, cursor, since }));
}

/**
 * The newest `n` changes of a segment, newest first, read from its feed (which is oldest first)
 * without reading the whole window: the stats' entries and exits a day say from which day on
 * there are at least `n`; if that is more than a page, the start is bisected in time (one page
 * each probe) until a page from it holds between `n` and a page of changes. A large segment moved
 * by a rebuild costs about 20 small reads, not one per 100 changes.
 */
export async function latestChanges(segmentId, rows, n = LATEST_CHANGES) {
  let moved = 0;
  let start = 0;
  for (let index = rows.length - 1; index >= 0; index -= 1) {
    moved += rows[index].entered + rows[index].exited;
    start = index;
    if (moved >= n) break;
  }
  if (moved === 0) return [];
  const newest = (page) => page.slice(-n).reverse();
  let lo = Date.parse(`${rows[start].date}T00:00:00Z`); // at least n changes from here on
  let hi = Date.parse(`${rows.at(-1).date}T00:00:00Z`) + DAY_MS; // none after the end of the last day
  if (moved < FEED_PAGE) {
    const page = await feedFrom(segmentId, lo);
    if (page.data.length < FEED_PAGE) return newest(page.data);
  }
  for (let probe = 0; probe < MAX_PROBES && hi - lo > 1; probe += 1) {
    const middle = Math.floor((lo + hi) / 2);
    const page = await feedFrom(segmentId, middle);
    if (page.data.length >= FEED_PAGE) lo = middle;
    else if (page.data.length >= n) return newest(page.data);
    else hi = middle;
  }
  // Over a page of changes in the same millisecond (or the probes ran out): read on from `lo` to
  // the end, a page at a time, keeping the newest.
  let kept = [];
  let cursor = null;
  for (let pages = 0; pages < MAX_TAIL_PAGES; pages += 1) {
    const page = await feedFrom(segmentId, lo, cursor);
    kept = [...kept, ...page.data].slice(-n);
    if (page.data.length < FEED_PAGE) break;
    cursor = page.next_cursor;
  }
  return kept.reverse();
}

function latestList(changes) {
  return h(
    "ol",
    { class: "change-list", "aria-label": "Latest changes, newest first" },
    changes.map((change) => changeItem(change, h("a", { href: memberHref(change), class: "change-member" }, change.member_id))),
  );
}

/**
 * A segment's activity: its size a day over CHART_DAYS days as a chart (with entries and exits
 * a day) and its newest changes. → {element, dispose}.
 */
export function segmentActivity(segment) {
  const headingId = uid("activity");
  const chartSlot = h("div", { class: "chart-slot" }, loadingEl("Loading the last 30 days…"));
  const summary = h("p", { class: "activity-summary" });
  const latestSlot = h("div", {}, loadingEl());
  const element = h(
    "section",
    { class: "activity card", "aria-labelledby": headingId, "aria-busy": "true" },
    h("div", { class: "activity-chart" }, h("h2", { id: headingId }, `Members over the last ${CHART_DAYS} days`), summary, chartSlot),
    h("div", { class: "activity-latest" }, h("h3", {}, "Latest changes"), latestSlot),
  );
  let chart = null;
  let disposed = false;
  const load = async () => {
    element.setAttribute("aria-busy", "true");
    try {
      await show();
    } finally {
      element.removeAttribute("aria-busy");
    }
  };
  const show = async () => {
    let rows;
    const read = await withErrors(
      (box) => {
        if (disposed) return;
        chartSlot.replaceChildren(box);
        latestSlot.replaceChildren();
      },
      async () => {
        rows = (await api("GET", endpoints.segmentStats(segment.id, { days: CHART_DAYS }))).data;
      },
      { retry: load },
    );
    if (!read || disposed) return;
    const entered = rows.reduce((sum, row) => sum + row.entered, 0);
    const exited = rows.reduce((sum, row) => sum + row.exited, 0);
    summary.replaceChildren(
      h("strong", {}, `${formatNumber(rows.at(-1).count)} now`),
      ` · ${formatNumber(entered)} entered, ${formatNumber(exited)} exited in ${rows.length} days`,
    );
    chart?.dispose();
    chart = sizeChart(rows, { title: `Members of ${segment.name}, a day, ${rows[0].date} to ${rows.at(-1).date}` });
    chartSlot.replaceChildren(chart.element);
    latestSlot.replaceChildren(loadingEl());
    await withErrors(
      (box) => disposed || latestSlot.replaceChildren(box),
      async () => {
        const latest = await latestChanges(segment.id, rows);
        if (disposed) return;
        latestSlot.replaceChildren(
          latest.length ? latestList(latest) : h("p", { class: "muted" }, `Nobody entered or left in the last ${CHART_DAYS} days.`),
        );
      },
    );
  };
  load();
  return {
    element,
    dispose() {
      disposed = true;
      chart?.dispose();
    },
  };
}

// ---- a member's history -----------------------------------------------------------------------

/**
 * A user's or company's segment history, newest first, a page of HISTORY_PAGE at a time, each
 * change with its segment's name (its id when the segment is gone).
 */
export function segmentHistory(target, memberId) {
  const names = api("GET", endpoints.segments({ target })).then(
    (answer) => new Map(answer.data.map((segment) => [segment.id, segment.name])),
    () => new Map(),
  );
  const list = pagedList({
    label: "Segment history",
    fetchPage: async (cursor) => {
      const path = endpoints.segmentHistory(target, memberId, { limit: HISTORY_PAGE, cursor });
      const [page, known] = await Promise.all([api("GET", path), names]);
      return { ...page, data: page.data.map((change) => ({ ...change, segmentName: known.get(change.segment_id) })) };
    },
    render: (changes) => {
      if (!changes.length) return h("p", { class: "muted" }, "No segment entered or left in the last 90 days.");
      return h(
        "ol",
        { class: "change-list" },
        changes.map((change) =>
          changeItem(
            change,
            change.segmentName
              ? h("a", { href: segmentHref(target, change.segment_id), class: "change-segment" }, change.segmentName)
              : h("span", { class: "change-segment", title: "This segment no longer exists" }, change.segment_id),
          ),
        ),
      );
    },
  });
  return list.element;
}
