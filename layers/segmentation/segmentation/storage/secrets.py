"""Secrets Manager values the functions need: the identity-verification secret, the first admin
key, and the keys that sign page cursors and unsubscribe links (derived from the identity secret).

Each value is cached for TTL_SECONDS, so a rotated secret is picked up within minutes without a
cold start. A read that fails (throttling, a network blip, a missing secret) keeps the last good
value, and is tried again on a call after a short backoff (1 s, doubling to RETRY_MAX_SECONDS),
not after a whole TTL: one blip costs seconds, not minutes. A secret never read is None: callers
fail closed (a 401 for a key check), never a 500. Locally, and in tests, settings may carry the
values themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from segmentation import clock, errors
from segmentation.settings import get_settings
from segmentation.storage import aws

logger = logging.getLogger(__name__)

TTL_SECONDS = 300.0
# After a failed read the next calls use the last good value (or None) for this long, doubling
# with each failure in a row up to RETRY_MAX_SECONDS.
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 15.0


class _Unreadable(Exception):
    pass


@dataclass
class _Cached:
    value: str | None  # the last value read, None until a read succeeds
    read_at: float | None = None  # when `value` was read
    failures: int = 0  # failed reads in a row since
    retry_at: float = 0.0  # no read before this, after a failure

    def fresh(self, now: float) -> bool:
        return self.read_at is not None and 0 <= now - self.read_at < TTL_SECONDS

    def waiting(self, now: float) -> bool:
        # Bounded both ways, like `fresh`: a clock moved back (the local stack's) never waits long.
        return self.failures > 0 and 0 < self.retry_at - now <= RETRY_MAX_SECONDS


_lock = threading.Lock()
_cache: dict[str, _Cached] = {}
# Used to sign cursors when no identity secret is configured (a bare test process): cursors are
# then good within this process only.
_process_key = secrets.token_bytes(32)


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def secret(arn: str) -> str | None:
    """A secret's string (a JSON secret gives its "key" field), read at most every TTL_SECONDS;
    the last good value (or None) while a failed read waits for its retry."""
    now = clock.now()
    with _lock:
        cached = _cache.get(arn)
        if cached is not None and (cached.fresh(now) or cached.waiting(now)):
            return cached.value
    try:
        value = _read(arn)
    except _Unreadable:
        with _lock:
            cached = _cache.setdefault(arn, _Cached(None))
            cached.failures += 1
            backoff = min(RETRY_FIRST_SECONDS * 2 ** (cached.failures - 1), RETRY_MAX_SECONDS)
            cached.retry_at = now + backoff
            return cached.value
    with _lock:
        _cache[arn] = _Cached(value, read_at=now)
    return value


def _read(arn: str) -> str:
    try:
        value: str = aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    except (ClientError, BotoCoreError, KeyError) as error:
        logger.error("a secret could not be read", extra={"secret_arn": arn, "error": type(error).__name__})
        raise _Unreadable from error
    if value.startswith("{"):
        try:
            document = json.loads(value)
        except ValueError:
            return value
        if isinstance(document, dict) and isinstance(document.get("key"), str):
            return str(document["key"])
    return value


def identity_secret() -> str | None:
    settings = get_settings()
    if settings.identity_secret:
        return settings.identity_secret
    return secret(settings.identity_secret_arn) if settings.identity_secret_arn else None


def bootstrap_admin_key() -> str | None:
    arn = get_settings().admin_key_secret_arn
    return secret(arn) if arn else None


def cursor_key() -> bytes:
    """The HMAC key of page cursors: derived from the identity secret, so nothing more to keep."""
    return _derived_key(b"segmentation page cursors v1")


def unsubscribe_key() -> bytes:
    """The HMAC key of unsubscribe links (auth.unsubscribe_links), derived like cursor_key under
    another label: a cursor can never pass for a link, nor a link for a cursor. Links outlive the
    process, so a configured secret that cannot be read is errors.Retryable (the email waits),
    never the process key (links that would never verify)."""
    if get_settings().identity_secret_arn and not identity_secret():
        raise errors.Retryable("the identity secret, which signs unsubscribe links, could not be read")
    return _derived_key(b"segmentation unsubscribe links v1")


def _derived_key(label: bytes) -> bytes:
    base = identity_secret()
    if not base:
        return hmac.new(_process_key, label, hashlib.sha256).digest()
    return hmac.new(base.encode(), label, hashlib.sha256).digest()
