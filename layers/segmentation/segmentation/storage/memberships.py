"""The Memberships table, and the upkeep-owned attributes of user and company items.

Items:
- (`segment#<segment id>`, member id): a member of a segment (`target`: users or companies;
  `seq`: the sequence of the change that made it enter);
- (`company#<company id>`, user id): a user linked to a company;
- (`tag#<tag id>`, user id): a user holding a tag, written with the user's `tag_ids` by
  storage.user_batches;
- (`#count#<group>`, `#`): the number of members of a group (attribute `n`); for a segment also
  the changes of each day not yet settled (`entered@<UTC day>`, `exited@<UTC day>`);
- (`#stats#segment#<segment id>`, `<UTC day>`): a settled day's `entered` and `exited`, moved
  off the count item by the nightly rebuild (`settle_days`), kept 91 days (TTL `expires_at`).
Group ids always start with `segment#`, `company#` or `tag#`, so a count's partition (`#count#...`)
is out of reach of any user, company, segment or tag id, whatever characters it holds.

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
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from segmentation import clock, errors
from segmentation.settings import get_settings
from segmentation.storage import changes, cursors, dynamo
from segmentation.storage.changes import ChangeKind
from segmentation.storage.people_items import INCARNATION, KEY_ATTRIBUTE
from segmentation.values import epoch_millis
from segmentation.vocabulary import TAG_IDS, Target

SEGMENT_PREFIX = "segment#"
COMPANY_PREFIX = "company#"
TAG_PREFIX = "tag#"
COUNT_PREFIX = "#count#"
COUNT_MEMBER = "#"
STATS_PREFIX = "#stats#"
SEQUENCES = "seqs"
EVALUATED_AT = "evaluated_at"
# A settled day's row is kept a day longer than the changes themselves.
STATS_KEEP_SECONDS = changes.KEEP_SECONDS + 86400
# A change that does not say why (a test, a tool) is a correction.
DEFAULT_CAUSE = "rebuild"
BY_MEMBER_INDEX = "by_member"
# TransactWriteItems takes 100 items; two are kept for the member item's write or check and the
# guard on the definitions' version.
_OPS_PER_TRANSACTION = dynamo.TRANSACTION_LIMIT - 2
RECHECK_SHARDS = 8

Action = dict[str, Any]


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


def segment_group(segment_id: str) -> str:
    return SEGMENT_PREFIX + segment_id


def company_group(company_id: str) -> str:
    return COMPANY_PREFIX + company_id


def tag_group(tag_id: str) -> str:
    return TAG_PREFIX + tag_id


def _count_key(group_id: str) -> dict[str, str]:
    return {"group_id": COUNT_PREFIX + group_id, "member_id": COUNT_MEMBER}


def _table_name() -> str:
    return get_settings().memberships_table


def _member_table(target: Target) -> str:
    settings = get_settings()
    return settings.users_table if target == "users" else settings.companies_table


# ---- reads -------------------------------------------------------------------------------------


_CURSOR_FIELDS = {"m": str}  # the last member id of the previous page


def group_page(group_id: str, limit: int, cursor: str | None = None) -> tuple[list[str], str | None]:
    """Up to `limit` member ids of a group in id order, and the cursor of the next page (or None)."""
    params: dict[str, Any] = {
        "TableName": _table_name(),
        "KeyConditionExpression": "group_id = :g",
        "ExpressionAttributeValues": {":g": group_id},
        "ProjectionExpression": "member_id",
        "Limit": limit + 1,  # one more, to know whether another page follows
    }
    if cursor:
        after = cursors.decode(cursor, fields=_CURSOR_FIELDS)["m"]
        params["ExclusiveStartKey"] = {"group_id": group_id, "member_id": after}
    found = [str(item["member_id"]) for item in dynamo.call("query", **params).get("Items", [])]
    if len(found) > limit:
        return found[:limit], cursors.encode({"m": found[limit - 1]})
    return found, None


def group_ids_after(group_id: str, limit: int, after: str | None) -> tuple[list[str], str | None]:
    """Up to `limit` member ids of a group after `after` (the id order), and the last one when
    more may follow (None at the end): a job's own position, not a client's cursor."""
    params: dict[str, Any] = {
        "TableName": _table_name(),
        "KeyConditionExpression": "group_id = :g",
        "ExpressionAttributeValues": {":g": group_id},
        "ProjectionExpression": "member_id",
        "Limit": limit,
    }
    if after:
        params["ExclusiveStartKey"] = {"group_id": group_id, "member_id": after}
    page = dynamo.call("query", **params)
    found = [str(item["member_id"]) for item in page.get("Items", [])]
    return found, (found[-1] if found and "LastEvaluatedKey" in page else None)


def members_page(segment_id: str, limit: int, cursor: str | None = None) -> tuple[list[str], str | None]:
    """A page of a segment's member ids (user or company ids)."""
    return group_page(segment_group(segment_id), limit, cursor)


def iter_group(group_id: str, page_size: int = 500) -> Iterator[list[str]]:
    cursor: str | None = None
    while True:
        ids, cursor = group_page(group_id, page_size, cursor)
        if ids:
            yield ids
        if cursor is None:
            return


def count(group_id: str) -> int:
    """Exact number of members of a group ("segment#<id>" or "company#<id>")."""
    item = dynamo.call(
        "get_item", TableName=_table_name(), Key=_count_key(group_id), ConsistentRead=True
    ).get("Item")
    return int(item["n"]) if item else 0


def counts(group_ids: Iterable[str]) -> dict[str, int]:
    """Counts of many groups (BatchGetItem, 100 keys a call)."""
    wanted = list(dict.fromkeys(group_ids))
    result = dict.fromkeys(wanted, 0)
    found = dynamo.batch_get(_table_name(), [_count_key(g) for g in wanted], consistent=True)
    for item in found:
        result[str(item["group_id"])[len(COUNT_PREFIX) :]] = int(item["n"])
    return result


def member_groups(member_id: str, prefix: str) -> frozenset[str]:
    """Ids (without prefix) of the groups a member is in, read from the by_member index."""
    items = dynamo.query_all(
        TableName=_table_name(),
        IndexName=BY_MEMBER_INDEX,
        KeyConditionExpression="member_id = :m AND begins_with(group_id, :p)",
        ExpressionAttributeValues={":m": member_id, ":p": prefix},
    )
    return frozenset(str(item["group_id"])[len(prefix) :] for item in items)


# ---- writes ------------------------------------------------------------------------------------

Group = list[Action]


def _day(at: Decimal) -> str:
    return datetime.fromtimestamp(float(at), UTC).date().isoformat()


def _day_counter(change: ChangeKind, at: Decimal) -> str:
    """The count item's attribute counting a day's changes of one kind (`entered@2026-12-01`)."""
    return f"{change}@{_day(at)}"


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
    table = _table_name()
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
            "Key": _count_key(group_id),
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
            day_counter=_day_counter(self.change, self.at),
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
                    "TableName": _table_name(),
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
                    "TableName": _table_name(),
                    "Key": _count_key(membership["group_id"]),
                    "UpdateExpression": "ADD #in :one, #out :one",
                    "ExpressionAttributeNames": {
                        "#in": _day_counter("entered", entry.at),
                        "#out": _day_counter("exited", entry.at),
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


# ---- tag links (written with the user's tag_ids, in storage.user_batches' transactions) -------


def tag_links(pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which (tag id, user id) links exist (BatchGetItem, 100 a call)."""
    keys = [{"group_id": tag_group(tag_id), "member_id": user_id} for tag_id, user_id in pairs]
    found = dynamo.batch_get(_table_name(), keys, consistent=True, projection="group_id, member_id")
    return {(str(item["group_id"])[len(TAG_PREFIX) :], str(item["member_id"])) for item in found}


def tag_link_put(tag_id: str, user_id: str) -> Action:
    """A new link (counted by the caller's `count_update`); fails when one exists."""
    item = {"group_id": tag_group(tag_id), "member_id": user_id, "target": "users"}
    return {
        "Put": {
            "TableName": _table_name(),
            "Item": item,
            "ConditionExpression": "attribute_not_exists(member_id)",
        }
    }


def tag_link_kept(tag_id: str, user_id: str) -> Action:
    """A check that a link exists: one left by a deleted incarnation of the user (its cleanup,
    `forget`, keeps it once this incarnation holds the tag), taken over as it is, already counted."""
    key = {"group_id": tag_group(tag_id), "member_id": user_id}
    return {
        "ConditionCheck": {
            "TableName": _table_name(),
            "Key": key,
            "ConditionExpression": "attribute_exists(member_id)",
        }
    }


def tag_link_delete(tag_id: str, user_id: str) -> Action:
    """A link removed (uncounted by the caller's `count_update`); fails when there is none."""
    key = {"group_id": tag_group(tag_id), "member_id": user_id}
    return {
        "Delete": {
            "TableName": _table_name(),
            "Key": key,
            "ConditionExpression": "attribute_exists(member_id)",
        }
    }


def count_update(group_id: str, delta: int) -> Action:
    """The count item of a group moved by `delta` (in the transaction of the links it counts)."""
    return {
        "Update": {
            "TableName": _table_name(),
            "Key": _count_key(group_id),
            "UpdateExpression": "ADD #n :d",
            "ExpressionAttributeNames": {"#n": "n"},
            "ExpressionAttributeValues": {":d": delta},
        }
    }


def drop_count(group_id: str) -> None:
    """Delete a group's count item (its last member is gone: a deleted tag's cleanup)."""
    dynamo.call("delete_item", TableName=_table_name(), Key=_count_key(group_id))


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
        items = dynamo.batch_get(_table_name(), [{"group_id": group, "member_id": m} for m in member_ids])
        for item in items:
            if _drop_member(segment_id, item):
                removed += 1
    dynamo.call("delete_item", TableName=_table_name(), Key=_count_key(group))
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


# ---- daily statistics --------------------------------------------------------------------------


def _stats_group(segment_id: str) -> str:
    return STATS_PREFIX + segment_group(segment_id)


def _day_counters(item: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """{day: {"entered": n, "exited": m}} from a count item's `<change>@<day>` attributes."""
    days: dict[str, dict[str, int]] = {}
    for name, value in item.items():
        change, at, day = name.partition("@")
        if at and change in changes.CHANGE_KINDS:
            days.setdefault(day, {"entered": 0, "exited": 0})[change] = int(value)
    return days


def day_counts(segment_id: str) -> tuple[int, dict[str, dict[str, int]]]:
    """A segment's count now and the changes of the days not settled yet, by UTC day."""
    item = (
        dynamo.call(
            "get_item",
            TableName=_table_name(),
            Key=_count_key(segment_group(segment_id)),
            ConsistentRead=True,
        ).get("Item")
        or {}
    )
    return int(item.get("n", 0)), _day_counters(item)


def settled_days(segment_id: str, first_day: str, last_day: str) -> dict[str, dict[str, int]]:
    """The settled days' changes from first_day to last_day (ISO dates, both included)."""
    items = dynamo.query_all(
        TableName=_table_name(),
        KeyConditionExpression="group_id = :g AND member_id BETWEEN :a AND :b",
        ExpressionAttributeValues={":g": _stats_group(segment_id), ":a": first_day, ":b": last_day},
    )
    return {
        str(item["member_id"]): {"entered": int(item.get("entered", 0)), "exited": int(item.get("exited", 0))}
        for item in items
    }


def settle_days(segment_id: str, before_day: str) -> int:
    """Move the day counters of days before `before_day` off the count item into the day's stats
    row, each day in one transaction conditioned on the counters as read (so a second run, or a
    late change of that day, never counts anything twice or loses it). Returns the days moved."""
    group = segment_group(segment_id)
    moved = 0
    item = (
        dynamo.call("get_item", TableName=_table_name(), Key=_count_key(group), ConsistentRead=True).get(
            "Item"
        )
        or {}
    )
    for day, counted in sorted(_day_counters(item).items()):
        if day >= before_day:
            continue
        names = {f"#{kind}": f"{kind}@{day}" for kind in changes.CHANGE_KINDS if f"{kind}@{day}" in item}
        condition = " AND ".join(f"{placeholder} = :{placeholder[1:]}" for placeholder in names)
        expires = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()) + STATS_KEEP_SECONDS
        row = {
            "Update": {
                "TableName": _table_name(),
                "Key": {"group_id": _stats_group(segment_id), "member_id": day},
                "UpdateExpression": "SET #x = :x ADD #e :e, #o :o",
                "ExpressionAttributeNames": {"#x": "expires_at", "#e": "entered", "#o": "exited"},
                "ExpressionAttributeValues": {
                    ":x": expires,
                    ":e": counted["entered"],
                    ":o": counted["exited"],
                },
            }
        }
        off_the_count = {
            "Update": {
                "TableName": _table_name(),
                "Key": _count_key(group),
                "UpdateExpression": "REMOVE " + ", ".join(names),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {f":{p[1:]}": counted[p[1:]] for p in names},
            }
        }
        if dynamo.transact([row, off_the_count]) is None:
            moved += 1
    return moved
