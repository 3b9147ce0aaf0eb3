"""Who sends a request (the authorizer's logic over the key store and secrets) and key management."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from segmentation import clock
from segmentation.auth.keys import (
    Principal,
    authenticate,
    hash_key,
    identity_route_user,
    key_id_for_hash,
    new_key_id,
    new_raw_key,
)
from segmentation.storage import api_keys as key_store
from segmentation.storage import secrets
from segmentation.storage.api_keys import ApiKey


def authenticate_request(
    method: str, path: str, headers: Mapping[str, str], path_parameters: Mapping[str, str] | None = None
) -> Principal | None:
    """The caller of an API request, or None when it must be refused with 401.

    `headers` must be case-insensitive (API Gateway keeps the client's spelling).
    """
    route_user = identity_route_user(method, path)
    if route_user is not None:
        # API Gateway's pathParameters are decoded; a raw path may still be percent-encoded.
        route_user = (path_parameters or {}).get("user_id") or unquote(route_user)
    return authenticate(
        authorization=headers.get("authorization"),
        user_hash=headers.get("x-user-hash"),
        identity_user_id=route_user,
        find_key=key_store.find_by_hash,
        bootstrap_admin_key=secrets.bootstrap_admin_key,
        install_bootstrap_key=_install_bootstrap_key,
        identity_secret=secrets.identity_secret,
    )


def _install_bootstrap_key(key_hash: str) -> ApiKey:
    return key_store.put_key_if_absent(
        key_hash, key_id_for_hash(key_hash), "admin", "first admin key", clock.now()
    )


def create_key(role: str, name: str | None, now: float) -> tuple[ApiKey, str]:
    """A new key of a role: (its record, the raw key, shown once and stored only as a hash)."""
    raw_key = new_raw_key()
    return key_store.put_key(hash_key(raw_key), new_key_id(), role, name, now), raw_key


def install_key(raw_key: str, role: str, name: str | None, *, now: float | None = None) -> ApiKey:
    """Store a key given by configuration (the local stack's, tests'): the same key always gets
    the same id, so installing it again changes nothing."""
    key_hash = hash_key(raw_key)
    return key_store.put_key(
        key_hash, key_id_for_hash(key_hash), role, name, clock.now() if now is None else now
    )


def list_keys(limit: int, start_key: dict[str, Any] | None) -> tuple[list[ApiKey], dict[str, Any] | None]:
    return key_store.list_keys(limit, start_key)


def revoke_key(key_id: str, now: float) -> None:
    key_store.revoke(key_id, now)
