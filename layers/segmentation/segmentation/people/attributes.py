"""Custom attributes: checks of sent values, their types, and registering names first seen.

A name's type is fixed by its first value for the workspace (API.md); storage.attributes keeps
the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from segmentation.engine.fields import CUSTOM_ATTRIBUTE_NAME, attribute_type_of
from segmentation.errors import Invalid
from segmentation.storage import attributes as attribute_store
from segmentation.values import MAX_STRING_LENGTH, parse_timestamp, text_block, to_number


def check_attribute_value(value: Any) -> Any:
    """Shape check of one custom attribute value (type-fixing happens against the workspace later)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING_LENGTH:
            raise ValueError(f"must be at most {MAX_STRING_LENGTH} characters")
        return text_block(value)
    if isinstance(value, int | float | Decimal):
        return to_number(value)
    raise ValueError("must be a string, a number, a boolean or null")


def check_metadata_value(value: Any) -> Any:
    """An event's metadata value: a string, a number or a boolean (no null, no structure)."""
    if value is None:
        raise ValueError("must be a string, a number or a boolean")
    return check_attribute_value(value)


@dataclass
class AttributeChanges:
    """What an upsert does to `custom_attributes`: values to set, names to remove, names first seen."""

    sets: dict[str, Any] = field(default_factory=dict)
    removes: list[str] = field(default_factory=list)
    new_types: dict[str, str] = field(default_factory=dict)


def plan_attribute_changes(sent: Mapping[str, Any], known_types: Mapping[str, str]) -> AttributeChanges:
    """Convert sent custom attributes to stored values and check each against its fixed type.

    Raises Invalid naming every bad attribute (`custom_attributes.<name>`).
    """
    changes = AttributeChanges()
    problems: list[dict[str, Any]] = []
    for name, value in sent.items():
        path = f"custom_attributes.{name}"
        if not CUSTOM_ATTRIBUTE_NAME.fullmatch(name):
            problems.append({"path": path, "message": "names match ^[A-Za-z_][A-Za-z0-9_]{0,63}$"})
            continue
        if value is None:
            changes.removes.append(name)
            continue
        try:
            kind = str(attribute_type_of(name, value))
            stored = parse_timestamp(value) if kind == "timestamp" else check_attribute_value(value)
        except ValueError as error:
            problems.append({"path": path, "message": f"{name} {error}"})
            continue
        fixed = known_types.get(name)
        if fixed is None:
            changes.new_types[name] = kind
        elif fixed != kind:
            problems.append({"path": path, "message": f"{name} holds {fixed} values; got a {kind}"})
            continue
        changes.sets[name] = stored
    if problems:
        raise Invalid("Some custom attributes are not valid.", problems)
    return changes


def attribute_changes(target: str, sent: Mapping[str, Any] | None) -> AttributeChanges:
    """Check sent custom attributes against their fixed types and fix the types of new names.

    Raises Invalid (nothing is written then, except the types of names first seen).
    """
    if not sent:
        return AttributeChanges()
    known = attribute_store.types_of(target, [name for name in sent if CUSTOM_ATTRIBUTE_NAME.fullmatch(name)])
    changes = plan_attribute_changes(sent, known)
    attribute_store.register(target, changes.new_types)
    return changes


def all_types() -> dict[str, dict[str, str]]:
    """What filters may name: custom attribute types of both targets (user filters may read
    company attributes) and, under "events", the event names recorded so far."""
    return {target: attribute_store.all_types(target) for target in ("users", "companies", "events")}
