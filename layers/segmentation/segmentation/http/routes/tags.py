"""Tags (API.md, "Tags, imports and exports"): create, list, read, delete; tag and untag users by
ids (up to 1,000, answered at once) or by a filter (a job).

A user's `tag_ids` is read-only on POST /v1/users: tags change through these routes (and CSV
imports) only, so that each tag's count and filters follow every change.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

from segmentation import clock
from segmentation.http.auth import ADMINS, READERS, WRITERS, allow
from segmentation.http.models import Id, RequestBody, Shape
from segmentation.http.presenters import documented, link, no_content, respond
from segmentation.http.routes.search import EXAMPLE_FILTER
from segmentation.people import tags
from segmentation.people.tags import MAX_USER_IDS
from segmentation.segments import tags as tag_jobs
from segmentation.values import one_line

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()
TAGS = ["Tags"]

TagName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), AfterValidator(one_line)
]
TagId = Annotated[
    str, AfterValidator(one_line), Path(min_length=1, max_length=255, description="A tag id (tag_...)")
]

TAG_LINKS = {
    name: link(operation, "tag_id", "/id")
    for name, operation in (
        ("GetTag", "get_tag_v1_tags__tag_id__get"),
        ("DeleteTag", "delete_tag_v1_tags__tag_id__delete"),
        ("TagUsers", "tag_users_v1_tags__tag_id__users_post"),
    )
}


class TagCreate(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "VIP"}]})

    name: TagName


class TagUsersBody(RequestBody):
    """Either `user_ids` (answered at once) or `filter` (a job), not both."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"user_ids": ["u-123", "u-456"]}, {"filter": EXAMPLE_FILTER}]}
    )

    user_ids: Annotated[list[Id], Field(min_length=1, max_length=MAX_USER_IDS)] | None = Field(
        default=None, description=f"Up to {MAX_USER_IDS} user ids; ids of no user are left out"
    )
    filter: Any = Field(default=None, description="A user Filter: every user it matches when the job runs")

    @model_validator(mode="after")
    def _one_of_them(self) -> TagUsersBody:
        if (self.user_ids is None) == (self.filter is None):
            raise ValueError("send either user_ids (a list of up to 1,000 ids) or filter, not both")
        return self


class Tag(Shape):
    id: str
    name: str
    count: int = Field(description="Users with the tag")
    created_at: str


class TagPage(Shape):
    data: list[Tag]
    next_cursor: str | None


class Tagged(Shape):
    tagged: int = Field(description="Users that did not hold the tag and now do")


class Untagged(Shape):
    untagged: int = Field(description="Users that held the tag and no longer do")


class JobStarted(Shape):
    job_id: str


def _responses(status: int, model: type[Shape], description: str) -> dict[int, Any]:
    responses = documented(status, model, description, 404, 413)
    responses[202] = {
        "description": "A filter was sent: a job tags every user it matches (GET /v1/jobs/{job_id})",
        "content": {"application/json": {"model": JobStarted}},
    }
    return responses


@router.post(
    "/v1/tags",
    tags=TAGS,
    summary="Create a tag",
    description="Names are unique case-insensitively (409 tag_name_taken).",
    responses=documented(201, Tag, "The new tag", 409, 413, links=TAG_LINKS),
)
@allow(*WRITERS)
def create_tag(body: TagCreate):
    return respond(tags.create_tag(body.name, clock.now()).to_json(), 201)


@router.get(
    "/v1/tags",
    tags=TAGS,
    summary="Every tag, by name, each with its count",
    responses=documented(200, TagPage, "The tags"),
)
@allow(*READERS)
def list_tags():
    return respond({"data": [tag.to_json() for tag in tags.list_tags()], "next_cursor": None})


@router.get(
    "/v1/tags/<tag_id>",
    tags=TAGS,
    summary="A tag, with its count",
    responses=documented(200, Tag, "The tag", 404),
)
@allow(*READERS)
def get_tag(tag_id: TagId):
    return respond(tags.get_tag(tag_id).to_json())


@router.delete(
    "/v1/tags/<tag_id>",
    tags=TAGS,
    summary="Delete a tag (admin)",
    description="409 tag_in_use, naming them, while a segment's filter or a message's audience names the "
    "tag. Its users lose it within seconds.",
    responses=documented(204, None, "Deleted", 404, 409),
)
@allow(*ADMINS)
def delete_tag(tag_id: TagId):
    tag_jobs.delete_tag(tag_id, clock.now())
    return no_content()


@router.post(
    "/v1/tags/<tag_id>/users",
    tags=TAGS,
    summary="Tag users: by ids (at once) or by a filter (a job)",
    description=f"`user_ids` (up to {MAX_USER_IDS}): 200 with how many users got the tag. `filter`: 202 "
    "with a job that tags every user the filter matches when it runs. The users' segments follow "
    "within seconds, as after any change.",
    responses=_responses(200, Tagged, "The users were tagged"),
)
@allow(*WRITERS)
def tag_users(tag_id: TagId, body: TagUsersBody):
    now = clock.now()
    if body.user_ids is None:
        return respond({"job_id": tag_jobs.start_by_filter(tag_id, tag_jobs.TAG, body.filter, now)}, 202)
    return respond({"tagged": tags.tag_users(tag_id, body.user_ids, now)})


@router.delete(
    "/v1/tags/<tag_id>/users",
    tags=TAGS,
    summary="Untag users: by ids (at once) or by a filter (a job)",
    description=f"The same bodies as tagging: `user_ids` (up to {MAX_USER_IDS}) → 200 with how many users "
    "lost the tag; `filter` → 202 with a job.",
    responses=_responses(200, Untagged, "The users were untagged"),
)
@allow(*WRITERS)
def untag_users(tag_id: TagId, body: TagUsersBody):
    now = clock.now()
    if body.user_ids is None:
        return respond({"job_id": tag_jobs.start_by_filter(tag_id, tag_jobs.UNTAG, body.filter, now)}, 202)
    return respond({"untagged": tags.untag_users(tag_id, body.user_ids, now)})
