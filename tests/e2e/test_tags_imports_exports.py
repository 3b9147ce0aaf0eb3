"""Tags, CSV imports and exports over HTTP against `make run`: a file PUT to the presigned URL the
stack signs (served by the stack's own routes), the job followed to its end, a tag moving a user
into a segment within seconds, and the export downloaded through its presigned URL."""

from __future__ import annotations

import csv
import io
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tests.e2e.harness import Response, RunningStack
from tests.e2e.helpers import create_segment, ok, unique, upsert_user, wait_for

JOB_TIMEOUT = 30.0


def fetch(
    url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None
) -> Response:
    """A URL as a client calls it (a presigned one: no API key)."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return Response(answer.status, dict(answer.headers), answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers), error.read())


def finished(stack: RunningStack, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = wait_for(
        lambda: ok(stack.request("GET", f"/v1/jobs/{job_id}", key=stack.admin_key)),
        lambda found: found["state"] != "running",
        timeout=JOB_TIMEOUT,
    )
    assert job["state"] == "done", job
    return job


def test_a_file_uploaded_through_the_presigned_url_is_imported_with_its_bad_rows_reported(
    stack: RunningStack,
) -> None:
    started = ok(stack.request("POST", "/v1/imports", {"filename": "people.csv"}, key=stack.admin_key), 201)
    assert started["upload_url"].startswith(stack.base_url + "/_local/s3/")
    good, also = unique("e2e-imp"), unique("e2e-imp")
    tag_name = unique("Imported")
    body = f"user_id,email,tags\n{good},g@example.com,{tag_name}\n,nobody@example.com,\n{also},,{tag_name}\n"
    assert fetch(started["upload_url"], "PUT", body.encode(), {"Content-Type": "text/csv"}).status == 200
    job = finished(stack, started["job_id"])
    assert (job["done"], job["total"]) == (3, 3)
    assert job["errors"] == [{"line": 3, "reason": "user_id: required"}]
    user = ok(stack.request("GET", f"/v1/users/{good}", key=stack.admin_key))
    assert user["email"] == "g@example.com" and len(user["tag_ids"]) == 1
    tags = ok(stack.request("GET", "/v1/tags", key=stack.admin_key))["data"]
    assert [t["count"] for t in tags if t["name"] == tag_name] == [2]


def test_a_csv_body_is_imported_and_a_tag_moves_the_user_into_a_segment(stack: RunningStack) -> None:
    user_id = unique("e2e-csv")
    body = f"user_id,name\n{user_id},Ada\n".encode()
    headers = {"Content-Type": "text/csv", "Authorization": f"Bearer {stack.admin_key}"}
    answer = ok(fetch(stack.base_url + "/v1/imports", "POST", body, headers), 202)
    finished(stack, answer["job_id"])
    tag = ok(stack.request("POST", "/v1/tags", {"name": unique("Picked")}, key=stack.admin_key), 201)
    segment = create_segment(stack, unique("Picked"), {"field": "tag", "op": "has_tag", "value": tag["id"]})
    tagged = stack.request(
        "POST", f"/v1/tags/{tag['id']}/users", {"user_ids": [user_id]}, key=stack.admin_key
    )
    assert ok(tagged) == {"tagged": 1}
    user = wait_for(
        lambda: ok(stack.request("GET", f"/v1/users/{user_id}", key=stack.admin_key)),
        lambda found: segment in found["segments"],
    )
    assert segment in user["segments"]


def test_a_segment_exported_and_downloaded_through_its_presigned_url(stack: RunningStack) -> None:
    marker = unique("e2e-exp")
    for index in range(3):
        upsert_user(stack, {"user_id": f"{marker}-{index}", "name": marker, "email": f"{index}@example.com"})
    segment = create_segment(stack, marker, {"field": "name", "op": "eq", "value": marker})
    started = ok(stack.request("POST", f"/v1/segments/{segment}/exports", key=stack.admin_key), 202)
    job = finished(stack, started["job_id"])
    result = job["result"]
    assert result["rows"] == 3 and result["download_url"].startswith(stack.base_url + "/_local/s3/")
    download = fetch(result["download_url"])
    assert download.status == 200
    rows = list(csv.DictReader(io.StringIO(download.body.decode())))
    assert sorted(row["user_id"] for row in rows) == [f"{marker}-{i}" for i in range(3)]
    assert all(segment in row["segments"].split(";") for row in rows)
    # The URL is good for an hour: one signed long ago is refused.
    parts = urlsplit(result["download_url"])
    stale = {**dict(parse_qsl(parts.query)), "X-Amz-Date": "20200101T000000Z"}
    assert fetch(urlunsplit(parts._replace(query=urlencode(stale)))).status == 403
