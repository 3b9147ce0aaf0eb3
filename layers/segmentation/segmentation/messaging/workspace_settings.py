"""Workspace settings (GET/PUT /v1/settings): the email frequency cap, which an admin sets at run
time, and the time zone, which is set at deploy (the TimeZone parameter) and only shown.

The sender asks for the cap on every email: the stored settings are cached per process for
REVALIDATE_SECONDS, so an email costs no read for them (a PUT in this process applies at once;
in others within that time).
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from segmentation import clock, errors
from segmentation.messaging.frequency_cap import MAX_DAYS, MAX_EMAILS, Cap
from segmentation.settings import get_settings
from segmentation.storage import workspace_settings as store

REVALIDATE_SECONDS = 30.0

_lock = threading.Lock()
_cached: tuple[float, Cap | None] | None = None  # (read at, the cap)


class FrequencyCap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max: Annotated[StrictInt, Field(ge=1, le=MAX_EMAILS, description="Emails at most per user")]
    days: Annotated[StrictInt, Field(ge=1, le=MAX_DAYS, description="In any window of this many days")]


class SettingsUpdate(BaseModel):
    """The body of PUT /v1/settings: the fields sent change, the others stay."""

    model_config = ConfigDict(
        extra="forbid",
        defer_build=True,
        json_schema_extra={"examples": [{"email_frequency_cap": {"max": 3, "days": 7}, "timezone": "UTC"}]},
    )

    email_frequency_cap: FrequencyCap | None = Field(default=None, description="null: no cap")
    timezone: str | None = Field(default=None, description="Set at deploy: only its current value is taken")


def reset_cache() -> None:
    global _cached
    with _lock:
        _cached = None


def email_cap(now: float) -> Cap | None:
    """The cap in force (None: no cap), from this process's cache when fresh enough."""
    global _cached
    with _lock:
        cached = _cached
    if cached is not None and 0 <= now - cached[0] < REVALIDATE_SECONDS:
        return cached[1]
    cap = _cap_of(store.get())
    with _lock:
        _cached = (now, cap)
    return cap


def current() -> dict[str, Any]:
    """The settings as GET /v1/settings shows them (read afresh)."""
    return _json(store.get())


def update(request: SettingsUpdate) -> dict[str, Any]:
    """Apply a PUT: the cap when sent; a time zone other than the deployed one is a 422."""
    sent = request.model_fields_set
    if "timezone" in sent and request.timezone != get_settings().timezone:
        deployed = get_settings().timezone
        message = (
            f"The time zone is set when the stack is deployed (template parameter TimeZone) and is "
            f"{deployed!r}; redeploy with another TimeZone to change it."
        )
        detail = {"path": "timezone", "message": f"must be {deployed!r} (set at deploy)"}
        raise errors.Invalid(message, [detail])
    if "email_frequency_cap" not in sent:
        return current()
    cap = request.email_frequency_cap
    item = store.put_frequency_cap(None if cap is None else cap.model_dump(), clock.now())
    reset_cache()
    return _json(item)


def _cap_of(item: dict[str, Any]) -> Cap | None:
    stored = item.get("email_frequency_cap")
    if not isinstance(stored, dict):
        return None
    return Cap(max=int(stored["max"]), days=int(stored["days"]))


def _json(item: dict[str, Any]) -> dict[str, Any]:
    cap = _cap_of(item)
    return {
        "email_frequency_cap": None if cap is None else {"max": cap.max, "days": cap.days},
        "timezone": get_settings().timezone,
    }
