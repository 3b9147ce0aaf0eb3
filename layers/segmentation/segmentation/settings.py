"""All configuration, read from the environment once per cold start.

A frozen dataclass, not a pydantic model: every function reads its settings on its first
request, and pydantic's import alone is about a third of a boto3 import. Reading a dozen
strings and two bounded integers does not need it (docs/performance.md, cold start levers).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from functools import lru_cache

# name -> (lowest, highest) for the integer settings; a value outside fails the cold start.
_BOUNDS = {
    "inline_build_limit": (0, None),
    "rebuild_workers": (1, 1000),
    "ses_max_send_rate": (0, 100_000),
    "sender_concurrency": (1, 1000),
}


@dataclass(frozen=True)
class Settings:
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
    delivery_dead_letter_queue_url: str = ""
    sender_email: str = "no-reply@example.com"
    # Calendar days of `exactly_days_ago` and `on` are counted in this IANA zone.
    timezone: str = "UTC"
    # Deployed: ARNs of Secrets Manager secrets. Locally: the values themselves may be given.
    identity_secret_arn: str = ""
    identity_secret: str = ""
    admin_key_secret_arn: str = ""
    # Segments whose full build would touch more users than this are built by the fan-out workers.
    inline_build_limit: int = 2000
    rebuild_workers: int = 8
    # Emails a second SES takes from this account; 0: read it from SES (GetAccount, cached).
    ses_max_send_rate: int = 0
    # How many SenderFunction instances run at once (its event source's MaximumConcurrency): each
    # sends at ses_max_send_rate / sender_concurrency.
    sender_concurrency: int = 2

    @classmethod
    def names(cls) -> list[str]:
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, str | int] = {}
        for name in cls.names():
            if name.upper() in env:
                values[name] = _integer(name, env[name.upper()]) if name in _BOUNDS else env[name.upper()]
        return cls(**values)  # type: ignore[arg-type]


def _integer(name: str, text: str) -> int:
    lowest, highest = _BOUNDS[name]
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"setting {name.upper()} must be a whole number; got {text!r}") from None
    if value < lowest or (highest is not None and value > highest):
        span = f"at least {lowest}" if highest is None else f"from {lowest} to {highest}"
        raise ValueError(f"setting {name.upper()} must be {span}; got {value}")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
