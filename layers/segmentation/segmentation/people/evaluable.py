"""The one path from stored items to the records the engine evaluates.

Whatever decides membership (upkeep, a user's or company's segments now, search, members,
counts, fan-out and auto messages) builds its records here, so every read path evaluates the
same thing:
- a company is its item with `user_count` (its linked users, counted by upkeep);
- a user is its item with `companies`: its existing companies, in `company_ids` order, each
  as above. They are read only when the evaluation at hand reads `company.*`: the engine gives
  the same answer with or without them otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from segmentation.definitions import load_workspace
from segmentation.engine import Workspace
from segmentation.storage import companies as company_store
from segmentation.storage import memberships
from segmentation.storage.people_items import KEY_ATTRIBUTE
from segmentation.vocabulary import Target

Record = dict[str, Any]


class Evaluator:
    """Stored items made evaluable against one workspace, with the companies read once per
    batch (a request, a stream batch, a page of a scan)."""

    def __init__(self, workspace: Workspace):
        self.workspace = workspace
        self._companies: dict[str, Record | None] = {}

    def users(self, items: Iterable[Mapping[str, Any]], *, companies: bool | None = None) -> list[Record]:
        """Users as evaluated. `companies`: attach them (default: when the workspace's user
        segments read company.*; pass `reads_company_fields(filter)` for a search or audience)."""
        records = [dict(item) for item in items]
        if self.workspace.uses_company_fields if companies is None else companies:
            self._read_companies({c for record in records for c in _company_ids(record)})
            for record in records:
                record["companies"] = [
                    found for c in _company_ids(record) if (found := self._companies.get(c)) is not None
                ]
        return records

    def companies(self, items: Iterable[Mapping[str, Any]]) -> list[Record]:
        return companies(items)

    def of(
        self, target: Target, items: Iterable[Mapping[str, Any]], *, companies: bool | None = None
    ) -> list[Record]:
        return self.companies(items) if target == "companies" else self.users(items, companies=companies)

    def reads_company_fields(self, filter_: Mapping[str, Any]) -> bool:
        return self.workspace.reads_company_fields(filter_)

    def segments_of(self, target: Target, record: Mapping[str, Any], now: float) -> frozenset[str]:
        """The segments an evaluable record is in at `now`."""
        return frozenset(self.workspace.segments_of(record, now, target))

    def _read_companies(self, wanted: set[str]) -> None:
        missing = sorted(wanted - set(self._companies))
        if not missing:
            return
        found = self.companies(company_store.get_many(missing))
        self._companies.update(dict.fromkeys(missing))
        self._companies.update((c["company_id"], c) for c in found)


def companies(items: Iterable[Mapping[str, Any]]) -> list[Record]:
    """Companies as evaluated (and as templates see them): each with its `user_count`."""
    records = [dict(item) for item in items]
    counts = memberships.counts(memberships.company_group(r["company_id"]) for r in records)
    for record in records:
        record["user_count"] = counts[memberships.company_group(record["company_id"])]
    return records


def _company_ids(record: Mapping[str, Any]) -> list[str]:
    return [str(c) for c in record.get("company_ids") or ()]


def member_id(target: Target, record: Mapping[str, Any]) -> str:
    return str(record[KEY_ATTRIBUTE[target]])


def user_segments(user: Mapping[str, Any], now: float) -> frozenset[str]:
    """A user's segments at `now` (GET /v1/users/{id}, logins, upserts)."""
    evaluator = Evaluator(load_workspace())
    return evaluator.segments_of("users", evaluator.users([user])[0], now)


def company_segments(company: Mapping[str, Any], now: float) -> tuple[int, frozenset[str]]:
    """A company's user count and its segments at `now`."""
    record = companies([company])[0]
    return int(record["user_count"]), Evaluator(load_workspace()).segments_of("companies", record, now)
