// Modal dialogs on the native <dialog> element: focus moves in, Escape closes, focus returns.

import { h, uid } from "./dom.js";

/**
 * openDialog({title, content, className}) → {dialog, close, body}
 * `content` is a node or an array of nodes. The dialog is removed from the page when closed.
 */
export function openDialog({ title, content, className = "", onClose }) {
  const opener = document.activeElement;
  const titleId = uid("dialog-title");
  const dialog = h(
    "dialog",
    { class: `dialog ${className}`.trim(), "aria-labelledby": titleId },
    h("div", { class: "dialog-head" }, h("h2", { id: titleId }, title)),
    h("div", { class: "dialog-body" }, content),
  );
  const close = () => {
    if (dialog.open) dialog.close();
  };
  // The page behind a modal is inert already; saying so to assistive tech (and to tools that read
  // the accessibility tree) keeps "Save segment" or "Delete segment" pointing at the dialog's button.
  const hidden = [...document.body.children].filter(
    (el) => el !== dialog && el.id !== "announcer" && el.tagName !== "SCRIPT" && el.tagName !== "DIALOG" && !el.hasAttribute("aria-hidden"),
  );
  for (const el of hidden) {
    el.setAttribute("aria-hidden", "true");
    el.inert = true;
  }
  dialog.addEventListener("close", () => {
    for (const el of hidden) {
      el.removeAttribute("aria-hidden");
      el.inert = false;
    }
    dialog.remove();
    onClose?.();
    if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  const first = dialog.querySelector("[autofocus]") || dialog.querySelector("input, select, textarea, button");
  if (first) first.focus();
  return { dialog, close };
}

/** A yes/no confirmation; resolves with the dialog so the caller can show an error inside it. */
export function confirmDialog({ title, text, confirmLabel, danger = true, onConfirm }) {
  const status = h("div", { class: "dialog-status" });
  const confirmButton = h("button", { type: "submit", class: danger ? "button danger" : "button" }, confirmLabel);
  const form = h(
    "form",
    { class: "dialog-form" },
    h("p", {}, text),
    status,
    h(
      "div",
      { class: "dialog-actions" },
      h("button", { type: "button", class: "button secondary", onclick: () => handle.close() }, "Cancel"),
      confirmButton,
    ),
  );
  const handle = openDialog({ title, content: form });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    confirmButton.disabled = true;
    status.replaceChildren(h("p", { class: "loading", role: "status" }, "Working…"));
    try {
      await onConfirm({ status, close: handle.close });
    } finally {
      confirmButton.disabled = false;
    }
  });
  return handle;
}
