"""The email SES accepted, for `GET /_local/outbox`.

moto keeps one `body` per message (the HTML part when there is one) and no send time, so the
SES v2 SendEmail response handler is wrapped to note each message's text and HTML parts and the
stack's clock at the moment of sending. Messages sent some other way fall back to what moto kept.
"""

from __future__ import annotations

import email
import json
import threading
from email.policy import default as default_policy
from typing import Any

from segmentation import clock

_lock = threading.Lock()
_details: dict[str, dict[str, Any]] = {}  # SES message id -> {"text", "html", "at"}
_first_seen: dict[str, float] = {}
_installed = False


def install() -> None:
    """Wrap moto's SES v2 SendEmail handler (idempotent)."""
    global _installed
    from moto.sesv2.responses import SESV2Response

    if _installed:
        return
    original = SESV2Response.send_email

    def send_email(self: SESV2Response) -> str:
        content = (json.loads(self.body or "{}").get("Content") or {}).get("Simple") or {}
        result = original(self)
        body = content.get("Body") or {}
        with _lock:
            _details[json.loads(result)["MessageId"]] = {
                "text": (body.get("Text") or {}).get("Data"),
                "html": (body.get("Html") or {}).get("Data"),
                "at": clock.now(),
            }
        return result

    SESV2Response.send_email = send_email  # type: ignore[method-assign]
    _installed = True


def messages(account_id: str, region: str) -> list[dict[str, Any]]:
    """Every accepted email, oldest first, as {"to", "subject", "text", "html", "at" (epoch)}."""
    from moto.ses.models import RawMessage, ses_backends

    sent = list(ses_backends[account_id][region].sent_messages)
    out = []
    with _lock:
        for message in sent:
            if not hasattr(message, "id") or not hasattr(message, "destinations"):
                continue  # bulk templated sends: not used by this service
            seen = _first_seen.setdefault(message.id, clock.now())
            if isinstance(message, RawMessage):
                out.append(_raw(message, seen))
                continue
            to = list((message.destinations or {}).get("ToAddresses", []))
            details = _details.get(message.id)
            if details is None:
                body = str(getattr(message, "body", ""))
                html = body if body.lstrip().startswith("<") else None
                details = {"text": None if html else body, "html": html, "at": seen}
            out.append({"to": to, "subject": getattr(message, "subject", None), **details})
    return out


def _raw(message: Any, seen: float) -> dict[str, Any]:
    parsed = email.message_from_string(message.raw_data, policy=default_policy)
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    return {
        "to": list(message.destinations),
        "subject": parsed.get("Subject"),
        "text": text.get_content() if text else None,
        "html": html.get_content() if html else None,
        "at": _details.get(message.id, {}).get("at", seen),
    }
