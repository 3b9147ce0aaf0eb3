"""The demo's behaviour: some users uploaded photos in the last days, and the segment "Engaged
uploaders" (uploaded a photo at least 3 times in the last 7 days) shows them."""

from __future__ import annotations

import random

from infra.local.seed import DAY, USER_COUNT, SeedClient, seed_step

ENGAGED_UPLOADERS = {
    "name": "Engaged uploaders",
    "filter": {"field": "event.uploaded_photo.count", "op": "gte", "value": 3, "within_days": 7},
}


@seed_step
def seed_uploads(client: SeedClient, now: float) -> None:
    rng = random.Random(7)
    # Every fifth user uploads: between 1 and 6 photos over the last 10 days.
    uploaders = [f"u-{index:04d}" for index in range(5, USER_COUNT + 1, 5)]
    for number, user_id in enumerate(uploaders):
        for upload in range(rng.randint(1, 6)):
            body = {
                "event_name": "uploaded_photo",
                "created_at": int(now - rng.uniform(0, 10) * DAY),
                "id": f"seed-{user_id}-{upload}",
                "metadata": {"source": rng.choice(["ios", "android", "web"])},
            }
            client.request("POST", f"/v1/users/{user_id}/events", body)
        if number == 0:  # the event name is known now: the segment can name it
            client.request("POST", "/v1/segments", {"target": "users", **ENGAGED_UPLOADERS})
