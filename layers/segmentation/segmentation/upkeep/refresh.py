"""Re-evaluate users and companies and write only the differences.

Shared by the stream consumer, the rebuild workers, segment builds and recheck. Orchestration
over storage functions: no boto3 here.

Every write is conditioned on the item the evaluation read (incarnation, rev, stored segments),
so a newer change or another writer makes it fail and the record is read again. The definitions
are another input: every write also carries a guard on the definitions' version it was computed
with, in the same transaction. A segment created or edited while we evaluated makes the write
fail whole; the pass then loads the new definitions and evaluates that record again. So our
older answer never lands after the new segment's build, whichever would have landed last, and
it costs no call unless the definitions really changed.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from segmentation import errors, health
from segmentation.definitions import load_workspace
from segmentation.engine import Workspace
from segmentation.jobs import MembersJob
from segmentation.messaging import auto
from segmentation.people.evaluable import Evaluator, member_id
from segmentation.storage import dynamo, membership_writes, memberships, people_scans, queues
from segmentation.storage.changes import Cause
from segmentation.storage.membership_writes import MemberUpdate
from segmentation.storage.people_items import INCARNATION
from segmentation.storage.segments import version_guard
from segmentation.upkeep.diff import (
    cause_of_changes,
    evaluated_at,
    plan_update,
    record_rev,
    stored_segments,
    written_since_evaluated,
)
from segmentation.vocabulary import Target

logger = logging.getLogger(__name__)

# The one retry loop of upkeep, for "what a write was computed from changed under it": the
# definitions (its version guard failed: evaluate again with the new ones) or the record (another
# upkeep writer of the same rev won the write: read it again). Below it, storage.dynamo.transact
# tries a transiently cancelled transaction 6 times and botocore a throttled call 4 times; nothing
# else retries. Worst case for one record: 3 x 6 = 18 TransactWriteItems, each at most 4 HTTP
# attempts (tests/integration/test_refresh_attempts.py holds it). Then the record is set aside
# (parked alone on the RebuildQueue), or, for the definitions, the batch is tried again later.
_ATTEMPTS = 3


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


class RefreshRun:
    """A run of refreshes; `finish()` when its writes are done.

    It evaluates with the current definitions, and loads them again when a write's version guard
    finds they changed. `refresh_many` isolates each record: one that keeps failing is set aside
    in `failed` (the caller parks it on the RebuildQueue, alone) and the others go on.
    """

    def __init__(self, workspace: Workspace | None = None):
        self.workspace = workspace or current_workspace()
        self.tally: dict[Outcome, int] = dict.fromkeys(Outcome, 0)
        self.failed: dict[Target, list[str]] = {"users": [], "companies": []}

    def refresh(
        self,
        target: Target,
        record: Mapping[str, Any],
        now: float,
        *,
        current_links: frozenset[str] | None = None,
        cause: Cause = "rebuild",
        previous: Mapping[str, Any] | None = None,
    ) -> Outcome:
        """`cause`: what moved the record (a change the clock alone explains is `time` anyway);
        `previous`: the record's data before the write that triggered this (a stream's OldImage)."""
        why = _Why(cause, previous, None)
        outcome = self._guarded(target, record, now, Evaluator(self.workspace), current_links, why)
        self.tally[outcome] += 1
        return outcome

    def refresh_many(
        self,
        target: Target,
        items: list[dict[str, Any]],
        now: float,
        cause: Cause = "rebuild",
        scope: frozenset[str] | None = None,
    ) -> None:
        """A page of items, their companies (or user counts) read in one batch. `scope`: the
        segments `cause` is about (a build: the segment and those referring to it)."""
        evaluator = Evaluator(self.workspace)
        why = _Why(cause, None, scope)
        for item, evaluable in zip(items, evaluator.of(target, items), strict=True):
            try:
                outcome = self._guarded(target, item, now, evaluator, None, why, evaluable)
            except Exception as error:
                where = {"target": target, "id": member_id(target, item), **health.error_fields(error)}
                logger.error("a record failed; set aside", extra=where)
                self.failed[target].append(member_id(target, item))
                continue
            self.tally[outcome] += 1

    def refresh_ids(self, target: Target, ids: Iterable[str], now: float, cause: Cause = "rebuild") -> None:
        self.refresh_many(target, list(people_scans.get_items(target, ids).values()), now, cause)

    def _guarded(
        self,
        target: Target,
        record: Mapping[str, Any],
        now: float,
        evaluator: Evaluator,
        current_links: frozenset[str] | None,
        why: _Why,
        evaluable: dict[str, Any] | None = None,
    ) -> Outcome:
        """Refresh one record; when the definitions changed under its write, with the new ones.

        `evaluator` and `evaluable` were read for some workspace: once the pass has moved to newer
        definitions (earlier in a page, or on an earlier attempt), they are read again for them,
        since the fields a record is read with depend on what the segments test."""
        raced = False
        for _ in range(_ATTEMPTS):
            if evaluator.workspace is not self.workspace:
                evaluator, evaluable = Evaluator(self.workspace), None
            try:
                return _refresh(
                    self.workspace, target, record, now, evaluator, current_links, why, evaluable=evaluable
                )
            except dynamo.GuardFailed:
                logger.info(
                    "segment definitions changed during a write; evaluating it again",
                    extra={"from_version": self.workspace.version},
                )
                self.workspace = load_workspace(check_now=True)
                raced = False
            except _Raced as race:
                # The companies' user counts may have moved too: the records are read again.
                record, evaluable, evaluator, current_links = (
                    race.fresh,
                    None,
                    Evaluator(self.workspace),
                    race.links,
                )
                raced = True
        if raced:
            return Outcome.STALE  # the writer that keeps winning writes this rev's membership
        raise errors.Retryable("segment definitions kept changing during a write")

    def finish(self) -> None:
        """Park every record set aside: one MembersJob each, retried alone by the rebuild
        workers (and left in their dead-letter queue if it keeps failing)."""
        parked = [
            MembersJob(target=target, member_ids=[one]) for target, ids in self.failed.items() for one in ids
        ]
        if parked:
            queues.send_rebuild_jobs(parked)
            self.failed = {"users": [], "companies": []}


class _Raced(Exception):
    """Another upkeep writer of the same rev won the write: `fresh` is the record as it is now,
    `links` its stored company links (when the write was about them)."""

    def __init__(self, fresh: Mapping[str, Any], links: frozenset[str] | None):
        super().__init__("another writer of the same rev won")
        self.fresh, self.links = fresh, links


@dataclasses.dataclass(frozen=True)
class _Why:
    """What set a refresh off: the writer's cause, the data before the write that did, and the
    segments the cause is about (None: all)."""

    cause: Cause
    previous: Mapping[str, Any] | None
    scope: frozenset[str] | None


def _refresh(
    workspace: Workspace,
    target: Target,
    record: Mapping[str, Any],
    now: float,
    evaluator: Evaluator | None,
    current_links: frozenset[str] | None,
    why: _Why = _Why("rebuild", None, None),
    *,
    evaluable: dict[str, Any] | None = None,
) -> Outcome:
    """Evaluate `record` at `now` and move its stored membership to the result, in one attempt:
    dynamo.GuardFailed when the definitions changed, _Raced when another writer won.

    `current_links`: the user's stored company links when its company_ids changed (else None).
    """
    evaluator = evaluator or Evaluator(workspace)
    key = member_id(target, record)
    if evaluable is None:
        evaluable = evaluator.of(target, [record])[0]
    update = plan_update(
        target,
        record,
        _evaluate(workspace, target, evaluable, now),
        workspace.next_change(evaluable, now, target) if target == "users" else None,
        current_links=current_links,
        now=now,
    )
    if update.added or update.removed:
        update = _with_causes(workspace, target, record, evaluable, update, now, why)
    if target == "users":
        # Before the membership write: were the write to land and this to fail, a retry would
        # see the new segments as already stored and never queue the message. Claims are
        # idempotent, so running it again on a retry costs nothing but a refused write.
        auto.queue_auto_messages(
            evaluator, {**evaluable, "segments": update.segments}, now, update.stored_segments
        )
    if update.is_noop:
        return Outcome.UNCHANGED
    if membership_writes.apply_update(update, version_guard(workspace.version)):
        return Outcome.APPLIED if update.changes_membership else Outcome.RECHECK_MOVED
    fresh = people_scans.get_item(target, key)
    if fresh is None or fresh.get(INCARNATION) != record.get(INCARNATION) or record_rev(fresh) != update.rev:
        return Outcome.STALE
    links = None if current_links is None else memberships.member_groups(key, memberships.COMPANY_PREFIX)
    raise _Raced(fresh, links)


def _with_causes(
    workspace: Workspace,
    target: Target,
    record: Mapping[str, Any],
    evaluable: Mapping[str, Any],
    update: MemberUpdate,
    now: float,
    why: _Why,
) -> MemberUpdate:
    """The update with the cause of each segment it moves (upkeep.diff.cause_of_changes): the
    data before the write, evaluated at the stored result's instant and now, tells the clock's
    changes from the write's. No read: the previous image borrows the record's companies."""
    basis: Mapping[str, Any] = evaluable
    if why.previous is not None:
        borrowed = {name: evaluable[name] for name in ("companies", "user_count") if name in evaluable}
        basis = {**why.previous, **borrowed}
    last = evaluated_at(record)
    then = None if last is None else frozenset(workspace.segments_of(basis, last, target))
    before_now = (
        update.segments if why.previous is None else frozenset(workspace.segments_of(basis, now, target))
    )
    # A re-evaluation of its own (recheck, rebuild, a build's other segments) that the clock does not
    # explain: a write upkeep has not seen yet did it (`attributes`), else it is a correction.
    otherwise: Cause = "attributes" if written_since_evaluated(record) else "rebuild"
    causes = cause_of_changes(
        update.added | update.removed,
        update.stored_segments,
        then=then,
        before_now=before_now,
        cause=otherwise if why.cause == "rebuild" else why.cause,
        scope=why.scope,
        otherwise=otherwise,
    )
    return dataclasses.replace(update, causes=causes)


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
    workspace: Workspace,
    target: Target,
    items: list[dict[str, Any]],
    now: float,
    cause: Cause = "rebuild",
    scope: frozenset[str] | None = None,
) -> dict[Outcome, int]:
    """Refresh a page of items in a pass of its own, finished before returning."""
    upkeep = RefreshRun(workspace)
    upkeep.refresh_many(target, items, now, cause, scope)
    upkeep.finish()
    return upkeep.tally


def refresh_ids(
    workspace: Workspace, target: Target, ids: Iterable[str], now: float, cause: Cause = "rebuild"
) -> dict[Outcome, int]:
    items = list(people_scans.get_items(target, ids).values())
    return refresh_many(workspace, target, items, now, cause)
