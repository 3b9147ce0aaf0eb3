"""One-click unsubscribe (RFC 8058), served by UnsubscribeFunction without auth: the link in an
email's `List-Unsubscribe` header (and `{{ unsubscribe_url }}`) is `<base>/u/<token>`.

- `POST /u/{token}`: what a mailbox provider sends on its own (no cookie, no key; the body
  `List-Unsubscribe=One-Click`, form-urlencoded or multipart, or empty). The body is not read:
  the signed token is the whole authority. The user's `unsubscribed_from_emails` becomes true
  through the same write as the API's (the stream updates segments); a repeat writes nothing.
  Always a 200 with a small page, never a redirect (providers do not follow them).
- `GET /u/{token}`: a page whose button makes that POST (a plain form, no script). It changes
  nothing: mail scanners and link previews open links.

A token that does not verify is a 404 with one fixed message, whatever was wrong with it.
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from segmentation import clock, errors
from segmentation.auth import unsubscribe_links
from segmentation.people import users

log = logging.getLogger(__name__)
router = APIGatewayRouter()

NOT_VALID = "This link is not valid."
# The pages hold no data of the user (a link may be forwarded) and load nothing.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Robots-Tag": "noindex",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;line-height:1.5;margin:0;padding:2rem 1rem;color:#1a1a1a;"
    "background:#fff}main{max-width:32rem;margin:0 auto}h1{font-size:1.5rem}"
    "button{font:inherit;font-size:1rem;padding:.6rem 1.2rem;border:2px solid #1a1a1a;border-radius:.3rem;"
    "background:#1a1a1a;color:#fff;cursor:pointer}button:focus-visible{outline:3px solid #0b57d0;"
    "outline-offset:2px}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{title}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )


# The form posts to the page's own URL (no action: right under any stage or custom domain), with
# the body a mailbox provider sends.
CONFIRM_PAGE = _page(
    "Unsubscribe from these emails?",
    "<p>Press the button to stop receiving these emails. Nothing changes until you do.</p>\n"
    '<form method="post">\n<input type="hidden" name="List-Unsubscribe" value="One-Click">\n'
    '<button type="submit">Unsubscribe</button>\n</form>',
)
DONE_PAGE = _page(
    "You are unsubscribed",
    '<p role="status">You will not receive these emails any more.</p>',
)


def _html(page: str) -> Response:
    content_type = "text/html; charset=utf-8"
    return Response(status_code=200, content_type=content_type, headers=dict(HEADERS), body=page)


def _verified(token: str) -> tuple[str, str]:
    found = unsubscribe_links.verify(token)
    if found is None:
        raise errors.NotFound(NOT_VALID)
    return found


@router.get("/u/<token>", include_in_schema=False)
def confirm_page(token: str):
    _verified(token)
    return _html(CONFIRM_PAGE)


@router.post("/u/<token>", include_in_schema=False)
def one_click(token: str):
    message_id, user_id = _verified(token)
    changed = users.unsubscribe_from_emails(user_id, clock.now())
    log.info("one-click unsubscribe", extra={"message_id": message_id, "changed": changed})
    return _html(DONE_PAGE)


# The OpenAPI description of both routes (added to the document by routes/docs.py): written out
# here because their bodies are forms and pages, which route signatures cannot describe.
_TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "The token of an email's unsubscribe link (URL-safe base64, signed)",
    "schema": {"type": "string", "minLength": 1, "maxLength": unsubscribe_links.MAX_TOKEN_CHARACTERS},
}
_PAGE = {"text/html": {"schema": {"type": "string"}}}
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
_FORM = {
    "type": "object",
    "properties": {"List-Unsubscribe": {"type": "string", "enum": ["One-Click"]}},
}


def _responses(ok: str) -> dict[str, Any]:
    return {
        "200": {"description": ok, "content": _PAGE},
        "404": {"description": "The token does not verify (nothing says why)", "content": _ERROR},
        "429": {"description": "The service is busy; retry in a moment", "content": _ERROR},
    }


OPENAPI_PATHS: dict[str, Any] = {
    "/u/{token}": {
        "get": {
            "tags": ["Unsubscribe"],
            "summary": "The page of an email's unsubscribe link (changes nothing)",
            "description": "A small HTML page whose button makes the one-click POST. No key.",
            "operationId": "unsubscribe_page_u__token__get",
            "security": [],
            "parameters": [_TOKEN],
            "responses": _responses("The page with the Unsubscribe button"),
        },
        "post": {
            "tags": ["Unsubscribe"],
            "summary": "One-click unsubscribe (RFC 8058)",
            "description": "Sets the user's unsubscribed_from_emails to true; repeating it changes "
            "nothing. No key; the body (List-Unsubscribe=One-Click, or empty) is not read. Never a redirect.",
            "operationId": "one_click_unsubscribe_u__token__post",
            "security": [],
            "parameters": [_TOKEN],
            "requestBody": {
                "required": False,
                "content": {
                    "application/x-www-form-urlencoded": {"schema": _FORM},
                    "multipart/form-data": {"schema": _FORM},
                },
            },
            "responses": _responses("Unsubscribed: a page that says so"),
        },
    }
}
