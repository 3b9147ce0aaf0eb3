"""The account's default event bus, locally: template.yaml's rules (an EventPattern, Lambda
targets) match each event put on it, with moto's EventBridge pattern matcher, and hand it to
their target functions as EventBridge does: asynchronously, as the event itself.

A function that fails is retried as Lambda retries an asynchronous invocation (the function's
`EventInvokeConfig.MaximumRetryAttempts`, 2 by default; locally after LOCAL_RETRY_DELAY seconds
instead of minutes), then its event goes to the function's `DeadLetterQueue` with the attributes
Lambda adds (`RequestID`, `ErrorCode`, `ErrorMessage`), or is dropped, as on AWS. The targets'
own RetryPolicy and DeadLetterConfig are for events EventBridge cannot hand over at all (the
function throttled or not allowed to be invoked), which does not happen here.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from moto.events.models import EventPattern
from segmentation import clock
from segmentation.storage import aws

from infra.local.intrinsics import ACCOUNT_ID, REGION
from infra.local.lambdas import LocalFunction, invoke_lock

log = logging.getLogger("infra.local.eventbridge")

LOCAL_RETRY_DELAY = 1.0
DEFAULT_ASYNC_RETRIES = 2  # Lambda's, unless the function's EventInvokeConfig says otherwise


@dataclass(frozen=True)
class Target:
    function: LocalFunction
    retries: int
    dead_letter_queue_url: str | None  # the function's DeadLetterQueue


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: EventPattern
    targets: tuple[Target, ...]


@dataclass
class _Invocation:
    rule: str
    target: Target
    event: dict[str, Any]
    attempts: int = 0
    due: float = 0.0  # time.monotonic()


def compile_pattern(pattern: Any) -> EventPattern:
    """moto's matcher for a template's EventPattern (a mapping, or its JSON text)."""
    return EventPattern.load(pattern if isinstance(pattern, str) else json.dumps(pattern))


def _matches(rule: Rule, event: dict[str, Any]) -> bool:
    return bool(rule.pattern.matches_event(event))  # type: ignore[arg-type]  # moto's TypedDict


def _time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class LocalEventBus:
    """The default bus: `put_events` matches and queues, `poll_once` invokes (a poller)."""

    name = "EventBridge.default"

    def __init__(self, rules: list[Rule]):
        self.rules = rules
        self._pending: deque[_Invocation] = deque()
        self._lock = threading.Lock()

    def put_events(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """PutEvents entries ({"Source", "DetailType", "Detail" (JSON text), "Resources",
        "Time"}) as the bus delivers them; returns each event with the rules it matched."""
        published = []
        for entry in entries:
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": entry["DetailType"],
                "source": entry["Source"],
                "account": ACCOUNT_ID,
                "time": entry.get("Time") or _time(clock.now()),
                "region": REGION,
                "resources": list(entry.get("Resources") or []),
                "detail": json.loads(entry["Detail"]),
            }
            matched = [rule for rule in self.rules if _matches(rule, event)]
            with self._lock:
                for rule in matched:
                    for target in rule.targets:
                        self._pending.append(_Invocation(rule.name, target, event))
            published.append({"event": event, "rules": [rule.name for rule in matched]})
        return published

    def poll_once(self) -> int:
        """Invoke the targets whose turn has come; how many invocations were made."""
        now = time.monotonic()
        with self._lock:
            due = [i for i in self._pending if i.due <= now]
            for invocation in due:
                self._pending.remove(invocation)
        for invocation in due:
            self._invoke(invocation)
        return len(due)

    def _invoke(self, invocation: _Invocation) -> None:
        target = invocation.target
        invocation.attempts += 1
        try:
            with invoke_lock:
                target.function.invoke(invocation.event)
            return
        except Exception as error:
            failure = error
        log.warning(
            "%s failed on an event of rule %s (attempt %d): %s",
            target.function.spec.logical_id,
            invocation.rule,
            invocation.attempts,
            failure,
        )
        if invocation.attempts <= target.retries:
            invocation.due = time.monotonic() + LOCAL_RETRY_DELAY
            with self._lock:
                self._pending.append(invocation)
            return
        self._dead_letter(invocation, failure)

    def _dead_letter(self, invocation: _Invocation, failure: Exception) -> None:
        target = invocation.target
        if target.dead_letter_queue_url is None:
            log.error("%s: event of rule %s dropped after its retries", target.function.name, invocation.rule)
            return
        with invoke_lock:
            aws.client("sqs").send_message(
                QueueUrl=target.dead_letter_queue_url,
                MessageBody=json.dumps(invocation.event),
                MessageAttributes={
                    "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
                    "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                    "ErrorMessage": {"DataType": "String", "StringValue": str(failure)[:1000] or "error"},
                },
            )
