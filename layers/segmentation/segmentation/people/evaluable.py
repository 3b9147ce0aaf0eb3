"""A user or company as the engine evaluates it, and its segments at this instant."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segmentation.engine import Workspace
from segmentation.storage import companies as company_store
from segmentation.storage.segments import load_workspace


def _workspace() -> Workspace:
    return load_workspace()  # cached per process by its owner


def user_segments(user: Mapping[str, Any], now: float) -> frozenset[str]:
    """The user's segments evaluated now; its companies are read (one BatchGetItem) only if needed."""
    workspace = _workspace()
    record = dict(user)
    if workspace.uses_company_fields and user.get("company_ids"):
        record["companies"] = company_store.get_many(user["company_ids"])
    return frozenset(workspace.segments_of(record, now, target="users"))


def company_segments(company: Mapping[str, Any], now: float) -> frozenset[str]:
    return frozenset(_workspace().segments_of(dict(company), now, target="companies"))
