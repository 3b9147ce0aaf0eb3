"""Raw filter JSON -> a checked Filter tree, collecting every problem with the path of its node.

With `attributes` (name -> type per target) custom attributes are checked against the registry;
without it (compiling stored, already validated segments) their type is read off the op and value.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from segmentation.engine.fields import (
    BOOLEAN_OPS,
    COMPANY_FIELDS,
    CUSTOM_ATTRIBUTE_NAME,
    DAYS_OPS,
    EVENT_FIELD_TYPES,
    EVENT_NAME,
    MAX_DAYS,
    NUMBER_OPS,
    OPS_BY_TYPE,
    PRESENCE_OPS,
    STANDARD_FIELDS,
    STRING_OPS,
    TAG_FIELD,
    TIMESTAMP_OPS,
    VALUE_TYPES,
    VALUELESS_OPS,
)
from segmentation.engine.model import And, Condition, DateValue, FieldRef, Filter, Not, Or
from segmentation.engine.timestamps import parse_date, parse_timestamp
from segmentation.event_summaries.stored import MAX_WINDOW_DAYS
from segmentation.vocabulary import TAG_IDS, is_number

MAX_DEPTH = 6  # nested and/or/not around a condition
MAX_CONDITIONS = 100
_MAX_ERRORS = 20
_CONDITION_KEYS = ("field", "op", "value", "within_days")
# Attributes[EVENTS]: the event names seen so far (name -> "event"), beside the two targets;
# Attributes[TAGS]: the tags that exist (tag id -> "tag"), at least those the filter names.
EVENTS = "events"
TAGS = "tags"
_COMBINATORS = ("and", "or", "not")

Attributes = Mapping[str, Mapping[str, str]]


class FilterErrors(Exception):
    """The problems found in one filter, each {"path", "message"}."""

    def __init__(self, details: list[dict[str, str]]):
        super().__init__(details[0]["message"] if details else "invalid filter")
        self.details = details


def parse_filter(raw: Any, *, target: str, attributes: Attributes | None, path: str = "filter") -> Filter:
    """Parse and check one filter (not its segment references). Raises FilterErrors."""
    parser = _Parser(target, attributes)
    tree = parser.node(raw, path, 0)
    if parser.count > MAX_CONDITIONS:
        parser.error(path, f"a filter has at most {MAX_CONDITIONS} conditions; this one has {parser.count}")
    if parser.errors or tree is None:
        raise FilterErrors(parser.errors or [{"path": path, "message": "invalid filter"}])
    return tree


def _listing(names: Any, limit: int = 30) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


def _number(value: Any) -> float | None:
    """A finite JSON number as float, else None."""
    if not is_number(value):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


class _Parser:
    def __init__(self, target: str, attributes: Attributes | None):
        self.target = target
        self.attributes = attributes
        self.errors: list[dict[str, str]] = []
        self.count = 0

    def error(self, path: str, message: str) -> None:
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append({"path": path, "message": message})

    # -- tree ---------------------------------------------------------------------------------

    def node(self, raw: Any, path: str, depth: int) -> Filter | None:
        if not isinstance(raw, dict):
            self.error(
                path,
                f"a filter is an object: {{'and': [...]}}, {{'or': [...]}}, {{'not': {{...}}}} "
                f"or a condition {{'field', 'op', 'value'}}; got {_kind_of(raw)}",
            )
            return None
        combinator = next((key for key in _COMBINATORS if key in raw), None)
        if combinator is not None:
            return self.combinator(raw, combinator, path, depth)
        if "field" in raw or "op" in raw:
            self.count += 1
            return self.condition(raw, path)
        keys = ", ".join(repr(str(k)) for k in raw) or "none"
        self.error(
            path,
            f"unknown filter keys ({keys}); use one of 'and', 'or', 'not', "
            "or a condition with 'field', 'op' and 'value'",
        )
        return None

    def combinator(self, raw: dict[str, Any], combinator: str, path: str, depth: int) -> Filter | None:
        here = f"{path}.{combinator}"
        ok = True
        for key in raw:
            if key != combinator:
                self.error(
                    f"{path}.{key}",
                    f"unexpected key {str(key)!r}: a {combinator!r} node holds only {combinator!r}",
                )
                ok = False
        if depth + 1 > MAX_DEPTH:
            self.error(path, f"filters nest at most {MAX_DEPTH} levels of and/or/not; flatten this part")
            return None
        body = raw[combinator]
        if combinator == "not":
            item = self.node(body, here, depth + 1)
            return Not(item) if ok and item is not None else None
        if not isinstance(body, list) or not body:
            self.error(
                here,
                f"{combinator!r} takes a non-empty list of filters; got "
                f"{'an empty list' if body == [] else _kind_of(body)}",
            )
            return None
        items = [self.node(child, f"{here}[{i}]", depth + 1) for i, child in enumerate(body)]
        if not ok or any(item is None for item in items):
            return None
        children = tuple(item for item in items if item is not None)
        return And(children) if combinator == "and" else Or(children)

    # -- conditions ---------------------------------------------------------------------------

    def condition(self, raw: dict[str, Any], path: str) -> Condition | None:
        for key in raw:
            if key not in _CONDITION_KEYS:
                self.error(
                    f"{path}.{key}",
                    f"unexpected key {str(key)!r}; a condition has 'field', 'op', (for most ops) 'value' "
                    "and, on an event count, 'within_days'",
                )
                return None
        field_name, op = raw.get("field"), raw.get("op")
        if not isinstance(field_name, str):
            self.error(
                f"{path}.field", f"'field' must be a string naming a field; got {_kind_of(field_name)}"
            )
            return None
        if not isinstance(op, str):
            self.error(f"{path}.op", f"'op' must be a string; got {_kind_of(op)}")
            return None
        ref = self.field(field_name, op, raw.get("value"), f"{path}.field")
        if ref is None:
            return None
        if "within_days" in raw:
            window = raw["within_days"]
            if ref.kind != "event" or ref.stat != "count":
                self.error(f"{path}.within_days", "within_days applies to event.<name>.count fields only")
                return None
            if window.__class__ is not int or not 1 <= window <= MAX_WINDOW_DAYS:
                self.error(
                    f"{path}.within_days",
                    f"within_days is a whole number of days from 1 to {MAX_WINDOW_DAYS}",
                )
                return None
            ref = dataclasses.replace(ref, window=window)
        allowed = OPS_BY_TYPE[ref.type]
        if op not in allowed:
            what = "segment references" if ref.type == "segment" else f"{ref.type} field {field_name!r}"
            self.error(f"{path}.op", f"op {op!r} does not apply to {what}; use one of {', '.join(allowed)}")
            return None
        value = self.value(ref, op, raw, f"{path}.value")
        if value is _BAD:
            return None
        if ref.kind == "tag" and self.attributes is not None and value not in self.attributes.get(TAGS, {}):
            self.error(f"{path}.value", f"no tag has the id {value!r}; GET /v1/tags lists the tags")
            return None
        return Condition(ref, op, value, path)

    def field(self, name: str, op: str, value: Any, path: str) -> FieldRef | None:
        if name == "segment":
            return FieldRef("segment", "segment", "segment")
        if name == TAG_FIELD:
            if self.target != "users":
                self.error(path, "tag applies to user filters only: companies have no tags")
                return None
            return FieldRef("tag", TAG_IDS, "tag")
        if name.startswith("event."):
            return self.event_field(name, path)
        via_company = False
        target = self.target
        rest = name
        if name.startswith("company."):
            if self.target != "users":
                self.error(
                    path,
                    "company.<field> applies to user filters; a company filter names "
                    f"its fields directly: {_listing(COMPANY_FIELDS)}",
                )
                return None
            via_company, target, rest = True, "companies", name[len("company.") :]
        if rest.startswith("custom_attributes."):
            attribute = rest[len("custom_attributes.") :]
            kind = self.custom_type(target, attribute, op, value, path)
            return None if kind is None else FieldRef("custom", attribute, kind, via_company)
        standard = STANDARD_FIELDS[target]
        if rest in standard:
            return FieldRef("standard", rest, standard[rest], via_company)
        if via_company:
            choices = [f"company.{f}" for f in standard] + ["company.custom_attributes.<name>"]
        else:
            choices = [*standard, "custom_attributes.<name>"]
            if target == "users":
                choices += ["company.<field>", TAG_FIELD]
            choices += ["segment"]
        self.error(path, f"unknown field {name!r} for {self.target} filters; use one of {_listing(choices)}")
        return None

    def event_field(self, name: str, path: str) -> FieldRef | None:
        """`event.<name>.count|first_at|last_at` (user filters only; names are case-insensitive)."""
        if self.target != "users":
            self.error(path, "event.<name>.<stat> fields apply to user filters only")
            return None
        event, _, stat = name[len("event.") :].rpartition(".")
        if stat not in EVENT_FIELD_TYPES or not EVENT_NAME.fullmatch(event):
            self.error(
                path,
                "an event field is event.<name>.count, event.<name>.first_at or event.<name>.last_at, "
                f"with a name matching {EVENT_NAME.pattern}; got {name!r}",
            )
            return None
        event = event.lower()
        if self.attributes is not None and event not in self.attributes.get(EVENTS, {}):
            known = sorted(self.attributes.get(EVENTS, {}))
            hint = f"known: {_listing(known)}" if known else "none has been recorded yet"
            self.error(path, f"unknown event {event!r}; {hint}")
            return None
        return FieldRef("event", event, EVENT_FIELD_TYPES[stat], stat=stat)

    def custom_type(self, target: str, attribute: str, op: str, value: Any, path: str) -> str | None:
        if not CUSTOM_ATTRIBUTE_NAME.fullmatch(attribute):
            self.error(
                path, f"custom attribute names match ^[A-Za-z_][A-Za-z0-9_]{{0,63}}$; got {attribute!r}"
            )
            return None
        if self.attributes is None:
            return _infer_type(op, value)
        known = self.attributes.get(target, {})
        kind = known.get(attribute)
        if kind not in VALUE_TYPES:
            hint = f"known: {_listing(sorted(known))}" if known else "none are known yet"
            self.error(path, f"unknown custom attribute {attribute!r} of {target}; {hint}")
            return None
        return kind

    def value(self, ref: FieldRef, op: str, raw: dict[str, Any], path: str) -> object:
        has_value = raw.get("value") is not None
        value = raw.get("value")
        if op in VALUELESS_OPS:
            if has_value:
                self.error(path, f"op {op!r} takes no value; leave 'value' out")
                return _BAD
            return None
        if not has_value:
            self.error(path, f"op {op!r} needs a value: {_expected(ref.type, op)}")
            return _BAD
        normalized = _normalize(ref.type, op, value)
        if normalized is _BAD:
            self.error(path, f"op {op!r} needs {_expected(ref.type, op)}; got {_kind_of(value)}")
        return normalized


_BAD: Any = object()


def _infer_type(op: str, value: Any) -> str:
    """The type of a custom attribute as an already validated condition implies it."""
    if op in PRESENCE_OPS:
        return "any"
    if op in BOOLEAN_OPS:
        return "boolean"
    if op in TIMESTAMP_OPS:
        return "timestamp"
    if op in STRING_OPS and op not in NUMBER_OPS:
        return "string"
    if op in NUMBER_OPS and op not in STRING_OPS:
        return "number"
    sample = value[0] if isinstance(value, list) and value else value
    return "number" if is_number(sample) else "string"


def _expected(kind: str, op: str) -> str:
    if op in ("in", "not_in"):
        return f"a non-empty list of {kind}s"
    if op in DAYS_OPS:
        whole = "a whole number" if op == "exactly_days_ago" else "a number"
        return f"{whole} of days from 0 to {MAX_DAYS}"
    if op in ("before", "after", "on"):
        return "an ISO date (2026-11-01), an ISO 8601 timestamp with offset or Z, or Unix seconds"
    if kind == "segment":
        return "a segment id (a string)"
    if kind == "tag":
        return "a tag id (a string)"
    return f"a {kind}" if kind != "number" else "a finite number"


def _normalize(kind: str, op: str, value: Any) -> object:
    """The compared form of a condition's value, or _BAD when it does not fit."""
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            return _BAD
        items = [_normalize(kind, "eq", item) for item in value]
        return _BAD if any(item is _BAD for item in items) else frozenset(items)
    if kind == "string":
        return value.casefold() if isinstance(value, str) else _BAD
    if kind == "number":
        number = _number(value)
        return _BAD if number is None else number
    if kind in ("segment", "tag"):
        return value if isinstance(value, str) and value else _BAD
    if op in DAYS_OPS:
        days = _number(value)
        if days is None or not 0 <= days <= MAX_DAYS:
            return _BAD
        if op == "exactly_days_ago" and not days.is_integer():
            return _BAD
        return days
    return _date_value(value)


def _date_value(value: Any) -> object:
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return DateValue(day=parse_date(value.strip()))
        except ValueError:
            return _BAD
    if isinstance(value, str | int | float | Decimal) and not isinstance(value, bool):
        try:
            return DateValue(epoch=parse_timestamp(value))
        except ValueError:
            return _BAD
    return _BAD


__all__ = ["EVENTS", "MAX_CONDITIONS", "MAX_DEPTH", "TAGS", "Attributes", "FilterErrors", "parse_filter"]
