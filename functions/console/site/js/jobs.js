// Jobs (imports, exports, tagging by a filter): GET /v1/jobs/{id} polled until the job ends, and
// the progress bar that shows it.

import { api } from "./api.js";
import { endpoints } from "./endpoints.js";
import { h, uid } from "./dom.js";

const FIRST_POLL_MS = 300;
const LONGEST_POLL_MS = 2000;

function wait(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = window.setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        window.clearTimeout(timer);
        reject(new DOMException("The job is no longer followed.", "AbortError"));
      },
      { once: true },
    );
  });
}

/**
 * Polls the job until it is no longer running, handing each answer to `onUpdate`; resolves with
 * the last one. Quick at first (a small job ends in a second), then every 2 s at most. `signal`
 * stops following (a closed dialog); the job itself runs on.
 */
export async function followJob(jobId, onUpdate, signal) {
  let delay = FIRST_POLL_MS;
  for (;;) {
    const job = await api("GET", endpoints.job(jobId), null, { signal });
    if (signal?.aborted) throw new DOMException("The job is no longer followed.", "AbortError");
    onUpdate(job);
    if (job.state !== "running") return job;
    await wait(delay, signal);
    delay = Math.min(LONGEST_POLL_MS, Math.round(delay * 1.5));
  }
}

/**
 * A labelled progress bar for a job: {element, update(job)}. `describe(job)` says where the job
 * is in words ("120 of 300 rows"); it is the bar's aria-valuetext and the line under it. Until the
 * job knows its total the bar is indeterminate.
 */
export function jobProgress(label, describe) {
  const id = uid("progress");
  const bar = h("progress", { id, class: "job-progress" });
  const text = h("p", { class: "progress-text" }, "Starting…");
  const element = h("div", { class: "progress-block" }, h("label", { for: id }, label), bar, text);
  return {
    element,
    update(job) {
      const total = Math.max(job.total || 0, job.done || 0);
      if (job.state !== "running") {
        bar.max = Math.max(total, 1);
        bar.value = Math.max(total, 1);
      } else if (total > 0) {
        bar.max = total;
        bar.value = job.done || 0;
      } else {
        bar.removeAttribute("value");
      }
      const words = describe(job);
      bar.setAttribute("aria-valuetext", words);
      text.textContent = words;
    },
  };
}

/** A failed job's reason, from its result's error (the API's code and message). */
export function jobFailure(job) {
  const error = (job.result && job.result.error) || {};
  return { message: error.message || "The job failed.", code: error.code || "job_failed" };
}
