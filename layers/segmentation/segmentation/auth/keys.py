"""API keys and caller identities: hashing, key material and who a request is (no AWS here)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from segmentation.storage.api_keys import ApiKey

Role = Literal["ingest", "read", "write", "admin", "identity"]
KEY_ROLES: tuple[str, ...] = ("ingest", "read", "write", "admin")
KEY_PREFIX = "sk_"
# What a key or an identity hash may look like: anything else is refused before it is used.
KEY_SHAPE = re.compile(r"[\x21-\x7e]{8,512}")  # printable ASCII, no spaces
HASH_SHAPE = re.compile(r"[0-9a-f]{64}")  # hex HMAC-SHA256 (compared lower-cased)

# The only routes an identity hash opens, each for the user_id in its own path.
_IDENTITY_ROUTES = (
    ("POST", re.compile(r"/v1/users/([^/]+)/logins/?")),
    ("POST", re.compile(r"/v1/users/([^/]+)/events/?")),
    ("GET", re.compile(r"/v1/users/([^/]+)/messages/?")),
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's role, or `identity` for one user (user_id set).

    `usage_key` names the API Gateway usage key that meters the caller (its rate limit): the
    key's own, or the one all identity-verified callers share.
    """

    role: str
    key_id: str = ""
    user_id: str = ""
    usage_key: str = ""
    name: str = ""


def new_raw_key() -> str:
    """A fresh secret key: "sk_" and 43 URL-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_urlsafe(12)


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def key_id_for_hash(key_hash: str) -> str:
    """A stable id for keys installed from configuration (the same key always gets the same id)."""
    return "key_" + hashlib.sha256(("id:" + key_hash).encode()).hexdigest()[:16]


def identity_hash(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def identity_route_user(method: str, path: str) -> str | None:
    """The user_id of an identity route (POST …/logins and …/events, GET …/messages), else None."""
    for route_method, pattern in _IDENTITY_ROUTES:
        match = pattern.fullmatch(path)
        if method.upper() == route_method and match:
            return match.group(1)
    return None


def identity_route_method(path: str) -> str | None:
    """The method of the identity route at `path` (POST for …/events, whose GET needs a key), else None."""
    return next((method for method, pattern in _IDENTITY_ROUTES if pattern.fullmatch(path)), None)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def authenticate(
    *,
    authorization: str | None,
    user_hash: str | None,
    identity_user_id: str | None,
    find_key: Callable[[str], ApiKey | None],
    bootstrap_admin_key: Callable[[], str | None],
    install_bootstrap_key: Callable[[str], ApiKey],
    identity_secret: Callable[[], str | None],
    attach_usage_key: Callable[[str, ApiKey], ApiKey],
    identity_usage_key: str,
) -> Principal | None:
    """The caller of a request, or None (→ 401). Never raises on what a client sends: a key or a
    hash that is not well formed is refused before anything is computed with it.

    A bearer key wins over an identity hash: a bad key is refused even with a good hash. The
    hash counts only on an identity route (identity_user_id given) and for that path's user.
    A valid key without a usage key (the first admin key on its first use, a key stored before
    usage keys existed) gets one through `attach_usage_key(key_hash, key)`, once.
    """
    token = bearer_token(authorization)
    if token is not None:
        if not KEY_SHAPE.fullmatch(token):
            return None
        return _key_principal(token, find_key, bootstrap_admin_key, install_bootstrap_key, attach_usage_key)
    if authorization:
        return None
    if not user_hash or not identity_user_id:
        return None
    given = user_hash.strip().lower()
    if not HASH_SHAPE.fullmatch(given) or not _encodable(identity_user_id):
        return None
    secret = identity_secret()
    if secret and hmac.compare_digest(identity_hash(secret, identity_user_id), given):
        return Principal(role="identity", user_id=identity_user_id, usage_key=identity_usage_key)
    return None


def _key_principal(
    token: str,
    find_key: Callable[[str], ApiKey | None],
    bootstrap_admin_key: Callable[[], str | None],
    install_bootstrap_key: Callable[[str], ApiKey],
    attach_usage_key: Callable[[str, ApiKey], ApiKey],
) -> Principal | None:
    token_hash = hash_key(token)
    key = find_key(token_hash)
    if key is None:
        # The stack's first admin key (a secret made at deploy time) becomes an ordinary stored
        # key the first time it is used: listed, and revocable like any other.
        bootstrap = bootstrap_admin_key()
        if not bootstrap or not hmac.compare_digest(hash_key(bootstrap), token_hash):
            return None
        key = install_bootstrap_key(token_hash)
    if key.revoked or key.role not in KEY_ROLES:
        return None
    if not key.usage_key:
        key = attach_usage_key(token_hash, key)
    return Principal(role=key.role, key_id=key.key_id, usage_key=key.usage_key or "", name=key.name or "")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
