"""CSV exports of a segment's members or of the users (or companies) a filter matches: a job that
pages through them and writes the file to S3 as a multipart upload, never holding more than a
part in memory. No boto3: the file goes through storage.files.

Each chunk reads pages (a segment's members in id order, or the table's scan order for a
filter, evaluated as search evaluates it) until it has a part's worth of rows (5 MB, S3's
smallest part), then uploads that part: a part number is its place, so a chunk run again writes
the same part. A sparse filter may read for minutes without filling a part: the rows so far are
then kept in a small object of their own (its key in the cursor) and the next run starts from
them. The last part may be smaller; completing the upload ends the job. Its result gives the
number of rows; GET /v1/jobs/{id} signs the download URL (an hour) each time it is asked.

Columns (API.md): user_id, email, name, phone, signed_up_at, unsubscribed_from_emails,
company_ids, tags (by name), each custom attribute known when the export starts, then
last_seen_at, session_count, segments. Companies: company_id, name, plan, monthly_spend, size,
industry, website, remote_created_at, custom attributes, user_count, segments. Booleans are
true/false, timestamps ISO 8601 UTC, lists joined by `;`, an unknown value an empty cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from segmentation import definitions, errors
from segmentation.engine import validate_filter
from segmentation.jobs import BulkJob
from segmentation.people import imports
from segmentation.people.attributes import all_types as all_attribute_types
from segmentation.people.representations import company_json, user_json
from segmentation.segments import search, service
from segmentation.storage import attributes as attribute_store
from segmentation.storage import files, memberships, people_scans, queues
from segmentation.storage import jobs as job_store
from segmentation.storage import tags as tag_store
from segmentation.storage.jobs import JobRecord, Progress
from segmentation.values import format_timestamp
from segmentation.vocabulary import Target

KIND = "export"
DOWNLOAD_URL_SECONDS = 3600
PART_BYTES = files.MIN_PART_BYTES
RECORDS_PER_PAGE = 500
# A chunk stops reading pages with this much of its run's time left (then keeps its rows).
STOP_READING_SECONDS_LEFT = 90.0
MAX_PARTS = 10_000  # S3's most parts of an upload (50 GB at 5 MB a part)

# A user export is an import's file (so it can be imported back) with read-only columns after it.
USER_COLUMNS: tuple[str, ...] = imports.STANDARD_COLUMNS
USER_TAIL: tuple[str, ...] = imports.EXPORT_ONLY_COLUMNS
COMPANY_COLUMNS: tuple[str, ...] = (
    "company_id",
    "name",
    "plan",
    "monthly_spend",
    "size",
    "industry",
    "website",
    "remote_created_at",
)
COMPANY_TAIL: tuple[str, ...] = ("user_count", "segments")
LIST_SEPARATOR = ";"


# --- starting an export ------------------------------------------------------------------------


def start_for_segment(segment_id: str, now: float) -> str:
    record = service.require(segment_id)
    total = memberships.count(memberships.segment_group(record.id))
    params = {"target": record.target, "segment_id": record.id}
    return _start(params, total, now)


def start_for_filter(target: Target, raw_filter: Any, now: float) -> str:
    validate_filter(
        raw_filter,
        target=target,
        attributes=all_attribute_types(raw_filter),
        segments=definitions.segment_defs(check_now=True),
        path="filter",
    )
    total = people_scans.approximate_count(target)
    return _start({"target": target, "filter": raw_filter}, total, now)


def _start(params: dict[str, Any], total: int, now: float) -> str:
    job = job_store.put_new(job_store.new_job_id(), KIND, params, now, total=total)
    queues.send_bulk_job(BulkJob(job_id=job.id, step=0), export=True)
    return job.id


def result_of(job: JobRecord, now: float) -> dict[str, Any]:
    """A done export's result: its rows, and a download URL good for an hour from `now`."""
    url = files.presigned_get(files.export_key(job.id), DOWNLOAD_URL_SECONDS, f"{job.id}.csv")
    rows = int((job.result or {}).get("rows", 0))
    return {"download_url": url, "rows": rows, "expires_at": format_timestamp(now + DOWNLOAD_URL_SECONDS)}


# --- rows --------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(_cell(item) for item in value)
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    return str(value)


def columns(target: str, custom: Iterable[str]) -> list[str]:
    head, tail = (USER_COLUMNS, USER_TAIL) if target == "users" else (COMPANY_COLUMNS, COMPANY_TAIL)
    return [*head, *sorted(custom), *tail]


def row(target: str, found: search.Found, custom: list[str], tag_names: Mapping[str, str]) -> list[str]:
    """One record as its cells, in the order of `columns` (values as the API's JSON shows them)."""
    if target == "users":
        body = user_json(found.item, found.segments)
        body["tags"] = sorted(tag_names[tag] for tag in body["tag_ids"] if tag in tag_names)
        head, tail = USER_COLUMNS, USER_TAIL
    else:
        body = company_json(found.item, found.user_count, found.segments)
        head, tail = COMPANY_COLUMNS, COMPANY_TAIL
    attributes = body["custom_attributes"]
    return [
        *(_cell(body.get(name)) for name in head),
        *(_cell(attributes.get(name)) for name in custom),
        *(_cell(body.get(name)) for name in tail),
    ]


def _text(rows: Iterable[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


# --- the job's chunks --------------------------------------------------------------------------


def chunk(job: JobRecord, now: float, time_left: Callable[[], float]) -> Progress:
    """Read pages until a part's worth of rows, the end, or the run's time; upload what it can."""
    target: Target = "companies" if job.params["target"] == "companies" else "users"
    key = files.export_key(job.id)
    params = job.params
    cursor = dict(job.cursor or {})
    if "upload_id" not in cursor:
        custom = sorted(attribute_store.all_types(target))
        params = {**params, "columns": columns(target, custom), "custom": custom}
        cursor = {"upload_id": files.start_multipart(key), "part": 1, "after": None, "rows": 0, "carry": None}
    custom = list(params["custom"])
    tag_names = {tag.id: tag.name for tag in tag_store.all_tags()} if target == "users" else {}
    buffer = bytearray(files.read(cursor["carry"]) if cursor["carry"] else b"")
    if cursor["part"] == 1 and not cursor["carry"] and not buffer:
        buffer += _text([params["columns"]])
    rows, read, after, finished = int(cursor["rows"]), int(cursor.get("read", 0)), cursor["after"], False
    while len(buffer) < PART_BYTES:
        found, after, finished, seen = _page(target, params, after, now)
        buffer += _text(row(target, f, custom, tag_names) for f in found)
        rows += len(found)
        read += seen
        if finished or time_left() < STOP_READING_SECONDS_LEFT:
            break
    if finished:
        if buffer or cursor["part"] == 1:
            files.upload_part(key, cursor["upload_id"], cursor["part"], bytes(buffer))
            parts = cursor["part"]
        else:  # the last part ended with the last page: nothing is left for one more
            parts = cursor["part"] - 1
        files.complete_multipart(key, cursor["upload_id"], parts)
        return Progress(
            cursor=None, done=read, total=read, params=params, state="done", result={"rows": rows}
        )
    if len(buffer) >= PART_BYTES:
        if cursor["part"] >= MAX_PARTS:
            files.abort_multipart(key, cursor["upload_id"])
            raise errors.Invalid(f"The export passes S3's {MAX_PARTS} parts: export a smaller segment.")
        files.upload_part(key, cursor["upload_id"], cursor["part"], bytes(buffer))
        position = {
            **cursor,
            "part": cursor["part"] + 1,
            "after": after,
            "rows": rows,
            "read": read,
            "carry": None,
        }
    else:  # the run's time ran low before a part filled: keep the rows for the next run
        carry = files.carry_key(job.id, job.step)
        files.put(carry, bytes(buffer))
        position = {**cursor, "after": after, "rows": rows, "read": read, "carry": carry}
    return Progress(cursor=position, done=read, total=max(job.total, read), params=params)


def _page(
    target: Target, params: Mapping[str, Any], after: Any, now: float
) -> tuple[list[search.Found], Any, bool, int]:
    """(records, the position after them, whether that was the last page, records read): a
    segment's members (progress counts members), or a page of the scan (it counts records read)."""
    if "segment_id" in params:
        found, last = search.member_page(target, str(params["segment_id"]), after, RECORDS_PER_PAGE, now)
        return found, last, last is None, len(found)
    matched, last_key, read = search.matching_page(target, params["filter"], after, RECORDS_PER_PAGE, now)
    return matched, last_key, last_key is None, read
