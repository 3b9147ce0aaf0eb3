"""The Changes table: every membership change, written in the transaction that makes it.

Item key: `pair` = "<segment id>|<member id>" (segment ids never hold `|`), `sequence` (N): the
n-th change of that member in that segment, 1, 2, 3... (entries odd, exits even, unless history
expired). A change's Put is conditioned on its key being new, so a replayed write records
nothing twice, and a guess of the sequence that was already used (a member deleted and created
again lost the map of its sequences) fails instead of overwriting: the writer then reads the
pair's last sequence (`latest_sequence`) and tries again.

Attributes: `segment_id`, `target`, `member_id`, `change` ("entered"/"exited"), `at` (epoch
seconds, to the millisecond), `cause`, `member` ("<target>|<member id>"), `feed` (the sort key of
both indexes: "<at in ms, 15 digits>#<sequence, 10 digits>#<segment id>#<member id>", so equal
instants still sort one way), `expires_at` (DynamoDB's TTL: 90 days after `at`).

Indexes: `by_segment` (segment_id, feed): a segment's changes in time order (the feed);
`by_member` (member, feed): one member's history. Both project everything.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, get_args

from segmentation.settings import get_settings
from segmentation.storage import dynamo

Cause = Literal[
    "attributes",
    "login",
    "event",
    "company",
    "time",
    "segment_created",
    "segment_edited",
    "rebuild",
    "deleted",
]
CAUSES: tuple[str, ...] = get_args(Cause)
ChangeKind = Literal["entered", "exited"]
CHANGE_KINDS: tuple[str, ...] = get_args(ChangeKind)

KEEP_SECONDS = 90 * 86400
BY_SEGMENT_INDEX = "by_segment"
BY_MEMBER_INDEX = "by_member"
# The feed's settle window: a change is committed (and in the index) within this long of its
# `at`. A page hands out the newest changes at once, and its cursor remembers which of those
# younger than this it returned, so a change committed a little late is still read, once.
SETTLE_MS = 5_000
# At most this many such changes are remembered in a cursor (its size stays about 1.4 KB); past
# that, a page stops early and hands out the rest once they are older than the window.
MAX_REMEMBERED = 100
_HASH_BYTES = 6

Action = dict[str, Any]


def _table_name() -> str:
    return get_settings().changes_table


def pair_key(segment_id: str, member_id: str) -> str:
    return f"{segment_id}|{member_id}"


def member_key(target: str, member_id: str) -> str:
    return f"{target}|{member_id}"


def _millis(at: Decimal) -> int:
    return int(at * 1000)


def feed_key(at: Decimal, sequence: int, segment_id: str, member_id: str) -> str:
    return f"{_millis(at):015d}#{sequence:010d}#{segment_id}#{member_id}"


def put_action(
    *,
    segment_id: str,
    target: str,
    member_id: str,
    change: ChangeKind,
    sequence: int,
    at: Decimal,
    cause: str,
) -> Action:
    """The conditional Put of one change, for the transaction that makes it."""
    return {
        "Put": {
            "TableName": _table_name(),
            "Item": {
                "pair": pair_key(segment_id, member_id),
                "sequence": sequence,
                "segment_id": segment_id,
                "target": target,
                "member_id": member_id,
                "member": member_key(target, member_id),
                "change": change,
                "at": at,
                "cause": cause,
                "feed": feed_key(at, sequence, segment_id, member_id),
                "expires_at": int(at) + KEEP_SECONDS,
            },
            "ConditionExpression": "attribute_not_exists(#p)",
            "ExpressionAttributeNames": {"#p": "pair"},
        }
    }


def is_put_of_change(action: Mapping[str, Any]) -> bool:
    return "Put" in action and action["Put"]["TableName"] == _table_name()


def latest_sequence(segment_id: str, member_id: str) -> int:
    """The last sequence recorded for a member in a segment (0 if none is kept)."""
    items = dynamo.call(
        "query",
        TableName=_table_name(),
        KeyConditionExpression="#p = :p",
        ExpressionAttributeNames={"#p": "pair", "#s": "sequence"},
        ExpressionAttributeValues={":p": pair_key(segment_id, member_id)},
        ProjectionExpression="#s",
        ScanIndexForward=False,
        Limit=1,
        ConsistentRead=True,
    ).get("Items", [])
    return int(items[0]["sequence"]) if items else 0


# ---- reads -------------------------------------------------------------------------------------


def member_page(
    target: str, member_id: str, limit: int, start: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """A member's changes, newest first, and the key to continue from (None at the end)."""
    params: dict[str, Any] = {
        "TableName": _table_name(),
        "IndexName": BY_MEMBER_INDEX,
        "KeyConditionExpression": "#m = :m",
        "ExpressionAttributeNames": {"#m": "member"},
        "ExpressionAttributeValues": {":m": member_key(target, member_id)},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if start:
        params["ExclusiveStartKey"] = start
    page = dynamo.call("query", **params)
    return page.get("Items", []), page.get("LastEvaluatedKey")


@dataclass(frozen=True)
class FeedPosition:
    """Where a reader of a segment's feed stands.

    `after`: the greatest feed key handed out (None before the first); `since_ms`: the lower
    bound asked for; `settled_ms`: the read's own now minus the settle window; `remembered`:
    short hashes of the keys handed out that are younger than `settled_ms` (a change younger
    than that may still be committed under an older key, and must not be handed out twice).
    """

    since_ms: int
    after: str | None = None
    settled_ms: int = 0
    remembered: tuple[tuple[int, bytes], ...] = ()  # (at in ms, hash)

    def to_json(self) -> dict[str, Any]:
        blob = b"".join(struct.pack(">Q", at) + digest for at, digest in self.remembered)
        return {
            "since": self.since_ms,
            "after": self.after,
            "settled": self.settled_ms,
            "seen": base64.urlsafe_b64encode(blob).decode(),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> FeedPosition:
        """ValueError for anything that is not a position to_json made."""
        since, after, settled, seen = (value[k] for k in ("since", "after", "settled", "seen"))
        if not (isinstance(since, int) and isinstance(settled, int) and isinstance(seen, str)):
            raise ValueError("not a feed position")
        if after is not None and not isinstance(after, str):
            raise ValueError("not a feed position")
        blob = base64.urlsafe_b64decode(seen.encode("ascii"))
        size = 8 + _HASH_BYTES
        if len(blob) % size or len(blob) // size > MAX_REMEMBERED:
            raise ValueError("not a feed position")
        remembered = tuple(
            (struct.unpack(">Q", blob[i : i + 8])[0], blob[i + 8 : i + size])
            for i in range(0, len(blob), size)
        )
        return cls(since_ms=since, after=after, settled_ms=settled, remembered=remembered)


def _digest(feed: str) -> bytes:
    return hashlib.blake2b(feed.encode("utf-8"), digest_size=_HASH_BYTES).digest()


def feed_page(
    segment_id: str, position: FeedPosition, change: str | None, limit: int, now: float
) -> tuple[list[dict[str, Any]], FeedPosition]:
    """The next changes of a segment after `position`, oldest first, and the position after them.

    Reads from the older of the last key handed out and the last read's settled instant; of the
    keys not after the last one handed out, only those that were younger than that instant and
    not remembered are new (committed late): they are handed out now, once.
    """
    last = _millis_of(position.after)
    start = position.since_ms if position.after is None else min(last, position.settled_ms)
    remembered = {digest for _, digest in position.remembered}
    settled_ms = max(int(now * 1000) - SETTLE_MS, position.settled_ms)
    kept = [(at, digest) for at, digest in position.remembered if at >= settled_ms]
    params: dict[str, Any] = {
        "TableName": _table_name(),
        "IndexName": BY_SEGMENT_INDEX,
        "KeyConditionExpression": "#s = :s AND #f >= :from",
        "ExpressionAttributeNames": {"#s": "segment_id", "#f": "feed"},
        "ExpressionAttributeValues": {":s": segment_id, ":from": f"{max(start, 0):015d}"},
        "Limit": max(limit, 25),
    }
    if change is not None:
        params["FilterExpression"] = "#c = :c"
        params["ExpressionAttributeNames"]["#c"] = "change"
        params["ExpressionAttributeValues"][":c"] = change
    found: list[dict[str, Any]] = []
    after = position.after
    while len(found) < limit:
        page = dynamo.call("query", **params)
        for item in page.get("Items", []):
            key = str(item["feed"])
            at = _millis_of(key)
            digest = _digest(key)
            handed_out = at < position.settled_ms or digest in remembered
            if position.after is not None and key <= position.after and handed_out:
                continue
            if at >= settled_ms:
                if len(kept) >= MAX_REMEMBERED:
                    return found, FeedPosition(position.since_ms, after, settled_ms, tuple(kept))
                kept.append((at, digest))
            found.append(item)
            after = key if after is None or key > after else after
            if len(found) == limit:
                break
        if "LastEvaluatedKey" not in page or len(found) == limit:
            break
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return found, FeedPosition(position.since_ms, after, settled_ms, tuple(kept))


def _millis_of(feed: str | None) -> int:
    return 0 if feed is None else int(feed[:15])
