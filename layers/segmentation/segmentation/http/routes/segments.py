"""Segments: create, list, read, edit, delete, and pages of members (API.md, Segments).

Predefined segments show `created_at` and `updated_at` as null: they were never created.
`GET /v1/segments` lists one target at a time (`?target=users` by default), predefined first.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from segmentation import clock, definitions
from segmentation.http.auth import ADMINS, READERS, WRITERS, allow
from segmentation.http.models import Company, RequestBody, Shape, User
from segmentation.http.presenters import company_json, documented, link, no_content, respond, user_json
from segmentation.segments import search
from segmentation.segments import service as segment_service
from segmentation.storage.segments import SegmentRecord
from segmentation.values import format_timestamp, one_line

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()

SegmentName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), AfterValidator(one_line)
]
SegmentTarget = Literal["users", "companies"]
SegmentId = Annotated[
    str,
    AfterValidator(one_line),
    Path(min_length=1, max_length=255, description="A segment id (seg_..., or new, active, slipping_away)"),
]


SEGMENT_LINKS = {
    name: link(operation, "segment_id", "/id")
    for name, operation in (
        ("GetSegment", "get_segment_v1_segments__segment_id__get"),
        ("UpdateSegment", "update_segment_v1_segments__segment_id__put"),
        ("DeleteSegment", "delete_segment_v1_segments__segment_id__delete"),
        ("ListSegmentMembers", "segment_members_v1_segments__segment_id__members_get"),
    )
}


class SegmentCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "New signups",
                    "target": "users",
                    "filter": {
                        "and": [
                            {"field": "signed_up_at", "op": "less_than_days_ago", "value": 14},
                            {"field": "email", "op": "exists"},
                        ]
                    },
                }
            ]
        }
    )

    name: SegmentName
    target: SegmentTarget = "users"
    filter: Any = Field(description="A Filter (API.md): checked against the known fields and segments")


class SegmentUpdate(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "Recent signups"}]})

    name: SegmentName | None = None
    filter: Any = Field(default=None, description="A new Filter; left out (or null) keeps the current one")


class Segment(Shape):
    id: str
    name: str
    target: SegmentTarget
    filter: dict[str, Any]
    predefined: bool
    count: int
    created_at: str | None
    updated_at: str | None


class SegmentPage(Shape):
    data: list[Segment]
    next_cursor: str | None


class MemberPage(Shape):
    data: list[User | Company]
    next_cursor: str | None


def segment_json(record: SegmentRecord, count: int) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "target": record.target,
        "filter": record.filter,
        "predefined": record.predefined,
        "count": count,
        "created_at": None if record.created_at is None else format_timestamp(record.created_at),
        "updated_at": None if record.updated_at is None else format_timestamp(record.updated_at),
    }


@router.post(
    "/v1/segments",
    tags=["Segments"],
    summary="Create a segment",
    description="Names are unique per target, case-insensitively (409 segment_name_taken). Membership is "
    "built at once. At most 1,000 segments per target (predefined ones aside): beyond, 422 limit_reached.",
    responses=documented(201, Segment, "The new segment", 400, 409, 413, 422, links=SEGMENT_LINKS),
)
@allow(*WRITERS)
def create_segment(body: SegmentCreate):
    record = segment_service.create_segment(body.name, body.target, body.filter, clock.now())
    return respond(segment_json(record, segment_service.member_count(record.id)), 201)


@router.get(
    "/v1/segments",
    tags=["Segments"],
    summary="List the segments of a target, predefined first, each with its count",
    responses=documented(200, SegmentPage, "The segments", 422),
)
@allow(*READERS)
def list_segments(target: Annotated[SegmentTarget, Query()] = "users"):
    records = definitions.records(target)
    counts = segment_service.member_counts([r.id for r in records])
    return respond({"data": [segment_json(r, counts[r.id]) for r in records], "next_cursor": None})


@router.get(
    "/v1/segments/<segment_id>",
    tags=["Segments"],
    summary="A segment, with its count",
    responses=documented(200, Segment, "The segment", 404),
)
@allow(*READERS)
def get_segment(segment_id: SegmentId):
    record = segment_service.require(segment_id)
    return respond(segment_json(record, segment_service.member_count(record.id)))


@router.put(
    "/v1/segments/<segment_id>",
    tags=["Segments"],
    summary="Rename a segment or change its filter (admin)",
    description="409 predefined_segment on a predefined segment; a filter that would make a cycle is a 422.",
    responses=documented(200, Segment, "The segment after the change", 400, 404, 409, 413, 422),
)
@allow(*ADMINS)
def update_segment(segment_id: SegmentId, body: SegmentUpdate):
    record = segment_service.update_segment(segment_id, body.name, body.filter, clock.now())
    return respond(segment_json(record, segment_service.member_count(record.id)))


@router.delete(
    "/v1/segments/<segment_id>",
    tags=["Segments"],
    summary="Delete a segment (admin)",
    description="409 segment_in_use, naming the dependents, while another segment's filter refers to it or a "
    "live or paused auto message targets it; 409 predefined_segment on a predefined one.",
    responses=documented(204, None, "Deleted", 404, 409),
)
@allow(*ADMINS)
def delete_segment(segment_id: SegmentId):
    segment_service.delete_segment(segment_id)
    return no_content()


@router.get(
    "/v1/segments/<segment_id>/members",
    tags=["Segments"],
    summary="A page of the segment's members (users or companies)",
    responses=documented(200, MemberPage, "A page of members", 400, 404, 422),
)
@allow(*READERS)
def segment_members(
    segment_id: SegmentId,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query()] = None,
):
    record = segment_service.require(segment_id)
    target: search.Target = "companies" if record.target == "companies" else "users"
    page = search.members(target, record.id, limit, cursor or None, clock.now())
    return respond(
        {"data": [record_json(target, found) for found in page.data], "next_cursor": page.next_cursor}
    )


def record_json(target: search.Target, found: search.Found) -> dict[str, Any]:
    if target == "companies":
        return company_json(found.item, found.user_count, found.segments)
    return user_json(found.item, found.segments)
