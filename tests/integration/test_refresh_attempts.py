"""One retry loop per level (upkeep/refresh.py): a record's membership write is tried at most
3 times by upkeep (definitions or a racing writer changed), each a transaction tried at most 6
times by storage.dynamo (transient cancellations): 18 TransactWriteItems at worst, then the record
is set aside (parked alone) and the page goes on. Nothing else multiplies them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from segmentation import clock, errors
from segmentation.storage import dynamo, people_scans, segments
from segmentation.upkeep import refresh
from segmentation.upkeep.refresh import RefreshRun

from tests.integration.upkeep_support import Stack, make_segment, upkeep_stack, upsert_user

PRO = {"field": "custom_attributes.plan", "op": "eq", "value": "pro"}


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    with upkeep_stack() as made:
        monkeypatch.setattr(dynamo, "backoff", lambda attempt: None)  # the count is the point, not the wait
        make_segment("pro", PRO)
        upsert_user("u1", plan="pro")
        yield made


def _cancelled(code: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": code}],
        },
        "TransactWriteItems",
    )


class _Transactions:
    """The DynamoDB client, but every TransactWriteItems answers what `answer(n)` says (n from 1):
    an exception to raise, or None to run the real call. Calls made by `answer` itself (a segment
    created meanwhile) pass through uncounted."""

    def __init__(self, real: Any, answer: Any):
        self.real, self.answer, self.calls, self.answering = real, answer, 0, False

    def transact_write_items(self, **arguments: Any) -> Any:
        if self.answering:
            return self.real.transact_write_items(**arguments)
        self.calls += 1
        self.answering = True
        try:
            failure = self.answer(self.calls)
        finally:
            self.answering = False
        if failure is not None:
            raise failure
        return self.real.transact_write_items(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _intercept(monkeypatch: pytest.MonkeyPatch, answer: Any) -> _Transactions:
    spy = _Transactions(dynamo.client(), answer)
    monkeypatch.setattr(dynamo, "client", lambda: spy)
    return spy


def test_a_transaction_always_in_conflict_is_tried_six_times_then_the_record_is_set_aside(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _intercept(monkeypatch, lambda n: _cancelled("TransactionConflict"))
    run = RefreshRun()
    run.refresh_ids("users", ["u1"], clock.now())
    assert spy.calls == 6
    assert run.failed["users"] == ["u1"]


def test_definitions_that_keep_changing_are_evaluated_again_three_times(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each attempt's guard fails (another segment is made meanwhile): 3 transactions, then
    Retryable, for the stream batch or job to be tried again later."""
    made: list[int] = []

    def a_segment_made_meanwhile(n: int) -> Exception | None:
        made.append(n)
        make_segment(f"meanwhile_{n}", PRO)
        return None  # the real call now fails its version guard

    spy = _intercept(monkeypatch, a_segment_made_meanwhile)
    run = RefreshRun()
    record = people_scans.get_item("users", "u1")
    assert record is not None
    with pytest.raises(errors.Retryable):
        run.refresh("users", record, clock.now())
    assert spy.calls == refresh._ATTEMPTS == 3


def test_the_worst_case_for_one_record_is_eighteen_transactions(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of upkeep's 3 attempts: 5 conflicts, then a sixth try whose guard fails."""

    def conflicts_then_new_definitions(n: int) -> Exception | None:
        if n % 6:
            return _cancelled("TransactionConflict")
        make_segment(f"meanwhile_{n}", PRO)
        return None

    spy = _intercept(monkeypatch, conflicts_then_new_definitions)
    run = RefreshRun()
    run.refresh_ids("users", ["u1"], clock.now())
    assert spy.calls == 18
    assert run.failed["users"] == ["u1"]
    assert segments.read_version() > 0
