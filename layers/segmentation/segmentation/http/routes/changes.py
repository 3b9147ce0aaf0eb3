"""Membership changes: a user's or company's history, a segment's feed and its days
(API.md, Changes and webhooks)."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import AfterValidator, Field

from segmentation import clock
from segmentation.changes import history
from segmentation.http.auth import READERS, allow
from segmentation.http.models import Shape
from segmentation.http.presenters import documented, respond
from segmentation.segments import service as segment_service
from segmentation.storage.changes import Cause
from segmentation.values import one_line

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()

MemberId = Annotated[str, AfterValidator(one_line), Path(min_length=1, max_length=255)]
SegmentId = Annotated[
    str,
    AfterValidator(one_line),
    Path(min_length=1, max_length=255, description="A segment id (seg_..., or new, active, slipping_away)"),
]
Limit = Annotated[int, Query(ge=1, le=100, description="Changes a page, 1-100")]
Cursor = Annotated[str | None, Query(description="A next_cursor returned before")]


class Change(Shape):
    segment_id: str
    target: Literal["users", "companies"]
    member_id: str
    change: Literal["entered", "exited"]
    at: str = Field(description="When it was recorded (ISO 8601, UTC)")
    cause: Cause
    sequence: int = Field(description="1, 2, 3... per change of this member in this segment")


class ChangePage(Shape):
    data: list[Change]
    next_cursor: str | None


class FeedPage(Shape):
    data: list[Change]
    next_cursor: str = Field(description="Always given: kept, it reads the changes that come later")


class DayStats(Shape):
    date: str = Field(description="A UTC day, YYYY-MM-DD")
    count: int = Field(description="Members at the end of the day (today: now)")
    entered: int
    exited: int


class SegmentStats(Shape):
    data: list[DayStats]


@router.get(
    "/v1/users/<user_id>/segment_history",
    tags=["Changes"],
    summary="A user's segment entries and exits, newest first",
    description="Kept 90 days. A deleted user keeps its history; an id never seen is a 404.",
    responses=documented(200, ChangePage, "A page of changes", 404),
)
@allow(*READERS)
def user_segment_history(user_id: MemberId, limit: Limit = 50, cursor: Cursor = None):
    return respond(history.member_history("users", user_id, limit, cursor or None))


@router.get(
    "/v1/companies/<company_id>/segment_history",
    tags=["Changes"],
    summary="A company's segment entries and exits, newest first",
    description="Kept 90 days. A deleted company keeps its history; an id never seen is a 404.",
    responses=documented(200, ChangePage, "A page of changes", 404),
)
@allow(*READERS)
def company_segment_history(company_id: MemberId, limit: Limit = 50, cursor: Cursor = None):
    return respond(history.member_history("companies", company_id, limit, cursor or None))


@router.get(
    "/v1/segments/<segment_id>/changes",
    tags=["Changes"],
    summary="A segment's changes, oldest first: a feed",
    description="From `since` (recorded at or after it; default: the oldest kept), of one kind if "
    "`change` says so. `next_cursor` is always given, even when `data` is empty: keep it and pass it "
    "later to read only what came since. It carries `since` and `change`.",
    responses=documented(200, FeedPage, "The next changes", 404),
)
@allow(*READERS)
def segment_changes(
    segment_id: SegmentId,
    since: Annotated[str | None, Query(description="ISO 8601 or Unix seconds")] = None,
    change: Annotated[Literal["entered", "exited"] | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
):
    record = segment_service.require(segment_id)
    page = history.segment_feed(
        record.id, since=since, change=change, limit=limit, cursor=cursor or None, now=clock.now()
    )
    return respond(page)


@router.get(
    "/v1/segments/<segment_id>/stats",
    tags=["Changes"],
    summary="A segment's size and its entries and exits, a row a UTC day, oldest first",
    description="`count` is the segment's size at the end of the day (today: now; 0 before it existed).",
    responses=documented(200, SegmentStats, "One row a day", 404),
)
@allow(*READERS)
def segment_stats(
    segment_id: SegmentId,
    days: Annotated[int, Query(ge=1, le=history.MAX_STATS_DAYS, description="1-90")] = 30,
):
    record = segment_service.require(segment_id)
    return respond(history.segment_stats(record.id, days, clock.now(), record.created_at))
