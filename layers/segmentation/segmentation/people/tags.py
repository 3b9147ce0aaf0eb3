"""Tags: Intercom's hand-made lists of users (API.md, "Tags, imports and exports").

A tag is a definition (storage.tags); a user holds it in its `tag_ids`, written with the tag's
link and count by storage.user_batches, as a user change (rev + 1): the users stream then
re-evaluates the user's segments like after any write. Deleting a tag (it may be named by
filters) is segments.tags' job. No boto3 here.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from segmentation import errors
from segmentation.storage import memberships, user_batches
from segmentation.storage import tags as tag_store
from segmentation.storage.tags import TagRecord
from segmentation.storage.user_batches import Change
from segmentation.values import format_timestamp
from segmentation.vocabulary import name_key

_ID_ALPHABET = string.ascii_letters + string.digits
# Users tagged or untagged by ids in one request (API.md); more take a filter (a job).
MAX_USER_IDS = 1_000


def new_tag_id() -> str:
    return "tag_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


@dataclass(frozen=True)
class Tag:
    record: TagRecord
    count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.record.id,
            "name": self.record.name,
            "count": self.count,
            "created_at": format_timestamp(self.record.created_at),
        }


def _counted(records: Sequence[TagRecord]) -> list[Tag]:
    counts = memberships.counts(memberships.tag_group(record.id) for record in records)
    return [Tag(record, max(0, counts[memberships.tag_group(record.id)])) for record in records]


def require(tag_id: str) -> TagRecord:
    record = tag_store.get(tag_id)
    if record is None:
        raise errors.NotFound(f"No tag has the id '{tag_id}'.", code="tag_not_found")
    return record


def get_tag(tag_id: str) -> Tag:
    return _counted([require(tag_id)])[0]


def list_tags() -> list[Tag]:
    return _counted(tag_store.all_tags())


def create_tag(name: str, now: float) -> Tag:
    """A new tag (409 tag_name_taken when one has that name, case-insensitively)."""
    for _ in range(3):
        try:
            return Tag(tag_store.create(new_tag_id(), name.strip(), now), 0)
        except errors.Retryable:  # a random id drawn twice
            continue
    raise errors.Retryable("could not draw a free tag id")


def resolve_names(names: Iterable[str], now: float) -> dict[str, str]:
    """name_key -> tag id for each name, creating the tags that do not exist yet (a name taken
    meanwhile by another writer resolves to that writer's tag)."""
    wanted = {name_key(name): name.strip() for name in names}
    found = tag_store.ids_by_name(wanted.values()) if wanted else {}
    for key, name in wanted.items():
        if key in found:
            continue
        try:
            found[key] = create_tag(name, now).record.id
        except errors.Conflict as taken:
            owner = next((d.get("tag_id") for d in taken.details or [] if d.get("tag_id")), None)
            if owner is None:
                raise
            found[key] = str(owner)
    return found


def _changed(tag_id: str, user_ids: Sequence[str], change: Change, now: float) -> user_batches.Outcome:
    require(tag_id)
    try:
        return user_batches.write(
            {user_id: [change] for user_id in dict.fromkeys(user_ids)}, now, create=False, skip_unchanged=True
        )
    except user_batches.TagGone as gone:
        raise errors.NotFound(
            f"No tag has the id '{tag_id}' (it was deleted).", code="tag_not_found"
        ) from gone


def tag_users(tag_id: str, user_ids: Sequence[str], now: float) -> int:
    """Tag these users (those that exist); how many did not hold the tag before."""
    outcome = _changed(tag_id, user_ids, Change(tags_added=(tag_id,)), now)
    return outcome.tagged.get(tag_id, 0)


def untag_users(tag_id: str, user_ids: Sequence[str], now: float) -> int:
    """Untag these users; how many held the tag before."""
    outcome = _changed(tag_id, user_ids, Change(tags_removed=(tag_id,)), now)
    return outcome.untagged.get(tag_id, 0)
