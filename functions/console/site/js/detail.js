// One user (attributes, companies, segments, in-app messages) and one company (attributes,
// segments, users).

import { api } from "./api.js";
import { endpoints } from "./endpoints.js";
import { segmentHistory } from "./changes.js";
import { h, loadingEl, timeEl, withErrors } from "./dom.js";
import { emailStatusFact } from "./email.js";

const COMPANY_LIMIT = 20;

function value(v) {
  if (v instanceof Node) return v;
  if (v === null || v === undefined || v === "") return h("span", { class: "muted" }, "—");
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "string" && /^\d{4}-\d{2}-\d{2}T/.test(v)) return timeEl(v);
  return String(v);
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([label, v]) => [h("dt", {}, label), h("dd", {}, value(v))]));
}

function segmentList(ids, segments, target) {
  if (!ids.length) return h("p", { class: "muted" }, "In no segment now.");
  return h(
    "ul",
    { class: "tag-list" },
    ids.map((id) => {
      const segment = segments.find((s) => s.id === id);
      return h("li", {}, h("a", { href: `#/${target}/s/${encodeURIComponent(id)}` }, segment ? segment.name : id));
    }),
  );
}

function section(title, ...content) {
  return h("section", { class: "card" }, h("h2", {}, title), ...content);
}

/** A detail view's container, shown loading in `main`, and the member at `path`: null once the
 * container shows why not (its heading, the error, Retry). */
async function openDetail(ctx, main, target, memberId, path, retry) {
  const container = h("div", { class: "detail-view" }, loadingEl());
  main.replaceChildren(container);
  let member = null;
  const loaded = await withErrors(
    (box) => container.replaceChildren(back(ctx, target), h("h1", { tabindex: "-1" }, memberId), box),
    async () => {
      member = await api("GET", path);
    },
    { retry },
  );
  return { container, member: loaded ? member : null };
}

export async function renderUser(ctx, main, userId) {
  const { container, member: user } = await openDetail(ctx, main, "users", userId, endpoints.user(userId), () =>
    renderUser(ctx, main, userId),
  );
  if (!user) return;
  const companiesSlot = h("div", {}, loadingEl());
  const messagesSlot = h("div", {}, loadingEl());
  const segmentsSlot = h("div", {}, loadingEl());
  const custom = Object.entries(user.custom_attributes || {}).sort(([a], [b]) => a.localeCompare(b));
  container.replaceChildren(
    back(ctx, "users"),
    h("h1", { tabindex: "-1" }, user.name || user.user_id),
    h("div", { class: "detail-grid" },
      section(
        "Attributes",
        facts([
          ["User ID", user.user_id],
          ["Email", user.email],
          ["Email status", emailStatusFact(user)],
          ["Phone", user.phone],
          ["Signed up", user.signed_up_at],
          ["Last seen", user.last_seen_at],
          ["Sessions", user.session_count],
          ["Unsubscribed from emails", user.unsubscribed_from_emails],
          ["Created", user.created_at],
          ["Updated", user.updated_at],
        ]),
        h("h3", {}, "Custom attributes"),
        custom.length ? facts(custom) : h("p", { class: "muted" }, "None."),
      ),
      h("div", { class: "stack" },
        section("Segments", segmentsSlot),
        section("Segment history", segmentHistory("users", user.user_id)),
        section("Companies", companiesSlot),
        section("In-app messages", messagesSlot),
      ),
    ),
  );
  api("GET", endpoints.segments({ target: "users" }))
    .then((answer) => segmentsSlot.replaceChildren(segmentList(user.segments || [], answer.data, "users")))
    .catch(() => segmentsSlot.replaceChildren(segmentList(user.segments || [], [], "users")));
  const companyIds = user.company_ids || [];
  if (!companyIds.length) {
    companiesSlot.replaceChildren(h("p", { class: "muted" }, "No company."));
  } else {
    const shown = companyIds.slice(0, COMPANY_LIMIT);
    Promise.allSettled(shown.map((id) => api("GET", endpoints.company(id)))).then((results) => {
      companiesSlot.replaceChildren(
        h(
          "ul",
          { class: "plain-list" },
          results.map((result, index) => {
            const id = shown[index];
            const company = result.status === "fulfilled" ? result.value : null;
            return h(
              "li",
              {},
              h("a", { href: `#/companies/c/${encodeURIComponent(id)}` }, company && company.name ? company.name : id),
              company ? h("span", { class: "sub" }, [company.plan, company.industry].filter(Boolean).join(" · ")) : null,
            );
          }),
        ),
        ...(companyIds.length > shown.length ? [h("p", { class: "muted" }, `and ${companyIds.length - shown.length} more`)] : []),
      );
    });
  }
  withErrors(messagesSlot, async () => {
    const answer = await api("GET", endpoints.userMessages(userId));
    if (!answer.data.length) {
      messagesSlot.replaceChildren(h("p", { class: "muted" }, "No in-app message received."));
      return;
    }
    messagesSlot.replaceChildren(
      h(
        "ul",
        { class: "inbox" },
        answer.data.map((message) =>
          h(
            "li",
            {},
            h("p", { class: "inbox-subject" }, message.subject || "(no subject)", " ", h("a", { href: `#/messages/${encodeURIComponent(message.message_id)}`, class: "sub" }, "message")),
            h("p", { class: "inbox-body" }, message.body),
            h("p", { class: "sub" }, "Delivered ", timeEl(message.delivered_at)),
          ),
        ),
      ),
    );
  });
}

export async function renderCompany(ctx, main, companyId) {
  const { container, member: company } = await openDetail(
    ctx, main, "companies", companyId, endpoints.company(companyId), () => renderCompany(ctx, main, companyId),
  );
  if (!company) return;
  const segmentsSlot = h("div", {}, loadingEl());
  const usersSlot = h("div", {}, loadingEl());
  const custom = Object.entries(company.custom_attributes || {}).sort(([a], [b]) => a.localeCompare(b));
  container.replaceChildren(
    back(ctx, "companies"),
    h("h1", { tabindex: "-1" }, company.name || company.company_id),
    h("div", { class: "detail-grid" },
      section(
        "Attributes",
        facts([
          ["Company ID", company.company_id],
          ["Plan", company.plan],
          ["Monthly spend", company.monthly_spend],
          ["Size", company.size],
          ["Industry", company.industry],
          ["Website", company.website],
          ["Created (remote)", company.remote_created_at],
          ["Users", company.user_count],
          ["Created", company.created_at],
          ["Updated", company.updated_at],
        ]),
        h("h3", {}, "Custom attributes"),
        custom.length ? facts(custom) : h("p", { class: "muted" }, "None."),
      ),
      h("div", { class: "stack" },
        section("Segments", segmentsSlot),
        section("Segment history", segmentHistory("companies", company.company_id)),
        section("Users", usersSlot),
      ),
    ),
  );
  api("GET", endpoints.segments({ target: "companies" }))
    .then((answer) => segmentsSlot.replaceChildren(segmentList(company.segments || [], answer.data, "companies")))
    .catch(() => segmentsSlot.replaceChildren(segmentList(company.segments || [], [], "companies")));
  withErrors(usersSlot, async () => {
    const page = await api("POST", endpoints.search("users"), { filter: { field: "company.company_id", op: "eq", value: company.company_id }, limit: 25 });
    if (!page.data.length) {
      usersSlot.replaceChildren(h("p", { class: "muted" }, "No users."));
      return;
    }
    usersSlot.replaceChildren(
      h(
        "ul",
        { class: "plain-list" },
        page.data.map((user) => h("li", {}, h("a", { href: `#/users/u/${encodeURIComponent(user.user_id)}` }, user.name || user.user_id), h("span", { class: "sub" }, user.email || ""))),
      ),
      ...(page.next_cursor ? [h("p", { class: "muted" }, "Showing the first 25; filter the Users list by this company for all.")] : []),
    );
  });
}

function back(ctx, target) {
  const href = (ctx.lastList && ctx.lastList[target]) || `#/${target}`;
  return h("p", { class: "back" }, h("a", { href }, "Back to the list"));
}
