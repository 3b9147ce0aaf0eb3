"""The segment engine: filter validation, compilation, evaluation and timing. No boto3."""

from segmentation.engine.fields import COMPANY_FIELDS, USER_FIELDS, attribute_type_of
from segmentation.engine.model import Filter
from segmentation.engine.segments import PREDEFINED_SEGMENTS, SegmentDef
from segmentation.engine.timestamps import format_timestamp, parse_timestamp
from segmentation.engine.validation import validate_filter
from segmentation.engine.workspace import Workspace

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
