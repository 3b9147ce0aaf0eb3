"""Deterministic benchmark data: users and companies as DynamoDB returns them, and segment filters.

Records look exactly like boto3's answers: numbers are `Decimal`, timestamps epoch seconds,
custom attributes a map, `segments` a string set. Strings come in mixed case on purpose, since
string ops are case-insensitive on both sides of the comparison.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from segmentation.engine import SegmentDef

DAY = 86400.0
PLANS = ("Free Trial", "starter", "PRO", "Starter", "free trial")
INDUSTRIES = ("retail", "Software", "media", "health")
BROWSERS = ("Chrome", "firefox", "Safari", "edge")
DOMAINS = ("gmail.com", "Example.com", "corp.example", "GMAIL.COM")
FIRST = ("Ada", "Grace", "alan", "Edsger", "Barbara", "Donald", "margaret", "Ken", "Radia", "Linus")
LAST = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Perlman")


def _epoch(value: float) -> Decimal:
    return Decimal(str(round(value, 3)))


def companies(count: int, now: float, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for index in range(count):
        out.append(
            {
                "company_id": f"co-{index:04d}",
                "name": f"Company {index}",
                "plan": rng.choice(PLANS),
                "monthly_spend": Decimal(rng.randrange(0, 2000)),
                "size": Decimal(rng.randrange(1, 500)),
                "industry": rng.choice(INDUSTRIES),
                "remote_created_at": _epoch(now - rng.uniform(30, 900) * DAY),
                "rev": Decimal(1),
            }
        )
    return out


def user(index: int, rng: random.Random, now: float, company_list: list[dict[str, Any]]) -> dict[str, Any]:
    """One user item. Ages and activity spread so every segment has members and non-members."""
    age_days = rng.uniform(0, 2) if index % 15 == 0 else rng.uniform(0, 730)
    signed_up_at = now - age_days * DAY
    first, last = rng.choice(FIRST), rng.choice(LAST)
    item: dict[str, Any] = {
        "user_id": f"u-{index:07d}",
        "name": f"{first} {last}",
        "signed_up_at": _epoch(signed_up_at),
        "session_count": Decimal(rng.randrange(0, 120)),
        "unsubscribed_from_emails": rng.random() < 0.05,
        "company_ids": [],
        "custom_attributes": {
            "plan": rng.choice(PLANS),
            "photos_uploaded": Decimal(rng.randrange(0, 150)),
            "downloaded_mobile_app": rng.random() < 0.6,
            "browser": rng.choice(BROWSERS),
            "trial_ends_at": _epoch(now + rng.uniform(-10, 20) * DAY),
        },
        "segments": {"active"},
        "rev": Decimal(rng.randrange(1, 40)),
        "created_at": _epoch(signed_up_at),
        "updated_at": _epoch(now - rng.uniform(0, 30) * DAY),
    }
    if index % 12:
        item["email"] = f"{first.lower()}.{last.lower()}{index}@{rng.choice(DOMAINS)}"
    if rng.random() < 0.9:
        item["last_seen_at"] = _epoch(rng.uniform(signed_up_at, now))
    if rng.random() < 0.3:
        item["phone"] = f"+1555{index:07d}"
    if rng.random() < 0.2:  # an attribute only some users have: unknown for the rest
        item["custom_attributes"]["score"] = Decimal(rng.randrange(0, 100))
    if company_list and rng.random() < 0.8:
        company = rng.choice(company_list)
        item["company_ids"] = [company["company_id"]]
        item["companies"] = [company]  # attached by upkeep when segments read company.*
    return item


def users(count: int, now: float, *, seed: int = 42, company_count: int = 50) -> list[dict[str, Any]]:
    return list(iter_users(count, now, seed=seed, company_count=company_count))


def iter_users(
    count: int, now: float, *, seed: int = 42, company_count: int = 50
) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    company_list = companies(company_count, now)
    for index in range(count):
        yield user(index, rng, now, company_list)


def _c(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"field": field, "op": op} if value is None else {"field": field, "op": op, "value": value}


# The seed's segments (infra/local/seed.py) and more, covering every kind of field and op.
EVAL_SEGMENTS: tuple[SegmentDef, ...] = tuple(
    SegmentDef(sid, sid, "users", flt)
    for sid, flt in (
        (
            "trial_users",
            {
                "and": [
                    _c("signed_up_at", "less_than_days_ago", 14),
                    _c("custom_attributes.plan", "eq", "free trial"),
                ]
            },
        ),
        (
            "hot_prospects",
            {
                "and": [
                    _c("custom_attributes.plan", "eq", "starter"),
                    _c("custom_attributes.photos_uploaded", "gt", 80),
                ]
            },
        ),
        ("loyal_customers", _c("signed_up_at", "more_than_days_ago", 365)),
        ("no_action_taken", _c("custom_attributes.downloaded_mobile_app", "is_false")),
        ("pro_plan_customers", _c("company.plan", "eq", "pro")),
        (
            "power_users",
            {"and": [_c("session_count", "gte", 50), _c("last_seen_at", "less_than_days_ago", 7)]},
        ),
        ("gmail_users", _c("email", "ends_with", "@gmail.com")),
        ("trial_ending_soon", _c("custom_attributes.trial_ends_at", "less_than_days_from_now", 3)),
        ("not_emailable", {"or": [_c("email", "not_exists"), _c("unsubscribed_from_emails", "is_true")]}),
        (
            "mobile_payers",
            {
                "and": [
                    _c("custom_attributes.plan", "in", ["starter", "pro"]),
                    _c("custom_attributes.downloaded_mobile_app", "is_true"),
                    {"not": _c("custom_attributes.photos_uploaded", "lt", 10)},
                ]
            },
        ),
        (
            "hot_and_active",
            {"and": [_c("segment", "in_segment", "hot_prospects"), _c("segment", "in_segment", "active")]},
        ),
        (
            "browsers_not_chrome_or_unscored",
            {
                "or": [
                    _c("custom_attributes.browser", "ne", "chrome"),
                    _c("custom_attributes.score", "not_exists"),
                ]
            },
        ),
        ("named_ada", _c("name", "contains", "ada")),
        ("signed_up_yesterday", _c("signed_up_at", "exactly_days_ago", 1)),
    )
)

# Condition templates the generated segments of the scale runs draw from.
_TEMPLATES: tuple[Any, ...] = (
    lambda r: _c("custom_attributes.plan", "eq", r.choice(PLANS).lower()),
    lambda r: _c("custom_attributes.photos_uploaded", r.choice(("gt", "lt", "gte")), r.randrange(0, 150)),
    lambda r: _c("signed_up_at", r.choice(("less_than_days_ago", "more_than_days_ago")), r.randrange(1, 400)),
    lambda r: _c("last_seen_at", "less_than_days_ago", r.randrange(1, 60)),
    lambda r: _c("session_count", r.choice(("gte", "lt")), r.randrange(0, 120)),
    lambda r: _c("custom_attributes.downloaded_mobile_app", r.choice(("is_true", "is_false"))),
    lambda r: _c("email", r.choice(("ends_with", "contains")), r.choice(DOMAINS).lower()),
    lambda r: _c("custom_attributes.browser", r.choice(("eq", "ne")), r.choice(BROWSERS).lower()),
    lambda r: _c("custom_attributes.trial_ends_at", "less_than_days_from_now", r.randrange(1, 10)),
    lambda r: _c("custom_attributes.score", r.choice(("exists", "not_exists"))),
)


def generated_segments(count: int, seed: int = 3) -> list[SegmentDef]:
    """`count` user segments (beyond the predefined three) of 1-3 conditions joined by and/or."""
    rng = random.Random(seed)
    out = []
    for index in range(count):
        parts = [rng.choice(_TEMPLATES)(rng) for _ in range(rng.randrange(1, 4))]
        flt = parts[0] if len(parts) == 1 else {rng.choice(("and", "or")): parts}
        out.append(SegmentDef(f"gen_{index:04d}", f"Generated {index}", "users", flt))
    return out
