"""The demo's live auto message: an in-app welcome for Trial users, so deliveries show at once."""

from __future__ import annotations

from typing import Any

from infra.local.seed import SeedClient, seed_step

WELCOME = {
    "name": "Welcome, trial users",
    "type": "auto",
    "channel": "in_app",
    "subject": "Welcome aboard",
    "body": "Hi {{ user.name | default: 'there' }}, your trial has started: upload a few photos to try it.",
}


@seed_step
def seed_trial_welcome(client: SeedClient, now: float) -> None:
    segments: list[dict[str, Any]] = client.request("GET", "/v1/segments")["data"]
    trial = next(s for s in segments if s["name"] == "Trial users")
    message = client.request("POST", "/v1/messages", {**WELCOME, "audience": {"segment_id": trial["id"]}})
    client.request("POST", f"/v1/messages/{message['id']}/live")
