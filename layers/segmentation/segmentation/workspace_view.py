"""Bridges from records to the workspace: attribute types and segments at this instant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segmentation.records import ATTRIBUTE_NAME, AttributeChanges, plan_attribute_changes
from segmentation.storage import attributes as attribute_store
from segmentation.storage import companies as company_store


def attribute_changes(target: str, sent: Mapping[str, Any] | None) -> AttributeChanges:
    """Check sent custom attributes against their fixed types and fix the types of new names.

    Raises Invalid (nothing is written then, except the types of names first seen).
    """
    if not sent:
        return AttributeChanges()
    known = attribute_store.types_of(target, [name for name in sent if ATTRIBUTE_NAME.match(name)])
    changes = plan_attribute_changes(sent, known)
    attribute_store.register(target, changes.new_types)
    return changes


def _workspace() -> Any:
    from segmentation.storage.segments import load_workspace  # cached per process by its owner

    return load_workspace()


def user_segments(user: Mapping[str, Any], now: float) -> frozenset[str]:
    """The user's segments evaluated now; its companies are read (one BatchGetItem) only if needed."""
    workspace = _workspace()
    record = dict(user)
    if workspace.uses_company_fields and user.get("company_ids"):
        record["companies"] = company_store.get_many(user["company_ids"])
    return frozenset(workspace.segments_of(record, now, target="users"))


def company_segments(company: Mapping[str, Any], now: float) -> frozenset[str]:
    return frozenset(_workspace().segments_of(dict(company), now, target="companies"))
