"""How a job runs whatever SQS delivers (segmentation.segments.bulk): duplicates, redeliveries,
a crash between committing a chunk and queuing the next, a chunk that fails and is retried, a
last attempt that fails, a lease that was lost. Each chunk counts once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from segmentation import clock, errors
from segmentation.jobs import BulkJob, bulk_jobs_from_body
from segmentation.people import imports
from segmentation.segments import bulk
from segmentation.settings import get_settings
from segmentation.storage import aws, user_batches
from segmentation.storage import jobs as job_store
from segmentation.storage import users as user_store

ROWS = 10


@pytest.fixture
def job_id(aws: object, monkeypatch: pytest.MonkeyPatch) -> str:
    """An import of ROWS rows waiting for its first chunk; chunks of 3 rows, one chunk a run."""
    monkeypatch.setattr(imports, "ROWS_PER_CHUNK", 3)
    monkeypatch.setattr(bulk, "REQUEUE_WHEN_SECONDS_LEFT", float("inf"))
    csv = "user_id,name\n" + "".join(f"u{index},Name {index}\n" for index in range(ROWS))
    return imports.start_from_body(csv.encode(), clock.now())


def import_queue() -> list[dict[str, Any]]:
    """The ImportQueue's messages (received and deleted)."""
    sqs = aws.client("sqs")
    found = []
    while True:
        batch = sqs.receive_message(QueueUrl=get_settings().import_queue_url, MaxNumberOfMessages=10)
        messages = batch.get("Messages") or []
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(
                QueueUrl=get_settings().import_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


def plenty() -> float:
    return 300.0


def run_all(first: BulkJob) -> list[str]:
    """Run the job's messages until none is left, as the queue's consumer would."""
    outcomes = [bulk.run(first, plenty)]
    while True:
        pending = [job for body in import_queue() for job in bulk_jobs_from_body(json.dumps(body))]
        if not pending:
            return outcomes
        outcomes += [bulk.run(job, plenty) for job in pending]


def imported() -> dict[str, str]:
    return {f"u{i}": (user_store.get(f"u{i}") or {}).get("name", "") for i in range(ROWS)}


def test_the_uploads_event_starts_the_import_and_s3s_test_event_asks_for_nothing(job_id: str) -> None:
    bodies = import_queue()
    assert any(body.get("Event") == "s3:TestEvent" for body in bodies)  # sent when the bucket was made
    started = [job for body in bodies for job in bulk_jobs_from_body(json.dumps(body))]
    assert started == [BulkJob(job_id=job_id, step=0)]
    with pytest.raises(ValueError):
        bulk_jobs_from_body('{"nothing": "we know"}')


def test_a_duplicated_message_runs_nothing_twice(job_id: str) -> None:
    import_queue()
    assert bulk.run(BulkJob(job_id=job_id, step=0), plenty) == "queued its next chunk"
    # The same message again (SQS delivers at least once): the job is at step 1 and queued it.
    assert bulk.run(BulkJob(job_id=job_id, step=0), plenty) == "stale"
    [next_message] = import_queue()
    assert run_all(BulkJob.model_validate(next_message))[-1] == "done"
    job = job_store.get(job_id)
    assert job is not None and (job.state, job.done, job.total) == ("done", ROWS, ROWS)
    assert imported() == {f"u{i}": f"Name {i}" for i in range(ROWS)}


def test_a_message_while_another_worker_holds_the_job_does_nothing(job_id: str) -> None:
    import_queue()
    assert job_store.claim(job_id, 0, "someone else", clock.now() + 300, clock.now()) is not None
    assert bulk.run(BulkJob(job_id=job_id, step=0), plenty) == "busy"
    job = job_store.get(job_id)
    assert job is not None and job.step == 0 and job.lease_owner == "someone else"
    assert import_queue() == []


def test_a_crash_between_a_chunk_and_its_next_message_loses_nothing(
    job_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_queue()
    real = bulk._queue_next

    def crash(job: Any) -> None:
        raise RuntimeError("the Lambda stopped here")

    monkeypatch.setattr(bulk, "_queue_next", crash)
    with pytest.raises(RuntimeError):
        bulk.run(BulkJob(job_id=job_id, step=0), plenty)
    monkeypatch.setattr(bulk, "_queue_next", real)
    job = job_store.get(job_id)
    assert job is not None and job.step == 1 and job.lease_owner is None  # committed, released
    assert import_queue() == []  # and nothing queued
    # SQS delivers the message again: its step is behind, nobody holds the job, the step it
    # reached was never queued: it is queued now.
    assert bulk.run(BulkJob(job_id=job_id, step=0), plenty) == "queued again"
    assert bulk.run(BulkJob(job_id=job_id, step=0), plenty) == "stale"  # not twice
    [next_message] = import_queue()
    assert run_all(BulkJob.model_validate(next_message))[-1] == "done"
    job = job_store.get(job_id)
    assert job is not None and (job.done, job.rejected) == (ROWS, 0)


def test_a_chunk_that_fails_gives_the_lease_up_and_its_retry_counts_once(
    job_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_queue()
    assert bulk.run(BulkJob(job_id=job_id, step=0), plenty) == "queued its next chunk"  # the header
    import_queue()
    real = user_batches.write
    calls = {"n": 0}

    def throttled_once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise errors.Retryable("DynamoDB: ThrottlingException")
        return real(*args, **kwargs)

    monkeypatch.setattr(user_batches, "write", throttled_once)
    monkeypatch.setattr(imports, "RECORDS_COUNTED_PER_CHUNK", 1_000)
    assert bulk.run(BulkJob(job_id=job_id, step=1), plenty) == "queued its next chunk"  # counted
    import_queue()
    with pytest.raises(errors.Retryable):
        bulk.run(BulkJob(job_id=job_id, step=2), plenty)
    job = job_store.get(job_id)
    assert job is not None and job.step == 2 and job.lease_owner is None and job.done == 0
    assert run_all(BulkJob(job_id=job_id, step=2))[-1] == "done"  # SQS's retry
    job = job_store.get(job_id)
    assert job is not None and (job.state, job.done) == ("done", ROWS)


def test_the_last_attempt_of_a_failing_chunk_fails_the_job(
    job_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_queue()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(imports, "_start", broken)
    with pytest.raises(KeyError):
        bulk.run_message(json.dumps({"job_id": job_id, "step": 0}), plenty, receive_count=4)
    assert (job_store.get(job_id) or pytest.fail()).state == "running"
    with pytest.raises(KeyError):
        bulk.run_message(json.dumps({"job_id": job_id, "step": 0}), plenty, receive_count=5)
    job = job_store.get(job_id)
    assert job is not None and job.state == "failed"
    assert (job.result or {})["error"]["code"] == "internal_error"
    assert bulk.run(BulkJob(job_id=job_id, step=0), plenty) == "ended"


def test_a_worker_whose_lease_was_taken_commits_nothing(job_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import_queue()
    real = imports.chunk

    def slow_chunk(job: Any, now: float, time_left: Any) -> Any:
        progress = real(job, now, time_left)
        # Meanwhile its lease expired and another worker took the job over.
        job_store.release(job.id, job.step, str(job.lease_owner))
        assert job_store.claim(job.id, job.step, "the other worker", clock.now() + 300, clock.now())
        return progress

    monkeypatch.setitem(bulk.CHUNKS, "import", slow_chunk)
    assert bulk.run(BulkJob(job_id=job_id, step=0), plenty) == "lost its lease"
    job = job_store.get(job_id)
    assert job is not None and (job.step, job.lease_owner) == (0, "the other worker")


def test_a_file_gone_from_the_bucket_fails_the_job_saying_why(job_id: str) -> None:
    import_queue()
    aws.client("s3").delete_object(Bucket=get_settings().files_bucket, Key=f"uploads/{job_id}.csv")
    assert bulk.run(BulkJob(job_id=job_id, step=0), plenty) == "failed"
    job = job_store.get(job_id)
    assert job is not None and (job.result or {})["error"]["code"] == "file_missing"
