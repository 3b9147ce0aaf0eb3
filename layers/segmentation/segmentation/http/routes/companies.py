"""Companies: upsert, read (with user_count and segments) and delete (API.md, Companies)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import AfterValidator

from segmentation import clock
from segmentation.http.auth import INGESTERS, READERS, allow
from segmentation.http.models import Company, CompanyUpsert
from segmentation.http.presenters import company_json, documented, link, no_content, respond
from segmentation.people import companies
from segmentation.values import one_line

# Route functions have no return annotation on purpose: Powertools would validate the Response against it.
router = APIGatewayRouter()
COMPANY_LINKS = {
    "GetCompany": link("get_company_v1_companies__company_id__get", "company_id", "/company_id"),
    "DeleteCompany": link("delete_company_v1_companies__company_id__delete", "company_id", "/company_id"),
}
CompanyId = Annotated[
    str,
    AfterValidator(one_line),
    Path(min_length=1, max_length=255, description="The app's id of the company"),
]


def _company_body(item: dict, now: float) -> dict:
    count, segments = companies.described(item, now)
    return company_json(item, count, segments)


@router.post(
    "/v1/companies",
    tags=["Companies"],
    summary="Create or update a company",
    responses={
        **documented(200, Company, "Updated", 400, 413, 422, links=COMPANY_LINKS),
        **documented(201, Company, "Created", links=COMPANY_LINKS),
    },
)
@allow(*INGESTERS)
def upsert_company(body: CompanyUpsert):
    now = clock.now()
    fields = body.sent_fields("company_id", "custom_attributes")
    item, created = companies.upsert_company(body.company_id, fields, body.custom_attributes, now)
    return respond(_company_body(item, now), 201 if created else 200)


@router.get(
    "/v1/companies/<company_id>",
    tags=["Companies"],
    summary="A company, with its segments now",
    responses=documented(200, Company, "The company", 404),
)
@allow(*READERS)
def get_company(company_id: CompanyId):
    return respond(_company_body(companies.get_company(company_id), clock.now()))


@router.delete(
    "/v1/companies/<company_id>",
    tags=["Companies"],
    summary="Delete a company",
    responses=documented(204, None, "Deleted", 404),
)
@allow(*INGESTERS)
def delete_company(company_id: CompanyId):
    companies.delete_company(company_id)
    return no_content()
