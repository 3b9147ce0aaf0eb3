"""CSV exports over the in-process local stack: a segment's members and a filter's matches,
checked row by row against the API's own answers (members, search), downloaded through the
presigned URL; a large export written part by part, resumed run after run."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from moto.s3 import models as moto_s3
from segmentation import clock
from segmentation.engine import parse_timestamp
from segmentation.segments import bulk, exports
from segmentation.storage import jobs as job_store

from tests.integration.stack_support import Api, running_stack

_numbers = itertools.count()
USER_HEAD = [
    "user_id",
    "email",
    "name",
    "phone",
    "signed_up_at",
    "unsubscribed_from_emails",
    "company_ids",
    "tags",
]
USER_TAIL = ["last_seen_at", "session_count", "segments"]


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    with running_stack() as running:
        yield running


def unique(prefix: str) -> str:
    return f"{prefix}{next(_numbers)}"


def exported(api: Api, path: str, body: Any = None) -> tuple[dict[str, Any], list[dict[str, str]], list[str]]:
    """(the done job, the rows as dicts, the header) of an export, downloaded through its URL."""
    started = api.ok("POST", path, body, status=202)
    job = api.finished_job(started["job_id"])
    assert job["state"] == "done", job
    download = api.url("GET", job["result"]["download_url"])
    assert download.status == 200, download.body
    assert ("Content-Disposition", f'attachment; filename="{job["id"]}.csv"') in download.headers
    reader = csv.reader(io.StringIO(download.body.decode("utf-8"), newline=""))
    header = next(reader)
    return job, [dict(zip(header, row, strict=True)) for row in reader], header


def as_row(user: dict[str, Any], tag_names: dict[str, str], custom: list[str]) -> dict[str, str]:
    """A user's JSON (API.md) as the export spells it."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, list):
            return ";".join(value)
        return str(value)

    row = {name: cell(user[name]) for name in USER_HEAD if name != "tags"}
    row["tags"] = ";".join(sorted(tag_names[tag] for tag in user["tag_ids"]))
    row.update({name: cell(user["custom_attributes"].get(name)) for name in custom})
    row.update({name: cell(user[name]) for name in USER_TAIL})
    return row


def every_page(api: Api, method: str, path: str, body: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        if method == "GET":
            query = [("limit", "100")] + ([("cursor", cursor)] if cursor else [])
            page = api.ok("GET", path, role="read", query=query)
        else:
            page = api.ok("POST", path, {**(body or {}), "limit": 100, "cursor": cursor}, role="read")
        found += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            return found


@pytest.fixture(scope="module")
def people(api: Api) -> dict[str, Any]:
    """Users with every kind of value, some tagged, a segment of some of them."""
    marker = unique("export-")
    tag = api.ok("POST", "/v1/tags", {"name": "VIP; or not"}, role="write", status=201)
    ids = []
    for index in range(7):
        user_id = f"{marker}-{index}"
        body: dict[str, Any] = {
            "user_id": user_id,
            "name": marker,
            "company_ids": ["acme", "initech"][: index % 3],
        }
        if index % 2:
            body.update(
                email=f"{index}@example.com", phone='+1 "555", ext', signed_up_at=1_700_000_000 + index
            )
            body["custom_attributes"] = {"plan": "pro, yearly", "seats": index * 1.5, "trial": index == 3}
        api.ok("POST", "/v1/users", body, role="ingest", status=201)
        ids.append(user_id)
    api.ok("POST", f"/v1/tags/{tag['id']}/users", {"user_ids": ids[:3]}, role="write")
    segment = api.ok(
        "POST",
        "/v1/segments",
        {"name": marker, "filter": {"field": "name", "op": "eq", "value": marker}},
        status=201,
    )
    api.stack.drain()
    return {"marker": marker, "ids": ids, "tag": tag, "segment": segment}


def test_a_segments_export_is_its_members_row_by_row(api: Api, people: dict[str, Any]) -> None:
    job, rows, header = exported(api, f"/v1/segments/{people['segment']['id']}/exports")
    custom = header[len(USER_HEAD) : -len(USER_TAIL)]
    assert header[: len(USER_HEAD)] == USER_HEAD and header[-len(USER_TAIL) :] == USER_TAIL
    assert {"plan", "seats", "trial"} <= set(custom) and custom == sorted(custom)
    assert (job["result"]["rows"], job["done"], job["total"]) == (7, 7, 7)
    expires = parse_timestamp(job["result"]["expires_at"])
    assert 3500 < expires - clock.now() <= 3600  # signed for an hour at each read
    tag_names = {tag["id"]: tag["name"] for tag in api.ok("GET", "/v1/tags", role="read")["data"]}
    members = every_page(api, "GET", f"/v1/segments/{people['segment']['id']}/members")
    assert rows == [as_row(user, tag_names, custom) for user in members]
    assert rows[0]["tags"] == "VIP; or not" and rows[1]["phone"] == '+1 "555", ext'
    assert rows[1]["signed_up_at"] == "2023-11-14T22:13:21Z" and rows[3]["trial"] == "true"


def test_a_filters_export_is_what_search_finds_row_by_row(api: Api, people: dict[str, Any]) -> None:
    condition = {
        "and": [{"field": "name", "op": "eq", "value": people["marker"]}, {"field": "email", "op": "exists"}]
    }
    job, rows, header = exported(api, "/v1/exports", {"target": "users", "filter": condition})
    custom = header[len(USER_HEAD) : -len(USER_TAIL)]
    tag_names = {tag["id"]: tag["name"] for tag in api.ok("GET", "/v1/tags", role="read")["data"]}
    found = every_page(api, "POST", "/v1/users/search", {"filter": condition})
    assert len(found) == 3
    assert sorted(rows, key=lambda r: r["user_id"]) == sorted(
        (as_row(user, tag_names, custom) for user in found), key=lambda r: r["user_id"]
    )
    assert job["result"]["rows"] == 3 and job["done"] == job["total"]  # every user read


def test_companies_export_with_their_columns(api: Api) -> None:
    company_id = unique("co-")
    api.ok(
        "POST",
        "/v1/companies",
        {"company_id": company_id, "name": "Acme", "size": 40},
        role="ingest",
        status=201,
    )
    condition = {"field": "company_id", "op": "eq", "value": company_id}
    _, rows, header = exported(api, "/v1/exports", {"target": "companies", "filter": condition})
    assert header[:8] == [
        "company_id",
        "name",
        "plan",
        "monthly_spend",
        "size",
        "industry",
        "website",
        "remote_created_at",
    ]
    assert header[-2:] == ["user_count", "segments"]
    assert [(r["company_id"], r["name"], r["size"], r["user_count"]) for r in rows] == [
        (company_id, "Acme", "40", "0")
    ]


def test_an_empty_export_is_its_header(api: Api) -> None:
    job, rows, header = exported(
        api, "/v1/exports", {"filter": {"field": "user_id", "op": "eq", "value": "nobody"}}
    )
    assert rows == [] and header[0] == "user_id" and job["result"]["rows"] == 0


def test_a_large_export_is_written_part_by_part_run_after_run(
    api: Api, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, whole, _ = exported(api, f"/v1/segments/{people['segment']['id']}/exports")
    # Parts of ~300 bytes (S3's smallest is 5 MB: moto's too, made small here), pages of 2
    # members, and every run stopping after one chunk: rows that fill no part are kept for the
    # next run, and the file is the same.
    monkeypatch.setattr(exports, "PART_BYTES", 300)
    monkeypatch.setattr(moto_s3, "S3_UPLOAD_PART_MIN_SIZE", 300)
    monkeypatch.setattr(exports, "RECORDS_PER_PAGE", 2)
    monkeypatch.setattr(exports, "STOP_READING_SECONDS_LEFT", float("inf"))
    monkeypatch.setattr(bulk, "REQUEUE_WHEN_SECONDS_LEFT", float("inf"))
    job, rows, _ = exported(api, f"/v1/segments/{people['segment']['id']}/exports")
    assert rows == whole
    stored = job_store.get(job["id"])
    assert stored is not None and stored.step >= 4  # one page a run


@pytest.mark.parametrize("role", ["ingest", "read", "write"])
def test_exports_are_for_admins_only(api: Api, people: dict[str, Any], role: str) -> None:
    for path, body in (
        (f"/v1/segments/{people['segment']['id']}/exports", None),
        ("/v1/exports", {"filter": {"field": "email", "op": "exists"}}),
    ):
        answer = api.call("POST", path, body, role=role)
        assert (answer.status, answer.json()["error"]["code"]) == (403, "forbidden")


def test_an_unknown_segment_is_a_404_and_a_bad_filter_a_422(api: Api) -> None:
    missing = api.call("POST", "/v1/segments/seg_nothing/exports")
    assert (missing.status, missing.json()["error"]["code"]) == (404, "segment_not_found")
    for body in (
        {"filter": {"field": "nope", "op": "exists"}},
        {"target": "companies", "filter": {"field": "tag", "op": "has_tag", "value": "tag_x"}},
        {"target": "nobody", "filter": {"field": "email", "op": "exists"}},
    ):
        assert api.call("POST", "/v1/exports", body).status == 422, body
