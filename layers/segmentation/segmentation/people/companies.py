"""Companies: upserts and reads with their derived user count and segments (no boto3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segmentation.errors import NotFound
from segmentation.people import evaluable
from segmentation.people.attributes import attribute_changes
from segmentation.storage import companies as company_store
from segmentation.storage import memberships


def upsert_company(
    company_id: str, fields: Mapping[str, Any], custom_attributes: Mapping[str, Any] | None, now: float
) -> tuple[dict[str, Any], bool]:
    changes = attribute_changes("companies", custom_attributes)
    return company_store.upsert(company_id, fields, changes.sets, changes.removes, now)


def get_company(company_id: str) -> dict[str, Any]:
    item = company_store.get(company_id)
    if item is None:
        raise NotFound(f"No company has the id {company_id!r}.")
    return item


def delete_company(company_id: str) -> None:
    company_store.delete(company_id)


def user_count(company_id: str) -> int:
    """Users linked to the company (kept in Memberships under company#<id> by the upkeep)."""
    return memberships.count(memberships.company_group(company_id))


def segments_of(company: Mapping[str, Any], count: int, now: float) -> list[str]:
    return sorted(evaluable.company_segments({**company, "user_count": count}, now))
