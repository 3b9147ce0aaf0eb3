"""The Segment sources' requests, read before anything else (API.md, "Sources"): the write key
(HTTP Basic with the key as user name, a Bearer token, or `writeKey` in the body), a gzip body,
and Segment's limit on the uncompressed body.

No API Gateway authorizer runs on these routes (a REQUEST authorizer never sees the body), so the
key is checked here with the authorizer's own hashed lookup (auth.access.authenticate_key). A key
in the Authorization header is checked first: a caller refused there gets its 401 or 403 before
anything is said about its body. A key in the body can only be read from a readable body, so
there a body over the limit is a 413 and one that is not JSON a 400 before the key is checked.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping
from typing import Any

from segmentation.auth.access import authenticate_key
from segmentation.errors import Forbidden, Malformed, PayloadTooLarge, Unauthorized
from segmentation.http.auth import INGESTERS
from segmentation.http.body import MalformedBody, parse
from segmentation.people.segment_messages import MAX_BODY_BYTES

_GZIP_MAGIC = b"\x1f\x8b"


class MalformedEncoding(Malformed):
    code = "malformed_body"


def read(event: Mapping[str, Any]) -> dict[str, Any]:
    """The body as a JSON object, once its caller is known to hold an ingest or admin key."""
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    authorization = headers.get("authorization")
    if authorization:
        _check_key(_header_key(authorization))
    raw = _uncompressed(_body_bytes(event.get("body"), bool(event.get("isBase64Encoded"))), headers)
    value = parse(raw)
    if not isinstance(value, dict):
        raise MalformedBody('The body must be a JSON object (a message, or {"batch": [...]}).')
    if not authorization:
        write_key = value.get("writeKey")
        _check_key(write_key if isinstance(write_key, str) else None)
    return value


def _header_key(authorization: str) -> str | None:
    """The key of `Basic base64(key:)` (the user name; the password is ignored) or `Bearer key`."""
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, _, _password = decoded.partition(":")
    return user or None


def _check_key(raw_key: str | None) -> None:
    principal = authenticate_key(raw_key)
    if principal is None:
        raise Unauthorized(
            "Send a valid write key (an ingest or admin API key): as `writeKey` in the body, as HTTP "
            "Basic auth with the key as user name and no password, or as `Authorization: Bearer <key>`."
        )
    if principal.role not in INGESTERS:
        raise Forbidden(
            f"A write key must be an ingest or admin API key; this key has the role {principal.role!r}."
        )


def _body_bytes(body: str | None, is_base64: bool) -> bytes:
    if not body:
        return b""
    try:
        return base64.b64decode(body, validate=True) if is_base64 else body.encode("utf-8")
    except (binascii.Error, ValueError) as error:
        raise MalformedBody("The request body could not be read: send UTF-8 JSON.") from error
    except UnicodeEncodeError as error:
        raise MalformedBody("The request body is not valid UTF-8: send UTF-8 JSON.") from error


def _uncompressed(raw: bytes, headers: Mapping[str, str]) -> bytes:
    """The body as JSON bytes, at most MAX_BODY_BYTES once uncompressed (else 413)."""
    codings = [c.strip().lower() for c in headers.get("content-encoding", "").split(",") if c.strip()]
    unknown = [c for c in codings if c not in ("gzip", "x-gzip", "identity")]
    if unknown:
        raise MalformedEncoding(f"Content-Encoding {unknown[0]!r} is not supported: send gzip or nothing.")
    # Deployed, API Gateway may have decompressed the body already (its header stays): only gzip
    # data is decompressed here.
    if any(c in ("gzip", "x-gzip") for c in codings) and raw.startswith(_GZIP_MAGIC):
        raw = _gunzip(raw)
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(_too_large())
    return raw


def _gunzip(data: bytes) -> bytes:
    """Every gzip member, stopping as soon as the output passes the limit (a small body may
    inflate to gigabytes)."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(data, MAX_BODY_BYTES + 1 - len(out))
        except zlib.error as error:
            raise MalformedEncoding("The body says Content-Encoding: gzip but is not gzip data.") from error
        if len(out) > MAX_BODY_BYTES:
            raise PayloadTooLarge(_too_large())
        if not inflater.eof:
            if inflater.unconsumed_tail:  # output stopped at the limit with input left: too large
                raise PayloadTooLarge(_too_large())
            raise MalformedEncoding("The gzip body is cut short.")
        data = inflater.unused_data
    return bytes(out)


def _too_large() -> str:
    return (
        f"The uncompressed body is over {MAX_BODY_BYTES // 1024} KB, Segment's limit for a request: "
        "nothing was kept. Send smaller batches."
    )
