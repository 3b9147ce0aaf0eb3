"""The segment engine: filter validation, compilation, evaluation and timing. No boto3.

Its names load on first use (PEP 562): a caller that needs one submodule, such as the
authorizer's path to `engine.timestamps`, does not pay for compiling machinery it never runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segmentation.engine.fields import COMPANY_FIELDS, USER_FIELDS, attribute_type_of
    from segmentation.engine.model import Filter
    from segmentation.engine.segments import PREDEFINED_SEGMENTS, SegmentDef
    from segmentation.engine.timestamps import format_timestamp, parse_timestamp
    from segmentation.engine.validation import validate_filter
    from segmentation.engine.workspace import Workspace

_HOMES = {
    "COMPANY_FIELDS": "fields",
    "USER_FIELDS": "fields",
    "attribute_type_of": "fields",
    "Filter": "model",
    "PREDEFINED_SEGMENTS": "segments",
    "SegmentDef": "segments",
    "format_timestamp": "timestamps",
    "parse_timestamp": "timestamps",
    "validate_filter": "validation",
    "Workspace": "workspace",
}

__all__ = [
    "COMPANY_FIELDS",
    "PREDEFINED_SEGMENTS",
    "USER_FIELDS",
    "Filter",
    "SegmentDef",
    "Workspace",
    "attribute_type_of",
    "format_timestamp",
    "parse_timestamp",
    "validate_filter",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # found once
    return value
