"""The bound on a user's event summaries: DynamoDB's size rules, what is dropped first, what never is."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from engine_helpers import DAY, NOW
from segmentation.engine.events import stat
from segmentation.event_summaries.budget import (
    BUDGET_BYTES,
    SLACK_BYTES,
    events_size,
    fitted,
    in_place_growth,
    stored_size,
)
from segmentation.event_summaries.stored import KEPT_DAYS, MAX_WINDOW_DAYS, added, day_of


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("abc", 3),
        ("é", 2),  # UTF-8 bytes, not characters
        (Decimal("123.45"), 1 + 3),  # 5 significant digits: 1 byte + 3
        (Decimal("1764324000.123"), 1 + 7),
        (Decimal("1000000"), 1 + 1),  # trailing zeros are not significant
        (0, 2),
        (True, 1),
        (None, 1),
        ([], 3),
        ([Decimal(1), "ab"], 3 + (1 + 2) + (1 + 2)),
        ({"ab": Decimal(7)}, 3 + 2 + 1 + 2),
        ({"m": {"k": "v"}}, 3 + 1 + 1 + (3 + 1 + 1 + 1)),
    ],
)
def test_sizes_follow_dynamodbs_published_rules(value: Any, size: int) -> None:
    assert stored_size(value) == size


def test_no_in_place_update_adds_more_than_its_reserved_growth() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        at = Decimal(int(NOW) - rng.randrange(86400)) + Decimal(rng.randrange(1000)) / 1000
        day = str(day_of(float(at)))
        count = Decimal(rng.choice([0, 9, 99, 999, 9999, 99999, 10**12 - 1, rng.randrange(10**6)]))
        before = {
            "n": count,
            "f": Decimal(1),
            "l": Decimal(rng.choice([1, int(at) - 5, at])),
            "v": count,
            "d": {day: count},
            "t": {day: [Decimal(1)] * rng.randrange(3)},
        }
        after = {
            **before,
            "n": count + 1,
            "l": at,
            "v": count + 1,
            "d": {day: count + 1},
            "t": {day: [*before["t"][day], at]},
        }
        assert stored_size(after) - stored_size(before) <= in_place_growth(at)


def _busy_user(
    rng: random.Random, names: int, events: int
) -> tuple[dict[str, Any], list[tuple[str, Decimal]]]:
    """Events sent in any order over the last 95 days (some older than every window)."""
    summaries: dict[str, Any] = {}
    sent = []
    for _ in range(events):
        name = f"event_{rng.randrange(names)}"
        at = Decimal(int(NOW - rng.uniform(0, 95) * DAY))
        summaries[name] = added(summaries.get(name), at, NOW)
        sent.append((name, at))
    return summaries, sent


def test_within_the_budget_nothing_but_days_out_of_every_window_goes() -> None:
    summaries, _ = _busy_user(random.Random(1), 3, 300)
    assert events_size(summaries) < BUDGET_BYTES
    fit = fitted(summaries, NOW + 3 * DAY)  # three days later: some days left every window
    assert fit is not None
    kept, size = fit
    assert size == events_size(kept) <= BUDGET_BYTES
    oldest = day_of(NOW + 3 * DAY) - KEPT_DAYS
    for name, summary in summaries.items():
        expected_days = {key: n for key, n in summary["d"].items() if int(key) >= oldest}
        assert kept[name]["d"] == expected_days
        assert kept[name]["t"] == {key: summary["t"][key] for key in expected_days}
        assert kept[name]["v"] == summary["v"] + (expected_days != summary["d"])


def test_past_the_budget_the_oldest_times_go_first_and_every_count_stays() -> None:
    summaries, sent = _busy_user(random.Random(2), 12, 25_000)
    assert events_size(summaries) > BUDGET_BYTES
    fit = fitted(summaries, NOW)
    assert fit is not None
    kept, size = fit
    assert size == events_size(kept) and BUDGET_BYTES - SLACK_BYTES - 300 < size <= BUDGET_BYTES - SLACK_BYTES
    timed_days = {int(key) for summary in kept.values() for key in summary["t"]}
    dropped_days = {int(key) for summary in summaries.values() for key in summary["d"]} - timed_days
    assert dropped_days and max(dropped_days) <= min(timed_days)  # only the oldest days lost times
    for name, summary in summaries.items():
        assert {k: kept[name][k] for k in ("n", "f", "l", "d")} == {
            k: summary[k] for k in ("n", "f", "l", "d")
        }
        assert kept[name]["v"] == summary["v"] + 1
        for key, times in kept[name]["t"].items():
            assert times == summary["t"][key]  # a day keeps all its times or none
    # Windows: every whole day, every day with its times, and the all-time count are exact.
    for name in summaries:
        timed = {int(key) for key in kept[name]["t"]}
        times = [float(at) for n, at in sent if n == name]
        for days in range(1, MAX_WINDOW_DAYS + 1):
            low = NOW - days * DAY
            exact = sum(1 for at in times if low < at <= NOW)
            got = stat({"events": kept}, name, "count", NOW, days)
            if day_of(low) in timed:
                assert got == exact, (name, days)
            else:  # a cut day without its times: its events count from the day's start, never more
                assert got <= exact


def test_counts_that_alone_pass_the_budget_do_not_fit() -> None:
    day = day_of(NOW)
    counts = {str(day - d): Decimal(123456789) for d in range(KEPT_DAYS)}
    summaries = {
        f"{'x' * 60}{i:04d}": {"n": Decimal(1), "v": Decimal(1), "d": counts, "t": {}} for i in range(120)
    }
    assert fitted(summaries, NOW) is None
    assert fitted(dict(list(summaries.items())[:10]), NOW) is not None
