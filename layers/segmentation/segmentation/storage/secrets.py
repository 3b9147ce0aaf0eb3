"""Secrets Manager values the functions need: the identity-verification secret, the first admin
key, and the key that signs page cursors (derived from the identity secret).

Each value is cached for TTL_SECONDS, so a rotated secret is picked up within minutes without a
cold start. A secret that is missing or cannot be read is None: callers fail closed (a 401 for
a key check), never a 500. Locally, and in tests, settings may carry the values themselves.
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

from segmentation import clock
from segmentation.settings import get_settings
from segmentation.storage import aws

logger = logging.getLogger(__name__)

TTL_SECONDS = 300.0


@dataclass
class _Cached:
    value: str | None
    read_at: float


_lock = threading.Lock()
_cache: dict[str, _Cached] = {}
# Used to sign cursors when no identity secret is configured (a bare test process): cursors are
# then good within this process only.
_process_key = secrets.token_bytes(32)


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def secret(arn: str) -> str | None:
    """A secret's string (a JSON secret gives its "key" field), read at most every TTL_SECONDS."""
    now = clock.now()
    with _lock:
        cached = _cache.get(arn)
        if cached is not None and 0 <= now - cached.read_at < TTL_SECONDS:
            return cached.value
    value = _read(arn)
    with _lock:
        _cache[arn] = _Cached(value, now)
    return value


def _read(arn: str) -> str | None:
    try:
        value: str = aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    except (ClientError, BotoCoreError, KeyError) as error:
        logger.error("a secret could not be read", extra={"secret_arn": arn, "error": type(error).__name__})
        return None
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
    base = identity_secret()
    if not base:
        return _process_key
    return hmac.new(base.encode(), b"segmentation page cursors v1", hashlib.sha256).digest()
