// Tiny DOM helpers. Text always goes in as text nodes: nothing from the API is parsed as HTML.

let idCounter = 0;

/** A fresh id for label/control pairs. */
export function uid(prefix = "c") {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/**
 * h("button", {class: "x", onclick: fn, "aria-label": "Close"}, "text", childNode)
 * Attribute values of false/null/undefined are left out; true sets an empty attribute.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "value") {
      el.value = value;
    } else if (name === "checked" || name === "selected" || name === "disabled") {
      el[name] = Boolean(value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Formats an ISO timestamp as "2026-11-28 10:00 UTC" (without " UTC" when zone is false). */
export function formatTime(value, zone = true) {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().slice(0, 16).replace("T", " ") + (zone ? " UTC" : "");
}

/** Like formatTime, without the time of day. */
export function formatDate(value) {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().slice(0, 10);
}

/** A <time> element for an ISO timestamp. */
export function timeEl(value, withTime = true, zone = true) {
  if (!value) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: value, title: value }, withTime ? formatTime(value, zone) : formatDate(value));
}

export function plural(count, one, many) {
  return `${count} ${count === 1 ? one : many}`;
}

/** Screen-reader announcement through the page's polite live region. */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = text;
  }, 30);
}

/** Calls fn after `wait` ms of quiet. */
export function debounce(fn, wait) {
  let timer = null;
  const debounced = (...args) => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => fn(...args), wait);
  };
  debounced.cancel = () => window.clearTimeout(timer);
  return debounced;
}

/** An error box with the API's message and an optional Retry button. */
export function errorBox(error, retry) {
  const box = h("div", { class: "error-box", role: "alert" }, h("p", {}, messageOf(error)));
  if (retry) box.appendChild(h("button", { type: "button", class: "button secondary", onclick: retry }, "Retry"));
  return box;
}

/**
 * The one way a view shows a failure: runs `work()` and resolves true; if it throws, the API's
 * message goes where the caller says and it resolves false. `where` is a node (its content is
 * replaced by an errorBox, with Retry when `retry` is given) or a function given that box and the
 * error, to place it itself (beside a heading, at a form's fields, not after the view is gone).
 * An aborted call (a dialog closed while its job was followed) shows nothing.
 */
export async function withErrors(where, work, { retry } = {}) {
  try {
    await work();
    return true;
  } catch (error) {
    if (error && error.name === "AbortError") return false;
    const box = errorBox(error, retry);
    if (typeof where === "function") where(box, error);
    else where.replaceChildren(box);
    return false;
  }
}

export function messageOf(error) {
  return (error && error.message) || "Something went wrong.";
}

export function loadingEl(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}
