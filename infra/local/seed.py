"""The demo workspace `make run` loads (unless SEED_DEMO=0), written through the public API routes.

Deterministic: one random.Random(42) and times relative to the stack's now. Steps run in order;
to add one (e.g. a live auto message), decorate a function `(client, now) -> None` with
`@seed_step` in a module `infra/local/seed_<name>.py`: every such module is imported before seeding.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from infra.local.apigw import HttpRequest, HttpResponse

DAY = 86400.0
PLANS = ("free trial", "starter", "pro")
INDUSTRIES = ("retail", "software", "media", "health", "finance", "education")
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Radia", "Linus")
LAST_NAMES = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Perlman",
)
# moto in process does a few hundred writes a second and every user costs a few dozen (its upsert,
# then its membership through the stream), so the default keeps the start short.
USER_COUNT = int(os.environ.get("SEED_USERS", "200"))
COMPANY_COUNT = 20

SEGMENTS: tuple[dict[str, Any], ...] = (
    {
        "name": "Trial users",
        "filter": {
            "and": [
                {"field": "signed_up_at", "op": "less_than_days_ago", "value": 14},
                {"field": "custom_attributes.plan", "op": "eq", "value": "free trial"},
            ]
        },
    },
    {
        "name": "Hot prospects",
        "filter": {
            "and": [
                {"field": "custom_attributes.plan", "op": "eq", "value": "starter"},
                {"field": "custom_attributes.photos_uploaded", "op": "gt", "value": 80},
            ]
        },
    },
    {
        "name": "Loyal customers",
        "filter": {"field": "signed_up_at", "op": "more_than_days_ago", "value": 365},
    },
    {
        "name": "No action taken",
        "filter": {"field": "custom_attributes.downloaded_mobile_app", "op": "is_false"},
    },
    # A user's custom plan is always their first company's plan in this data set.
    {"name": "Pro-plan customers", "filter": {"field": "company.plan", "op": "eq", "value": "pro"}},
)


class Gateway(Protocol):
    def handle(self, request: HttpRequest) -> HttpResponse: ...


class SeedError(RuntimeError):
    pass


@dataclass
class SeedClient:
    """Calls the API routes in process, with the admin key, and fails loudly on any error. Like
    any app, it waits out the admin key's rate limit (429, Retry-After) and sends again."""

    gateway: Gateway
    api_key: str

    def request(self, method: str, path: str, body: Any = None) -> Any:
        headers = [("Authorization", f"Bearer {self.api_key}"), ("Content-Type", "application/json")]
        raw = b"" if body is None else json.dumps(body).encode()
        request = HttpRequest(method=method, path=path, headers=headers, body=raw)
        response = self.gateway.handle(request)
        while response.status == 429 and _rate_limited(response):
            time.sleep(float(dict(response.headers).get("Retry-After", "1")))
            response = self.gateway.handle(request)
        if response.status >= 400:
            raise SeedError(f"{method} {path} -> {response.status}: {response.body[:500]!r}")
        return response.json()


def _rate_limited(response: HttpResponse) -> bool:
    body = response.json()
    return isinstance(body, dict) and (body.get("error") or {}).get("code") == "rate_limited"


SeedStep = Callable[[SeedClient, float], None]
_steps: list[SeedStep] = []


def seed_step(step: SeedStep) -> SeedStep:
    _steps.append(step)
    return step


def companies(rng: random.Random, now: float) -> list[dict[str, Any]]:
    out = []
    for index in range(1, COMPANY_COUNT + 1):
        plan = rng.choices(PLANS, weights=(3, 4, 3))[0]
        out.append(
            {
                "company_id": f"co-{index:02d}",
                "name": f"Company {index:02d}",
                "plan": plan,
                "monthly_spend": {"free trial": 0, "starter": 49, "pro": 499}[plan] + rng.randrange(0, 100),
                "size": rng.randrange(2, 500),
                "industry": rng.choice(INDUSTRIES),
                "website": f"https://co-{index:02d}.example",
                "remote_created_at": int(now - rng.uniform(30, 900) * DAY),
            }
        )
    return out


def users(rng: random.Random, now: float, company_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for index in range(1, USER_COUNT + 1):
        # Most signed up over the last two years; one in twenty within the last day.
        age_days = rng.uniform(0, 1) if index % 20 == 0 else rng.uniform(0, 730)
        signed_up_at = now - age_days * DAY
        company = rng.choice(company_list) if rng.random() < 0.8 else None
        seen = rng.random() < 0.9
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        out.append(
            {
                "user_id": f"u-{index:04d}",
                "email": None if index % 25 == 0 else f"{first.lower()}.{last.lower()}{index}@example.com",
                "name": f"{first} {last}",
                "signed_up_at": int(signed_up_at),
                "last_seen_at": int(rng.uniform(signed_up_at, now)) if seen else None,
                "unsubscribed_from_emails": rng.random() < 0.05,
                "company_ids": [company["company_id"]] if company else [],
                "custom_attributes": {
                    "plan": company["plan"] if company else rng.choice(PLANS),
                    "photos_uploaded": rng.randrange(0, 150),
                    "downloaded_mobile_app": rng.random() < 0.6,
                },
            }
        )
    return out


@seed_step
def seed_companies_users_and_segments(client: SeedClient, now: float) -> None:
    rng = random.Random(42)
    company_list = companies(rng, now)
    for company in company_list:
        client.request("POST", "/v1/companies", company)
    first, *rest = users(rng, now, company_list)
    # One user first registers the custom attributes' types, which the segments' filters need;
    # the segments come next, so each later user is evaluated once by the stream, instead of
    # every segment build re-scanning (and re-writing) users already in place.
    client.request("POST", "/v1/users", _present(first))
    for segment in SEGMENTS:
        client.request("POST", "/v1/segments", {"target": "users", **segment})
    for user in rest:
        client.request("POST", "/v1/users", _present(user))


def _present(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if v is not None}


def _load_extensions() -> None:
    for module in sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])):
        if module.startswith("seed_"):
            importlib.import_module(f"infra.local.{module}")


def run(client: SeedClient, now: float) -> None:
    _load_extensions()
    for step in _steps:
        step(client, now)
