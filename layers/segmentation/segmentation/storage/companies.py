"""The Companies table: upserts, reads (one or a batch) and deletes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from segmentation.settings import get_settings
from segmentation.storage import people_items


def _table_name() -> str:
    return get_settings().companies_table


def get(company_id: str) -> dict[str, Any] | None:
    return people_items.get(_table_name(), {"company_id": company_id})


def get_many(company_ids: Iterable[str]) -> list[dict[str, Any]]:
    """The existing companies among these ids, in the order given."""
    return people_items.get_many(_table_name(), "company_id", company_ids)


def upsert(
    company_id: str,
    fields: Mapping[str, Any],
    attribute_sets: Mapping[str, Any],
    attribute_removes: Iterable[str],
    now: float,
) -> tuple[dict[str, Any], bool]:
    return people_items.upsert(
        _table_name(), {"company_id": company_id}, fields, attribute_sets, attribute_removes, now
    )


def delete(company_id: str) -> dict[str, Any]:
    return people_items.delete(_table_name(), {"company_id": company_id}, "company")


def upsert_many(upserts: Mapping[str, people_items.Upsert], now: float) -> set[str]:
    """Many companies in few calls (people_items.upsert_many); the ids too large to write."""
    return people_items.upsert_many(_table_name(), "company_id", upserts, now)
