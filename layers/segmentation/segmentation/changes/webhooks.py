"""Webhook endpoints (admin): create, list, read, enable, rotate the secret, delete, attempts."""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from segmentation import definitions, errors
from segmentation.changes import addresses, signing
from segmentation.settings import get_settings
from segmentation.storage import webhooks as store
from segmentation.storage.webhooks import Webhook
from segmentation.values import epoch_millis, format_timestamp

MAX_WEBHOOKS = 50
_ID_ALPHABET = string.ascii_letters + string.digits


def _new_id() -> str:
    return "wh_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def webhook_json(hook: Webhook, *, with_secret: bool = False) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "id": hook.id,
        "url": hook.url,
        "segment_ids": None if hook.segment_ids is None else list(hook.segment_ids),
        "description": hook.description,
        "state": hook.state,
        "disabled_reason": hook.disabled_reason,
        "created_at": format_timestamp(hook.created_at),
        "updated_at": format_timestamp(hook.updated_at),
    }
    if with_secret:
        shown["secret"] = hook.secret
    return shown


def attempt_json(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{item['delivery_id']}_{int(item['attempt'])}",
        "webhook_id_header": str(item["delivery_id"]),
        "at": format_timestamp(Decimal(item["at"])),
        "status_code": None if item.get("status_code") is None else int(item["status_code"]),
        "duration_ms": int(item["duration_ms"]),
        "changes": int(item["changes"]),
        "outcome": str(item["outcome"]),
        "error": item.get("error"),
    }


def _check_segments(segment_ids: Sequence[str]) -> None:
    known = definitions.segment_defs(check_now=True)
    details = [
        {"path": f"segment_ids[{index}]", "message": f"no segment has the id {segment_id!r}"}
        for index, segment_id in enumerate(segment_ids)
        if segment_id not in known
    ]
    if details:
        raise errors.Invalid("segment_ids names segments that do not exist.", details)


def create(url: str, segment_ids: Sequence[str] | None, description: str | None, now: float) -> Webhook:
    """A new enabled endpoint with a new secret (shown once, by the caller)."""
    addresses.check_for_saving(url, get_settings().webhook_allow_local)
    if segment_ids is not None:
        _check_segments(segment_ids)
    at = epoch_millis(now)
    hook = Webhook(
        id=_new_id(),
        url=url,
        segment_ids=None if segment_ids is None else tuple(dict.fromkeys(segment_ids)),
        description=description,
        state="enabled",
        disabled_reason=None,
        secret=signing.new_secret(),
        created_at=at,
        updated_at=at,
        failing_since=None,
    )
    store.create(hook, MAX_WEBHOOKS)
    return hook


def require(webhook_id: str) -> Webhook:
    hook = store.get(webhook_id)
    if hook is None:
        raise errors.NotFound(f"No webhook has the id {webhook_id!r}.", code="webhook_not_found")
    return hook


def page(limit: int, cursor: str | None) -> dict[str, Any]:
    hooks, next_cursor = store.page(limit, cursor)
    return {"data": [webhook_json(h) for h in hooks], "next_cursor": next_cursor}


def delete(webhook_id: str) -> None:
    if not store.delete(webhook_id):
        raise errors.NotFound(f"No webhook has the id {webhook_id!r}.", code="webhook_not_found")


def rotate_secret(webhook_id: str, now: float) -> Webhook:
    """A new secret, at once: the old one signs nothing more."""
    return store.set_secret(webhook_id, signing.new_secret(), epoch_millis(now))


def set_state(webhook_id: str, state: str, now: float) -> Webhook:
    """Enable (clearing why it was disabled and its failures) or disable an endpoint by hand."""
    if state == "enabled":
        return store.enable(webhook_id, epoch_millis(now))
    return store.disable(webhook_id, "Disabled by an admin.", epoch_millis(now))


def attempts(webhook_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
    """An endpoint's delivery attempts, newest first."""
    require(webhook_id)
    items, next_cursor = store.attempts_page(webhook_id, limit, cursor)
    return {"data": [attempt_json(i) for i in items], "next_cursor": next_cursor}
