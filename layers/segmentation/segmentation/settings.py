"""All configuration, read from the environment once per cold start.

A frozen dataclass, not a pydantic model: every function reads its settings on its first
request, and pydantic's import alone is about a third of a boto3 import. Reading a dozen
strings, a few bounded integers and a list of origins does not need it (docs/performance.md,
cold start levers).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from functools import lru_cache

# name -> (lowest, highest) for the integer settings; a value outside fails the cold start.
_BOUNDS = {
    "inline_build_limit": (0, None),
    "rebuild_workers": (1, 1000),
    "ses_max_send_rate": (0, 100_000),
    "sender_concurrency": (1, 1000),
}
# What a browser sends as `Origin`: a scheme and a host (and port), nothing after; never `*`.
_ORIGIN = re.compile(r"https?://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?")


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
    count_cache_table: str = "CountCache"
    workspace_settings_table: str = "WorkspaceSettings"
    # Membership changes (kept 90 days), webhooks with their deliveries, and the bus changes go to.
    changes_table: str = "Changes"
    webhooks_table: str = "Webhooks"
    webhook_queue_url: str = ""
    changes_event_bus: str = ""
    tags_table: str = "Tags"
    jobs_table: str = "Jobs"
    # The bucket of CSV files: imports' uploads (uploads/) and exports (exports/).
    files_bucket: str = ""
    # Where presigned URLs of that bucket point: empty, S3 itself; locally the stack's own
    # /_local/s3 routes, which serve them from moto (infra/local/files.py).
    files_endpoint_url: str = ""
    import_queue_url: str = ""
    export_queue_url: str = ""
    rebuild_queue_url: str = ""
    delivery_queue_url: str = ""
    fanout_queue_url: str = ""
    delivery_dead_letter_queue_url: str = ""
    sender_email: str = "no-reply@example.com"
    # The SES configuration set every email is sent through (its events come back through
    # EventBridge: bounces, complaints, deliveries); empty: none.
    ses_configuration_set: str = ""
    # Calendar days of `exactly_days_ago` and `on` are counted in this IANA zone.
    timezone: str = "UTC"
    # Deployed: ARNs of Secrets Manager secrets. Locally: the values themselves may be given.
    identity_secret_arn: str = ""
    identity_secret: str = ""
    admin_key_secret_arn: str = ""
    # Per-key rate limits: the usage plans are named <prefix><role>; identity-verified callers
    # share one usage key, this value (storage/usage_keys.py).
    usage_plan_prefix: str = ""
    identity_usage_key: str = ""
    # Segments whose full build would touch more users than this are built by the fan-out workers.
    inline_build_limit: int = 2000
    rebuild_workers: int = 8
    # Emails a second SES takes from this account; 0: read it from SES (GetAccount, cached).
    ses_max_send_rate: int = 0
    # How many SenderFunction instances run at once (its event source's MaximumConcurrency): each
    # sends at ses_max_send_rate / sender_concurrency.
    sender_concurrency: int = 2
    # Web origins whose browsers may call the identity routes (CORS); from a comma-separated list.
    allowed_origins: tuple[str, ...] = ()
    # Where one-click unsubscribe links point: `<this>/u/<token>` (the API's stage URL, or the
    # custom domain of the UnsubscribeBaseUrl parameter). Empty where no function needs it.
    unsubscribe_base_url: str = ""
    # Webhook URLs may also be http://127.0.0.1 and http://localhost (the local stack; never deployed).
    webhook_allow_local: bool = False

    @classmethod
    def names(cls) -> list[str]:
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, str | int | bool | tuple[str, ...]] = {}
        for name in cls.names():
            if name.upper() not in env:
                continue
            text = env[name.upper()]
            if name in _BOUNDS:
                values[name] = _integer(name, text)
            elif name == "allowed_origins":
                values[name] = _origins(name, text)
            elif name in _FLAGS:
                values[name] = _flag(name, text)
            else:
                values[name] = text
        return cls(**values)  # type: ignore[arg-type]


_FLAGS = {"webhook_allow_local"}


def _flag(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false", "1", "0", ""):
        raise ValueError(f"setting {name.upper()} must be true or false; got {text!r}")
    return value in ("true", "1")


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


def _origins(name: str, text: str) -> tuple[str, ...]:
    """Comma-separated origins, lower-cased as browsers send them; a trailing slash is dropped."""
    origins = []
    for item in text.split(","):
        origin = item.strip().lower().removesuffix("/")
        if not origin:
            continue
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"setting {name.upper()} must list origins such as https://app.example.com, "
                f"comma-separated; got {item.strip()!r}"
            )
        origins.append(origin)
    return tuple(origins)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
