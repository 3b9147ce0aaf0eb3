"""A CSV import, end to end through the local stack: rows per second per worker and AWS calls per
100 rows, for a first import and for the same file imported again.

The local stack (infra.local: moto in process, template.yaml's tables, bucket and queues, the real
handlers) takes the file as a request's body (`POST /v1/imports`, text/csv: ApiFunction writes it
to the files bucket, whose notification queues the job); ImportFunction then runs it from
ImportQueue a chunk at a time, polled here as Lambda's event source mapping would. Only
ImportFunction is counted and timed: the worker. A job runs on one worker at a time (its chunks
follow each other), so rows / the worker's seconds is the rate of one worker; several imports run
on as many workers as ImportConcurrency allows.

The file: users with an email, a name, a sign-up time, two tags out of three, and three custom
attributes (a string, a number, a timestamp); one row in a hundred is bad (no user_id) and is
rejected alone. Timings include moto's own work, which runs in this process: a deployed worker
pays network round trips instead, so the count of calls is the number that carries over.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from bench import moto_speed
from bench.calls import CallLog, Window

IMPORT = "ImportFunction"
BAD_EVERY = 100  # one row in a hundred has no user_id
JOB_TIMEOUT_SECONDS = 1800.0


@dataclass
class ImportPass:
    rows: int
    rejected: int
    chunks: int  # ImportFunction invocations
    worker_seconds: float
    worker_cpu_seconds: float
    rows_per_second_per_worker: float
    aws_calls_per_100_rows: float
    operations: dict[str, int] = field(default_factory=dict)


@dataclass
class ImportRun:
    rows: int
    file_bytes: int
    first: ImportPass
    again: ImportPass  # the same file once more: nothing to write
    moto_failed_transactions: int = 0
    wall_seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        # The headline, as aws_calls names its counts.
        out["rows_per_second_per_worker"] = self.first.rows_per_second_per_worker
        out["aws_calls_per_100_rows"] = self.first.aws_calls_per_100_rows
        out["aws_calls_per_100_rows_again"] = self.again.aws_calls_per_100_rows
        return out


def csv_file(rows: int, now: float) -> bytes:
    tags = ("Imported", "Newsletter", "Beta")
    lines = ["user_id,email,name,signed_up_at,tags,plan,photos_uploaded,trial_ends_at"]
    for index in range(rows):
        user_id = "" if index % BAD_EVERY == BAD_EVERY - 1 else f"csv-{index:07d}"
        signed_up = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - (index % 400) * 86400))
        trial_ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + (index % 30) * 86400))
        lines.append(
            f"{user_id},user{index}@example.com,User {index},{signed_up},"
            f"{tags[index % 3]};{tags[(index + 1) % 3]},{('free trial', 'starter', 'pro')[index % 3]},"
            f"{index % 200},{trial_ends}"
        )
    return ("\n".join(lines) + "\n").encode()


def run(rows: int) -> ImportRun:
    started = time.perf_counter()
    env = {
        "SEED_DEMO": "0",
        "LOG_LEVEL": "ERROR",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
    saved = dict(os.environ)  # the local stack exports the functions' environment: put it back after
    os.environ.update(env)
    try:
        result = _import_twice(rows)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    result.wall_seconds = round(time.perf_counter() - started, 1)
    return result


def _import_twice(rows: int) -> ImportRun:
    from segmentation import clock
    from segmentation.storage import aws

    from infra.local.stack import Keys, LocalStack

    keys = Keys("sk_admin_" + secrets.token_urlsafe(16), "sk_ingest_" + secrets.token_urlsafe(16), "s")
    stack = LocalStack(keys=keys)
    stack.start()
    moto_speed.install()  # moto copies every table a transaction touches: O(table), not what AWS costs
    try:
        log = CallLog()
        log.install()
        spent = {"wall": 0.0, "cpu": 0.0}
        function = stack.functions[IMPORT]
        function.handler = _timed(log.wrap(IMPORT, function.handler, aws.reset), spent)
        data = csv_file(rows, clock.now())
        warm = csv_file(BAD_EVERY, clock.now()).replace(b"csv-", b"warm-")
        _import(stack, keys.admin_key, warm, log, spent)  # caches, clients and the tags made: not measured
        first = _import(stack, keys.admin_key, data, log, spent)
        again = _import(stack, keys.admin_key, data, log, spent)
        return ImportRun(
            rows=rows,
            file_bytes=len(data),
            first=first,
            again=again,
            moto_failed_transactions=moto_speed.failed_transactions,
        )
    finally:
        stack.stop()


def _import(stack: Any, admin_key: str, data: bytes, log: CallLog, spent: dict[str, float]) -> ImportPass:
    from infra.local.apigw import HttpRequest

    headers = [("Authorization", f"Bearer {admin_key}"), ("Content-Type", "text/csv")]
    answer = stack.handle(HttpRequest(method="POST", path="/v1/imports", headers=headers, body=data))
    if answer.status != 202:
        raise RuntimeError(f"POST /v1/imports -> {answer.status}: {answer.body[:300]!r}")
    job_id = answer.json()["job_id"]
    pollers = [p for p in stack.queue_pollers if p.source.function_id == IMPORT]
    before = dict(spent)
    with log.counting() as window:
        job = _run_to_end(stack, admin_key, job_id, pollers)
    if job["state"] != "done":
        raise RuntimeError(f"the import ended {job['state']}: {job.get('result')}")
    return _pass(job, window, spent, before)


def _run_to_end(stack: Any, admin_key: str, job_id: str, pollers: list[Any]) -> dict[str, Any]:
    from infra.local.apigw import HttpRequest

    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    headers = [("Authorization", f"Bearer {admin_key}")]
    while time.monotonic() < deadline:
        handled = sum(poller.poll_once() for poller in pollers)
        job: dict[str, Any] = json.loads(
            stack.handle(HttpRequest(method="GET", path=f"/v1/jobs/{job_id}", headers=headers)).body
        )
        if job["state"] != "running":
            return job
        if not handled:
            time.sleep(0.05)  # a chunk's next message not visible yet
    raise RuntimeError(f"the import {job_id} did not end within {JOB_TIMEOUT_SECONDS} s")


def _pass(
    job: dict[str, Any], window: Window, spent: dict[str, float], before: dict[str, float]
) -> ImportPass:
    rows = int(job["total"])
    wall, cpu = spent["wall"] - before["wall"], spent["cpu"] - before["cpu"]
    return ImportPass(
        rows=rows,
        rejected=int(job["result"]["rejected"]),
        chunks=window.invocations[IMPORT],
        worker_seconds=round(wall, 3),
        worker_cpu_seconds=round(cpu, 3),
        rows_per_second_per_worker=round(rows / wall, 1) if wall else 0.0,
        aws_calls_per_100_rows=round(window.count(IMPORT) / rows * 100, 2),
        operations=window.operations(IMPORT),
    )


def _timed(handler: Callable[..., Any], spent: dict[str, float]) -> Callable[..., Any]:
    def timed(event: dict[str, Any], context: Any) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return handler(event, context)
        finally:
            spent["wall"] += time.perf_counter() - wall
            spent["cpu"] += time.process_time() - cpu

    return timed
