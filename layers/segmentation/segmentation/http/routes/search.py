"""Search of users and companies by a filter, on current data at this instant (API.md, Users/Companies).

A cursor is good only for the search (target and filter) that returned it; any other is a 400
`invalid_cursor`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict, Field, StrictInt
from pydantic.config import JsonDict

from segmentation import clock
from segmentation.http.auth import READERS, allow
from segmentation.http.models import Company, CountResult, FieldPage, RequestBody, Shape, User
from segmentation.http.presenters import documented, respond
from segmentation.http.routes.segments import record_json
from segmentation.segments import count, fields, search
from segmentation.values import format_timestamp
from segmentation.vocabulary import Target

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()

# The example of the search and count bodies in the OpenAPI document.
EXAMPLE_FILTER: JsonDict = {
    "and": [
        {"field": "signed_up_at", "op": "less_than_days_ago", "value": 14},
        {"field": "email", "op": "exists"},
    ]
}


class SearchBody(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"filter": EXAMPLE_FILTER, "limit": 10}]})

    filter: Any = Field(description="A Filter (API.md); segment conditions are evaluated by meaning")
    limit: Annotated[StrictInt, Field(ge=1, le=100)] = 50
    cursor: str | None = Field(default=None, description="next_cursor of the previous page of this search")


class UserPage(Shape):
    data: list[User]
    next_cursor: str | None


class CompanyPage(Shape):
    data: list[Company]
    next_cursor: str | None


def _search(target: Target, body: SearchBody) -> Any:
    page = search.search(target, body.filter, body.limit, body.cursor or None, clock.now())
    return respond(
        {"data": [record_json(target, found) for found in page.data], "next_cursor": page.next_cursor}
    )


class CountBody(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"filter": EXAMPLE_FILTER}]})

    filter: Any = Field(description="A Filter (API.md)")


def _count(target: Target, body: CountBody) -> Any:
    answer = count.cached_count(target, body.filter, clock.now())
    found = answer.found
    return respond(
        {
            "count": found.count,
            "exact": found.exact,
            "margin": found.margin,
            "as_of": format_timestamp(answer.as_of),
        }
    )


@router.post(
    "/v1/users/count",
    tags=["Users"],
    summary="How many users match a filter now",
    description="Exact (margin 0) for one stored segment or a table read within the request; otherwise "
    "an unbiased estimate from a uniform sample, with margin the 95% half-width. The same count asked "
    "again within 60 seconds is answered from a cache; `as_of` says when it was taken.",
    responses=documented(200, CountResult, "The count", 400, 413, 422),
)
@allow(*READERS)
def count_users(body: CountBody):
    return _count("users", body)


@router.post(
    "/v1/companies/count",
    tags=["Companies"],
    summary="How many companies match a filter now",
    description="As POST /v1/users/count, for companies.",
    responses=documented(200, CountResult, "The count", 400, 413, 422),
)
@allow(*READERS)
def count_companies(body: CountBody):
    return _count("companies", body)


@router.get(
    "/v1/fields",
    tags=["Segments"],
    summary="The fields a filter of a target may use now, with their types and ops",
    responses=documented(200, FieldPage, "The fields", 422),
)
@allow(*READERS)
def list_fields(target: Annotated[Literal["users", "companies"], Query()] = "users"):
    return respond({"data": fields.fields(target), "next_cursor": None})


@router.post(
    "/v1/users/search",
    tags=["Users"],
    summary="Search users by a filter",
    responses=documented(200, UserPage, "A page of matching users", 400, 413, 422),
)
@allow(*READERS)
def search_users(body: SearchBody):
    return _search("users", body)


@router.post(
    "/v1/companies/search",
    tags=["Companies"],
    summary="Search companies by a filter",
    responses=documented(200, CompanyPage, "A page of matching companies", 400, 413, 422),
)
@allow(*READERS)
def search_companies(body: SearchBody):
    return _search("companies", body)
