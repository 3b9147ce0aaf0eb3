"""The fields a filter of a target may use now (GET /v1/fields): builders of filters read this
instead of hard-coding the list, so a new custom attribute appears without a code change."""

from __future__ import annotations

from typing import Any

from segmentation.engine.fields import (
    COMPANY_FIELDS,
    EVENT_FIELD_TYPES,
    OPS_BY_TYPE,
    SEGMENT_OPS,
    STANDARD_FIELDS,
    TAG_FIELD,
    TAG_OPS,
)
from segmentation.people.attributes import all_types
from segmentation.vocabulary import Target


def _field(name: str, kind: str, source: str) -> dict[str, Any]:
    return {"field": name, "type": kind, "ops": list(OPS_BY_TYPE[kind]), "source": source}


def fields(target: Target) -> list[dict[str, Any]]:
    """Standard fields, custom attributes seen so far, `company.*`, events and `tag` (for users),
    and `segment`."""
    types = all_types()
    found = [_field(name, kind, "standard") for name, kind in STANDARD_FIELDS[target].items()]
    found += [
        _field(f"custom_attributes.{name}", kind, "custom") for name, kind in sorted(types[target].items())
    ]
    if target == "users":
        found += [_field(f"company.{name}", kind, "company") for name, kind in COMPANY_FIELDS.items()]
        found += [
            _field(f"company.custom_attributes.{name}", kind, "company")
            for name, kind in sorted(types["companies"].items())
        ]
        # A count also takes "within_days" (1 to 90): the events of the last N days only.
        found += [
            _field(f"event.{name}.{stat}", kind, "event")
            for name in sorted(types["events"])
            for stat, kind in EVENT_FIELD_TYPES.items()
        ]
        # A standard field of user filters (API.md); its value is a tag id (GET /v1/tags).
        found.append({"field": TAG_FIELD, "type": "tag", "ops": list(TAG_OPS), "source": "standard"})
    found.append({"field": "segment", "type": "segment", "ops": list(SEGMENT_OPS), "source": "segment"})
    return found
