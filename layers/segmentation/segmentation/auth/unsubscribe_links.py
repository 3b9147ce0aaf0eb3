"""One-click unsubscribe links (RFC 8058): `<base>/u/<token>`, one per (message, user).

A token is `base64url(payload ‖ MAC)` without padding: URL-safe as it stands, so it goes into a
path and a `List-Unsubscribe` header unescaped. The MAC is HMAC-SHA256 truncated to 16 bytes,
keyed by storage.secrets.unsubscribe_key (derived from the identity secret): nobody without the
key can make a token, and changing any byte of one (another user id, another message) breaks
its MAC. `verify` answers None for anything that is not a token this stack made, whatever the
reason, and the route answers every such None with the same 404.

The payload names the delivery:
- inline (kind 1): the message id and the user id themselves (1 + 1 + len(message id) + the
  user id's UTF-8 bytes). A user id may be any 1-255 characters, up to 1,020 bytes: too long
  for one header line (SES takes at most 995 characters of a header) once base64 grows it.
- reference (kind 2), for payloads over INLINE_MAX_BYTES: a 16-byte digest of (message id,
  user id), which the sender stores beside the delivery (storage.deliveries.link_reference_put,
  in the transaction that begins the send, so it exists before the email does). Every user id
  whose UTF-8 form is under about 380 bytes (every ASCII id) stays inline and costs no write.

The longest token is thus (INLINE_MAX_BYTES + 16) * 4 / 3 = 555 characters: with a base URL of
at most 200 characters (the template's UnsubscribeBaseUrl pattern), `List-Unsubscribe: <...>`
stays under 800 characters, within SES's 995 and RFC 5322's 998.

Rotating the identity secret changes the key: links in emails sent before then answer 404.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from segmentation.storage import deliveries
from segmentation.storage.secrets import unsubscribe_key

_INLINE, _REFERENCE = 1, 2
_MAC_BYTES = 16
_DIGEST_BYTES = 16
INLINE_MAX_BYTES = 400
MAX_TOKEN_CHARACTERS = -(-(INLINE_MAX_BYTES + _MAC_BYTES) * 4 // 3)  # 555
# The path segment a preview shows: a preview has no delivery, so it gets no working link.
PREVIEW_TOKEN = "preview"
PATH = "/u/"


@dataclass(frozen=True)
class Link:
    token: str
    # For a reference token: the Deliveries action that stores what the digest stands for; it
    # must commit before the email goes out. None for an inline token.
    reference_put: dict[str, Any] | None = None

    def url(self, base: str) -> str:
        return url(base, self.token)


def url(base: str, token: str) -> str:
    return base.rstrip("/") + PATH + token


def preview_url(base: str) -> str:
    return url(base, PREVIEW_TOKEN)


def make(message_id: str, user_id: str) -> Link:
    """The link of one delivery. Pure but for the key: no AWS call for an inline token."""
    message = message_id.encode()
    user = user_id.encode()
    if len(message) > 255:
        raise ValueError("a message id is at most 255 bytes")
    payload = bytes([_INLINE, len(message)]) + message + user
    if len(payload) <= INLINE_MAX_BYTES:
        return Link(_sign(payload))
    digest = _digest(message_id, user_id)
    token = _sign(bytes([_REFERENCE]) + digest)
    return Link(token, deliveries.link_reference_put(_b64(digest), message_id, user_id))


def verify(token: str) -> tuple[str, str] | None:
    """(message id, user id) of a token this stack made; None for anything else."""
    if not token or len(token) > MAX_TOKEN_CHARACTERS or "=" in token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if _b64(raw) != token:  # one encoding per token: no padding bits or other alphabets
        return None
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if len(payload) < 2 or not hmac.compare_digest(mac, _mac(payload)):
        return None
    if payload[0] == _INLINE:
        return _inline(payload)
    if payload[0] == _REFERENCE and len(payload) == 1 + _DIGEST_BYTES:
        found = deliveries.link_reference(_b64(payload[1:]))
        if found is not None and hmac.compare_digest(_digest(*found), payload[1:]):
            return found
    return None


def _inline(payload: bytes) -> tuple[str, str] | None:
    length = payload[1]
    message, user = payload[2 : 2 + length], payload[2 + length :]
    if len(message) != length or not user:
        return None
    try:
        return message.decode(), user.decode()
    except UnicodeDecodeError:
        return None


def _digest(message_id: str, user_id: str) -> bytes:
    text = message_id.encode() + b"\x00" + user_id.encode()
    return hashlib.sha256(b"unsubscribe link reference\x00" + text).digest()[:_DIGEST_BYTES]


def _sign(payload: bytes) -> str:
    return _b64(payload + _mac(payload))


def _mac(payload: bytes) -> bytes:
    return hmac.new(unsubscribe_key(), payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
