"""One-click unsubscribe (RFC 8058) in process: the headers every email carries, read as a mail
client reads them; the POST a mailbox provider makes, in each body form; the page a GET shows
(changing nothing); tokens that do not verify; `{{ unsubscribe_url }}` in bodies and previews."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from segmentation.auth import unsubscribe_links
from segmentation.settings import get_settings
from segmentation.storage import aws
from segmentation.storage import users as user_store

from tests.conftest import TEST_KEYS
from tests.support.apigw import call
from tests.support.messaging import Stack, load_handler, put_user, run_queue, sent_emails
from tests.support.messaging import stack as stack

handler = load_handler("sender")
# The stage URL the template gives the sender when UnsubscribeBaseUrl is empty (tests/conftest).
STAGE_BASE = "https://RestApi.execute-api.us-east-1.amazonaws.com/prod"


@pytest.fixture
def ses_requests(stack: Stack) -> Iterator[list[dict[str, Any]]]:
    """Every SendEmail request as it went to SES: the JSON body botocore serialized."""
    bodies: list[dict[str, Any]] = []

    def note(request: Any, **_: Any) -> None:
        bodies.append(json.loads(request.body))

    client = aws.client("sesv2")
    client.meta.events.register("request-created.sesv2.SendEmail", note)
    yield bodies
    client.meta.events.unregister("request-created.sesv2.SendEmail", note)


@pytest.fixture
def signed(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The identity secret the links are signed with, as deployed (read from settings here)."""
    monkeypatch.setenv("IDENTITY_SECRET", TEST_KEYS["admin"] + "-identity")
    get_settings.cache_clear()


def as_mail_client_reads_it(request: dict[str, Any]) -> email.message.EmailMessage:
    """The message SES builds from a SendEmail request: its custom headers, then the body,
    parsed as a mail client parses a message (RFC 5322, the email package's default policy)."""
    simple = request["Content"]["Simple"]
    lines = [f"From: {request['FromEmailAddress']}", f"To: {request['Destination']['ToAddresses'][0]}"]
    lines += [f"Subject: {simple['Subject']['Data']}"]
    lines += [f"{header['Name']}: {header['Value']}" for header in simple.get("Headers", [])]
    raw = "\r\n".join(lines) + "\r\n\r\n" + simple["Body"]["Text"]["Data"]
    parsed = email.message_from_bytes(raw.encode(), policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def make_email(stack: Stack, *user_ids: str, body: str = "Hello") -> str:
    from tests.integration.test_sender import make_message, queue_for

    message_id = make_message(subject="News", body=body)
    queue_for(message_id, *user_ids)
    run_queue(stack.delivery_queue, handler)
    return message_id


def link_of(request: dict[str, Any]) -> str:
    value = str(as_mail_client_reads_it(request)["List-Unsubscribe"])
    match = re.fullmatch(r"<(https://[^<>\s]+)>", value)
    assert match, value
    return match.group(1)


def token_of(url: str) -> str:
    path = urlsplit(url).path
    assert path.startswith("/prod/u/"), url
    return path.removeprefix("/prod/u/")


def post(token: str, body: str | None = None, content_type: str | None = None) -> Any:
    headers = {"Content-Type": content_type} if content_type else {}
    return call("POST", f"/u/{token}", raw_body=body, headers=headers)


def stored(user_id: str) -> dict[str, Any]:
    user = user_store.get(user_id)
    assert user is not None
    return user


# --- the headers -----------------------------------------------------------------------------


def test_every_email_carries_rfc_8058_headers_with_its_own_link(
    stack: Stack, signed: None, ses_requests: list[dict[str, Any]]
) -> None:
    long_id = "☃" * 255  # 765 bytes of UTF-8: too long to ride in the token
    for user_id, address in (("u1", "a@example.com"), ("u2", "b@example.com"), (long_id, "c@example.com")):
        put_user(stack, user_id, email=address)
    message_id = make_email(stack, "u1", "u2", long_id)

    assert len(ses_requests) == len(sent_emails()) == 3
    seen = {}
    for request in ses_requests:
        message = as_mail_client_reads_it(request)
        assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
        assert len(message.get_all("List-Unsubscribe") or []) == 1
        url = link_of(request)
        assert url.startswith(STAGE_BASE + "/u/")
        headers = request["Content"]["Simple"]["Headers"]
        assert len(headers) <= 15
        for header in headers:  # what SES takes: printable ASCII, name and value within 995
            assert (
                re.fullmatch(r"[\x20-\x7e]+", header["Value"]) and len(header["Name"] + header["Value"]) < 995
            )
        seen[request["Destination"]["ToAddresses"][0]] = unsubscribe_links.verify(token_of(url))
    assert seen == {
        "a@example.com": (message_id, "u1"),
        "b@example.com": (message_id, "u2"),
        "c@example.com": (message_id, long_id),
    }


def test_unsubscribe_url_renders_in_the_sent_body_as_the_header_link(
    stack: Stack, signed: None, ses_requests: list[dict[str, Any]]
) -> None:
    put_user(stack, "u1", email="a@example.com")
    make_email(stack, "u1", body="Bye? {{ unsubscribe_url }}")
    (request,) = ses_requests
    url = link_of(request)
    body = request["Content"]["Simple"]["Body"]
    assert body["Text"]["Data"] == f"Bye? {url}"
    assert f"Bye? {url}" in body["Html"]["Data"]


def test_a_preview_shows_where_links_point_with_a_token_that_opens_nothing(keys: dict[str, str]) -> None:
    call("POST", "/v1/users", key=keys["ingest"], body={"user_id": "u1", "email": "a@example.com"})
    body = {"channel": "email", "subject": "Hi", "body": "Leave: {{ unsubscribe_url }}", "user_id": "u1"}
    preview = call("POST", "/v1/messages/preview", key=keys["write"], body=body)
    assert preview.status == 200, preview.body
    assert preview.body["body"] == f"Leave: {STAGE_BASE}/u/preview"
    assert post("preview").status == 404
    in_app = call("POST", "/v1/messages/preview", key=keys["write"], body={**body, "channel": "in_app"})
    assert in_app.body["body"] == "Leave: "  # in-app messages have no unsubscribe link
    assert stored("u1")["unsubscribed_from_emails"] is False


# --- the one-click POST ------------------------------------------------------------------------

BOUNDARY = "----=_Part_0_1234567890"
BODIES = {
    "empty": (None, None),
    "form-urlencoded": ("List-Unsubscribe=One-Click", "application/x-www-form-urlencoded"),
    "multipart": (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        f"One-Click\r\n--{BOUNDARY}--\r\n",
        f"multipart/form-data; boundary={BOUNDARY}",
    ),
}


@pytest.mark.parametrize("form", sorted(BODIES))
def test_a_mailbox_providers_post_unsubscribes_with_any_body_form_and_never_redirects(
    stack: Stack, signed: None, ses_requests: list[dict[str, Any]], form: str
) -> None:
    put_user(stack, "u1", email="a@example.com")
    put_user(stack, "u2", email="b@example.com")
    make_email(stack, "u1", "u2")
    token = token_of(link_of(ses_requests[0]))
    target = unsubscribe_links.verify(token)
    assert target is not None
    other = "u2" if target[1] == "u1" else "u1"
    rev = stored(target[1])["rev"]

    body, content_type = BODIES[form]
    answer = post(token, body, content_type)

    assert answer.status == 200
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")
    assert "You are unsubscribed" in answer.body
    user = stored(target[1])
    assert user["unsubscribed_from_emails"] is True
    assert user["rev"] == rev + 1  # the API's write: the stream sees it and updates segments
    assert stored(other)["unsubscribed_from_emails"] is False  # one link, one user


def test_a_repeated_post_changes_nothing_more(stack: Stack, signed: None) -> None:
    put_user(stack, "u1", email="a@example.com")
    token = unsubscribe_links.make("msg_anything", "u1").token
    assert post(token).status == 200
    after_first = stored("u1")
    again = post(token, "List-Unsubscribe=One-Click", "application/x-www-form-urlencoded")
    assert again.status == 200 and "You are unsubscribed" in again.body
    assert stored("u1") == after_first  # no write at all: rev and updated_at as they were


def test_a_user_deleted_since_is_not_created_again(stack: Stack, signed: None) -> None:
    token = unsubscribe_links.make("msg_anything", "gone").token
    assert post(token).status == 200
    assert user_store.get("gone") is None


def test_a_get_shows_a_page_whose_form_makes_the_post_and_changes_nothing(stack: Stack, signed: None) -> None:
    put_user(stack, "u1", email="a@example.com")
    before = stored("u1")
    token = unsubscribe_links.make("msg_anything", "u1").token

    page = call("GET", f"/u/{token}")

    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"  # the token is in the URL
    form = re.search(r"<form([^>]*)>(.*?)</form>", page.body, re.S)
    assert form is not None
    assert 'method="post"' in form.group(1) and "action" not in form.group(1)  # posts to the page's URL
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in form.group(2)
    assert '<button type="submit">' in form.group(2)
    assert "<script" not in page.body
    assert '<html lang="en">' in page.body and "<title>" in page.body
    assert stored("u1") == before


def _flip(token: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    swapped = alphabet[(alphabet.index(token[index]) + 1) % 64]
    return token[:index] + swapped + token[index + 1 :]


def _encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _reencoded(token: str, change: Any) -> str:
    return _encoded(change(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))))


def forgeries(token: str) -> dict[str, str]:
    """Tokens an attacker could make from a good one (for u1) without the key."""
    return {
        "random": base64.urlsafe_b64encode(b"\x01\x0cmsg_anything" + b"u1" + b"\x00" * 16)
        .decode()
        .rstrip("="),
        "first character changed": _flip(token, 0),
        "middle character changed": _flip(token, len(token) // 2),
        "signature changed": _flip(token, len(token) - 2),
        "other user, same signature": _reencoded(token, lambda raw: raw.replace(b"u1", b"u2")),
        "cut short": token[:-4],
        "made longer": token + "AAAA",
        "padded": token + "=" * (-len(token) % 4 or 4),
        "a page cursor": "eyJhIjoxfQ.AAAAAAAAAAAAAAAAAAAAAA",
        "empty-ish": "-",
    }


def test_a_token_that_does_not_verify_is_the_same_404_and_changes_nothing(stack: Stack, signed: None) -> None:
    put_user(stack, "u1", email="a@example.com")
    put_user(stack, "u2", email="b@example.com")
    token = unsubscribe_links.make("msg_anything", "u1").token
    assert unsubscribe_links.verify(token) == ("msg_anything", "u1")
    answers = set()
    for name, forged in forgeries(token).items():
        assert forged != token, name
        for method in ("GET", "POST"):
            answer = call(method, f"/u/{forged}")
            assert answer.status == 404, (name, method, answer.body)
            answers.add(json.dumps(answer.body, sort_keys=True))
    assert answers == {json.dumps({"error": {"code": "not_found", "message": "This link is not valid."}})}
    assert stored("u1")["unsubscribed_from_emails"] is False
    assert stored("u2")["unsubscribed_from_emails"] is False


def test_a_link_signed_with_another_identity_secret_does_not_verify(
    stack: Stack, signed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    put_user(stack, "u1", email="a@example.com")
    monkeypatch.setenv("IDENTITY_SECRET", "another stack's secret")
    get_settings.cache_clear()
    elsewhere = unsubscribe_links.make("msg_anything", "u1").token
    monkeypatch.setenv("IDENTITY_SECRET", TEST_KEYS["admin"] + "-identity")
    get_settings.cache_clear()
    assert post(elsewhere).status == 404
    assert stored("u1")["unsubscribed_from_emails"] is False


def test_a_long_user_ids_reference_token_unsubscribes_that_user_only(stack: Stack, signed: None) -> None:
    long_id, neighbour = "ü" * 255, "ü" * 254 + "v"
    put_user(stack, long_id, email="a@example.com")
    put_user(stack, neighbour, email="b@example.com")
    link = unsubscribe_links.make("msg_anything", long_id)
    assert link.reference_put is not None and len(link.token) < 60
    # Before the sender's begin transaction stored the reference, the token leads nowhere.
    assert post(link.token).status == 404
    stack.table("DELIVERIES_TABLE").put_item(Item=link.reference_put["Put"]["Item"])
    assert post(link.token).status == 200
    assert stored(long_id)["unsubscribed_from_emails"] is True
    assert stored(neighbour)["unsubscribed_from_emails"] is False


def test_the_unsubscribe_routes_are_in_the_openapi_document_without_auth(keys: dict[str, str]) -> None:
    document = call("GET", "/v1/openapi.json").body
    operations = document["paths"]["/u/{token}"]
    assert set(operations) == {"get", "post"}
    for operation in operations.values():
        assert operation["security"] == []
        assert set(operation["responses"]) >= {"200", "404"}
        assert "text/html" in operations["get"]["responses"]["200"]["content"]
    forms = set(operations["post"]["requestBody"]["content"])
    assert forms == {"application/x-www-form-urlencoded", "multipart/form-data"}
    ref = operations["post"]["responses"]["404"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[-1] in document["components"]["schemas"]


def test_an_unreadable_identity_secret_holds_the_email_and_the_unsubscribe_instead_of_breaking_links(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deployed, the key comes from Secrets Manager. Were it unreadable, a link signed with
    anything else would never verify: the email waits (its job comes back), and a provider's
    POST gets a 429 to retry, not a 404."""
    import boto3
    from segmentation.storage import secrets

    from tests.integration.test_sender import make_message, queue_for
    from tests.support.messaging import jobs_in

    monkeypatch.delenv("IDENTITY_SECRET", raising=False)
    get_settings.cache_clear()
    secrets.clear_cache()
    put_user(stack, "u1", email="a@example.com")
    token = unsubscribe_links.make("msg_anything", "u1").token  # signed while the secret reads
    boto3.client("secretsmanager").delete_secret(
        SecretId=get_settings().identity_secret_arn, ForceDeleteWithoutRecovery=True
    )
    secrets.clear_cache()
    message_id = make_message()
    queue_for(message_id, "u1")

    run_queue(stack.delivery_queue, handler, rounds=1)

    assert sent_emails() == []
    assert len(jobs_in(stack.delivery_queue)) == 1  # it comes back
    from segmentation.storage import deliveries

    assert (deliveries.get(message_id, "u1") or {}).get("status") == "queued"
    refused = post(token)
    assert (refused.status, refused.error_code) == (429, "throttled")
    assert stored("u1")["unsubscribed_from_emails"] is False
