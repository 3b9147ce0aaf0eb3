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
BOOTSTRAP_ADMIN_KEY_ID = "key_bootstrap_admin"

# The only two routes an identity hash opens, each for the user_id in its own path.
_IDENTITY_ROUTES = (
    ("POST", re.compile(r"^/v1/users/([^/]+)/logins/?$")),
    ("GET", re.compile(r"^/v1/users/([^/]+)/messages/?$")),
)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key's role, or `identity` for one user (user_id set)."""

    role: str
    key_id: str = ""
    user_id: str = ""


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
    """The user_id of an identity route (POST …/logins, GET …/messages), else None."""
    for route_method, pattern in _IDENTITY_ROUTES:
        match = pattern.match(path)
        if method.upper() == route_method and match:
            return match.group(1)
    return None


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
    identity_secret: Callable[[], str | None],
) -> Principal | None:
    """The caller of a request, or None (→ 401).

    A bearer key wins over an identity hash: a bad key is refused even with a good hash. The
    hash counts only on an identity route (identity_user_id given) and for that path's user.
    """
    token = bearer_token(authorization)
    if token is not None:
        return _key_principal(token, find_key, bootstrap_admin_key)
    if authorization:
        return None
    if user_hash and identity_user_id:
        secret = identity_secret()
        if secret and hmac.compare_digest(identity_hash(secret, identity_user_id), user_hash.strip().lower()):
            return Principal(role="identity", user_id=identity_user_id)
    return None


def _key_principal(
    token: str, find_key: Callable[[str], ApiKey | None], bootstrap_admin_key: Callable[[], str | None]
) -> Principal | None:
    token_hash = hash_key(token)
    bootstrap = bootstrap_admin_key()
    if bootstrap and hmac.compare_digest(hash_key(bootstrap), token_hash):
        return Principal(role="admin", key_id=BOOTSTRAP_ADMIN_KEY_ID)
    key = find_key(token_hash)
    if key is None or key.revoked or key.role not in KEY_ROLES:
        return None
    return Principal(role=key.role, key_id=key.key_id)
