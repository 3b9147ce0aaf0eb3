"""Values of user and company records: checks and conversions shared by both (no AWS, no HTTP).

Records keep timestamps as epoch seconds and every number as a `Decimal` DynamoDB can hold, so
filters compare numbers and nothing is lost on the way in or out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from segmentation.engine import timestamps as engine_timestamps
from segmentation.errors import Invalid

MAX_STRING_LENGTH = 255
MAX_ATTRIBUTE_NAMES = 250
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
ATTRIBUTE_TYPES = ("string", "number", "boolean", "timestamp")

# DynamoDB numbers: up to 38 significant digits, magnitude within [1e-130, 1e126).
_MAX_DIGITS = 38
_MAX_MAGNITUDE = Decimal("1e126")
_MIN_MAGNITUDE = Decimal("1e-130")


def to_number(value: Any) -> Decimal:
    """A JSON number as a Decimal DynamoDB can store; ValueError (with a readable reason) otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError("must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    try:
        # str() of a float is its shortest exact repr, so 0.1 stays 0.1.
        number = Decimal(value) if isinstance(value, int | Decimal) else Decimal(str(value))
    except InvalidOperation as error:
        raise ValueError("must be a number") from error
    if not number.is_finite():
        raise ValueError("must be a finite number")
    if number == 0:
        return Decimal(0)
    if abs(number) >= _MAX_MAGNITUDE or abs(number) < _MIN_MAGNITUDE:
        raise ValueError("is out of the storable range (magnitude 1e-130 to 1e125)")
    # Count significant digits by hand: normalize() would round to the context's 28 digits.
    digits = "".join(map(str, number.as_tuple().digits)).strip("0")
    if len(digits) > _MAX_DIGITS:
        raise ValueError(f"has more than {_MAX_DIGITS} significant digits")
    return number


def parse_timestamp(value: Any) -> Decimal:
    """ISO 8601 with an offset or Z, or Unix seconds → epoch seconds as a storable Decimal."""
    return to_number(engine_timestamps.parse_timestamp(value))


def format_timestamp(epoch: Decimal | float | int) -> str:
    """Epoch seconds → ISO 8601 UTC with Z (milliseconds only when there is a fraction)."""
    return engine_timestamps.format_timestamp(epoch)


def epoch_millis(now: float) -> Decimal:
    """An instant stored to the millisecond, rounded down so it is never after `now` itself."""
    return Decimal(str(now)).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)


def json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def attribute_type(name: str, value: Any) -> str:
    """The type a value gives a custom attribute; names ending in `_at` hold timestamps."""
    if name.endswith("_at"):
        return "timestamp"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    return "number"


def check_attribute_value(value: Any) -> Any:
    """Shape check of one custom attribute value (type-fixing happens against the workspace later)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if len(value) > MAX_STRING_LENGTH:
            raise ValueError(f"must be at most {MAX_STRING_LENGTH} characters")
        return value
    if isinstance(value, int | float | Decimal):
        return to_number(value)
    raise ValueError("must be a string, a number, a boolean or null")


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
        if not ATTRIBUTE_NAME.match(name):
            problems.append({"path": path, "message": "names match ^[A-Za-z_][A-Za-z0-9_]{0,63}$"})
            continue
        if value is None:
            changes.removes.append(name)
            continue
        kind = attribute_type(name, value)
        try:
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
