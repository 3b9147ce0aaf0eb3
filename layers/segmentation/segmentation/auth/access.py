"""Who sends a request (the authorizer's logic over the key store and secrets) and key management."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
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
from segmentation.settings import get_settings
from segmentation.storage import api_keys as key_store
from segmentation.storage import secrets, usage_keys
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
        attach_usage_key=_attach_usage_key,
        identity_usage_key=get_settings().identity_usage_key,
    )


def _install_bootstrap_key(key_hash: str) -> ApiKey:
    return key_store.put_key_if_absent(
        key_hash, key_id_for_hash(key_hash), "admin", "first admin key", clock.now()
    )


def _attach_usage_key(key_hash: str, key: ApiKey) -> ApiKey:
    """Give a stored key without one its usage key; of two racing requests, one's is kept."""
    usage = usage_keys.create(key.key_id, key.role)
    if key_store.set_usage_key(key_hash, usage):
        return dataclasses.replace(key, usage_key=usage.value, usage_key_id=usage.id)
    usage_keys.discard(usage.id)
    return key_store.find_by_hash(key_hash) or key


def _put_with_usage_key(key_hash: str, key_id: str, role: str, name: str | None, now: float) -> ApiKey:
    """The usage key first, then the record naming it: a record never names a missing usage key,
    and a usage key left by a failed write is deleted (or, at worst, unused)."""
    usage = usage_keys.create(key_id, role)
    try:
        return key_store.put_key(key_hash, key_id, role, name, now, usage)
    except Exception:
        usage_keys.discard(usage.id)
        raise


def create_key(role: str, name: str | None, now: float) -> tuple[ApiKey, str]:
    """A new key of a role: (its record, the raw key, shown once and stored only as a hash)."""
    raw_key = new_raw_key()
    return _put_with_usage_key(hash_key(raw_key), new_key_id(), role, name, now), raw_key


def install_key(raw_key: str, role: str, name: str | None, *, now: float | None = None) -> ApiKey:
    """Store a key given by configuration (the local stack's, tests'): the same key always gets
    the same id, so installing it again changes nothing."""
    key_hash = hash_key(raw_key)
    existing = key_store.find_by_hash(key_hash)
    if existing and existing.role == role and existing.usage_key and not existing.revoked:
        return existing
    key = _put_with_usage_key(
        key_hash, key_id_for_hash(key_hash), role, name, clock.now() if now is None else now
    )
    if existing and existing.usage_key_id:
        usage_keys.discard(existing.usage_key_id)
    return key


def list_keys(limit: int, cursor: str | None) -> tuple[list[ApiKey], str | None]:
    return key_store.list_keys(limit, cursor)


def revoke_key(key_id: str, now: float) -> None:
    """Revoke first, then delete the usage key (which stops API Gateway's cached answers too);
    a failure between the two leaves a revoked key, and revoking again finishes the job."""
    for usage_key_id in key_store.revoke(key_id, now):
        usage_keys.delete(usage_key_id)


def authenticate_key(raw_key: str | None) -> Principal | None:
    """The caller of a route that checks its key itself (the Segment sources: a key may come in
    the body, which no API Gateway authorizer sees): the same hashed lookup as the authorizer,
    or None (401). A key never seen before gets no usage key here (these routes are not metered
    per key); the stack's first admin key is accepted as the authorizer would store it."""
    if not raw_key:
        return None
    return authenticate(
        authorization=f"Bearer {raw_key}",
        user_hash=None,
        identity_user_id=None,
        find_key=key_store.find_by_hash,
        bootstrap_admin_key=secrets.bootstrap_admin_key,
        install_bootstrap_key=_unstored_bootstrap_key,
        identity_secret=secrets.identity_secret,
        attach_usage_key=lambda _key_hash, key: key,
        identity_usage_key="",
    )


def _unstored_bootstrap_key(key_hash: str) -> ApiKey:
    """The first admin key as the authorizer would store it on its first use: a key not stored
    yet cannot have been revoked (revoking needs it listed, and listing needs it stored)."""
    return ApiKey(key_id_for_hash(key_hash), "admin", "first admin key", clock.now(), revoked=False)
