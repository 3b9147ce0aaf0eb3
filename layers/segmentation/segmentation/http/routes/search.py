"""Search of users and companies by a filter, on current data at this instant (API.md, Users/Companies).

A cursor is good only for the search (target and filter) that returned it; any other is a 400
`invalid_cursor`.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import Field, StrictInt

from segmentation import clock
from segmentation.http.auth import READERS, allow
from segmentation.http.models import Company, RequestBody, Shape, User
from segmentation.http.presenters import documented, respond
from segmentation.http.routes.segments import record_json
from segmentation.segments import search

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()


class SearchBody(RequestBody):
    filter: Any = Field(description="A Filter (API.md); segment conditions are evaluated by meaning")
    limit: Annotated[StrictInt, Field(ge=1, le=100)] = 50
    cursor: str | None = Field(default=None, description="next_cursor of the previous page of this search")


class UserPage(Shape):
    data: list[User]
    next_cursor: str | None


class CompanyPage(Shape):
    data: list[Company]
    next_cursor: str | None


def _search(target: search.Target, body: SearchBody) -> Any:
    page = search.search(target, body.filter, body.limit, body.cursor or None, clock.now())
    return respond(
        {"data": [record_json(target, found) for found in page.data], "next_cursor": page.next_cursor}
    )


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
