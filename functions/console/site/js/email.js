// What SES told the service about email: a user's `email_status` and a delivery's `feedback`
// (API.md, "Email that arrives"). Shared by the people list, a user's page and a message's page.

import { h } from "./dom.js";

// What each status means for the user's email, shown next to it.
export const EMAIL_STATUS_NOTES = {
  bounced: "The address bounced for good: emails are skipped until the app sets a new email.",
  complained: "The user complained about an email (marked it as spam): unsubscribed, so emails are skipped.",
};

// Counters of the message's `stats` that SES's events move, in the order shown.
export const FEEDBACK_STATS = ["delivered", "bounced", "complained"];

/** The user's `email_status` (`ok` when the API leaves it out). */
export function emailStatusOf(user) {
  return (user && user.email_status) || "ok";
}

/** A badge for a status or feedback kind: "ok", "delivered", "bounced", "complained". */
export function emailBadge(kind, title) {
  return h("span", { class: `state state-${kind}`, title: title || null }, kind);
}

/** A user's status with what it means (bounced, complained), for the user's page. */
export function emailStatusFact(user) {
  const status = emailStatusOf(user);
  const note = EMAIL_STATUS_NOTES[status];
  return h(
    "span",
    { class: "email-status" },
    emailBadge(status),
    note ? h("span", { class: "email-status-note" }, note) : null,
  );
}

/** The marker after a user's email in a list: nothing while SES has no complaint about it. */
export function emailStatusMarker(user) {
  const status = emailStatusOf(user);
  if (status === "ok") return null;
  return [" ", emailBadge(status, EMAIL_STATUS_NOTES[status])];
}

/** A delivery's `feedback` cell: what SES reported about that email, or nothing yet. */
export function feedbackCell(feedback) {
  return feedback ? emailBadge(feedback) : h("span", { class: "muted" }, "—");
}
