"""The sender's pace: each instance's share of the account's rate, a deadline, and slowing down
when SES throttles (and speeding up again)."""

from __future__ import annotations

import itertools

import pytest
from segmentation.messaging.pacing import MIN_FACTOR, Pacer


def sends(pacer: Pacer, start: float, count: int) -> list[float]:
    """The instants of `count` sends by a sender that waits as told."""
    now, at = start, []
    for _ in range(count):
        wait = pacer.reserve(now)
        assert wait is not None
        now += wait
        at.append(now)
    return at


def test_one_instance_sends_at_the_whole_rate() -> None:
    at = sends(Pacer(rate=14.0, concurrency=1), 1000.0, 15)
    assert at[0] == 1000.0
    assert at[-1] - at[0] == pytest.approx(14 / 14.0)


def test_instances_share_the_rate() -> None:
    at = sends(Pacer(rate=14.0, concurrency=2), 0.0, 8)
    assert [b - a for a, b in itertools.pairwise(at)] == pytest.approx([2 / 14.0] * 7)


def test_a_slot_past_the_deadline_is_not_taken() -> None:
    pacer = Pacer(rate=1.0, concurrency=1)
    assert pacer.reserve(0.0, deadline=10.0) == 0.0
    assert pacer.reserve(0.0, deadline=0.5) is None
    assert pacer.reserve(0.0, deadline=10.0) == pytest.approx(1.0)  # the refused slot was not used


def test_throttling_halves_the_pace_down_to_a_floor_and_success_wins_it_back() -> None:
    pacer = Pacer(rate=10.0, concurrency=1)
    for _ in range(20):
        pacer.throttled(0.0)
    assert pacer.factor == MIN_FACTOR
    assert pacer.interval == pytest.approx(1 / (10.0 * MIN_FACTOR))
    for _ in range(100):
        pacer.accepted()
    assert pacer.factor == 1.0


def test_throttling_pushes_the_next_send_back() -> None:
    pacer = Pacer(rate=10.0, concurrency=1)
    assert pacer.reserve(0.0) == 0.0
    pacer.throttled(0.0)
    wait = pacer.reserve(0.0)
    assert wait is not None and wait >= 2 * pacer.interval
