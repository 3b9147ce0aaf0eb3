// CSV in and out (admin): the "Import CSV" dialog (POST /v1/imports, the job's progress and its
// rejected rows) and "Export CSV" (a segment's or a filter's export job, then its download link).

import { api } from "./api.js";
import { endpoints } from "./endpoints.js";
import { openDialog } from "./dialogs.js";
import { announce, errorBox, formatTime, h, loadingEl, plural, uid, withErrors } from "./dom.js";
import { followJob, jobFailure, jobProgress } from "./jobs.js";

// A CSV up to this size is the request's body; a larger one goes through the presigned upload.
export const MAX_BODY_BYTES = 5 * 1024 * 1024;
const COLUMNS_HINT =
  "The first row names the columns: user_id (required), email, name, phone, signed_up_at, " +
  "unsubscribed_from_emails, company_ids and tags (each separated by ;), and any other column a " +
  "custom attribute. Each row adds or updates one user; an empty cell leaves a value as it was.";

/**
 * Sends the file: its body (up to 5 MB), or JSON {filename} then a PUT of the file to the
 * presigned URL. That URL is S3's own in AWS, another origin the console's CSP (connect-src
 * 'self') and the bucket (no CORS rule) do not let a page PUT to: then the job is returned with
 * the URL, for curl. Locally the stack serves the URL on its own origin and the console PUTs.
 * → {job_id, upload_url?}: upload_url is set when the file still has to be sent.
 */
async function sendFile(file, onStep) {
  if (file.size <= MAX_BODY_BYTES) {
    onStep("Sending the file…");
    return api("POST", endpoints.imports(), new Blob([file], { type: "text/csv" }));
  }
  const started = await api("POST", endpoints.imports(), { filename: file.name });
  const url = new URL(started.upload_url, window.location.href);
  if (url.origin !== window.location.origin) return started;
  onStep(`Uploading ${file.name} (${Math.round(file.size / 1024 / 1024)} MB)…`);
  let answer;
  try {
    // No Authorization header: the URL carries its own signature.
    answer = await fetch(url, { method: "PUT", body: file, credentials: "omit", cache: "no-store" });
  } catch {
    throw new Error("The upload did not reach the stack. Check that it is running, then retry.");
  }
  if (!answer.ok) {
    const text = await answer.text();
    const message = /<Message>([^<]*)<\/Message>/.exec(text);
    throw new Error(`The upload was refused (${answer.status}): ${message ? message[1] : "no reason given"}.`);
  }
  return { job_id: started.job_id };
}

function rejectedTable(job) {
  const errors = job.errors || [];
  const rejected = job.result ? job.result.rejected : errors.length;
  if (!errors.length) return null;
  const captionId = uid("rejected");
  return h(
    "section",
    { class: "rejected", "aria-labelledby": captionId },
    h("h3", { id: captionId }, `Rejected rows (${rejected})`),
    rejected > errors.length ? h("p", { class: "muted" }, `The first ${errors.length} are listed.`) : null,
    h(
      "div",
      { class: "table-wrap", role: "region", "aria-label": "Rejected rows list", tabindex: "0" },
      h(
        "table",
        { class: "data-table" },
        h("caption", { class: "visually-hidden" }, "Rejected rows with their line in the file and the reason"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col", class: "num" }, "Line"), h("th", { scope: "col" }, "Reason"))),
        h(
          "tbody",
          {},
          errors.map((error) => h("tr", {}, h("td", { class: "num" }, String(error.line)), h("td", {}, error.reason))),
        ),
      ),
    ),
  );
}

/** The "Import CSV" dialog; `onImported()` once a job ends (the list then reloads). */
export function openImportDialog({ onImported }) {
  const fileId = uid("file");
  const input = h("input", {
    id: fileId,
    type: "file",
    accept: ".csv,text/csv",
    required: true,
    "aria-describedby": `${fileId}-hint`,
  });
  const status = h("div", { class: "dialog-status" });
  const progressSlot = h("div", { class: "progress-slot" });
  const rejectedSlot = h("div", { class: "rejected-slot" });
  const submit = h("button", { type: "submit", class: "button" }, "Import");
  const cancel = h("button", { type: "button", class: "button secondary", onclick: () => handle.close() }, "Cancel");
  const form = h(
    "form",
    { class: "dialog-form" },
    h("div", { class: "control" }, h("label", { for: fileId }, "CSV file"), input),
    h("p", { class: "hint", id: `${fileId}-hint` }, COLUMNS_HINT, " Files over 5 MB (up to 1 GB) are uploaded."),
    status,
    progressSlot,
    rejectedSlot,
    h("div", { class: "dialog-actions" }, cancel, submit),
  );
  const controller = new AbortController();
  let finished = false;
  const handle = openDialog({
    title: "Import CSV",
    content: form,
    className: "wide",
    onClose: () => {
      controller.abort();
      if (finished) onImported();
    },
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = input.files && input.files[0];
    if (!file) {
      status.replaceChildren(h("p", { class: "field-error", role: "alert" }, "Choose a CSV file."));
      input.focus();
      return;
    }
    submit.disabled = true;
    input.disabled = true;
    rejectedSlot.replaceChildren();
    progressSlot.replaceChildren();
    // A header the API refuses: its message, and each detail under it.
    const refused = (box, error) => {
      const details = (error.details || []).map((detail) => h("li", {}, detail.message || String(detail.path || "")));
      if (details.length) box.appendChild(h("ul", { class: "dependents" }, details));
      status.replaceChildren(box);
      submit.disabled = false;
      input.disabled = false;
    };
    await withErrors(refused, async () => {
      const started = await sendFile(file, (text) => status.replaceChildren(loadingEl(text)));
      status.replaceChildren();
      if (started.upload_url) {
        status.replaceChildren(
          h(
            "div",
            { class: "upload-elsewhere" },
            h("p", {}, "This stack's bucket is on another origin, where the console may not upload. Upload the file with:"),
            h("pre", { tabindex: "0" }, `curl -T '${file.name}' '${started.upload_url}'`),
            h("p", { class: "muted" }, "The link works for an hour; the import starts when the file arrives."),
          ),
        );
      }
      const progress = jobProgress("Import progress", (job) => {
        const rejected = job.result ? job.result.rejected : (job.errors || []).length;
        if (job.state === "running" && !job.total) return "Reading the file…";
        return `${job.done} of ${Math.max(job.total, job.done)} rows${rejected ? `, ${rejected} rejected` : ""}`;
      });
      progressSlot.replaceChildren(progress.element);
      announce("Import started.");
      const job = await followJob(
        started.job_id,
        (update) => {
          progress.update(update);
          rejectedSlot.replaceChildren(rejectedTable(update) || "");
        },
        controller.signal,
      );
      finished = true;
      if (job.state === "failed") {
        status.replaceChildren(errorBox(jobFailure(job)));
      } else {
        const { imported, rejected } = job.result;
        const text = `Imported ${plural(imported, "row", "rows")}${rejected ? `; ${plural(rejected, "row was", "rows were")} rejected` : ""}.`;
        status.replaceChildren(h("p", { class: rejected ? "warn" : "ok" }, text));
        announce(text);
      }
      submit.hidden = true;
      cancel.textContent = "Close";
      cancel.focus();
    });
  });
  return handle;
}

/**
 * "Export CSV": `source` is {segmentId} (a segment's members) or {target, filter}; `description`
 * says which. Starts the job at once, shows its progress, then the download link (an hour).
 */
export function openExportDialog({ source, description }) {
  const status = h("div", { class: "dialog-status" }, loadingEl("Starting the export…"));
  const progressSlot = h("div", { class: "progress-slot" });
  const linkSlot = h("div", { class: "download-slot" });
  const close = h("button", { type: "button", class: "button secondary", onclick: () => handle.close() }, "Close");
  const content = h(
    "div",
    { class: "dialog-form" },
    h("p", { class: "audience" }, description),
    status,
    progressSlot,
    linkSlot,
    h("div", { class: "dialog-actions" }, close),
  );
  const controller = new AbortController();
  const handle = openDialog({ title: "Export CSV", content, className: "wide", onClose: () => controller.abort() });
  close.focus();
  const start = source.segmentId
    ? api("POST", endpoints.segmentExports(source.segmentId))
    : api("POST", endpoints.exports(), { target: source.target, filter: source.filter });
  withErrors(status, async () => {
    const { job_id: jobId } = await start;
    status.replaceChildren();
    const progress = jobProgress("Export progress", (job) =>
      job.state === "running" ? `${job.done} of about ${Math.max(job.total, job.done)} records read` : `${job.done} records read`,
    );
    progressSlot.replaceChildren(progress.element);
    const job = await followJob(jobId, progress.update, controller.signal);
    if (job.state === "failed") {
      status.replaceChildren(errorBox(jobFailure(job)));
      return;
    }
    const { download_url: url, rows, expires_at: expires } = job.result;
    const link = h("a", { class: "button", href: url, download: "" }, `Download the CSV (${plural(rows, "row", "rows")})`);
    linkSlot.replaceChildren(link, h("p", { class: "muted" }, `The link works until ${formatTime(expires)}.`));
    announce(`Export ready: ${plural(rows, "row", "rows")}.`);
    link.focus();
  });
  return handle;
}
