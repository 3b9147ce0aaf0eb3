"""Words the layers share, below both storage and the engine: what a target is, where a user keeps
its tags, how many custom attributes a workspace may name, under which form names are unique, and
what counts as a number. Pure: imports nothing of the project."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

Target = Literal["users", "companies"]
TARGETS = ("users", "companies")

# Custom attribute names per target a workspace may hold (API.md).
MAX_ATTRIBUTE_NAMES = 250

# The user item's tags: a string set of tag ids (absent: no tags); the filter field `tag` tests it.
TAG_IDS = "tag_ids"


def name_key(name: str) -> str:
    """The form under which names are unique (case-insensitive, surrounding blanks ignored): a
    segment's per target, a tag's in the workspace."""
    return name.strip().casefold()


def is_number(value: object) -> bool:
    """A JSON/DynamoDB number: int, float or Decimal, but not bool (bool is an int in Python)."""
    return value.__class__ in (int, float, Decimal)
