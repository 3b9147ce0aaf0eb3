// Every path of the public API the console calls (API.md), built in this one place: ids are
// URL-encoded here, queries built with URLSearchParams (a null or undefined value is left out).
// Paths are relative ("v1/..."): api() resolves them against the API's base.

const id = encodeURIComponent;

/** path + "?" + the query, its keys in the order given; nothing when every value is absent. */
function withQuery(path, query = {}) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== null && value !== undefined && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export const endpoints = {
  me: () => "v1/me",
  settings: () => "v1/settings",
  fields: (target) => withQuery("v1/fields", { target }),

  // users and companies (`target` is "users" or "companies")
  count: (target) => `v1/${target}/count`,
  search: (target) => `v1/${target}/search`,
  user: (userId) => `v1/users/${id(userId)}`,
  userMessages: (userId) => `v1/users/${id(userId)}/messages`,
  company: (companyId) => `v1/companies/${id(companyId)}`,
  segmentHistory: (target, memberId, query) => withQuery(`v1/${target}/${id(memberId)}/segment_history`, query),

  // segments
  segments: (query) => withQuery("v1/segments", query),
  segment: (segmentId) => `v1/segments/${id(segmentId)}`,
  segmentMembers: (segmentId, query) => withQuery(`v1/segments/${id(segmentId)}/members`, query),
  segmentStats: (segmentId, query) => withQuery(`v1/segments/${id(segmentId)}/stats`, query),
  segmentChanges: (segmentId, query) => withQuery(`v1/segments/${id(segmentId)}/changes`, query),
  segmentExports: (segmentId) => `v1/segments/${id(segmentId)}/exports`,

  // messages
  messages: (query) => withQuery("v1/messages", query),
  message: (messageId) => `v1/messages/${id(messageId)}`,
  /** POST send, live, pause or resume. */
  messageAction: (messageId, action) => `v1/messages/${id(messageId)}/${action}`,
  messageDeliveries: (messageId, query) => withQuery(`v1/messages/${id(messageId)}/deliveries`, query),
  messagePreview: () => "v1/messages/preview",

  // tags, imports, exports, jobs
  tags: () => "v1/tags",
  tagUsers: (tagId) => `v1/tags/${id(tagId)}/users`,
  imports: () => "v1/imports",
  exports: () => "v1/exports",
  job: (jobId) => `v1/jobs/${id(jobId)}`,

  // webhooks
  webhooks: (query) => withQuery("v1/webhooks", query),
  webhook: (webhookId) => `v1/webhooks/${id(webhookId)}`,
  webhookDeliveries: (webhookId, query) => withQuery(`v1/webhooks/${id(webhookId)}/deliveries`, query),
  webhookRotateSecret: (webhookId) => `v1/webhooks/${id(webhookId)}/rotate_secret`,
};
