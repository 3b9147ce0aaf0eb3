"""SES as the local stack runs it: the email it accepted (`GET /_local/outbox`), the rate it
accepts (`SES_SEND_RATE`) and an account whose sending is paused (`POST /_local/ses`).

moto keeps one `body` per message (the HTML part when there is one), no send time, and ignores a
SendEmail's custom headers, configuration set and tags, so the SES v2 SendEmail response handler
is wrapped to note each message's text and HTML parts, its `Content.Simple.Headers`, its
recipients, configuration set and tags (what its events carry: ses_events.py) and the stack's
clock at the moment of sending. Messages sent some other way fall back to what moto kept.
A configuration set that does not exist is refused as SES does (`NotFoundException`).

The same wrapper refuses as SES does: beyond `SES_SEND_RATE` emails a second (by the stack's
clock; unlimited when unset) with `TooManyRequestsException` (429, "Maximum sending rate
exceeded."), and with `SendingPausedException` while paused. moto has no SES v2 GetAccount;
`get_account` answers it with the rate (as MaxSendRate) and whether sending is enabled.
"""

from __future__ import annotations

import email
import json
import os
import threading
from dataclasses import dataclass
from email.policy import default as default_policy
from typing import Any

from segmentation import clock

_lock = threading.Lock()
# SES message id -> {"text", "html", "headers", "at"} (shown) and, under "sent", the request's
# From, subject, recipients, configuration set and tags.
_details: dict[str, dict[str, Any]] = {}
_first_seen: dict[str, float] = {}
_installed = False
# What SES v2 GetAccount reports as MaxSendRate when the local rate is unlimited.
UNLIMITED_RATE = 1000.0


@dataclass
class Gate:
    """A token bucket of `rate` emails a second (one second's worth at most), and a pause."""

    rate: float | None = None
    paused: bool = False
    tokens: float = 0.0
    filled_at: float | None = None

    def admit(self, now: float) -> str | None:
        """None when SES takes one more email now, else the error code it answers."""
        if self.paused:
            return "SendingPausedException"
        if self.rate is None:
            return None
        if self.filled_at is None:
            self.tokens = self.rate
        else:
            self.tokens = min(self.rate, self.tokens + (now - self.filled_at) * self.rate)
        self.filled_at = now
        if self.tokens < 1:
            return "TooManyRequestsException"
        self.tokens -= 1
        return None


gate = Gate()


def configure(*, rate: float | None = None, paused: bool | None = None) -> None:
    with _lock:
        if rate is not None:
            gate.rate, gate.tokens, gate.filled_at = (rate if rate > 0 else None), 0.0, None
        if paused is not None:
            gate.paused = paused


def rate_from_environment(environ: dict[str, str] | None = None) -> float | None:
    """SES_SEND_RATE: emails a second (a positive number), or None (unset: unlimited)."""
    text = (os.environ if environ is None else environ).get("SES_SEND_RATE", "").strip()
    if not text:
        return None
    try:
        rate = float(text)
    except ValueError:
        raise ValueError(f"SES_SEND_RATE must be a number of emails a second; got {text!r}") from None
    if not rate > 0:
        raise ValueError(f"SES_SEND_RATE must be above 0; got {text!r}")
    return rate


def _refusal(code: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    throttled = code == "TooManyRequestsException"
    error = JsonRESTError(
        code, "Maximum sending rate exceeded." if throttled else "Sending is paused for this account."
    )
    error.code = 429 if throttled else 400
    return error


def _no_configuration_set(name: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    error = JsonRESTError("NotFoundException", f"Configuration set <{name}> does not exist.")
    error.code = 404
    return error


def _sent(request: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    """What SendEmail asked for that SES's events report back."""
    destination = request.get("Destination") or {}
    return {
        "from": request.get("FromEmailAddress"),
        "subject": (content.get("Subject") or {}).get("Data"),
        "to": list(destination.get("ToAddresses") or []),
        "destination": [
            address
            for kind in ("ToAddresses", "CcAddresses", "BccAddresses")
            for address in destination.get(kind) or []
        ],
        "configuration_set": request.get("ConfigurationSetName"),
        "tags": {str(t.get("Name")): str(t.get("Value")) for t in request.get("EmailTags") or []},
    }


def install() -> None:
    """Wrap moto's SES v2 SendEmail handler and add GetAccount (idempotent)."""
    global _installed
    from moto.sesv2.responses import SESV2Response

    if _installed:
        return
    original = SESV2Response.send_email

    def send_email(self: SESV2Response) -> str:
        with _lock:
            refused = gate.admit(clock.now())
        if refused:
            raise _refusal(refused)
        request = json.loads(self.body or "{}")
        configuration_set = request.get("ConfigurationSetName")
        if configuration_set and configuration_set not in self.sesv2_backend.core_backend.config_sets:
            raise _no_configuration_set(configuration_set)
        content = (request.get("Content") or {}).get("Simple") or {}
        result = original(self)
        body = content.get("Body") or {}
        with _lock:
            _details[json.loads(result)["MessageId"]] = {
                "text": (body.get("Text") or {}).get("Data"),
                "html": (body.get("Html") or {}).get("Data"),
                "headers": {str(h.get("Name")): str(h.get("Value")) for h in content.get("Headers") or []},
                "at": clock.now(),
                "sent": _sent(request, content),
            }
        return result

    def get_account(self: SESV2Response) -> str:
        with _lock:
            rate, paused = gate.rate, gate.paused
        quota = {"Max24HourSend": 1_000_000.0, "MaxSendRate": rate or UNLIMITED_RATE, "SentLast24Hours": 0.0}
        return json.dumps({"SendQuota": quota, "SendingEnabled": not paused, "ProductionAccessEnabled": True})

    SESV2Response.send_email = send_email  # type: ignore[method-assign]
    SESV2Response.get_account = get_account  # type: ignore[attr-defined]
    _installed = True


def messages(account_id: str, region: str) -> list[dict[str, Any]]:
    """Every accepted email, oldest first, as {"to", "subject", "text", "html", "headers",
    "ses_message_id", "at" (epoch)}."""
    return [{k: v for k, v in m.items() if k != "sent"} for m in accepted(account_id, region)]


def accepted(account_id: str, region: str) -> list[dict[str, Any]]:
    """`messages`, each also with "sent": what its SendEmail asked for (see `_sent`), or None."""
    from moto.ses.models import RawMessage, ses_backends

    sent = list(ses_backends[account_id][region].sent_messages)
    out = []
    with _lock:
        for message in sent:
            if not hasattr(message, "id") or not hasattr(message, "destinations"):
                continue  # bulk templated sends: not used by this service
            seen = _first_seen.setdefault(message.id, clock.now())
            if isinstance(message, RawMessage):
                out.append({**_raw(message, seen), "ses_message_id": message.id, "sent": None})
                continue
            to = list((message.destinations or {}).get("ToAddresses", []))
            details = _details.get(message.id)
            if details is None:
                body = str(getattr(message, "body", ""))
                html = body if body.lstrip().startswith("<") else None
                details = {
                    "text": None if html else body,
                    "html": html,
                    "headers": {},
                    "at": seen,
                    "sent": None,
                }
            out.append(
                {
                    "to": to,
                    "subject": getattr(message, "subject", None),
                    **details,
                    "ses_message_id": message.id,
                }
            )
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
        "headers": {},
        "at": _details.get(message.id, {}).get("at", seen),
    }
