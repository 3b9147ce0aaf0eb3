// The console's shell: sign-in, the role, navigation and the hash routes.
//   #/users, #/users/s/<segment>, #/users/u/<user>       (and the same for companies, with c/<company>)
//   #/messages, #/messages/<message>, #/settings
//   #/webhooks, #/webhooks/<webhook>                      (admin)

import { ApiError, detectRole, session } from "./api.js";
import { renderCompany, renderUser } from "./detail.js";
import { errorBox, h, loadingEl, uid, withErrors } from "./dom.js";
import { renderMessage } from "./message-page.js";
import { renderMessages } from "./messages.js";
import { forgetViews, peopleView } from "./people.js";
import { renderSettings } from "./settings.js";
import { renderWebhook, renderWebhooks } from "./webhooks.js";

const ROLE_TEXT = {
  admin: "admin: every action",
  write: "write: segments and messages",
  read: "read only",
};

const ctx = {
  role: null,
  lastList: {},
  navigate(hash) {
    if (window.location.hash === hash) route();
    else window.location.hash = hash;
  },
};

const main = document.getElementById("main");
const topbar = document.getElementById("topbar");

function signInView(message) {
  const keyId = uid("key");
  const status = h("div", { class: "signin-status" });
  const input = h("input", {
    id: keyId,
    type: "password",
    name: "api-key",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": `${keyId}-hint`,
  });
  const button = h("button", { type: "submit", class: "button" }, "Sign in");
  const form = h(
    "form",
    { class: "signin card", "aria-labelledby": `${keyId}-title` },
    h("h1", { id: `${keyId}-title`, tabindex: "-1" }, "Sign in to the console"),
    h("div", { class: "control" }, h("label", { for: keyId }, "API key"), input),
    h(
      "p",
      { class: "hint", id: `${keyId}-hint` },
      "A read, write or admin key. It is kept in this tab only (sessionStorage) and forgotten when you sign out or close the tab.",
    ),
    status,
    button,
  );
  if (message) status.replaceChildren(errorBox({ message }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      status.replaceChildren(errorBox({ message: "Enter an API key." }));
      input.focus();
      return;
    }
    button.disabled = true;
    input.setAttribute("aria-busy", "true");
    status.replaceChildren(loadingEl("Checking the key…"));
    const signedIn = await withErrors(status, async () => {
      const role = await detectRole(key);
      session.save(key);
      input.value = "";
      start(role);
    });
    if (!signedIn) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
    button.disabled = false;
    input.removeAttribute("aria-busy");
  });
  topbar.hidden = true;
  document.title = "Sign in · Segmentation console";
  main.replaceChildren(h("div", { class: "signin-wrap" }, form));
  input.focus();
}

function start(role) {
  ctx.role = role;
  forgetViews();
  topbar.hidden = false;
  document.getElementById("role-badge").textContent = `Role: ${ROLE_TEXT[role] || role}`;
  for (const item of topbar.querySelectorAll("[data-role=admin]")) item.hidden = role !== "admin";
  if (!window.location.hash || window.location.hash === "#" || window.location.hash === "#/") {
    window.location.replace("#/users"); // its hashchange routes: routing here too would load the list twice
    return;
  }
  route();
}

function signOut(message) {
  session.clear();
  ctx.role = null;
  ctx.lastList = {};
  forgetViews();
  if (window.location.hash) history.replaceState(null, "", window.location.pathname + window.location.search);
  signInView(message);
}

function setNav(section) {
  for (const link of topbar.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

let lastSection = null;

async function route() {
  if (!ctx.role) return;
  const parts = window.location.hash.replace(/^#\/?/, "").split("/").map((part) => decodeURIComponent(part));
  const [section, kind, id] = parts;
  const titles = { users: "Users", companies: "Companies", messages: "Messages", settings: "Settings", webhooks: "Webhooks" };
  const known = titles[section] ? section : "users";
  setNav(known);
  document.title = `${titles[known]} · Segmentation console`;
  const sectionChanged = lastSection !== known;
  lastSection = known;
  let signedOut = false;
  const shown = async () => {
    if (known === "settings") {
      await renderSettings(ctx, main);
    } else if (known === "webhooks") {
      if (kind) await renderWebhook(ctx, main, kind);
      else await renderWebhooks(ctx, main);
    } else if (known === "messages") {
      if (kind) await renderMessage(ctx, main, kind);
      else await renderMessages(ctx, main);
    } else if ((kind === "u" || kind === "c") && id) {
      if (known === "users") await renderUser(ctx, main, id);
      else await renderCompany(ctx, main, id);
    } else {
      ctx.lastList[known] = window.location.hash || `#/${known}`;
      await peopleView(ctx, known).mount(main, kind === "s" ? id || null : null);
    }
  };
  const failed = (box, error) => {
    if (error instanceof ApiError && error.status === 401) {
      signedOut = true;
      signOut(`${error.message} Sign in again.`);
    } else {
      main.replaceChildren(box);
    }
  };
  await withErrors(failed, shown, { retry: route });
  if (signedOut) return;
  const heading = main.querySelector("h1");
  if (heading && (sectionChanged || (kind && kind !== "s"))) heading.focus({ preventScroll: false });
}

window.addEventListener("hashchange", route);
document.getElementById("sign-out").addEventListener("click", () => signOut());
// A key that stops working (revoked) sends the teammate back to sign-in with the API's message.
window.addEventListener("unhandledrejection", (event) => {
  if (event.reason instanceof ApiError && event.reason.status === 401 && ctx.role) {
    event.preventDefault();
    signOut(`${event.reason.message} Sign in again.`);
  }
});

async function boot() {
  const key = session.key;
  if (!key) {
    signInView();
    return;
  }
  main.replaceChildren(loadingEl("Checking the key…"));
  try {
    start(await detectRole(key));
  } catch (error) {
    session.clear();
    signInView(error.message);
  }
}

boot();
