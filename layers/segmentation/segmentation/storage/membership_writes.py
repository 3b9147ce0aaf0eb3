"""Membership writes: a member's membership moved (MemberUpdate, apply_update), the memberships a
deleted member or segment left behind removed (forget, drop_group), a user's company links, and
the upkeep-owned attributes of user and company items written with them.

Every membership put/delete goes in the same TransactWriteItems as its count update and is
conditioned on the item's absence/presence, so counts stay exact and a replay never counts
twice. A segment's membership op also carries the change it makes (storage.changes: a Put
conditioned on its sequence being new) and the day's counter on the count item, so a change is
recorded exactly when, and as often as, membership moves. The member's own item (`segments`,
`seqs`: its last sequence per segment, `evaluated_at`, `recheck_at`, `recheck_shard`) is
written in the same transaction, conditioned on the `incarnation`, `rev` and stored `segments`
the evaluation saw: an item deleted and created again has another incarnation, so an
evaluation of the old one never lands on the new one. Memberships left behind by a deleted
member are removed only while the member item (if any) does not hold them (`forget`).
The keys and the reads are in storage.memberships.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from segmentation import clock, errors
from segmentation.settings import get_settings
from segmentation.storage import changes, dynamo
from segmentation.storage.changes import ChangeKind
from segmentation.storage.memberships import (
    COMPANY_PREFIX,
    SEGMENT_PREFIX,
    Action,
    company_group,
    count_key,
    day_counter,
    iter_group,
    segment_group,
    table_name,
    tag_group,
)
from segmentation.storage.people_items import INCARNATION, KEY_ATTRIBUTE
from segmentation.values import epoch_millis
from segmentation.vocabulary import TAG_IDS, Target

SEQUENCES = "seqs"
EVALUATED_AT = "evaluated_at"
# A change that does not say why (a test, a tool) is a correction.
DEFAULT_CAUSE = "rebuild"
# TransactWriteItems takes 100 items; two are kept for the member item's write or check and the
# guard on the definitions' version.
_OPS_PER_TRANSACTION = dynamo.TRANSACTION_LIMIT - 2
RECHECK_SHARDS = 8

Group = list[Action]


@dataclass(frozen=True)
class MemberUpdate:
    """Everything needed to move one user or company from its stored membership to a new one.

    `incarnation`, `rev` and `stored_segments` are the image the evaluation used: the write is
    conditioned on them, so a re-created item (incarnation), a newer change (rev) or another
    upkeep writer (segments) makes it fail instead of overwriting a newer state.
    """

    target: Target
    member_id: str
    incarnation: str | None
    rev: int | None
    stored_segments: frozenset[str]
    segments: frozenset[str]
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()
    # Users only: None = leave recheck_at as it is; ("set", at) or ("remove", None).
    recheck: tuple[Literal["set", "remove"], Decimal | None] | None = None
    linked_companies: frozenset[str] = frozenset()
    unlinked_companies: frozenset[str] = frozenset()
    # Why each segment in `added` or `removed` changes (storage.changes.Cause); DEFAULT_CAUSE else.
    causes: Mapping[str, str] = field(default_factory=dict)
    # The item's `seqs` as read (the last sequence per segment); None when it has none.
    sequences: Mapping[str, int] | None = None
    # The instant the evaluation was made for (stored as `evaluated_at`, for the cause of the next).
    evaluated_at: Decimal | None = None

    @property
    def changes_membership(self) -> bool:
        return bool(self.added or self.removed or self.linked_companies or self.unlinked_companies)

    @property
    def is_noop(self) -> bool:
        return not self.changes_membership and self.recheck is None


def recheck_shard(member_id: str) -> int:
    """A stable shard (same in every process and run) so recheck can query shards in parallel."""
    return zlib.crc32(member_id.encode("utf-8")) % RECHECK_SHARDS


def _member_table(target: Target) -> str:
    settings = get_settings()
    return settings.users_table if target == "users" else settings.companies_table


def _pair(
    group_id: str,
    member_id: str,
    target: str,
    add: bool,
    *,
    day_counter: str | None = None,
    entry_sequence: int | None = None,
    incarnation: str | None = None,
) -> Group:
    """A membership put/delete and the count update that must go with it (and, for a segment's
    change, the day's counter on the same count item). A segment's membership names the entry's
    sequence and the member's incarnation; a Put that finds one returns it (`_Sequences`)."""
    table = table_name()
    key = {"group_id": group_id, "member_id": member_id}
    op: Action
    if add:
        item: dict[str, Any] = {**key, "target": target}
        put: dict[str, Any] = {
            "TableName": table,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(member_id)",
        }
        if entry_sequence is not None:
            item["seq"] = entry_sequence
            if incarnation:
                item["incarnation"] = incarnation
            put["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        op = {"Put": put}
    else:
        op = {
            "Delete": {"TableName": table, "Key": key, "ConditionExpression": "attribute_exists(member_id)"}
        }
    names = {"#n": "n"}
    values: dict[str, Any] = {":d": 1 if add else -1}
    expression = "ADD #n :d"
    if day_counter is not None:
        names["#day"] = day_counter
        values[":one"] = 1
        expression += ", #day :one"
    count_op = {
        "Update": {
            "TableName": table,
            "Key": count_key(group_id),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }
    return [op, count_op]


@dataclass(frozen=True)
class _SegmentChange:
    """One member entering or leaving one segment: its membership op, the count with the day's
    counter, and the change's record, at a given sequence (`group(sequence)`)."""

    segment_id: str
    member_id: str
    target: str
    change: ChangeKind
    at: Decimal
    cause: str
    incarnation: str | None = None

    def record(self, sequence: int) -> Action:
        return changes.put_action(
            segment_id=self.segment_id,
            target=self.target,
            member_id=self.member_id,
            change=self.change,
            sequence=sequence,
            at=self.at,
            cause=self.cause,
        )

    def group(self, sequence: int, *, counted: bool = True) -> Group:
        add = self.change == "entered"
        pair = _pair(
            segment_group(self.segment_id),
            self.member_id,
            self.target,
            add,
            day_counter=day_counter(self.change, self.at),
            entry_sequence=sequence if add else None,
            incarnation=self.incarnation,
        )
        return [*pair, self.record(sequence)] if counted else [pair[0], self.record(sequence)]

    def reversed(self, at: Decimal) -> _SegmentChange:
        flipped: ChangeKind = "exited" if self.change == "entered" else "entered"
        return _SegmentChange(
            self.segment_id, self.member_id, self.target, flipped, at, self.cause, self.incarnation
        )


class _Sequences:
    """The sequence each change of one write takes: the member item's last one + 1, or, when that
    was already used (the item lost its map: deleted and created again; or a chunk was undone),
    the pair's last recorded one + 1, read when the change's Put says so."""

    def __init__(self, known: Mapping[str, int] | None, incarnation: str | None = None):
        self.known = dict(known or {})
        self.taken: dict[str, int] = {}
        self.incarnation = incarnation
        # Segments whose membership an earlier incarnation of the member left: {segment: its incarnation}.
        self.left_behind: dict[str, str] = {}

    def next(self, segment_id: str) -> int:
        return self.taken.setdefault(segment_id, self.known.get(segment_id, 0) + 1)

    def resolver(
        self, builders: Mapping[str, Callable[[int], Group]]
    ) -> Callable[[Group, list[dynamo.Reason]], Group | None]:
        """For dynamo.commit_groups: a group whose only failed condition is its change's Put took
        a used sequence; build it again after the last one recorded. Any other failure: the
        membership is already as asked (a replay) or must not move: drop the group."""

        def resolve(group: Group, reasons: list[dynamo.Reason]) -> Group | None:
            failed = [i for i, reason in enumerate(reasons) if reason.condition_failed]
            records = [i for i, action in enumerate(group) if changes.is_put_of_change(action)]
            found = reasons[0].item or {}
            if failed[:1] == [0] and "Put" in group[0] and self.incarnation and found.get("incarnation"):
                if found["incarnation"] != self.incarnation:
                    segment_id = str(found["group_id"])[len(SEGMENT_PREFIX) :]
                    self.left_behind[segment_id] = str(found["incarnation"])
                return None
            if not records or failed != records:
                return None
            item = group[records[0]]["Put"]["Item"]
            segment_id = str(item["segment_id"])
            self.taken[segment_id] = changes.latest_sequence(segment_id, str(item["member_id"])) + 1
            return builders[segment_id](self.taken[segment_id])

        return resolve

    def merged(self) -> dict[str, int]:
        return {**self.known, **self.taken}


def _segment_changes(update: MemberUpdate, at: Decimal) -> list[_SegmentChange]:
    def one(segment_id: str, change: ChangeKind) -> _SegmentChange:
        cause = update.causes.get(segment_id, DEFAULT_CAUSE)
        return _SegmentChange(
            segment_id, update.member_id, update.target, change, at, cause, update.incarnation
        )

    entries = [one(s, "entered") for s in sorted(update.added)]
    return entries + [one(s, "exited") for s in sorted(update.removed)]


def _link_pairs(update: MemberUpdate) -> list[Group]:
    member = update.member_id
    pairs = [_pair(company_group(c), member, "users", True) for c in sorted(update.linked_companies)]
    pairs += [_pair(company_group(c), member, "users", False) for c in sorted(update.unlinked_companies)]
    return pairs


def _member_condition(update: MemberUpdate) -> tuple[str, dict[str, str], dict[str, Any]]:
    key = KEY_ATTRIBUTE[update.target]
    names = {"#k": key, "#inc": INCARNATION, "#rev": "rev", "#seg": "segments"}
    values: dict[str, Any] = {}
    parts = ["attribute_exists(#k)"]
    if update.incarnation is None:
        parts.append("attribute_not_exists(#inc)")
    else:
        parts.append("#inc = :inc")
        values[":inc"] = update.incarnation
    if update.rev is None:
        parts.append("attribute_not_exists(#rev)")
    else:
        parts.append("#rev = :rev")
        values[":rev"] = update.rev
    if update.stored_segments:
        parts.append("#seg = :old")
        values[":old"] = set(update.stored_segments)
    else:
        parts.append("attribute_not_exists(#seg)")
    return " AND ".join(parts), names, values


def _member_write(update: MemberUpdate, final: bool, sequences: _Sequences | None = None) -> Action:
    """The member item's op: the conditioned write in the last chunk, a ConditionCheck before it."""
    condition, names, values = _member_condition(update)
    base = {
        "TableName": _member_table(update.target),
        "Key": {KEY_ATTRIBUTE[update.target]: update.member_id},
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
    }
    if not final:
        return {"ConditionCheck": {**base, **({"ExpressionAttributeValues": values} if values else {})}}
    sets: list[str] = []
    removes: list[str] = []
    if update.segments:
        sets.append("#seg = :new")
        values[":new"] = set(update.segments)
    else:
        removes.append("#seg")
    if sequences is not None and sequences.taken:
        # The whole map, as read plus this write's: one term, whatever the number of segments.
        names["#sq"] = SEQUENCES
        sets.append("#sq = :sq")
        values[":sq"] = sequences.merged()
    if update.evaluated_at is not None:
        names["#ev"] = EVALUATED_AT
        sets.append("#ev = :ev")
        values[":ev"] = update.evaluated_at
    if update.recheck is not None:
        names.update({"#ra": "recheck_at", "#rs": "recheck_shard"})
        action, at = update.recheck
        if action == "set":
            sets += ["#ra = :ra", "#rs = :rs"]
            values.update({":ra": at, ":rs": recheck_shard(update.member_id)})
        else:
            removes += ["#ra", "#rs"]
    expression = " ".join(
        part
        for part in (
            f"SET {', '.join(sets)}" if sets else "",
            f"REMOVE {', '.join(removes)}" if removes else "",
        )
        if part
    )
    write = {**base, "UpdateExpression": expression}
    if values:
        write["ExpressionAttributeValues"] = values
    return {"Update": write}


def apply_update(update: MemberUpdate, guard: Action | None = None) -> bool:
    """Write a member's membership changes, each with its recorded change. False: the member
    item changed since it was read.

    Diffs over 98 operations are chunked; the member item's conditioned write goes in the last
    chunk and a ConditionCheck of the same condition in each earlier one. If the item changes
    between chunks, the chunks already committed are undone (each undo recorded as the change
    back, since readers may have seen it), so stored `segments` and the membership items never
    disagree. `guard` (the definitions' version the update was computed with) goes in the last
    chunk: when it fails, the earlier chunks are undone and dynamo.GuardFailed is raised.

    Why chunks and undo: TransactWriteItems takes at most 100 actions (dynamo.TRANSACTION_LIMIT)
    and one member's diff can need more. A segment change is 3 actions (membership, count with
    the day's counter, the change's record), a company link 2, and 2 are kept for the member item
    and the guard: a chunk holds 32 segment changes. Worst case for one update, a user entering
    or leaving all 1,000 segments of its target (segments.service.MAX_SEGMENTS_PER_TARGET) and
    trading its 100 companies for 100 others: 36 chunk transactions; if the item changes before
    the last one, one undo transaction per group already committed (at most 1,184); after a
    success, up to 3 per segment handed over from an earlier incarnation (`_hand_over`). Each
    transaction may be sent again by dynamo.commit_groups (a group failing its condition is
    dropped or renumbered) and by dynamo.transact (transient cancellations).
    """
    at = epoch_millis(clock.now())
    sequences = _Sequences(update.sequences, update.incarnation)
    moves = _segment_changes(update, at)
    builders = {move.segment_id: move.group for move in moves}
    resolve = sequences.resolver(builders)
    groups = [move.group(sequences.next(move.segment_id)) for move in moves] + _link_pairs(update)
    chunks = dynamo.chunk_pairs(groups, _OPS_PER_TRANSACTION)
    committed: list[Group] = []
    for index, chunk in enumerate(chunks):
        final = index == len(chunks) - 1
        tail: Action | Callable[[], Action] = (
            (lambda: _member_write(update, True, sequences)) if final else _member_write(update, False)
        )
        try:
            applied, done = dynamo.commit_groups(chunk, tail, guard if final else None, resolve=resolve)
        except dynamo.GuardFailed:
            _undo(committed, update, moves)
            raise
        if not applied:
            _undo(committed, update, moves)
            return False
        committed.extend(done)
    by_segment = {move.segment_id: move for move in moves}
    for segment_id, earlier in sequences.left_behind.items():
        _hand_over(update, by_segment[segment_id], earlier)
    return True


def _hand_over(update: MemberUpdate, entry: _SegmentChange, earlier: str) -> None:
    """A membership an earlier incarnation of the member left (deleted, created again, and the
    new one evaluated before upkeep saw the delete) passes to the new one: the exit of the old
    (`deleted`) and the entry of the new are recorded, the count stays. Its own transaction,
    after the member item's write, and only while the item still holds the segment."""
    key = KEY_ATTRIBUTE[update.target]
    membership = {"group_id": segment_group(entry.segment_id), "member_id": update.member_id}
    exit_ = _SegmentChange(entry.segment_id, update.member_id, update.target, "exited", entry.at, "deleted")
    for _ in range(3):
        last = changes.latest_sequence(entry.segment_id, update.member_id)
        actions = [
            {
                "Update": {
                    "TableName": table_name(),
                    "Key": membership,
                    "UpdateExpression": "SET #inc = :new, #seq = :seq",
                    "ConditionExpression": "#inc = :old",
                    "ExpressionAttributeNames": {"#inc": INCARNATION, "#seq": "seq"},
                    "ExpressionAttributeValues": {
                        ":new": update.incarnation,
                        ":old": earlier,
                        ":seq": last + 2,
                    },
                }
            },
            {
                "Update": {
                    "TableName": table_name(),
                    "Key": count_key(membership["group_id"]),
                    "UpdateExpression": "ADD #in :one, #out :one",
                    "ExpressionAttributeNames": {
                        "#in": day_counter("entered", entry.at),
                        "#out": day_counter("exited", entry.at),
                    },
                    "ExpressionAttributeValues": {":one": 1},
                }
            },
            exit_.record(last + 1),
            entry.record(last + 2),
            {
                "ConditionCheck": {
                    "TableName": _member_table(update.target),
                    "Key": {key: update.member_id},
                    "ConditionExpression": "#inc = :inc AND contains(#seg, :s)",
                    "ExpressionAttributeNames": {"#inc": INCARNATION, "#seg": "segments"},
                    "ExpressionAttributeValues": {":inc": update.incarnation, ":s": entry.segment_id},
                }
            },
        ]
        reasons = dynamo.transact(actions)
        if reasons is None or not (reasons[2].condition_failed or reasons[3].condition_failed):
            return  # done, or no longer the case (handed over already, or the item moved on)


def _undo(committed: list[Group], update: MemberUpdate, moves: list[_SegmentChange]) -> None:
    """Take back the groups of earlier chunks, one transaction each, each only while the member
    item does not say otherwise (another writer may have settled that segment meanwhile)."""
    by_segment = {move.segment_id: move for move in moves}
    at = epoch_millis(clock.now())
    for group in committed:
        op = group[0]
        key = op["Put"]["Item"] if "Put" in op else op["Delete"]["Key"]
        group_id, member_id = str(key["group_id"]), str(key["member_id"])
        if group_id.startswith(COMPANY_PREFIX):
            dynamo.commit_groups([_pair(group_id, member_id, "users", "Put" not in op)])
            continue
        back = by_segment[group_id[len(SEGMENT_PREFIX) :]].reversed(at)
        recorded = next(a for a in group if changes.is_put_of_change(a))
        sequence = int(recorded["Put"]["Item"]["sequence"]) + 1
        check = (
            _absent_or_without(update.target, member_id, "segments", back.segment_id)
            if back.change == "exited"
            else _holding(update.target, member_id, back.segment_id)
        )
        taken = _Sequences({back.segment_id: sequence - 1})

        def build(seq: int, back: _SegmentChange = back, check: Action = check) -> Group:
            return [*back.group(seq), check]

        dynamo.commit_groups(
            [build(taken.next(back.segment_id))], resolve=taken.resolver({back.segment_id: build})
        )


def _absent_or_without(target: Target, member_id: str, attribute: str, value: str) -> Action:
    """A check that holds while the member item is gone, or does not list `value` in `attribute`."""
    key = KEY_ATTRIBUTE[target]
    return {
        "ConditionCheck": {
            "TableName": _member_table(target),
            "Key": {key: member_id},
            "ConditionExpression": "attribute_not_exists(#k) OR NOT contains(#a, :v)",
            "ExpressionAttributeNames": {"#k": key, "#a": attribute},
            "ExpressionAttributeValues": {":v": value},
        }
    }


def _holding(target: Target, member_id: str, segment_id: str) -> Action:
    """A check that holds while the member item exists and holds the segment."""
    key = KEY_ATTRIBUTE[target]
    return {
        "ConditionCheck": {
            "TableName": _member_table(target),
            "Key": {key: member_id},
            "ConditionExpression": "attribute_exists(#k) AND contains(#a, :v)",
            "ExpressionAttributeNames": {"#k": key, "#a": "segments"},
            "ExpressionAttributeValues": {":v": segment_id},
        }
    }


def forget(
    target: Target,
    member_id: str,
    segment_ids: Iterable[str],
    company_ids: Iterable[str] = (),
    sequences: Mapping[str, int] | None = None,
    tag_ids: Iterable[str] = (),
) -> None:
    """Remove the memberships (and, for a user, the company and tag links) a deleted member left
    behind, each segment's with its change recorded (cause `deleted`). `sequences`: the deleted
    item's `seqs`, when known (else the pair's last recorded sequence is read when needed).

    Each removal holds only while the member item is gone or does not hold that segment (or list
    that company, or hold that tag): a member created again keeps what its new incarnation was
    given, whatever the order in which the delete and the creation are seen.
    """
    at = epoch_millis(clock.now())
    numbering = _Sequences(sequences)
    # One item per transaction may be checked only once: one removal per transaction.
    for segment_id in sorted(set(segment_ids)):
        move = _SegmentChange(segment_id, member_id, target, "exited", at, "deleted")
        check = _absent_or_without(target, member_id, "segments", segment_id)

        def build(sequence: int, move: _SegmentChange = move, check: Action = check) -> Group:
            return [*move.group(sequence), check]

        dynamo.commit_groups(
            [build(numbering.next(segment_id))], resolve=numbering.resolver({segment_id: build})
        )
    for company_id in sorted(set(company_ids)):
        group = [
            *_pair(company_group(company_id), member_id, "users", False),
            _absent_or_without(target, member_id, "company_ids", company_id),
        ]
        dynamo.commit_groups([group])
    for tag_id in sorted(set(tag_ids)):
        group = [
            *_pair(tag_group(tag_id), member_id, "users", False),
            _absent_or_without(target, member_id, TAG_IDS, tag_id),
        ]
        dynamo.commit_groups([group])


def drop_count(group_id: str) -> None:
    """Delete a group's count item (its last member is gone: a deleted tag's cleanup)."""
    dynamo.call("delete_item", TableName=table_name(), Key=count_key(group_id))


def link_companies(user_id: str, incarnation: str | None, company_ids: Iterable[str]) -> None:
    """Add the links of a user to companies it lists, while that incarnation still lists them."""
    for company_id in sorted(set(company_ids)):
        names = {"#k": "user_id", "#c": "company_ids", "#inc": INCARNATION}
        values: dict[str, Any] = {":c": company_id}
        condition = "attribute_exists(#k) AND contains(#c, :c) AND "
        if incarnation is None:
            condition += "attribute_not_exists(#inc)"
        else:
            condition += "#inc = :inc"
            values[":inc"] = incarnation
        check = {
            "ConditionCheck": {
                "TableName": _member_table("users"),
                "Key": {"user_id": user_id},
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }
        dynamo.commit_groups([[*_pair(company_group(company_id), user_id, "users", True), check]])


def drop_group(segment_id: str) -> int:
    """Delete every membership of a segment and its count; take it out of members' `segments`.
    Each member's exit is recorded (cause `deleted`)."""
    group = segment_group(segment_id)
    removed = 0
    for member_ids in iter_group(group, page_size=25):
        items = dynamo.batch_get(table_name(), [{"group_id": group, "member_id": m} for m in member_ids])
        for item in items:
            if _drop_member(segment_id, item):
                removed += 1
    dynamo.call("delete_item", TableName=table_name(), Key=count_key(group))
    return removed


def _drop_member(segment_id: str, membership: Mapping[str, Any]) -> bool:
    """The membership's delete with its exit recorded, and the segment taken out of the member's
    `segments` (unless the member item is gone). False when it was gone already."""
    member_id, target = str(membership["member_id"]), membership.get("target", "users")
    key = KEY_ATTRIBUTE[target]
    move = _SegmentChange(segment_id, member_id, target, "exited", epoch_millis(clock.now()), "deleted")
    forget_segment = {
        "Update": {
            "TableName": _member_table(target),
            "Key": {key: member_id},
            "UpdateExpression": "DELETE #seg :s",
            "ConditionExpression": "attribute_exists(#k)",
            "ExpressionAttributeNames": {"#seg": "segments", "#k": key},
            "ExpressionAttributeValues": {":s": {segment_id}},
        }
    }
    sequence = int(membership.get("seq") or 0) + 1
    with_member = True
    for _ in range(dynamo.TRANSACTION_LIMIT):
        # The count item goes whole at the end: no count update here.
        actions = move.group(sequence, counted=False) + ([forget_segment] if with_member else [])
        reasons = dynamo.transact(actions)
        if reasons is None:
            return True
        if reasons[0].condition_failed:
            return False  # someone removed it already, with its own record
        if reasons[1].condition_failed:
            sequence = changes.latest_sequence(segment_id, member_id) + 1
        if with_member and reasons[2].condition_failed:
            with_member = False  # the member item is gone: only the membership is left
    raise errors.Retryable("dropping a membership kept failing its conditions")
