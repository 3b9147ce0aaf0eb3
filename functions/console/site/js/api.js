// The public API, called from the same origin with the key the teammate signed in with.
// The key lives in sessionStorage only: never localStorage, a cookie or a URL.

import { endpoints } from "./endpoints.js";

const KEY_NAME = "segmentation-console.api-key";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = Array.isArray(details) ? details : [];
  }
}

export const session = {
  get key() {
    return window.sessionStorage.getItem(KEY_NAME);
  },
  save(key) {
    window.sessionStorage.setItem(KEY_NAME, key);
  },
  clear() {
    window.sessionStorage.removeItem(KEY_NAME);
  },
};

/** The API's base URL: the console lives at <base>/console/, so the API is one level up. */
export function apiBase() {
  return new URL("../", document.baseURI);
}

/**
 * api("GET", endpoints.segments({ target: "users" })) → parsed JSON (null for 204).
 * A Blob body (a CSV to import) is sent as it is, with its own type; any other body as JSON.
 * Throws ApiError with the API's own code, message and details.
 */
export async function api(method, path, body, { key, signal } = {}) {
  const apiKey = key ?? session.key;
  const headers = { Accept: "application/json" };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  const raw = body instanceof Blob;
  if (body !== undefined && body !== null) headers["Content-Type"] = raw ? body.type : "application/json";
  let response;
  try {
    response = await fetch(new URL(path, apiBase()), {
      method,
      headers,
      body: body === undefined || body === null ? undefined : raw ? body : JSON.stringify(body),
      signal,
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(0, "network_error", "The API cannot be reached. Check that the stack is running, then retry.");
  }
  if (response.status === 204) return null;
  let payload = null;
  const text = await response.text();
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const error = (payload && payload.error) || {};
    throw new ApiError(
      response.status,
      error.code || `http_${response.status}`,
      error.message || `The API answered ${response.status}.`,
      error.details,
    );
  }
  return payload;
}

/**
 * The key's role, from GET /v1/me (any key: {key_id, role, name}); one call. A 401 is a wrong key
 * (the API's message is shown); an ingest key is refused here: the console reads and writes
 * segments, which ingest keys may not.
 */
export async function detectRole(key) {
  const me = await api("GET", endpoints.me(), null, { key });
  if (!["read", "write", "admin"].includes(me.role)) {
    throw new ApiError(
      403,
      "forbidden",
      `This key has the role '${me.role}'. The console needs a read, write or admin key.`,
    );
  }
  return me.role;
}

export const can = {
  write: (role) => role === "write" || role === "admin",
  admin: (role) => role === "admin",
};
