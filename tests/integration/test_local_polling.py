"""The local stack's poll loop: every POLL_INTERVAL while there is work, less often while idle,
and soon after a request over HTTP (its stream records are due now, not after the idle wait),
though never more often than every POLL_INTERVAL."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from segmentation import clock

from infra.local import stack as local_stack
from infra.local.pollers import IDLE_POLL_INTERVAL, POLL_INTERVAL, next_poll_wait
from infra.local.server import make_server
from tests.e2e.helpers import wait_for
from tests.integration.stack_support import Api, running_stack

LONG_IDLE = 600.0  # longer than any test: only a wake-up can end it


def test_idle_waits_double_up_to_the_idle_interval() -> None:
    waits = [POLL_INTERVAL]
    for _ in range(10):
        waits.append(next_poll_wait(waits[-1]))
    assert waits[1] == 2 * POLL_INTERVAL
    assert waits == sorted(waits) and waits[-1] == IDLE_POLL_INTERVAL


@dataclass
class Served:
    api: Api
    base_url: str
    passes: int = 0  # poll passes made
    idle_from: int | None = None  # the pass count when the loop first chose LONG_IDLE


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """A stack in process with its pollers in the background and its HTTP server on a free port;
    idle, its poll loop waits LONG_IDLE, and no schedule runs (a schedule wakes the loop too)."""
    monkeypatch.setattr(local_stack, "SCHEDULE_INTERVAL", LONG_IDLE)
    with running_stack() as api:
        server = make_server(api.stack, "127.0.0.1", 0)
        served = Served(api, f"http://127.0.0.1:{server.server_address[1]}")
        poll_all = api.stack._poll_all

        def counted_pass() -> int:
            handled = poll_all()
            served.passes += 1
            return handled

        def wait_after_an_empty_pass(previous: float) -> float:
            if served.idle_from is None:
                served.idle_from = served.passes
            return LONG_IDLE

        monkeypatch.setattr(api.stack, "_poll_all", counted_pass)
        monkeypatch.setattr(local_stack, "next_poll_wait", wait_after_an_empty_pass)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        api.stack.start_background()
        try:
            yield served
        finally:
            server.shutdown()
            server.server_close()


def _request(url: str, method: str, key: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_request_wakes_an_idle_poll_loop(served: Served) -> None:
    # Idle: the loop chose LONG_IDLE, made the pass after that choice, and now waits.
    went_idle = wait_for(
        lambda: served.idle_from is not None and served.passes > served.idle_from, lambda idle: idle
    )
    assert went_idle, "the poll loop never went idle"
    signed_up = datetime.fromtimestamp(clock.now(), UTC).isoformat()
    user = {"user_id": "woken", "signed_up_at": signed_up}
    _request(f"{served.base_url}/v1/users", "POST", served.api.keys["ingest"], user)
    # The user's own segments are written with the user; the changes feed only by the stream's function.
    feed = wait_for(
        lambda: _request(f"{served.base_url}/v1/segments/new/changes", "GET", served.api.keys["read"]),
        lambda page: page["data"],
    )
    assert [(c["member_id"], c["change"]) for c in feed["data"]] == [("woken", "entered")]


def test_a_burst_of_requests_makes_a_pass_each_poll_interval_not_one_each(served: Served) -> None:
    assert wait_for(lambda: served.idle_from is not None, lambda idle: idle), "the poll loop never went idle"
    before, started = served.passes, time.monotonic()
    for _ in range(50):
        with urllib.request.urlopen(f"{served.base_url}/_local/health", timeout=10) as response:
            assert response.status == 200
    elapsed = time.monotonic() - started
    # One pass per request would be 50; the loop makes at most one per POLL_INTERVAL (+1 under way).
    assert served.passes - before <= elapsed / POLL_INTERVAL + 2, (served.passes - before, elapsed)
