"""What the users' and companies' stream records mean for membership.

Called once per record, in stream order, within one `RefreshRun` per batch (settled at the end of the
batch). Images are plain dicts (as boto3 returns items). A record that keeps failing is parked on
the RebuildQueue (a MembersJob of its own, retried alone from the member's current item) so the
stream goes on; throttling and the like propagate, for the stream to retry the record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

from segmentation import health
from segmentation.errors import Retryable
from segmentation.jobs import MembersJob
from segmentation.settings import get_settings
from segmentation.storage import memberships, queues
from segmentation.upkeep.company_users import companies_moved, refresh_users_of
from segmentation.upkeep.diff import company_ids, only_upkeep_changed, write_cause
from segmentation.upkeep.members import forget, relink
from segmentation.upkeep.refresh import Outcome, RefreshRun
from segmentation.vocabulary import Target

logger = logging.getLogger(__name__)

EventName = Literal["INSERT", "MODIFY", "REMOVE"]
Image = Mapping[str, Any] | None


def table_of_stream(stream_arn: str) -> str:
    """arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label> → <name>."""
    return stream_arn.split(":table/", 1)[-1].split("/", 1)[0]


def on_record(upkeep: RefreshRun, table: str, event: EventName, old: Image, new: Image, now: float) -> str:
    """Apply one record of the Users or Companies stream; returns what happened, or "parked"."""
    settings = get_settings()
    if table not in (settings.users_table, settings.companies_table):
        raise ValueError(f"record from an unexpected table {table!r}")
    target: Target = "users" if table == settings.users_table else "companies"
    try:
        if target == "users":
            return on_user_change(upkeep, event, old, new, now)
        return on_company_change(upkeep, event, old, new, now)
    except Retryable:
        raise
    except Exception as error:
        image = new or old or {}
        member_id = str(image.get("user_id" if target == "users" else "company_id") or "")
        if not member_id:
            raise  # nothing to reconcile later: the stream's retries and failure queue take it
        logger.error(
            "stream record failed; parking its member",
            extra={"target": target, "id": member_id, **health.error_fields(error)},
        )
        queues.send_rebuild_jobs([MembersJob(target=target, member_ids=[member_id])])
        return "parked"


def on_user_change(upkeep: RefreshRun, event: EventName, old: Image, new: Image, now: float) -> str:
    """Apply one user's stream record; returns what happened (for logs and tests)."""
    if event == "REMOVE":
        assert old is not None
        companies_moved(upkeep, forget("users", str(old["user_id"]), old), now)
        return "removed"
    assert new is not None
    if event == "MODIFY" and only_upkeep_changed(old, new):
        return "skipped"
    user_id = str(new["user_id"])
    links_changed = company_ids(old) != company_ids(new)
    current_links: frozenset[str] | None = None
    if links_changed:
        # A new user has no links of its own yet, so no read: links left by an earlier incarnation
        # are in place already (the conditional puts find them) or removed by its REMOVE record.
        current_links = (
            frozenset() if old is None else memberships.member_groups(user_id, memberships.COMPANY_PREFIX)
        )
    outcome = upkeep.refresh(
        "users", new, now, current_links=current_links, cause=write_cause(old, new), previous=old
    )
    if links_changed:
        touched = company_ids(old) | company_ids(new)
        if outcome is Outcome.STALE:
            # A newer write exists; its own record may not change company_ids, so links follow the item now.
            touched |= relink(user_id, company_ids(old) | company_ids(new))
        companies_moved(upkeep, touched, now)
    return outcome.value


def on_company_change(
    upkeep: RefreshRun,
    event: EventName,
    old: Image,
    new: Image,
    now: float,
    time_left: Callable[[], float] | None = None,
) -> str:
    """Apply one company's stream record: its own segments, and its users' when they read company.*."""
    if event == "MODIFY" and only_upkeep_changed(old, new):
        return "skipped"
    image = new if new is not None else old
    assert image is not None
    company_id = str(image["company_id"])
    if event == "REMOVE":
        forget("companies", company_id, old)
        outcome = "removed"
    else:
        assert new is not None
        outcome = upkeep.refresh("companies", new, now, cause="attributes", previous=old).value
    if upkeep.workspace.uses_company_fields:
        refresh_users_of(upkeep, company_id, now, time_left)
    return outcome
