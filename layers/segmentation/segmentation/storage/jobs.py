"""The Jobs table: one item per job (imports, exports, tagging by a filter), key `job_id`.

`state` (running, done, failed), `done`, `total`, `rejected` (bad rows, imports), `errors` (the
first 100 rejected rows: `line`, `reason`), `result`, `params` (what the job does), then how it
runs: `step` (chunks committed so far), `cursor` (where the next chunk starts), a lease
(`lease_owner`, `lease_until`: the one worker running it) and `queued_step` (the last step a
continuation message was sent for). `expires_at` (TTL) clears old jobs.

Only the lease holder advances a job, each chunk in one UpdateItem conditioned on the step it
started from and on its lease: a redelivered or duplicated message can never count a chunk twice
(segmentation.segments.jobs says how the steps, the lease and the messages fit together).
"""

from __future__ import annotations

import contextlib
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from segmentation.settings import get_settings
from segmentation.storage import dynamo
from segmentation.storage.people_items import Expression

# Jobs (and what they report) are kept this long after they are created.
KEEP_SECONDS = 30 * 86400
_ID_ALPHABET = string.ascii_letters + string.digits


def new_job_id() -> str:
    return "job_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


@dataclass(frozen=True)
class JobRecord:
    id: str
    kind: str
    state: str
    done: int
    total: int
    rejected: int
    errors: list[dict[str, Any]]
    result: dict[str, Any] | None
    params: dict[str, Any]
    step: int
    cursor: dict[str, Any] | None
    lease_owner: str | None
    lease_until: float | None
    queued_step: int
    created_at: float
    updated_at: float

    def leased(self, now: float) -> bool:
        return self.lease_until is not None and self.lease_until > now


@dataclass
class Progress:
    """What one committed chunk leaves: the job's figures after it (not deltas: only the lease
    holder writes them, from the item its claim returned)."""

    cursor: dict[str, Any] | None
    done: int
    total: int
    rejected: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] | None = None  # replaces the job's params when given
    state: str | None = None  # "done" or "failed" ends the job (the lease goes with it)
    result: dict[str, Any] | None = None


def _table_name() -> str:
    return get_settings().jobs_table


def _plain(value: Any) -> Any:
    """Numbers as int or float (DynamoDB gives Decimal), maps and lists through."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _stored(value: Any) -> Any:
    """Floats as Decimal (boto3 refuses floats), maps and lists through."""
    if isinstance(value, float):
        return dynamo.number(value)
    if isinstance(value, dict):
        return {key: _stored(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_stored(item) for item in value]
    return value


def _from_item(item: Mapping[str, Any]) -> JobRecord:
    plain = _plain(dict(item))
    return JobRecord(
        id=str(plain["job_id"]),
        kind=str(plain["kind"]),
        state=str(plain["state"]),
        done=int(plain.get("done", 0)),
        total=int(plain.get("total", 0)),
        rejected=int(plain.get("rejected", 0)),
        errors=list(plain.get("errors") or []),
        result=plain.get("result"),
        params=dict(plain.get("params") or {}),
        step=int(plain.get("step", 0)),
        cursor=plain.get("cursor"),
        lease_owner=plain.get("lease_owner"),
        lease_until=None if plain.get("lease_until") is None else float(plain["lease_until"]),
        queued_step=int(plain.get("queued_step", -1)),
        created_at=float(plain["created_at"]),
        updated_at=float(plain["updated_at"]),
    )


def put_new(job_id: str, kind: str, params: Mapping[str, Any], now: float, *, total: int = 0) -> JobRecord:
    stamp = dynamo.number(now)
    item = {
        "job_id": job_id,
        "kind": kind,
        "state": "running",
        "done": 0,
        "total": total,
        "rejected": 0,
        "errors": [],
        "params": _stored(dict(params)),
        "step": 0,
        "created_at": stamp,
        "updated_at": stamp,
        "expires_at": int(now) + KEEP_SECONDS,
    }
    dynamo.call(
        "put_item", TableName=_table_name(), Item=item, ConditionExpression="attribute_not_exists(job_id)"
    )
    return _from_item(item)


def get(job_id: str) -> JobRecord | None:
    item = dynamo.call("get_item", TableName=_table_name(), Key={"job_id": job_id}, ConsistentRead=True).get(
        "Item"
    )
    return None if item is None else _from_item(item)


def claim(job_id: str, step: int, owner: str, until: float, now: float) -> JobRecord | None:
    """Take the lease of a running job at `step` when nobody holds a live one; the job as it is
    then, or None (another step, another holder, or not running)."""
    try:
        answer = dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key={"job_id": job_id},
            UpdateExpression="SET #owner = :owner, #until = :until",
            ConditionExpression=(
                "#state = :running AND #step = :step AND (attribute_not_exists(#until) OR #until < :now)"
            ),
            ExpressionAttributeNames={
                "#owner": "lease_owner",
                "#until": "lease_until",
                "#state": "state",
                "#step": "step",
            },
            ExpressionAttributeValues={
                ":owner": owner,
                ":until": dynamo.number(until),
                ":running": "running",
                ":step": step,
                ":now": dynamo.number(now),
            },
            ReturnValues="ALL_NEW",
        )
    except dynamo.ConditionFailed:
        return None
    return _from_item(answer["Attributes"])


def advance(job_id: str, step: int, owner: str, progress: Progress, now: float) -> bool:
    """Commit one chunk: step + 1 and the figures after it, while `owner` holds the lease at
    `step`. Ending the job (progress.state) also gives the lease up. False: the lease was lost."""
    expression = Expression()
    values = {
        "step": step + 1,
        "done": progress.done,
        "total": progress.total,
        "rejected": progress.rejected,
        "errors": _stored(progress.errors),
        "updated_at": dynamo.number(now),
    }
    if progress.params is not None:
        values["params"] = _stored(progress.params)
    if progress.state is not None:
        values["state"] = progress.state
    if progress.result is not None:
        values["result"] = _stored(progress.result)
    for name, value in values.items():
        expression.sets.append(f"{expression.name(name)} = {expression.value(value)}")
    if progress.cursor is None:
        expression.removes.append(expression.name("cursor"))
    else:
        expression.sets.append(f"{expression.name('cursor')} = {expression.value(_stored(progress.cursor))}")
    if progress.state is not None:
        expression.removes += [expression.name("lease_owner"), expression.name("lease_until")]
    condition = (
        f"{expression.name('step')} = {expression.value(step)} AND "
        f"{expression.name('lease_owner')} = {expression.value(owner)}"
    )
    try:
        dynamo.call(
            "update_item", TableName=_table_name(), Key={"job_id": job_id}, **expression.arguments(condition)
        )
    except dynamo.ConditionFailed:
        return False
    return True


def release(job_id: str, step: int, owner: str) -> None:
    """Give the lease up (the job goes on from `step` with the next message)."""
    # A condition that fails: lost already (another worker took over after it expired).
    with contextlib.suppress(dynamo.ConditionFailed):
        dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key={"job_id": job_id},
            UpdateExpression="REMOVE #owner, #until",
            ConditionExpression="#step = :step AND #owner = :owner",
            ExpressionAttributeNames={"#owner": "lease_owner", "#until": "lease_until", "#step": "step"},
            ExpressionAttributeValues={":step": step, ":owner": owner},
        )


def mark_queued(job_id: str, step: int) -> None:
    """Note that a message was sent for `step` (so that a redelivered older one sends none)."""
    with contextlib.suppress(dynamo.ConditionFailed):
        dynamo.call(
            "update_item",
            TableName=_table_name(),
            Key={"job_id": job_id},
            UpdateExpression="SET #queued = :step",
            ConditionExpression="attribute_not_exists(#queued) OR #queued < :step",
            ExpressionAttributeNames={"#queued": "queued_step"},
            ExpressionAttributeValues={":step": step},
        )


def fail(
    job_id: str, code: str, message: str, now: float, errors: list[dict[str, Any]] | None = None
) -> None:
    """End a running job as failed, saying why in `result.error` (and its rows in `errors`)."""
    expression = Expression()
    expression.sets += [
        f"{expression.name('state')} = {expression.value('failed')}",
        f"{expression.name('result')} = {expression.value({'error': {'code': code, 'message': message}})}",
        f"{expression.name('updated_at')} = {expression.value(dynamo.number(now))}",
    ]
    if errors is not None:
        expression.sets.append(f"{expression.name('errors')} = {expression.value(_stored(errors))}")
    expression.removes += [expression.name("lease_owner"), expression.name("lease_until")]
    condition = f"{expression.name('state')} = {expression.value('running')}"
    with contextlib.suppress(dynamo.ConditionFailed):  # ended already
        dynamo.call(
            "update_item", TableName=_table_name(), Key={"job_id": job_id}, **expression.arguments(condition)
        )
