"""The frequency cap's arithmetic (messaging.frequency_cap.decide): a sliding window of days,
the ledger's horizon and size bound, against a plain count of the emails sent."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from segmentation.messaging.frequency_cap import DAY_SECONDS, MAX_DAYS, MAX_EMAILS, Cap, decide

NOW = 1_800_000_000.0


def test_the_window_slides_by_the_second_not_by_calendar_day() -> None:
    cap = Cap(max=2, days=7)
    sends = {"m1": NOW - 7 * DAY_SECONDS + 1, "m2": NOW - 3600}
    assert not decide(cap, sends, "m3", NOW).allowed  # both within the last 7 x 24 h
    assert decide(cap, sends, "m3", NOW + 1).allowed  # m1 is now exactly 7 days old: out


def test_an_allowed_send_is_added_and_what_is_past_the_horizon_dropped() -> None:
    sends = {"old": NOW - (MAX_DAYS * DAY_SECONDS + 1), "recent": NOW - 60}
    decision = decide(Cap(max=3, days=1), sends, "m", NOW)
    assert decision.allowed
    assert decision.sends == {"recent": Decimal(str(NOW - 60)), "m": Decimal(f"{NOW:.6f}")}


def test_the_message_being_sent_is_never_counted_against_itself() -> None:
    # A slot it already holds (a send begun again after a crash) is the same slot, not another.
    assert decide(Cap(max=1, days=1), {"m": NOW - 10}, "m", NOW).allowed


def test_the_ledger_keeps_the_newest_sends_up_to_the_largest_cap() -> None:
    # 120 sends, each a day and more old: outside a one-day window, inside the horizon.
    sends = {f"m{i}": NOW - DAY_SECONDS - i for i in range(MAX_EMAILS + 20)}
    decision = decide(Cap(max=1, days=1), sends, "new", NOW)
    assert decision.allowed and len(decision.sends) == MAX_EMAILS
    assert set(decision.sends) == {"new"} | {f"m{i}" for i in range(MAX_EMAILS - 1)}  # the oldest go
    # Kept that way, it still decides the largest cap exactly: 100 in the window is full.
    assert not decide(Cap(max=MAX_EMAILS, days=2), decision.sends, "next", NOW).allowed
    assert decide(Cap(max=MAX_EMAILS, days=1), decision.sends, "next", NOW).allowed


ages = st.lists(st.floats(min_value=0, max_value=(MAX_DAYS + 5) * DAY_SECONDS), max_size=60)


@given(
    ages=ages,
    maximum=st.integers(min_value=1, max_value=MAX_EMAILS),
    days=st.integers(min_value=1, max_value=MAX_DAYS),
)
def test_a_send_is_allowed_exactly_when_fewer_than_max_went_out_in_the_window(
    ages: list[float], maximum: int, days: int
) -> None:
    sends = {f"m{i}": NOW - age for i, age in enumerate(ages)}
    in_window = sum(1 for age in ages if age < days * DAY_SECONDS)
    decision = decide(Cap(max=maximum, days=days), sends, "new", NOW)
    assert decision.allowed is (in_window < maximum)


@given(ages=ages, caps=st.lists(st.tuples(st.integers(1, MAX_EMAILS), st.integers(1, MAX_DAYS)), min_size=2))
def test_a_ledger_written_under_one_cap_decides_any_other_cap_exactly(
    ages: list[float], caps: list[tuple[int, int]]
) -> None:
    """An admin may change the cap at any time: what the ledger kept is enough for any cap."""
    ledger: dict[str, object] = {}
    sent_at: list[float] = []
    now = NOW
    for index, age in enumerate(sorted(ages, reverse=True)):
        now = NOW - age
        maximum, days = caps[index % len(caps)]
        decision = decide(Cap(maximum, days), ledger, f"m{index}", now)
        truth = sum(1 for at in sent_at if at > now - days * DAY_SECONDS)
        assert decision.allowed is (truth < maximum)
        if decision.allowed:
            ledger = dict(decision.sends)
            sent_at.append(now)
