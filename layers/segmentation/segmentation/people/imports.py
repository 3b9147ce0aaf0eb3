"""CSV imports of users (API.md, "Tags, imports and exports"): a job that reads its file a chunk
of rows at a time and upserts them. No boto3: the file is read through storage.files.

The file is `uploads/<job id>.csv` in the files bucket (a request's body written there, or a
client's PUT through a presigned URL); its creation queues the job's first chunk. Chunks:

1. start: the file's size (at most 1 GB) and its header (line 1): the columns, checked;
2. count: the rows, so that progress is `done` of `total` (a chunk of records at a time);
3. rows: ROWS_PER_CHUNK rows at a time: each row read and checked alone (a bad one is rejected
   with its line and reason, and changes nothing), custom attributes typed against the
   workspace (a name first seen is fixed by its first value, as with the API), tags named
   created when missing, then every good row of the chunk written in a few calls
   (storage.user_batches: one merged update per user, many users to a transaction), a user
   left as it is when the rows change nothing (so importing the same file again writes nothing).
The cursor is a byte offset and a line number: a chunk run again from it reads the same rows
and writes the same upserts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from segmentation import errors
from segmentation.engine.fields import CUSTOM_ATTRIBUTE_NAME, holds_timestamps
from segmentation.people import tags
from segmentation.people.csv_reader import Record, records
from segmentation.storage import attributes as attribute_store
from segmentation.storage import files, user_batches
from segmentation.storage import jobs as job_store
from segmentation.storage.jobs import JobRecord, Progress
from segmentation.storage.user_batches import Change
from segmentation.values import MAX_STRING_LENGTH, one_line, parse_timestamp, text_block, to_number
from segmentation.vocabulary import MAX_ATTRIBUTE_NAMES, name_key

KIND = "import"
MAX_BODY_BYTES = 5 * 1024 * 1024  # a CSV sent as the request's body
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024  # a CSV PUT through the presigned URL
UPLOAD_URL_SECONDS = 3600
ROWS_PER_CHUNK = 500
RECORDS_COUNTED_PER_CHUNK = 200_000
MAX_ERRORS = 100  # rejected rows the job reports (it counts them all)
MAX_COMPANIES = 100  # as the API's company_ids

STANDARD_COLUMNS = (
    "user_id",
    "email",
    "name",
    "phone",
    "signed_up_at",
    "unsubscribed_from_emails",
    "company_ids",
    "tags",
)
# Columns an export adds: read-only, ignored on import (an export can be imported back).
EXPORT_ONLY_COLUMNS = ("last_seen_at", "session_count", "segments")
LIST_SEPARATOR = ";"
# A number as JSON writes one: "02139" (a zip code) stays text, as "NaN" and "1_000" do.
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_BOOLEANS = {"true": True, "false": False}


# --- the header --------------------------------------------------------------------------------


def _header_problem(message: str) -> errors.Invalid:
    return errors.Invalid(
        f"The CSV's first row must name the columns: {message}.",
        [{"path": "csv", "line": 1, "reason": message, "message": message}],
        code="invalid_csv",
    )


def read_header(cells: list[str] | None, problem: str | None = None) -> list[str]:
    """The columns the first row names; errors.Invalid (line 1) when they cannot be imported."""
    if cells is None:
        raise _header_problem(problem or "the file is empty")
    columns = [cell.strip() for cell in cells]
    seen: set[str] = set()
    for column in columns:
        if not column:
            raise _header_problem("a column has no name")
        if column in seen:
            raise _header_problem(f"the column {column!r} is named twice")
        seen.add(column)
        if column not in STANDARD_COLUMNS + EXPORT_ONLY_COLUMNS and not CUSTOM_ATTRIBUTE_NAME.fullmatch(
            column
        ):
            raise _header_problem(
                f"the column {column[:100]!r} is neither a standard column ({', '.join(STANDARD_COLUMNS)}) "
                "nor a custom attribute name (^[A-Za-z_][A-Za-z0-9_]{0,63}$)"
            )
    if "user_id" not in seen:
        raise _header_problem("there is no user_id column")
    custom = [c for c in columns if c not in STANDARD_COLUMNS + EXPORT_ONLY_COLUMNS]
    if len(custom) > MAX_ATTRIBUTE_NAMES:
        raise _header_problem(
            f"{len(custom)} custom attribute columns; a workspace holds at most {MAX_ATTRIBUTE_NAMES}"
        )
    return columns


def header_of(data: bytes) -> list[str]:
    """The columns of a CSV given whole (a request's body), checked."""
    first = next(records([data], 0, 1), None)
    return read_header(None if first is None else first.cells, None if first is None else first.problem)


# --- one row ----------------------------------------------------------------------------------


@dataclass
class Row:
    line: int
    user_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, str] = field(default_factory=dict)  # text, typed per chunk
    tag_names: list[str] = field(default_factory=list)


def _text(value: str, column: str, *, required: bool = False) -> str:
    if len(value) > MAX_STRING_LENGTH:
        raise ValueError(f"{column}: at most {MAX_STRING_LENGTH} characters")
    try:
        return one_line(value)
    except ValueError as error:
        raise ValueError(f"{column}: {error}") from None


def _timestamp(value: str, column: str) -> Decimal:
    try:
        return parse_timestamp(_number_or_text(value))
    except ValueError:
        raise ValueError(f"{column}: {value[:40]!r} is not an ISO 8601 timestamp or Unix seconds") from None


def _number_or_text(value: str) -> Decimal | str:
    return Decimal(value) if _NUMBER.fullmatch(value) else value


def _listed(value: str) -> list[str]:
    return list(dict.fromkeys(item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()))


def read_row(columns: list[str], record: Record) -> Row:
    """A record as a row of changes; ValueError naming the column when a cell breaks a rule. An
    empty cell leaves its field as it is; cells are read without their surrounding spaces."""
    assert record.cells is not None
    if len(record.cells) > len(columns):
        raise ValueError(f"the row has {len(record.cells)} cells; the header names {len(columns)} columns")
    cells = dict(zip(columns, (cell.strip() for cell in record.cells), strict=False))
    user_id = cells.get("user_id", "")
    if not user_id:
        raise ValueError("user_id: required")
    row = Row(record.line, _text(user_id, "user_id"))
    for column, value in cells.items():
        if not value or column == "user_id" or column in EXPORT_ONLY_COLUMNS:
            continue
        if column in ("email", "name", "phone"):
            row.fields[column] = _text(value, column)
        elif column == "signed_up_at":
            row.fields[column] = _timestamp(value, column)
        elif column == "unsubscribed_from_emails":
            if value.lower() not in _BOOLEANS:
                raise ValueError(f"unsubscribed_from_emails: true or false, not {value[:40]!r}")
            row.fields[column] = _BOOLEANS[value.lower()]
        elif column == "company_ids":
            companies = [_text(company, "company_ids") for company in _listed(value)]
            if len(companies) > MAX_COMPANIES:
                raise ValueError(f"company_ids: at most {MAX_COMPANIES}")
            row.fields[column] = companies
        elif column == "tags":
            row.tag_names = [_text(name, "tags") for name in _listed(value)]
        else:
            row.custom[column] = value
    return row


def typed_value(name: str, value: str, known: str | None) -> tuple[str, Any]:
    """(type, stored value) of a custom attribute's cell: as its type fixes it, or, for a name
    not seen yet, as the API would type the value: true/false, a number, an ISO 8601 timestamp
    for a name ending in _at, else text. ValueError naming the attribute when it does not fit."""
    kind = known
    if kind is None:
        if holds_timestamps(name):
            kind = "timestamp"
        elif value.lower() in _BOOLEANS:
            kind = "boolean"
        else:
            kind = "number" if _NUMBER.fullmatch(value) else "string"
    if kind == "timestamp":
        return kind, _timestamp(value, name)
    if kind == "boolean":
        if value.lower() not in _BOOLEANS:
            raise ValueError(f"{name}: holds booleans (true or false), not {value[:40]!r}")
        return kind, _BOOLEANS[value.lower()]
    if kind == "number":
        if not _NUMBER.fullmatch(value):
            raise ValueError(f"{name}: holds numbers, not {value[:40]!r}")
        try:
            return kind, to_number(Decimal(value))
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    if len(value) > MAX_STRING_LENGTH:
        raise ValueError(f"{name}: at most {MAX_STRING_LENGTH} characters")
    try:
        return kind, text_block(value)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


# --- a chunk of rows ----------------------------------------------------------------------------


@dataclass
class _Rejections:
    found: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)

    def add(self, line: int, reason: str) -> None:
        self.found.append((line, reason))


def _typed_rows(rows: list[Row], rejected: _Rejections) -> dict[int, dict[str, Any]]:
    """Each good row's custom attribute values (by line), typed against the workspace; names
    first seen are registered, fixed by the first row that holds one."""
    names = {name for row in rows for name in row.custom}
    known = dict(attribute_store.types_of("users", names)) if names else {}
    typed, new = _type_all(rows, known, rejected)
    if not new:
        return typed
    try:
        attribute_store.register("users", new)
        return typed
    except errors.Invalid:
        pass  # the cap reached, or another writer fixed a name first: name by name, in row order
    known = dict(attribute_store.types_of("users", names))
    again = _Rejections()
    settled: dict[int, dict[str, Any]] = {}
    for row in rows:
        if row.line not in typed:
            continue
        try:
            values, first_seen = _type_one(row, known)
            attribute_store.register("users", first_seen)
        except (ValueError, errors.Invalid) as error:
            again.add(row.line, error.message if isinstance(error, errors.Invalid) else str(error))
            continue
        known.update(first_seen)
        settled[row.line] = values
    rejected.found += again.found
    return settled


def _type_one(row: Row, known: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    first_seen: dict[str, str] = {}
    for name, text in row.custom.items():
        kind, value = typed_value(name, text, known.get(name) or first_seen.get(name))
        if name not in known:
            first_seen[name] = kind
        values[name] = value
    return values, first_seen


def _type_all(
    rows: list[Row], known: dict[str, str], rejected: _Rejections
) -> tuple[dict[int, dict[str, Any]], dict[str, str]]:
    typed: dict[int, dict[str, Any]] = {}
    new: dict[str, str] = {}
    for row in rows:
        try:
            values, first_seen = _type_one(row, {**known, **new})
        except ValueError as error:
            rejected.add(row.line, str(error))
            continue
        new.update(first_seen)
        typed[row.line] = values
    return typed, new


def _tag_ids(rows: Iterable[Row], now: float) -> dict[str, str]:
    return tags.resolve_names({name for row in rows for name in row.tag_names}, now)


def apply_rows(columns: list[str], found: list[Record], now: float) -> list[tuple[int, str]]:
    """Upsert the good rows of a chunk; the rejected ones as (line, reason), in line order."""
    rejected = _Rejections()
    rows: list[Row] = []
    for record in found:
        if record.cells is None:
            rejected.add(record.line, record.problem or "the row cannot be read")
            continue
        try:
            rows.append(read_row(columns, record))
        except ValueError as error:
            rejected.add(record.line, str(error))
    typed = _typed_rows(rows, rejected)
    rows = [row for row in rows if row.line in typed]
    for attempt in range(2):
        ids = _tag_ids(rows, now)
        changes: dict[str, list[Change]] = {}
        for row in rows:
            tag_ids = tuple(dict.fromkeys(ids[name_key(name)] for name in row.tag_names))
            changes.setdefault(row.user_id, []).append(
                Change(fields=row.fields, attribute_sets=typed[row.line], tags_added=tag_ids)
            )
        try:
            outcome = user_batches.write(changes, now, skip_unchanged=True)
            break
        except user_batches.TagGone:
            if attempt:  # deleted again while this chunk ran: its rows wait for the retry
                raise errors.Retryable("tags of this chunk were deleted while it ran") from None
    for row in rows:
        if row.user_id in outcome.failed:
            rejected.add(row.line, "the user's record is full (DynamoDB's 400 KB per item)")
    return sorted(rejected.found)


# --- the job's chunks --------------------------------------------------------------------------


def chunk(job: JobRecord, now: float, time_left: Callable[[], float]) -> Progress:
    """The import's next chunk from its cursor (segments.bulk runs and commits it)."""
    cursor = job.cursor
    if cursor is None:
        return _start(job)
    if cursor["phase"] == "count":
        return _count(job, cursor)
    return _rows(job, cursor, now)


def _start(job: JobRecord) -> Progress:
    key = files.upload_key(job.id)
    size = files.size(key)
    if size is None:
        raise errors.Invalid("The file to import is not in the bucket.", code="file_missing")
    if size > MAX_UPLOAD_BYTES:
        raise errors.Invalid(
            f"The file is {size} bytes; an import takes at most {MAX_UPLOAD_BYTES} bytes (1 GB).",
            code="file_too_large",
        )
    first = next(records(files.blocks_from(key, 0), 0, 1), None)
    columns = read_header(None if first is None else first.cells, None if first is None else first.problem)
    assert first is not None
    params = {**job.params, "columns": columns, "data_offset": first.end, "data_line": first.next_line}
    cursor = {"phase": "count", "offset": first.end, "line": first.next_line, "rows": 0}
    return Progress(cursor=cursor, done=0, total=0, params=params)


def _count(job: JobRecord, cursor: Mapping[str, Any]) -> Progress:
    counted = int(cursor["rows"])
    offset, line = int(cursor["offset"]), int(cursor["line"])
    for index, record in enumerate(
        records(files.blocks_from(files.upload_key(job.id), offset), offset, line)
    ):
        counted += 1
        if index + 1 >= RECORDS_COUNTED_PER_CHUNK:
            position = {"phase": "count", "offset": record.end, "line": record.next_line, "rows": counted}
            return Progress(cursor=position, done=0, total=counted)
    rows = {"phase": "rows", "offset": job.params["data_offset"], "line": job.params["data_line"]}
    return Progress(cursor=rows, done=0, total=counted)


def _rows(job: JobRecord, cursor: Mapping[str, Any], now: float) -> Progress:
    offset, line = int(cursor["offset"]), int(cursor["line"])
    found: list[Record] = []
    for record in records(files.blocks_from(files.upload_key(job.id), offset), offset, line):
        found.append(record)
        if len(found) >= ROWS_PER_CHUNK:
            break
    rejected = apply_rows(list(job.params["columns"]), found, now) if found else []
    done = job.done + len(found)
    errors_kept = job.errors + [{"line": line_number, "reason": reason} for line_number, reason in rejected]
    progress = Progress(
        cursor=None,
        done=done,
        total=max(job.total, done),
        rejected=job.rejected + len(rejected),
        errors=errors_kept[:MAX_ERRORS],
    )
    if len(found) == ROWS_PER_CHUNK:
        progress.cursor = {"phase": "rows", "offset": found[-1].end, "line": found[-1].next_line}
        return progress
    progress.state = "done"
    progress.result = {"rows": done, "imported": done - progress.rejected, "rejected": progress.rejected}
    return progress


# --- starting an import ---------------------------------------------------------------------


def start_from_body(data: bytes, now: float) -> str:
    """An import of a CSV sent whole (at most 5 MB): its header checked now (a 422 when it cannot
    be imported), the file written where an upload goes, which queues its first chunk."""
    if len(data) > MAX_BODY_BYTES:
        raise errors.PayloadTooLarge(
            f"The CSV is {len(data)} bytes; a body takes at most {MAX_BODY_BYTES} bytes (5 MB). "
            'Larger files (up to 1 GB) go through an upload: POST /v1/imports {"filename": ...}.'
        )
    header_of(data)
    job = job_store.put_new(job_store.new_job_id(), KIND, {"source": "body", "bytes": len(data)}, now)
    try:
        files.put(files.upload_key(job.id), data)
    except Exception:
        job_store.fail(job.id, "not_stored", "The file could not be stored; send it again.", now)
        raise
    return job.id


def start_upload(filename: str, now: float) -> tuple[str, str]:
    """An import of a file PUT to the URL returned (within an hour): (job id, upload URL)."""
    params = {"source": "upload", "filename": filename, "upload_expires_at": now + UPLOAD_URL_SECONDS}
    job = job_store.put_new(job_store.new_job_id(), KIND, params, now)
    return job.id, files.presigned_put(files.upload_key(job.id), UPLOAD_URL_SECONDS)
