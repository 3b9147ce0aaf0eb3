"""CSV imports over the in-process local stack: a body or a presigned upload, rows checked one by
one (line numbers, reasons, good rows kept), typing like the API, tags created, a re-import that
writes nothing, and a large import that resumes chunk after chunk."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from segmentation import clock
from segmentation.people import imports
from segmentation.segments import bulk
from segmentation.storage import jobs as job_store
from segmentation.storage import user_batches
from segmentation.storage import users as user_store

from tests.integration.stack_support import Api, running_stack

_numbers = itertools.count()


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with running_stack() as running:
        yield running


def unique(prefix: str) -> str:
    return f"{prefix}{next(_numbers)}"


def import_csv(api: Api, text: str) -> dict[str, Any]:
    started = api.ok("POST", "/v1/imports", raw=text.encode(), content_type="text/csv", status=202)
    return api.finished_job(started["job_id"])


def test_bad_rows_are_rejected_with_their_line_and_reason_and_good_rows_kept(api: Api) -> None:
    kept, untouched, fresh = unique("imp-"), unique("imp-"), unique("imp-")
    api.ok("POST", "/v1/users", {"user_id": untouched, "name": "Before"}, role="ingest", status=201)
    score = unique("score_")
    csv = (
        f"user_id,email,name,signed_up_at,unsubscribed_from_emails,{score}\n"
        f"{kept},ada@example.com,Ada,2026-11-01T09:30:00Z,false,82\n"  # line 2: fine
        f"{untouched},,After,not a date,,\n"  # line 3: a bad timestamp; its name must not change
        ",nobody@example.com,,,,\n"  # line 4: no user_id
        f"{fresh},grace@example.com,Grace,1700000000,yes,\n"  # line 5: not a boolean
        f'{fresh},"quoted, with comma",Grace,,true,7.5\n'  # line 6: fine
        f"{fresh},x,y,,,,,too many\n"  # line 7: more cells than columns
        f"{unique('imp-')},,,,,lots\n"  # line 8: the score column holds numbers (fixed by line 2)
    )
    job = import_csv(api, csv)
    assert (job["kind"], job["state"], job["done"], job["total"]) == ("import", "done", 7, 7)
    lines = {error["line"]: error["reason"] for error in job["errors"]}
    assert sorted(lines) == [3, 4, 5, 7, 8]
    assert "signed_up_at" in lines[3] and "user_id" in lines[4] and "unsubscribed_from_emails" in lines[5]
    assert "cells" in lines[7] and score in lines[8]
    assert job["result"] == {"rows": 7, "imported": 2, "rejected": 5}
    ada = api.user(kept)
    assert (ada["email"], ada["name"], ada["signed_up_at"]) == (
        "ada@example.com",
        "Ada",
        "2026-11-01T09:30:00Z",
    )
    assert (ada["unsubscribed_from_emails"], ada["custom_attributes"]) == (False, {score: 82})
    assert api.user(untouched)["name"] == "Before"
    grace = api.user(fresh)
    assert (grace["email"], grace["unsubscribed_from_emails"], grace["custom_attributes"]) == (
        "quoted, with comma",
        True,
        {score: 7.5},
    )


def test_values_are_typed_like_the_api_and_empty_cells_leave_fields_as_they_were(api: Api) -> None:
    user_id = unique("imp-")
    zip_name, flag, renewed, label = (
        unique("zip_"),
        unique("flag_"),
        f"{unique('renewed')}_at",
        unique("label_"),
    )
    api.ok(
        "POST",
        "/v1/users",
        {"user_id": user_id, "name": "Kept", "company_ids": ["old"], "custom_attributes": {label: "text"}},
        role="ingest",
        status=201,
    )
    csv = (
        f"user_id,name,company_ids,{zip_name},{flag},{renewed},{label},last_seen_at,session_count,segments\n"
        f"{user_id},,acme; initech ;acme,02139,TRUE,2026-12-15T00:00:00Z,42,2020-01-01T00:00:00Z,99,new\n"
    )
    job = import_csv(api, csv)
    assert job["errors"] == [], job
    user = api.user(user_id)
    assert user["name"] == "Kept"  # an empty cell
    assert user["company_ids"] == ["acme", "initech"]  # a list replaces, without repeats
    assert user["custom_attributes"] == {
        zip_name: "02139",  # not a number as JSON writes numbers
        flag: True,
        renewed: "2026-12-15T00:00:00Z",
        label: "42",  # its type was fixed as text: the cell is text
    }
    assert (user["last_seen_at"], user["session_count"]) == (None, 0)  # an export's columns: ignored
    fields = {f["field"]: f["type"] for f in api.ok("GET", "/v1/fields", role="read")["data"]}
    assert fields[f"custom_attributes.{zip_name}"] == "string"
    assert fields[f"custom_attributes.{renewed}"] == "timestamp"


def test_tags_are_created_when_missing_and_a_reimport_changes_nothing(api: Api) -> None:
    existing = api.ok("POST", "/v1/tags", {"name": unique("Existing ")}, role="write", status=201)
    new_name = unique("Brand new ")
    ids = [unique("imp-") for _ in range(3)]
    csv = "user_id,name,tags\n" + "".join(
        f"{user_id},Name {index},{existing['name'].upper()};{new_name}\n" for index, user_id in enumerate(ids)
    )
    first = import_csv(api, csv)
    assert first["result"] == {"rows": 3, "imported": 3, "rejected": 0}
    tags = {tag["name"]: tag for tag in api.ok("GET", "/v1/tags", role="read")["data"]}
    assert tags[new_name]["count"] == 3 and tags[existing["name"]]["count"] == 3
    api.stack.drain()
    before = {user_id: user_store.get(user_id) for user_id in ids}
    again = import_csv(api, csv)
    assert again["result"] == first["result"]
    after = {user_id: user_store.get(user_id) for user_id in ids}
    assert after == before  # not even rev or updated_at moved
    tags = {tag["name"]: tag for tag in api.ok("GET", "/v1/tags", role="read")["data"]}
    assert tags[new_name]["count"] == 3 and len([n for n in tags if n == new_name]) == 1


def test_a_chunk_of_tagged_rows_fills_each_transaction_and_counts_each_tag_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each tag's count and existence check is shared by the transaction's users: 150 users adding
    the same two tags (3 actions each) need 5 transactions of at most 100 actions, not one per 14."""
    names = [unique("Packed "), unique("Packed ")]
    for name in names:  # made first: the import's transactions are then its users' alone
        api.ok("POST", "/v1/tags", {"name": name}, role="write", status=201)
    ids = [unique("imp-") for _ in range(150)]
    sizes: list[int] = []
    real = user_batches.dynamo.transact

    def counted(actions: Any, **options: Any) -> Any:
        sizes.append(len(actions))
        return real(actions, **options)

    monkeypatch.setattr(user_batches.dynamo, "transact", counted)
    job = import_csv(api, "user_id,tags\n" + "".join(f"{user_id},{';'.join(names)}\n" for user_id in ids))
    assert job["result"] == {"rows": 150, "imported": 150, "rejected": 0}
    assert len(sizes) == 5 and max(sizes) <= 100
    counts = {tag["name"]: tag["count"] for tag in api.ok("GET", "/v1/tags", role="read")["data"]}
    assert [counts[name] for name in names] == [150, 150]
    assert all(len(api.user(user_id)["tag_ids"]) == 2 for user_id in ids[::30])


@pytest.mark.parametrize(
    ("csv", "says"),
    [
        ("email,name\na@example.com,A\n", "no user_id column"),
        ("user_id,email,email\nu,a,b\n", "named twice"),
        ("user_id,First Name\nu,Ada\n", "First Name"),
        ("user_id,\nu,\n", "has no name"),
        ("", "empty"),
    ],
)
def test_a_csv_whose_header_cannot_be_imported_is_a_422_at_once(api: Api, csv: str, says: str) -> None:
    answer = api.call("POST", "/v1/imports", raw=csv.encode(), content_type="text/csv")
    assert answer.status == 422, answer.body
    error = answer.json()["error"]
    assert error["code"] == "invalid_csv" and says in error["message"]
    assert error["details"][0]["line"] == 1


def test_a_body_over_5_mb_is_a_413(api: Api) -> None:
    body = b"user_id\n" + b"u\n" * (imports.MAX_BODY_BYTES // 2)
    answer = api.call("POST", "/v1/imports", raw=body, content_type="text/csv")
    assert (answer.status, answer.json()["error"]["code"]) == (413, "payload_too_large")


@pytest.mark.parametrize("role", ["ingest", "read", "write"])
def test_imports_are_for_admins_only(api: Api, role: str) -> None:
    for raw, content_type in ((b"user_id\nu1\n", "text/csv"), (b'{"filename": "a.csv"}', "application/json")):
        answer = api.call("POST", "/v1/imports", raw=raw, content_type=content_type, role=role)
        assert (answer.status, answer.json()["error"]["code"]) == (403, "forbidden")


@pytest.mark.parametrize(
    ("body", "status"),
    [({"filename": ""}, 422), ({"filename": "a.csv", "extra": 1}, 422), ({}, 422), ([], 400)],
)
def test_a_bad_upload_request_is_refused(api: Api, body: Any, status: int) -> None:
    assert api.call("POST", "/v1/imports", body).status == status


def test_a_file_put_to_the_presigned_url_is_imported(api: Api) -> None:
    started = api.ok("POST", "/v1/imports", {"filename": "customers.csv"}, status=201)
    assert api.job(started["job_id"])["state"] == "running"
    user_id = unique("upl-")
    put = api.url("PUT", started["upload_url"], f"user_id,name\n{user_id},Uploaded\n".encode())
    assert put.status == 200, put.body
    job = api.finished_job(started["job_id"])
    assert (job["state"], job["result"]) == ("done", {"rows": 1, "imported": 1, "rejected": 0})
    assert api.user(user_id)["name"] == "Uploaded"


def test_an_uploaded_file_whose_header_cannot_be_imported_fails_its_job_at_line_1(api: Api) -> None:
    started = api.ok("POST", "/v1/imports", {"filename": "bad.csv"}, status=201)
    api.url("PUT", started["upload_url"], b"name\nAda\n")
    job = api.finished_job(started["job_id"])
    assert job["state"] == "failed"
    assert job["result"]["error"]["code"] == "invalid_csv"
    assert [e["line"] for e in job["errors"]] == [1]


def test_an_expired_upload_url_is_refused_and_a_job_never_uploaded_fails(api: Api) -> None:
    started = api.ok("POST", "/v1/imports", {"filename": "late.csv"}, status=201)
    parts = urlsplit(started["upload_url"])
    query = dict(parse_qsl(parts.query))
    query["X-Amz-Date"] = "20200101T000000Z"
    expired = api.url("PUT", f"{parts.path}?{urlencode(query)}", b"user_id\nlate\n")
    assert expired.status == 403 and b"expired" in expired.body
    unsigned = api.url("PUT", parts.path, b"user_id\nlate\n")
    assert unsigned.status == 403
    assert api.job(started["job_id"])["state"] == "running"  # waiting for its file
    offset = clock.offset_seconds()
    try:
        clock.set_offset_seconds(offset + imports.UPLOAD_URL_SECONDS + bulk.UPLOAD_GRACE_SECONDS + 60)
        job = api.job(started["job_id"])
    finally:
        clock.set_offset_seconds(offset)
    assert job["state"] == "failed" and job["result"]["error"]["code"] == "no_upload"


def test_a_large_import_runs_a_chunk_at_a_time_and_resumes_each_time(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imports, "ROWS_PER_CHUNK", 4)
    monkeypatch.setattr(imports, "RECORDS_COUNTED_PER_CHUNK", 5)
    # Every run stops after its first chunk, as if its Lambda's time ran low: the job goes on
    # from its cursor with the next message each time.
    monkeypatch.setattr(bulk, "REQUEUE_WHEN_SECONDS_LEFT", float("inf"))
    ids = [unique("big-") for _ in range(11)]
    rows = [f"{user_id},Name {index}" for index, user_id in enumerate(ids)]
    rows.insert(5, ",no id")  # line 7
    csv = "user_id,name\n" + "\n".join(rows) + "\n"
    started = api.ok("POST", "/v1/imports", raw=csv.encode(), content_type="text/csv", status=202)
    job = api.finished_job(started["job_id"])
    assert (job["done"], job["total"], job["errors"]) == (
        12,
        12,
        [{"line": 7, "reason": "user_id: required"}],
    )
    assert job["result"] == {"rows": 12, "imported": 11, "rejected": 1}
    assert [api.user(user_id)["name"] for user_id in ids] == [f"Name {i}" for i in range(11)]
    stored = job_store.get(started["job_id"])
    assert stored is not None
    # start, 3 chunks counting 12 rows 5 at a time, 3 chunks of 4 rows and the last (empty) one
    assert stored.step == 1 + 3 + 4
    assert stored.lease_owner is None


def test_numbers_keep_every_digit(api: Api) -> None:
    user_id, amount = unique("num-"), unique("amount_")
    import_csv(api, f"user_id,{amount}\n{user_id},12345678901234567890.123456789\n")
    stored = user_store.get(user_id)
    assert stored is not None
    assert stored["custom_attributes"][amount] == Decimal("12345678901234567890.123456789")
