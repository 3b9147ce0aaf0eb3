"""Imports, exports and jobs (API.md, "Tags, imports and exports"): CSV in and out (admin), and
GET /v1/jobs/{job_id} (read and up), which also shows tagging by a filter.

POST /v1/imports takes a CSV body (`Content-Type: text/csv`, up to 5 MB: 202 with the job) or
JSON `{"filename"}` (201 with the job and a presigned URL to PUT a file of up to 1 GB to, for an
hour). The route reads its own request (http.import_request); the OpenAPI document describes
both bodies (routes/docs.py adds the CSV one, which a route signature cannot say).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, WithJsonSchema

from segmentation import clock
from segmentation.http import import_request
from segmentation.http.auth import ADMINS, READERS, allow
from segmentation.http.models import ErrorBody, RequestBody, Shape
from segmentation.http.presenters import documented, respond
from segmentation.http.resolver import reads_own_request
from segmentation.http.routes.search import EXAMPLE_FILTER
from segmentation.http.routes.segments import SegmentId
from segmentation.people import imports
from segmentation.segments import bulk, exports
from segmentation.values import one_line
from segmentation.vocabulary import Target

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()
TAGS = ["Imports and exports"]

FileName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), AfterValidator(one_line)
]
JobId = Annotated[
    str, AfterValidator(one_line), Path(min_length=1, max_length=64, description="A job id (job_...)")
]


class ImportUpload(RequestBody):
    filename: FileName = Field(description="The file's name, for your records")


IMPORT_UPLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["filename"],
    "additionalProperties": False,
    "properties": {"filename": {"type": "string", "minLength": 1, "maxLength": 255}},
    "examples": [{"filename": "users.csv"}],
}
# The other body of POST /v1/imports, added to the OpenAPI document by routes/docs.py.
CSV_BODY: dict[str, Any] = {
    "text/csv": {
        "schema": {
            "type": "string",
            "maxLength": imports.MAX_BODY_BYTES,
            "description": "A CSV of users (UTF-8, up to 5 MB): its first row names the columns",
            "example": "user_id,email,name,tags\nu-1,ada@example.com,Ada Lovelace,vip;beta\n",
        }
    }
}
ImportBody = Annotated[
    dict[str, Any],
    Body(description='JSON {"filename"}: a presigned URL to PUT the file to (or a text/csv body)'),
    WithJsonSchema(IMPORT_UPLOAD_SCHEMA),
]


class ExportBody(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"target": "users", "filter": EXAMPLE_FILTER}]})

    target: Target = "users"
    filter: Any = Field(description="A Filter of that target: every record it matches when the job runs")


class JobStarted(Shape):
    job_id: str


class UploadStarted(Shape):
    job_id: str
    upload_url: str = Field(description="PUT the file here within an hour (at most 1 GB)")


class RowError(Shape):
    line: int = Field(description="The row's line in the file (the header is line 1)")
    reason: str


class Job(Shape):
    id: str
    kind: Literal["import", "export", "tag", "untag"]
    state: Literal["running", "done", "failed"]
    done: int
    total: int
    errors: list[RowError] = Field(description="The first 100 rejected rows of an import")
    result: dict[str, Any] | None = Field(
        description='When done: an import {"rows", "imported", "rejected"}; an export {"download_url", '
        '"rows", "expires_at"} (a URL good for an hour, signed again at each read); tagging {"tagged"} '
        'or {"untagged"}. When failed: {"error": {"code", "message"}}'
    )


def _import_responses() -> dict[int, Any]:
    responses = documented(
        202, JobStarted, "A CSV body was taken: its import runs (GET /v1/jobs/{job_id})", 413
    )
    responses[201] = {
        "description": "JSON {filename}: PUT the file to upload_url; its import starts when it arrives",
        "content": {"application/json": {"model": UploadStarted}},
    }
    responses[413] = {
        "description": "A CSV body over 5 MB (upload larger files), or a JSON body over 256 KB",
        "content": {"application/json": {"model": ErrorBody}},
    }
    return responses


@router.post(
    "/v1/imports",
    tags=TAGS,
    summary="Import users from a CSV (admin)",
    description="The first row names the columns: user_id (required), email, name, phone, signed_up_at, "
    "unsubscribed_from_emails, company_ids (`;`-separated), tags (names, `;`-separated, created when "
    "missing), and any other column a custom attribute (true/false, numbers, ISO 8601 timestamps for "
    "names ending in _at, else text; an empty cell leaves the value as it is). last_seen_at, "
    "session_count and segments (an export's) are ignored. Each row is an upsert; a bad row is rejected "
    "alone. A header that cannot be imported is a 422 at once for a CSV body.",
    responses=_import_responses(),
)
@allow(*ADMINS)
@reads_own_request(import_request.read)
def create_import(body: ImportBody):
    now = clock.now()
    if "csv" in body:
        return respond({"job_id": imports.start_from_body(body["csv"], now)}, 202)
    upload = ImportUpload.model_validate(body)
    job_id, url = imports.start_upload(upload.filename, now)
    return respond({"job_id": job_id, "upload_url": url}, 201)


@router.post(
    "/v1/exports",
    tags=TAGS,
    summary="Export the users (or companies) a filter matches to a CSV (admin)",
    description="202 with a job; when done, its result holds a download URL good for an hour.",
    responses=documented(202, JobStarted, "The export runs (GET /v1/jobs/{job_id})", 413),
)
@allow(*ADMINS)
def create_export(body: ExportBody):
    return respond({"job_id": exports.start_for_filter(body.target, body.filter, clock.now())}, 202)


@router.post(
    "/v1/segments/<segment_id>/exports",
    tags=TAGS,
    summary="Export a segment's members to a CSV (admin)",
    description="202 with a job; when done, its result holds a download URL good for an hour.",
    responses=documented(202, JobStarted, "The export runs (GET /v1/jobs/{job_id})", 404),
)
@allow(*ADMINS)
def export_segment(segment_id: SegmentId):
    return respond({"job_id": exports.start_for_segment(segment_id, clock.now())}, 202)


@router.get(
    "/v1/jobs/<job_id>",
    tags=TAGS,
    summary="A job: an import, an export, or tagging by a filter",
    description="`done` of `total`: an import's rows (bad ones included); an export's or a tagging's "
    "records read (a filter's total is the table's size, DynamoDB's estimate until the job ends).",
    responses=documented(200, Job, "The job", 404),
)
@allow(*READERS)
def get_job(job_id: JobId):
    return respond(bulk.describe(job_id, clock.now()))
