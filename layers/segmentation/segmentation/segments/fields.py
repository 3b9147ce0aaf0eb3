"""The fields a filter of a target may use now (GET /v1/fields): builders of filters read this
instead of hard-coding the list, so a new custom attribute appears without a code change."""

from __future__ import annotations

from typing import Any

from segmentation.engine.fields import COMPANY_FIELDS, OPS_BY_TYPE, SEGMENT_OPS, STANDARD_FIELDS, Target
from segmentation.people.attributes import all_types


def _field(name: str, kind: str, source: str) -> dict[str, Any]:
    return {"field": name, "type": kind, "ops": list(OPS_BY_TYPE[kind]), "source": source}


def fields(target: Target) -> list[dict[str, Any]]:
    """Standard fields, custom attributes seen so far, `company.*` (for users), and `segment`."""
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
    found.append({"field": "segment", "type": "segment", "ops": list(SEGMENT_OPS), "source": "segment"})
    return found
