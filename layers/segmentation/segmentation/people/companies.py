"""Companies: upserts and reads with their derived user count and segments (no boto3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segmentation.errors import NotFound
from segmentation.people import evaluable
from segmentation.people.attributes import attribute_changes
from segmentation.storage import companies as company_store


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


def described(company: Mapping[str, Any], now: float) -> tuple[int, list[str]]:
    """The company's user count (its linked users) and the segments it is in now."""
    count, segments = evaluable.company_segments(company, now)
    return count, sorted(segments)
