"""All configuration, read from the environment once per cold start."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    users_table: str = "Users"
    companies_table: str = "Companies"
    segments_table: str = "Segments"
    memberships_table: str = "Memberships"
    attributes_table: str = "DataAttributes"
    api_keys_table: str = "ApiKeys"
    messages_table: str = "Messages"
    deliveries_table: str = "Deliveries"
    inbox_table: str = "Inbox"
    event_ids_table: str = "EventIds"
    rebuild_queue_url: str = ""
    delivery_queue_url: str = ""
    fanout_queue_url: str = ""
    sender_email: str = "no-reply@example.com"
    # Calendar days of `exactly_days_ago` and `on` are counted in this IANA zone.
    timezone: str = "UTC"
    # Deployed: ARNs of Secrets Manager secrets. Locally: the values themselves may be given.
    identity_secret_arn: str = ""
    identity_secret: str = ""
    admin_key_secret_arn: str = ""
    # Segments whose full build would touch more users than this are built by the fan-out workers.
    inline_build_limit: int = Field(default=2000, ge=0)
    rebuild_workers: int = Field(default=8, ge=1, le=1000)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
