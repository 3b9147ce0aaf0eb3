"""The Memberships table, and the upkeep-owned attributes of user and company items.

Items:
- (`segment#<segment id>`, member id): a member of a segment (`target`: users or companies);
- (`company#<company id>`, user id): a user linked to a company;
- (`tag#<tag id>`, user id): a user holding a tag, written with the user's `tag_ids` by
  storage.user_batches;
- (`#count#<group>`, `#`): the number of members of a group (attribute `n`).
Group ids always start with `segment#`, `company#` or `tag#`, so a count's partition (`#count#...`)
is out of reach of any user, company, segment or tag id, whatever characters it holds.

Every membership put/delete goes in the same TransactWriteItems as its count update and is
conditioned on the item's absence/presence, so counts stay exact and a replay never counts
twice. The member's own item (`segments`, `recheck_at`, `recheck_shard`) is written in the same
transaction, conditioned on the `incarnation`, `rev` and stored `segments` the evaluation saw:
an item deleted and created again has another incarnation, so an evaluation of the old one
never lands on the new one. Memberships left behind by a deleted member are removed only while
the member item (if any) does not hold them (`forget`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from segmentation.engine.fields import TAG_IDS, Target
from segmentation.settings import get_settings
from segmentation.storage import cursors, dynamo
from segmentation.storage.records import INCARNATION, KEY_ATTRIBUTE

SEGMENT_PREFIX = "segment#"
COMPANY_PREFIX = "company#"
TAG_PREFIX = "tag#"
COUNT_PREFIX = "#count#"
COUNT_MEMBER = "#"
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


def _encode_cursor(member_id: str) -> str:
    return cursors.encode({"m": member_id})


def _decode_cursor(cursor: str) -> str:
    position = cursors.decode(cursor)
    if not isinstance(position, dict) or not isinstance(position.get("m"), str) or not position["m"]:
        raise cursors.InvalidCursor()
    return str(position["m"])


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
        params["ExclusiveStartKey"] = {"group_id": group_id, "member_id": _decode_cursor(cursor)}
    found = [str(item["member_id"]) for item in dynamo.call("query", **params).get("Items", [])]
    if len(found) > limit:
        return found[:limit], _encode_cursor(found[limit - 1])
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


def _pair(group_id: str, member_id: str, target: str, add: bool) -> list[Action]:
    """A membership put/delete and the count update that must go with it."""
    table = _table_name()
    key = {"group_id": group_id, "member_id": member_id}
    op: Action
    if add:
        op = {
            "Put": {
                "TableName": table,
                "Item": {**key, "target": target},
                "ConditionExpression": "attribute_not_exists(member_id)",
            }
        }
    else:
        op = {
            "Delete": {"TableName": table, "Key": key, "ConditionExpression": "attribute_exists(member_id)"}
        }
    count_op = {
        "Update": {
            "TableName": table,
            "Key": _count_key(group_id),
            "UpdateExpression": "ADD #n :d",
            "ExpressionAttributeNames": {"#n": "n"},
            "ExpressionAttributeValues": {":d": 1 if add else -1},
        }
    }
    return [op, count_op]


def _update_pairs(update: MemberUpdate) -> list[list[Action]]:
    member, target = update.member_id, update.target
    pairs = [_pair(segment_group(s), member, target, True) for s in sorted(update.added)]
    pairs += [_pair(segment_group(s), member, target, False) for s in sorted(update.removed)]
    pairs += [_pair(company_group(c), member, "users", True) for c in sorted(update.linked_companies)]
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


def _member_write(update: MemberUpdate, final: bool) -> Action:
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


def _inverse(pair: list[Action], target: Target) -> list[Action]:
    op = pair[0]
    if "Put" in op:
        item = op["Put"]["Item"]
        return _pair(item["group_id"], item["member_id"], item["target"], add=False)
    key = op["Delete"]["Key"]
    return _pair(key["group_id"], key["member_id"], target, add=True)


def apply_update(update: MemberUpdate, guard: Action | None = None) -> bool:
    """Write a member's membership changes. False: the member item changed since it was read.

    Diffs over 98 operations are chunked; the member item's conditioned write goes in the last
    chunk and a ConditionCheck of the same condition in each earlier one. If the item changes
    between chunks, the chunks already committed are undone, so stored `segments` and the
    membership items never disagree. `guard` (the definitions' version the update was computed
    with) goes in the last chunk: when it fails, the earlier chunks are undone and
    dynamo.GuardFailed is raised.
    """
    chunks = dynamo.chunk_pairs(_update_pairs(update), _OPS_PER_TRANSACTION)
    committed: list[list[Action]] = []
    for index, chunk in enumerate(chunks):
        final = index == len(chunks) - 1
        try:
            applied, done = dynamo.commit_groups(
                chunk, _member_write(update, final), guard if final else None
            )
        except dynamo.GuardFailed:
            _undo(committed, update.target)
            raise
        if not applied:
            _undo(committed, update.target)
            return False
        committed.extend(done)
    return True


def _undo(committed: list[list[Action]], target: Target) -> None:
    if committed:
        _commit_each([_inverse(pair, target) for pair in committed])


def _commit_each(groups: list[list[Action]]) -> None:
    for chunk in dynamo.chunk_pairs(groups, dynamo.TRANSACTION_LIMIT):
        dynamo.commit_groups(chunk)


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


def forget(
    target: Target,
    member_id: str,
    segment_ids: Iterable[str],
    company_ids: Iterable[str] = (),
    tag_ids: Iterable[str] = (),
) -> None:
    """Remove the memberships (and, for a user, the company and tag links) a deleted member left
    behind.

    Each removal holds only while the member item is gone or does not hold that segment (or list
    that company, or hold that tag): a member created again keeps what its new incarnation was
    given, whatever the order in which the delete and the creation are seen.
    """
    groups = [
        [
            *_pair(segment_group(s), member_id, target, False),
            _absent_or_without(target, member_id, "segments", s),
        ]
        for s in sorted(set(segment_ids))
    ]
    groups += [
        [
            *_pair(company_group(c), member_id, "users", False),
            _absent_or_without(target, member_id, "company_ids", c),
        ]
        for c in sorted(set(company_ids))
    ]
    groups += [
        [
            *_pair(tag_group(t), member_id, "users", False),
            _absent_or_without(target, member_id, TAG_IDS, t),
        ]
        for t in sorted(set(tag_ids))
    ]
    # One item per transaction may be checked only once: one removal per transaction.
    for group in groups:
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
    """Delete every membership of a segment and its count; take it out of members' `segments`."""
    group = segment_group(segment_id)
    removed = 0
    for member_ids in iter_group(group, page_size=25):
        items = dynamo.batch_get(_table_name(), [{"group_id": group, "member_id": m} for m in member_ids])
        for item in items:
            _drop_member(group, segment_id, item["member_id"], item.get("target", "users"))
            removed += 1
    dynamo.call("delete_item", TableName=_table_name(), Key=_count_key(group))
    return removed


def _drop_member(group: str, segment_id: str, member_id: str, target: Target) -> None:
    delete = {"Delete": {"TableName": _table_name(), "Key": {"group_id": group, "member_id": member_id}}}
    key = KEY_ATTRIBUTE[target]
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
    if dynamo.transact([delete, forget_segment]) is not None:
        # The member item is gone: only the membership is left to delete.
        dynamo.call("delete_item", **delete["Delete"])
