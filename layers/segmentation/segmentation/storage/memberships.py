"""The Memberships table, and the upkeep-owned attributes of user and company items.

Items: (`segment#<id>`, member id) for each member of a segment; (`company#<id>`, user id) for
each user of a company; and per group a count item (`#count`, attribute `n`). Every membership
put/delete goes in the same TransactWriteItems as its count update and is conditioned on the
item's absence/presence, so counts stay exact and a replay never counts twice. The member's own
item (`segments`, `recheck_at`, `recheck_shard`) is written in the same transaction, conditioned
on the `rev` and stored `segments` the evaluation saw.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from botocore.exceptions import ClientError

from segmentation import cursors, errors
from segmentation.engine.fields import Target
from segmentation.settings import get_settings
from segmentation.storage import aws
from segmentation.storage.dynamo import chunk_pairs
from segmentation.storage.records import KEY_ATTRIBUTE

COUNT_MEMBER = "#count"
SEGMENT_PREFIX = "segment#"
COMPANY_PREFIX = "company#"
BY_MEMBER_INDEX = "by_member"
# TransactWriteItems takes 100 items; one is kept for the member item's write or check.
_OPS_PER_TRANSACTION = 99
_RETRIABLE_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
_MAX_ATTEMPTS = 6
RECHECK_SHARDS = 8


@dataclass(frozen=True)
class MemberUpdate:
    """Everything needed to move one user or company from its stored membership to a new one.

    `rev` and `stored_segments` are the image the evaluation used: the write is conditioned on
    both, so a newer change (rev) or another upkeep writer (segments) makes it fail instead of
    overwriting a newer state.
    """

    target: Target
    member_id: str
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


def _client() -> Any:
    # The resource's client takes and returns plain Python values (Decimal, set).
    return aws.dynamodb().meta.client


def _table_name() -> str:
    return get_settings().memberships_table


def _member_table(target: Target) -> str:
    settings = get_settings()
    return settings.users_table if target == "users" else settings.companies_table


def _backoff(attempt: int) -> None:
    time.sleep(min(0.02 * 2**attempt, 1.0))


# ---- reads -------------------------------------------------------------------------------------


def _encode_cursor(member_id: str) -> str:
    return cursors.encode({"m": member_id})


def _decode_cursor(cursor: str) -> str:
    position = cursors.decode(cursor)
    if not isinstance(position, dict) or not isinstance(position.get("m"), str):
        raise cursors.InvalidCursor()
    return str(position["m"])


def group_page(group_id: str, limit: int, cursor: str | None = None) -> tuple[list[str], str | None]:
    """Up to `limit` member ids of a group in id order, and the cursor of the next page (or None)."""
    found: list[str] = []
    start = _decode_cursor(cursor) if cursor else None
    more = True
    while more and len(found) <= limit:
        params: dict[str, Any] = {
            "TableName": _table_name(),
            "KeyConditionExpression": "group_id = :g",
            "ExpressionAttributeValues": {":g": group_id},
            "ProjectionExpression": "member_id",
            "Limit": limit + 1 - len(found) + 1,  # +1 for the count item, +1 to know if more follow
        }
        if start is not None:
            params["ExclusiveStartKey"] = {"group_id": group_id, "member_id": start}
        page = _client().query(**params)
        for item in page.get("Items", []):
            start = item["member_id"]
            if start != COUNT_MEMBER:
                found.append(start)
        more = "LastEvaluatedKey" in page
    if len(found) > limit:
        return found[:limit], _encode_cursor(found[limit - 1])
    return found, None


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
    item = (
        _client()
        .get_item(
            TableName=_table_name(),
            Key={"group_id": group_id, "member_id": COUNT_MEMBER},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return int(item["n"]) if item else 0


def counts(group_ids: Iterable[str]) -> dict[str, int]:
    """Counts of many groups with BatchGetItem (100 keys a call, unprocessed keys retried)."""
    wanted = list(dict.fromkeys(group_ids))
    result = dict.fromkeys(wanted, 0)
    keys = [{"group_id": g, "member_id": COUNT_MEMBER} for g in wanted]
    for item in batch_get(_table_name(), keys, consistent=True):
        result[item["group_id"]] = int(item["n"])
    return result


def batch_get(table: str, keys: list[dict[str, Any]], *, consistent: bool = False) -> list[dict[str, Any]]:
    """Every item of `keys` that exists, retrying UnprocessedKeys with backoff."""
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        request: dict[str, Any] = {table: {"Keys": keys[start : start + 100], "ConsistentRead": consistent}}
        for attempt in range(_MAX_ATTEMPTS * 2):
            answer = _client().batch_get_item(RequestItems=request)
            items.extend(answer.get("Responses", {}).get(table, []))
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            _backoff(attempt)
        else:
            raise errors.Retryable(f"BatchGetItem on {table} kept returning unprocessed keys")
    return items


def member_groups(member_id: str, prefix: str) -> frozenset[str]:
    """Ids (without prefix) of the groups a member is in, read from the by_member index."""
    found: set[str] = set()
    params: dict[str, Any] = {
        "TableName": _table_name(),
        "IndexName": BY_MEMBER_INDEX,
        "KeyConditionExpression": "member_id = :m AND begins_with(group_id, :p)",
        "ExpressionAttributeValues": {":m": member_id, ":p": prefix},
    }
    while True:
        page = _client().query(**params)
        found.update(item["group_id"][len(prefix) :] for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return frozenset(found)
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# ---- writes ------------------------------------------------------------------------------------


def _pair(group_id: str, member_id: str, target: str, add: bool) -> list[dict[str, Any]]:
    """A membership put/delete and the count update that must go with it."""
    table = _table_name()
    key = {"group_id": group_id, "member_id": member_id}
    op: dict[str, Any]
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
            "Key": {"group_id": group_id, "member_id": COUNT_MEMBER},
            "UpdateExpression": "ADD #n :d",
            "ExpressionAttributeNames": {"#n": "n"},
            "ExpressionAttributeValues": {":d": 1 if add else -1},
        }
    }
    return [op, count_op]


def _update_pairs(update: MemberUpdate) -> list[list[dict[str, Any]]]:
    member, target = update.member_id, update.target
    pairs = [_pair(segment_group(s), member, target, True) for s in sorted(update.added)]
    pairs += [_pair(segment_group(s), member, target, False) for s in sorted(update.removed)]
    pairs += [_pair(company_group(c), member, "users", True) for c in sorted(update.linked_companies)]
    pairs += [_pair(company_group(c), member, "users", False) for c in sorted(update.unlinked_companies)]
    return pairs


def _member_condition(update: MemberUpdate) -> tuple[str, dict[str, str], dict[str, Any]]:
    key = KEY_ATTRIBUTE[update.target]
    names = {"#k": key, "#rev": "rev", "#seg": "segments"}
    values: dict[str, Any] = {}
    parts = ["attribute_exists(#k)"]
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


def _member_write(update: MemberUpdate, final: bool) -> dict[str, Any]:
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


def _transact(items: list[dict[str, Any]]) -> list[str] | None:
    """Run one transaction: None when it committed, else the per-item cancellation codes."""
    try:
        _client().transact_write_items(TransactItems=items)
        return None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
            raise
        reasons = exc.response.get("CancellationReasons") or []
        return [str(r.get("Code") or "None") for r in reasons] or ["TransactionConflict"] * len(items)


def _run_pairs(pairs: list[list[dict[str, Any]]], head: dict[str, Any] | None) -> bool:
    """Commit `pairs` (+ the member item's `head` op) in one transaction.

    Pairs whose membership op is already in the wanted state (a replay, or a concurrent writer)
    are dropped and the rest retried. False when `head`'s condition failed.
    """
    pending = pairs
    for attempt in range(_MAX_ATTEMPTS):
        if not pending and head is None:
            return True
        items = [op for pair in pending for op in pair] + ([head] if head else [])
        reasons = _transact(items)
        if reasons is None:
            return True
        if head is not None and reasons[-1] == "ConditionalCheckFailed":
            return False
        kept: list[list[dict[str, Any]]] = []
        position = 0
        for pair in pending:
            if reasons[position] != "ConditionalCheckFailed":
                kept.append(pair)
            position += len(pair)
        if any(code in _RETRIABLE_REASONS for code in reasons):
            _backoff(attempt)
        pending = kept
    raise errors.Retryable("membership transaction kept being cancelled")


def _inverse(pair: list[dict[str, Any]], target: Target) -> list[dict[str, Any]]:
    op = pair[0]
    if "Put" in op:
        item = op["Put"]["Item"]
        return _pair(item["group_id"], item["member_id"], item["target"], add=False)
    key = op["Delete"]["Key"]
    return _pair(key["group_id"], key["member_id"], target, add=True)


def apply_update(update: MemberUpdate) -> bool:
    """Write a member's membership changes. False: the member item changed since it was read.

    Diffs over 99 operations are chunked; the member item's conditioned write goes in the last
    chunk and a ConditionCheck of the same condition in each earlier one. If the item changes
    between chunks, the chunks already committed are undone, so stored `segments` and the
    membership items never disagree.
    """
    pairs = _update_pairs(update)
    chunks = chunk_pairs(pairs, _OPS_PER_TRANSACTION)
    committed: list[list[dict[str, Any]]] = []
    for index, chunk in enumerate(chunks):
        final = index == len(chunks) - 1
        if not _run_pairs(chunk, _member_write(update, final)):
            if committed:
                _apply_idempotent([_inverse(pair, update.target) for pair in committed])
            return False
        committed.extend(chunk)
    return True


def _apply_idempotent(pairs: list[list[dict[str, Any]]]) -> None:
    for chunk in chunk_pairs(pairs, _OPS_PER_TRANSACTION + 1):
        _run_pairs(chunk, None)


def remove_memberships(target: Target, member_id: str, segment_ids: Iterable[str]) -> None:
    """Take a deleted member out of segments (no member item left to condition on)."""
    _apply_idempotent([_pair(segment_group(s), member_id, target, False) for s in sorted(segment_ids)])


def set_company_links(user_id: str, link: Iterable[str], unlink: Iterable[str]) -> None:
    """Add/remove a user's company links idempotently (used when the user's own write was stale)."""
    pairs = [_pair(company_group(c), user_id, "users", True) for c in sorted(link)]
    pairs += [_pair(company_group(c), user_id, "users", False) for c in sorted(unlink)]
    _apply_idempotent(pairs)


def drop_group(segment_id: str) -> int:
    """Delete every membership of a segment and its count; take it out of members' `segments`."""
    group = segment_group(segment_id)
    removed = 0
    for member_ids in iter_group(group, page_size=25):
        items = batch_get(_table_name(), [{"group_id": group, "member_id": m} for m in member_ids])
        for item in items:
            _drop_member(group, segment_id, item["member_id"], item.get("target", "users"))
            removed += 1
    _client().delete_item(TableName=_table_name(), Key={"group_id": group, "member_id": COUNT_MEMBER})
    return removed


def _drop_member(group: str, segment_id: str, member_id: str, target: Target) -> None:
    delete = {"Delete": {"TableName": _table_name(), "Key": {"group_id": group, "member_id": member_id}}}
    key = KEY_ATTRIBUTE[target]
    forget = {
        "Update": {
            "TableName": _member_table(target),
            "Key": {key: member_id},
            "UpdateExpression": "DELETE #seg :s",
            "ConditionExpression": "attribute_exists(#k)",
            "ExpressionAttributeNames": {"#seg": "segments", "#k": key},
            "ExpressionAttributeValues": {":s": {segment_id}},
        }
    }
    for attempt in range(_MAX_ATTEMPTS):
        reasons = _transact([delete, forget])
        if reasons is None:
            return
        if reasons[-1] == "ConditionalCheckFailed":  # the member item is gone: only the link is left
            _client().delete_item(**delete["Delete"])
            return
        _backoff(attempt)
    raise errors.Retryable("dropping a membership kept being cancelled")
