"""Rules of segment definitions and searches: plain values in, plain values out (no AWS).

Segment ids and name keys, the graph questions that span segments (who refers to whom, does a
filter read company fields), and the opaque search cursor. Body shapes are checked by the route
models; filters by `segmentation.engine.validate_filter`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
from collections.abc import Iterable, Mapping
from typing import Any

from segmentation import cursors

NAME_MAX_CHARS = 255
_ID_ALPHABET = string.ascii_letters + string.digits
_ID_RANDOM_CHARS = 12  # 62**12 ≈ 3e21: a clash is practically impossible, and the put is conditional anyway


def new_segment_id() -> str:
    return "seg_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_RANDOM_CHARS))


def name_key(name: str) -> str:
    """The form under which names are unique per target (case-insensitive)."""
    return name.strip().casefold()


# --- the graph of segment references ---------------------------------------------------------


def _conditions(node: Any) -> Iterable[Mapping[str, Any]]:
    """Every condition of a filter, whatever its nesting (tolerant of malformed nodes)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if not isinstance(current, Mapping):
            continue
        if "and" in current or "or" in current:
            children = current.get("and", current.get("or"))
            if isinstance(children, list):
                stack.extend(children)
        elif "not" in current:
            stack.append(current["not"])
        elif "field" in current:
            yield current


def referenced_segment_ids(filter_: Any) -> set[str]:
    """Ids of the segments a filter names directly in `in_segment` / `not_in_segment`."""
    return {
        condition["value"]
        for condition in _conditions(filter_)
        if condition.get("field") == "segment" and isinstance(condition.get("value"), str)
    }


def dependents(segment_id: str, filters: Mapping[str, Any]) -> list[str]:
    """Ids of the segments (given as id → filter) whose filter refers directly to `segment_id`."""
    return sorted(
        other_id
        for other_id, other_filter in filters.items()
        if other_id != segment_id and segment_id in referenced_segment_ids(other_filter)
    )


def reads_company_fields(filter_: Any, filters: Mapping[str, Any]) -> bool:
    """Whether a user filter, or any segment it refers to at any depth, reads `company.*`."""
    seen: set[str] = set()
    pending = [filter_]
    while pending:
        current = pending.pop()
        for condition in _conditions(current):
            field = condition.get("field")
            if isinstance(field, str) and field.startswith("company."):
                return True
        for ref in referenced_segment_ids(current) - seen:
            seen.add(ref)
            if ref in filters:
                pending.append(filters[ref])
    return False


# --- the search cursor -------------------------------------------------------------------------
# Opaque to callers: base64url of JSON {"t": target, "f": filter fingerprint, "k": key}. "k" is
# the key of the last record returned; the next page resumes the table scan just after it, so
# the order is the table's scan order, stable across pages. The fingerprint makes a cursor
# good only for the search that made it.


def filter_fingerprint(target: str, filter_: Any) -> str:
    canonical = json.dumps([target, filter_], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(target: str, filter_: Any, last_key: str) -> str:
    return cursors.encode({"t": target, "f": filter_fingerprint(target, filter_), "k": last_key})


def decode_cursor(cursor: str, target: str, filter_: Any) -> str:
    """The last key of the previous page; a cursor that is not ours for this search is a 400."""
    invalid = cursors.InvalidCursor(
        "The cursor is not valid for this search: pass back a next_cursor exactly as it was returned, "
        "with the same filter."
    )
    try:
        payload = cursors.decode(cursor)
    except cursors.InvalidCursor:
        raise invalid from None
    if (
        not isinstance(payload, dict)
        or payload.get("t") != target
        or payload.get("f") != filter_fingerprint(target, filter_)
        or not isinstance(payload.get("k"), str)
        or not payload["k"]
    ):
        raise invalid
    return str(payload["k"])
