"""Re-evaluate users and companies and write only the differences.

Shared by the stream consumer, the rebuild workers, segment builds and recheck. Orchestration
over storage functions: no boto3 here.

Every write is conditioned on the item the evaluation read (incarnation, rev, stored segments),
so a newer change or another writer makes it fail and the record is read again. The definitions
are another input: a `Pass` writes with one compiled workspace and, once its writes are done,
checks that the definitions did not change meanwhile (one GetItem). If they did, everything it
wrote is evaluated again with the new ones: a segment created or edited while we wrote is then
never left with our older answer, whichever write landed last.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from segmentation import health
from segmentation.engine import Workspace
from segmentation.engine.fields import Target
from segmentation.jobs import MembersJob
from segmentation.messaging import auto
from segmentation.people.evaluable import Records, member_id
from segmentation.storage import dynamo, memberships, queues, upkeep_records
from segmentation.storage.records import INCARNATION
from segmentation.storage.segments import load_workspace
from segmentation.upkeep.diff import plan_update, record_rev, stored_segments

logger = logging.getLogger(__name__)

# Another upkeep writer (same rev, other segments) can win a race; re-read and retry this often.
_RACE_ATTEMPTS = 3
# Definitions changing again and again while a pass writes: redo this often, then leave the rest
# to the next pass (the writes that changed them build the new definitions themselves).
_SETTLE_ATTEMPTS = 3


class Outcome(enum.Enum):
    UNCHANGED = "unchanged"  # nothing written
    RECHECK_MOVED = "recheck_moved"  # only recheck_at written
    APPLIED = "applied"  # membership changed
    STALE = "stale"  # the item changed (rev), was re-created or is gone: its own change handles it

    @property
    def wrote(self) -> bool:
        return self in (Outcome.APPLIED, Outcome.RECHECK_MOVED)


def current_workspace() -> Workspace:
    """The workspace's segments, compiled (cached and revalidated by the segments storage)."""
    return load_workspace()


class Pass:
    """A run of refreshes against one workspace; `settle()` when its writes are done.

    `refresh_many` isolates each record: one that keeps failing is set aside in `failed` (the
    caller parks it on the RebuildQueue, alone) and the others go on.
    """

    def __init__(self, workspace: Workspace | None = None):
        self.workspace = workspace or current_workspace()
        self.tally: dict[Outcome, int] = dict.fromkeys(Outcome, 0)
        self.failed: dict[Target, list[str]] = {"users": [], "companies": []}
        self._written: dict[Target, set[str]] = {"users": set(), "companies": set()}

    def refresh(
        self,
        target: Target,
        record: Mapping[str, Any],
        now: float,
        *,
        current_links: frozenset[str] | None = None,
    ) -> Outcome:
        outcome = _refresh(self.workspace, target, record, now, Records(self.workspace), current_links)
        return self._count(target, record, outcome)

    def refresh_many(self, target: Target, items: list[dict[str, Any]], now: float) -> None:
        """A page of items, their companies (or user counts) read in one batch."""
        records = Records(self.workspace)
        for item, evaluable in zip(items, records.of(target, items), strict=True):
            try:
                outcome = dynamo.retried(
                    lambda item=item, evaluable=evaluable: _refresh(  # type: ignore[misc]
                        self.workspace, target, item, now, records, None, evaluable=evaluable
                    ),
                    attempts=3,
                )
            except Exception as error:
                where = {"target": target, "id": member_id(target, item), **health.error_fields(error)}
                logger.error("a record failed; set aside", extra=where)
                self.failed[target].append(member_id(target, item))
                continue
            self._count(target, item, outcome)

    def refresh_ids(self, target: Target, ids: Iterable[str], now: float) -> None:
        self.refresh_many(target, list(upkeep_records.get_records(target, ids).values()), now)

    def _count(self, target: Target, record: Mapping[str, Any], outcome: Outcome) -> Outcome:
        self.tally[outcome] += 1
        if outcome.wrote:
            self._written[target].add(member_id(target, record))
        return outcome

    def finish(self, now: float) -> None:
        """Settle, then park every record set aside: one MembersJob each, retried alone by the
        rebuild workers (and left in their dead-letter queue if it keeps failing)."""
        self.settle(now)
        parked = [
            MembersJob(target=target, member_ids=[one]) for target, ids in self.failed.items() for one in ids
        ]
        if parked:
            queues.send_rebuild_jobs(parked)
            self.failed = {"users": [], "companies": []}

    def settle(self, now: float) -> None:
        """Evaluate again what this pass wrote if the definitions changed while it wrote."""
        for _ in range(_SETTLE_ATTEMPTS):
            if not any(self._written.values()):
                return
            latest = load_workspace(check_now=True)
            if latest.version == self.workspace.version:
                return
            logger.info(
                "segment definitions changed during a pass; evaluating its writes again",
                extra={"from_version": self.workspace.version, "to_version": latest.version},
            )
            written, self._written = self._written, {"users": set(), "companies": set()}
            self.workspace = latest
            for target, ids in written.items():
                if ids:
                    self.refresh_ids(target, sorted(ids), now)


def _refresh(
    workspace: Workspace,
    target: Target,
    record: Mapping[str, Any],
    now: float,
    records: Records | None,
    current_links: frozenset[str] | None,
    *,
    evaluable: dict[str, Any] | None = None,
) -> Outcome:
    """Evaluate `record` at `now` and move its stored membership to the result.

    `current_links`: the user's stored company links when its company_ids changed (else None).
    """
    records = records or Records(workspace)
    key = member_id(target, record)
    for _ in range(_RACE_ATTEMPTS):
        if evaluable is None:
            evaluable = records.of(target, [record])[0]
        update = plan_update(
            target,
            record,
            _evaluate(workspace, target, evaluable, now),
            workspace.next_change(evaluable, now, target) if target == "users" else None,
            current_links=current_links,
        )
        if target == "users":
            # Before the membership write: were the write to land and this to fail, a retry would
            # see the new segments as already stored and never queue the message. Claims are
            # idempotent, so running it again on a retry costs nothing but a refused write.
            auto.queue_auto_messages(
                records, {**evaluable, "segments": update.segments}, now, update.stored_segments
            )
        if update.is_noop:
            return Outcome.UNCHANGED
        if memberships.apply_update(update):
            return Outcome.APPLIED if update.changes_membership else Outcome.RECHECK_MOVED
        fresh = upkeep_records.get_record(target, key)
        if (
            fresh is None
            or fresh.get(INCARNATION) != record.get(INCARNATION)
            or record_rev(fresh) != update.rev
        ):
            return Outcome.STALE
        record, evaluable = fresh, None
        records = Records(workspace)  # the companies' user counts may have moved too
        if current_links is not None:
            current_links = memberships.member_groups(key, memberships.COMPANY_PREFIX)
    return Outcome.STALE


def _evaluate(workspace: Workspace, target: Target, record: Mapping[str, Any], now: float) -> frozenset[str]:
    """The segments the record is in now; a segment that cannot be evaluated keeps its stored
    answer for this record (skipped, counted, logged), and every other one is evaluated."""
    segments = frozenset(workspace.segments_of(record, now, target))
    broken = workspace.broken_ids(target)
    if not broken:
        return segments
    for segment_id in sorted(broken):
        health.skipped("segment", segment_id, workspace.broken[segment_id])
    return segments | (stored_segments(record) & broken)


def refresh_many(
    workspace: Workspace, target: Target, items: list[dict[str, Any]], now: float
) -> dict[Outcome, int]:
    """Refresh a page of items in a pass of its own, finished before returning."""
    upkeep = Pass(workspace)
    upkeep.refresh_many(target, items, now)
    upkeep.finish(now)
    return upkeep.tally


def refresh_ids(workspace: Workspace, target: Target, ids: Iterable[str], now: float) -> dict[Outcome, int]:
    return refresh_many(workspace, target, list(upkeep_records.get_records(target, ids).values()), now)
