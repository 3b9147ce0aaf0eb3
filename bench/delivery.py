"""A manual email to a whole audience, through fan-out, the senders and the reconciler, against a
local SES that takes only a few emails a second: hours of sending, simulated in minutes.

The local stack (infra.local: moto in process, template.yaml's tables and queues, the real
handlers and its SQS event source emulation) runs FanoutFunction and SenderFunction from their
queues and ReconcilerFunction on its 10-minute schedule. Time is simulated for the whole process
(time-machine): the stack's clock, moto's SQS delays and visibility, and the local SES's rate all
follow it; the sender's pace moves it instead of sleeping, and when no job is due it jumps to the
next. Nothing is mocked in the code under test: the simulation only decides when time passes.

Measured: how many users got exactly one email (the goal: all), failed deliveries (goal: 0),
duplicate jobs (a job that found its delivery already handled: the reconciler or a producer
queued a second one while the first was on its way), AWS calls and CPU per delivery (CPU of the
handlers, moto's work in process included), and the simulated hours it took.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import time_machine

from bench.calls import CallLog

SENDING = ("FanoutFunction", "SenderFunction")
RECONCILER = "ReconcilerFunction"
RECONCILE_EVERY_SECONDS = 600.0
IDLE_STEP_SECONDS = 5.0
SES_RATE = 5.0  # emails a second the local SES takes


@dataclass
class DeliveryRun:
    audience: int
    exactly_once: int
    failed: int
    duplicate_jobs: int
    aws_calls_per_delivery: float
    cpu_ms_per_delivery: float
    simulated_hours: float
    simulated_seconds: float
    ses_rate: float
    throttled: int
    sender_outcomes: dict[str, int]
    wall_seconds: float

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def run(
    audience: int,
    *,
    ses_rate: float = SES_RATE,
    sender_rate: int = 0,
    max_simulated_hours: float = 48.0,
) -> DeliveryRun:
    """`sender_rate`: the stack's SesMaxSendRate; 0 reads the local SES's rate (GetAccount) as a
    deployed stack does. Set above `ses_rate`, SES throttles and the senders must slow down."""
    started = time.perf_counter()
    env = {
        "SES_SEND_RATE": str(ses_rate),
        "SES_MAX_SEND_RATE": str(sender_rate),
        "SEED_DEMO": "0",
        "LOG_LEVEL": "ERROR",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
    saved = dict(os.environ)  # the local stack exports the functions' environment: put it back after
    os.environ.update(env)
    try:
        with time_machine.travel(time.time(), tick=False) as traveller:
            result = _simulate(audience, traveller, ses_rate, max_simulated_hours)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    result.wall_seconds = round(time.perf_counter() - started, 1)
    return result


def _simulate(audience: int, traveller: Any, ses_rate: float, max_hours: float) -> DeliveryRun:
    from segmentation import clock
    from segmentation.messaging import sender, service
    from segmentation.messaging.model import MessageCreate
    from segmentation.settings import get_settings
    from segmentation.storage import aws, messages

    from infra.local.pollers import scheduled_event
    from infra.local.stack import Keys, LocalStack

    keys = Keys("sk_admin_" + secrets.token_urlsafe(16), "sk_ingest_" + secrets.token_urlsafe(16), "s")
    stack = LocalStack(keys=keys, parameters={"SenderEmail": "news@example.com"})
    stack.start()
    try:
        clock.set_sleeper(traveller.shift)
        log = CallLog()
        log.install()
        cpu = {"seconds": 0.0}
        for logical_id in (*SENDING, RECONCILER):
            function = stack.functions[logical_id]
            function.handler = _timed(log.wrap(logical_id, function.handler, aws.reset), cpu)
        outcomes: Counter[str] = Counter()
        real_deliver = sender.deliver

        def deliver(*args: Any, **kwargs: Any) -> str:
            outcome = real_deliver(*args, **kwargs)
            outcomes[outcome.split(":")[0]] += 1
            return outcome

        sender.deliver = deliver  # type: ignore[assignment]
        user_ids = _users(get_settings().users_table, audience)
        request = MessageCreate.model_validate(
            {
                "name": "Everyone",
                "type": "manual",
                "channel": "email",
                "audience": {"filter": {"field": "email", "op": "exists"}},
                "subject": "Hello {{ user.name }}",
                "body": "Hi {{ user.name | default: 'there' }}, news for you.",
            }
        )
        begun = clock.now()
        message_id = service.send(service.create(request, begun).id, begun).id
        pollers = [p for p in stack.queue_pollers if p.source.function_id in SENDING]
        reconciler = stack.functions[RECONCILER]
        next_reconcile = begun + RECONCILE_EVERY_SECONDS
        with log.counting() as window:
            while clock.now() - begun < max_hours * 3600:
                handled = sum(poller.poll_once() for poller in pollers)
                if clock.now() >= next_reconcile:
                    reconciler.invoke(scheduled_event(None, reconciler, "123456789012"))
                    next_reconcile += RECONCILE_EVERY_SECONDS
                if handled:
                    continue
                item = messages.get(message_id) or {}
                if item.get("fanned_out_at") is not None and int(item.get("stat_queued", 0)) == 0:
                    break
                traveller.shift(IDLE_STEP_SECONDS)
        sender.deliver = real_deliver  # type: ignore[assignment]
        item = messages.get(message_id) or {}
        received = Counter(to for m in stack.outbox() for to in m["to"])
        addresses = {f"{u}@example.com" for u in user_ids}
        settled = sum(int(item.get(f"stat_{s}", 0)) for s in ("sent", "skipped", "failed"))
        deliveries = max(settled, 1)
        return DeliveryRun(
            audience=audience,
            exactly_once=sum(1 for a in addresses if received[a] == 1),
            failed=int(item.get("stat_failed", 0)),
            duplicate_jobs=sum(n for o, n in outcomes.items() if o.startswith(("already_", "not_claimed"))),
            aws_calls_per_delivery=round(len(window.calls) / deliveries, 2),
            cpu_ms_per_delivery=round(cpu["seconds"] * 1000 / deliveries, 2),
            simulated_hours=round((clock.now() - begun) / 3600, 2),
            simulated_seconds=round(clock.now() - begun, 1),
            ses_rate=ses_rate,
            throttled=outcomes["throttled"],
            sender_outcomes=dict(outcomes),
            wall_seconds=0.0,
        )
    finally:
        clock.set_sleeper(None)
        stack.stop()


def _timed(handler: Callable[..., Any], cpu: dict[str, float]) -> Callable[..., Any]:
    def timed(event: dict[str, Any], context: Any) -> Any:
        begun = time.process_time()
        try:
            return handler(event, context)
        finally:
            cpu["seconds"] += time.process_time() - begun

    return timed


def _users(table_name: str, count: int) -> list[str]:
    """The audience, written straight to the users table (the stream is not polled here)."""
    from decimal import Decimal

    from segmentation.storage import aws

    ids = [f"user{i:06d}" for i in range(count)]
    table = aws.table(table_name)
    with table.batch_writer() as batch:
        for user_id in ids:
            batch.put_item(
                Item={
                    "user_id": user_id,
                    "email": f"{user_id}@example.com",
                    "name": f"User {user_id}",
                    "session_count": Decimal(0),
                    "unsubscribed_from_emails": False,
                    "custom_attributes": {},
                    "company_ids": [],
                    "rev": Decimal(1),
                }
            )
    return ids
