"""Email that arrives, over HTTP: an email's one-click unsubscribe link, taken from the local
outbox, opened (a page that changes nothing) and posted as a mailbox provider posts it (the user
unsubscribed, and their segments follow); the frequency cap set with PUT /v1/settings."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import Response, RunningStack
from tests.e2e.helpers import all_pages, create_segment, ok, unique, upsert_user, wait_for

pytestmark = pytest.mark.e2e


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx comes back as it is: RFC 8058 forbids them here


def _raw(method: str, url: str, body: bytes | None = None, content_type: str | None = None) -> Response:
    """A request as a mailbox provider or a browser makes it: no key, no JSON, no redirects."""
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=60) as answer:
            return Response(answer.status, dict(answer.headers), answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers), error.read())


def _user(stack: RunningStack, user_id: str) -> dict[str, Any]:
    return ok(stack.request("GET", f"/v1/users/{user_id}", key=stack.admin_key))


def _send_email(stack: RunningStack, user_id: str, body: str) -> str:
    message = ok(
        stack.request(
            "POST",
            "/v1/messages",
            {
                "name": unique("Unsubscribe test"),
                "type": "manual",
                "channel": "email",
                "audience": {"filter": {"field": "user_id", "op": "eq", "value": user_id}},
                "subject": "News",
                "body": body,
            },
            key=stack.admin_key,
        ),
        201,
    )
    ok(stack.request("POST", f"/v1/messages/{message['id']}/send", key=stack.admin_key), 202)
    return str(message["id"])


def _emails_to(stack: RunningStack, address: str) -> list[dict[str, Any]]:
    return [e for e in ok(stack.request("GET", "/_local/outbox"))["data"] if address in e["to"]]


def _link(email: dict[str, Any]) -> str:
    """The List-Unsubscribe URL from the outbox's headers. The body's `{{ unsubscribe_url }}`
    is the same URL (an outbox without headers falls back to it)."""
    in_body = re.search(r"Leave: (\S+)", email["text"])
    assert in_body, email["text"]
    headers = email.get("headers")
    if headers is None:
        return in_body.group(1)
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    match = re.fullmatch(r"<(\S+)>", headers["List-Unsubscribe"])
    assert match and match.group(1) == in_body.group(1), headers
    return match.group(1)


def test_an_emails_unsubscribe_link_works_as_rfc_8058_says(stack: RunningStack) -> None:
    user_id, other_id = unique("u-unsub"), unique("u-stays")
    domain = unique("unsub") + ".example"
    upsert_user(stack, {"user_id": user_id, "email": f"ada@{domain}"})
    upsert_user(stack, {"user_id": other_id, "email": f"bob@{domain}"})
    segment_id = create_segment(
        stack,
        unique("Unsubscribed"),
        {
            "and": [
                {"field": "unsubscribed_from_emails", "op": "is_true"},
                {"field": "email", "op": "ends_with", "value": domain},
            ]
        },
    )
    _send_email(stack, user_id, "Hello. Leave: {{ unsubscribe_url }}")
    emails = wait_for(lambda: _emails_to(stack, f"ada@{domain}"), lambda found: len(found) == 1)
    assert len(emails) == 1
    url = _link(emails[0])
    assert url.startswith(stack.base_url + "/u/")

    page = _raw("GET", url)  # what a mail scanner or a person's browser does first
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert b'<form method="post">' in page.body
    assert _user(stack, user_id)["unsubscribed_from_emails"] is False

    done = _raw("POST", url, b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded")
    assert done.status == 200 and "Location" not in done.headers
    assert _user(stack, user_id)["unsubscribed_from_emails"] is True
    members = wait_for(
        lambda: {m["user_id"] for m in all_pages(stack, f"/v1/segments/{segment_id}/members")},
        lambda found: user_id in found,
    )
    assert members == {user_id}  # the stream updated segments; the other user is untouched

    boundary = "b0undary"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    again = _raw("POST", url, multipart, f"multipart/form-data; boundary={boundary}")
    empty = _raw("POST", url)
    assert again.status == empty.status == 200
    assert _user(stack, user_id)["unsubscribed_from_emails"] is True
    assert _user(stack, other_id)["unsubscribed_from_emails"] is False

    token = url.rsplit("/", 1)[1]
    forged = url[: -len(token)] + ("A" if token[0] != "A" else "B") + token[1:]
    refused = _raw("POST", forged)
    assert refused.status == 404 and b"not_found" in refused.body


@pytest.fixture
def no_cap_after(stack: RunningStack) -> Iterator[None]:
    """The cap is the workspace's: set back to none for the other tests of this stack."""
    yield
    ok(stack.request("PUT", "/v1/settings", {"email_frequency_cap": None}, key=stack.admin_key))


def test_a_frequency_cap_set_over_http_skips_the_email_past_it(
    stack: RunningStack, no_cap_after: None
) -> None:
    user_id = unique("u-capped")
    address = f"cap@{unique('cap')}.example"
    upsert_user(stack, {"user_id": user_id, "email": address})
    cap = {"email_frequency_cap": {"max": 1, "days": 7}}
    assert ok(stack.request("PUT", "/v1/settings", cap, key=stack.admin_key)) == {**cap, "timezone": "UTC"}
    assert stack.request("PUT", "/v1/settings", {"timezone": "Asia/Tokyo"}, key=stack.admin_key).status == 422

    first = _send_email(stack, user_id, "One. Leave: {{ unsubscribe_url }}")
    wait_for(lambda: _emails_to(stack, address), lambda found: len(found) == 1)
    second = _send_email(stack, user_id, "Two. Leave: {{ unsubscribe_url }}")
    delivery = wait_for(
        lambda: all_pages(stack, f"/v1/messages/{second}/deliveries"),
        lambda found: bool(found) and found[0]["status"] != "queued",
    )
    assert [(d["status"], d["reason"]) for d in delivery] == [("skipped", "frequency_cap")]
    assert [d["status"] for d in all_pages(stack, f"/v1/messages/{first}/deliveries")] == ["sent"]
    assert len(_emails_to(stack, address)) == 1
