"""Tag commands that look beyond users: deleting a tag that filters may name, and tagging or
untagging every user a filter matches (a job). No boto3 here.

Delete is race-free like a segment's: its checks (no segment's filter, no message's audience
names the tag) are made against the definitions' version, and the delete is conditioned on that
version and moves it on. A segment written meanwhile is conditioned on the version too, and a
message naming a tag moves it when it is created, sent or put live (messaging.service): one of
the two writes fails and checks again. Users lose the deleted tag right after, through a job
that pages its links (no link can be added once the tag is gone: each addition checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from segmentation import definitions, errors
from segmentation.engine import validate_filter
from segmentation.engine.segments import referenced_tag_ids
from segmentation.jobs import BulkJob
from segmentation.messaging.model import Message
from segmentation.people import tags
from segmentation.people.attributes import all_types as all_attribute_types
from segmentation.segments import search
from segmentation.storage import jobs as job_store
from segmentation.storage import (
    membership_writes,
    memberships,
    messages,
    people_scans,
    queues,
    user_batches,
)
from segmentation.storage import tags as tag_store
from segmentation.storage.jobs import JobRecord, Progress
from segmentation.storage.segments import ConcurrentChange
from segmentation.storage.user_batches import Change

TAG, UNTAG = "tag", "untag"
# Users read per chunk of a job (one scan page, or one page of a deleted tag's links).
USERS_PER_CHUNK = 500
_WRITE_ATTEMPTS = 3


def dependents(tag_id: str) -> tuple[list[str], list[str]]:
    """(ids of the segments whose filter names the tag, ids of the messages whose audience does)."""
    segments = sorted(
        record.id
        for record in definitions.records(check_now=True)
        if tag_id in referenced_tag_ids(record.filter)
    )
    found = (Message.from_item(item) for item in messages.scan_all())
    named = sorted(message.id for message in found if tag_id in message.audience.tag_references())
    return segments, named


def delete_tag(tag_id: str, now: float) -> None:
    """Delete a tag no segment's filter and no message's audience names (409 tag_in_use naming
    them), then untag its users in the background."""
    for attempt in range(_WRITE_ATTEMPTS):
        expected = definitions.version(check_now=True)
        tag = tags.require(tag_id)
        segment_ids, message_ids = dependents(tag.id)
        if segment_ids or message_ids:
            raise _in_use(tag.id, segment_ids, message_ids)
        try:
            with definitions.changing():  # the delete moves the definitions' version on
                tag_store.delete(tag, expected_version=expected)
            break
        except ConcurrentChange:
            if attempt == _WRITE_ATTEMPTS - 1:
                raise
    job = job_store.put_new(job_store.new_job_id(), UNTAG, {"tag_id": tag_id, "deleted": True}, now)
    queues.send_bulk_job(BulkJob(job_id=job.id, step=0), export=False)


def _in_use(tag_id: str, segment_ids: list[str], message_ids: list[str]) -> errors.Conflict:
    details = [
        {"path": "dependents", "segment_id": sid, "message": f"segment {sid}'s filter names it"}
        for sid in segment_ids
    ] + [
        {"path": "dependents", "message_id": mid, "message": f"message {mid}'s audience names it"}
        for mid in message_ids
    ]
    named = ", ".join([f"segment {sid}" for sid in segment_ids] + [f"message {mid}" for mid in message_ids])
    return errors.Conflict(
        f"The tag {tag_id} is in use ({named}): change or delete those first.",
        details=details,
        code="tag_in_use",
    )


def start_by_filter(tag_id: str, action: str, raw_filter: Any, now: float) -> str:
    """A job tagging (or untagging) every user the filter matches when it runs; its id."""
    tags.require(tag_id)
    validate_filter(
        raw_filter,
        target="users",
        attributes=all_attribute_types(raw_filter),
        segments=definitions.segment_defs(check_now=True),
        path="filter",
    )
    total = people_scans.approximate_count("users")
    job = job_store.put_new(
        job_store.new_job_id(), action, {"tag_id": tag_id, "filter": raw_filter}, now, total=total
    )
    queues.send_bulk_job(BulkJob(job_id=job.id, step=0), export=False)
    return job.id


def chunk(job: JobRecord, now: float, time_left: Callable[[], float]) -> Progress:
    """The next page of a tagging job: a page of the users scan (those the filter matches get the
    change), or a page of a deleted tag's links. `done` counts users read; `total` is the table's
    size (DynamoDB's estimate, made exact when the job ends)."""
    tag_id = str(job.params["tag_id"])
    change = Change(tags_added=(tag_id,)) if job.kind == TAG else Change(tags_removed=(tag_id,))
    if job.params.get("deleted"):
        return _deleted_tag_page(job, tag_id, change, now)
    after = (job.cursor or {}).get("after")
    found, last, read = search.matching_page("users", job.params["filter"], after, USERS_PER_CHUNK, now)
    try:
        outcome = user_batches.write(
            {f.item["user_id"]: [change] for f in found}, now, create=False, skip_unchanged=True
        )
    except user_batches.TagGone:
        raise errors.NotFound(
            f"The tag {tag_id} was deleted while the job ran.", code="tag_not_found"
        ) from None
    changed = int(job.params.get("changed", 0)) + sum(
        (outcome.tagged if job.kind == TAG else outcome.untagged).values()
    )
    params = {**job.params, "changed": changed}
    done = job.done + read
    progress = Progress(
        cursor={"after": last} if last else None, done=done, total=max(job.total, done), params=params
    )
    if last is None:
        progress.total = done
        progress.state = "done"
        progress.result = {"tagged" if job.kind == TAG else "untagged": changed}
    return progress


def _deleted_tag_page(job: JobRecord, tag_id: str, change: Change, now: float) -> Progress:
    """Untag a page of a deleted tag's users; links left by users deleted meanwhile go too (while
    no user holds the tag under that id). The tag's count item goes with the last page."""
    group = memberships.tag_group(tag_id)
    user_ids, last = memberships.group_ids_after(group, USERS_PER_CHUNK, (job.cursor or {}).get("after"))
    outcome = user_batches.write(
        {user_id: [change] for user_id in user_ids}, now, create=False, skip_unchanged=True
    )
    for user_id in sorted(outcome.missing | outcome.unchanged):
        membership_writes.forget("users", user_id, (), (), tag_ids=(tag_id,))
    done = job.done + len(user_ids)
    progress = Progress(cursor={"after": last} if last else None, done=done, total=done)
    if last is None:
        membership_writes.drop_count(group)
        progress.state = "done"
        progress.result = {"untagged": done}
    return progress
