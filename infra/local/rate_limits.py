"""The local API Gateway's per-key rate limits: usage keys, usage plans and token buckets.

What API Gateway does for a method that requires an API key: the caller's usage key (named by
the authorizer's `usageIdentifierKey` when the API's key source is AUTHORIZER, else the
`X-API-Key` header) must be an enabled API key in a usage plan, or the answer is the
INVALID_API_KEY gateway response; then the key's own token bucket, sized by its plan's throttle
(`burstLimit` tokens, refilled at `rateLimit` a second), gives one token per request, or the
answer is THROTTLED. Keys and plans come from moto (the template's plans with its resolved
parameters, and the usage keys storage.usage_keys made); a key's plan is looked up once, and
the key itself on every request (one call), so a revoked key's deleted usage key is refused at
once. Buckets read the stack's clock (`segmentation.clock`), so a test moves time instead of
sleeping. With KEY_RATE_LIMITS=off the keys are still checked and no bucket is kept.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from segmentation import clock
from segmentation.storage import aws

from infra.local.lambdas import invoke_lock

VARIABLE = "KEY_RATE_LIMITS"


def enforced_from_environment(environ: dict[str, str]) -> bool:
    """KEY_RATE_LIMITS: `on` (the default) or `off`; anything else stops the stack at start."""
    value = environ.get(VARIABLE, "on").strip().lower() or "on"
    if value not in ("on", "off"):
        raise ValueError(f"{VARIABLE} must be 'on' or 'off'; got {environ[VARIABLE]!r}")
    return value == "on"


@dataclass
class TokenBucket:
    rate: float  # tokens added a second
    burst: int  # the most it holds
    tokens: float
    updated_at: float

    def take(self, now: float) -> float:
        """Take one token: 0.0 when there was one, else the seconds until there will be."""
        self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.updated_at) * self.rate)
        self.updated_at = now  # a clock moved back refills nothing, and counts on from there
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


@dataclass(frozen=True)
class Verdict:
    outcome: str  # "allowed", "invalid_key" or "throttled"
    api_key_id: str = ""
    retry_after: float = 0.0  # seconds, when throttled


class KeyRateLimits:
    def __init__(self, *, enforce: bool = True) -> None:
        self.enforce = enforce
        self._buckets: dict[str, TokenBucket] = {}
        self._plans: dict[str, tuple[str, dict[str, Any]]] = {}  # value -> (API key id, throttle)
        self._lock = threading.Lock()

    def check(self, usage_key: str | None) -> Verdict:
        if not usage_key:
            return Verdict("invalid_key")
        with invoke_lock:  # moto in process is not thread-safe
            found = self._plans.get(usage_key)
            if found is None or not _enabled(found[0]):
                found = _key_and_throttle(usage_key)
            if found is None:
                self._plans.pop(usage_key, None)
                return Verdict("invalid_key")
            self._plans[usage_key] = found
        api_key_id, throttle = found
        if not self.enforce or not throttle.get("rateLimit"):
            return Verdict("allowed", api_key_id)
        now = clock.now()
        with self._lock:
            bucket = self._buckets.get(api_key_id)
            if bucket is None:
                burst = int(throttle.get("burstLimit") or 0)
                bucket = TokenBucket(float(throttle["rateLimit"]), burst, float(burst), now)
                self._buckets[api_key_id] = bucket
            wait = bucket.take(now)
        return Verdict("throttled", api_key_id, wait) if wait else Verdict("allowed", api_key_id)


class MethodThrottles:
    """The stage's per-method throttles (MethodSettings with a ResourcePath): one token bucket per
    method, every caller together, as API Gateway applies them to a route that no usage key meters
    (the Segment routes). `throttles`: (path, METHOD) -> (rate, burst); KEY_RATE_LIMITS=off turns
    them off too (scripts loading data)."""

    def __init__(self, throttles: dict[tuple[str, str], tuple[float, int]], *, enforce: bool = True) -> None:
        self.throttles = throttles
        self.enforce = enforce
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def check(self, path: str, method: str) -> Verdict:
        key = (path, method.upper())
        throttle = self.throttles.get(key) or self.throttles.get((path, "*"))
        if throttle is None or not self.enforce:
            return Verdict("allowed")
        rate, burst = throttle
        now = clock.now()
        with self._lock:
            bucket = self._buckets.setdefault(key, TokenBucket(rate, burst, float(burst), now))
            wait = bucket.take(now)
        return Verdict("throttled", retry_after=wait) if wait else Verdict("allowed")


def _enabled(api_key_id: str) -> bool:
    try:
        return bool(aws.client("apigateway").get_api_key(apiKey=api_key_id).get("enabled"))
    except ClientError:
        return False  # deleted


def _key_and_throttle(value: str) -> tuple[str, dict[str, Any]] | None:
    """(API key id, its usage plan's throttle) of the enabled API key with this value, or None
    when there is none or it is in no usage plan."""
    apigateway = aws.client("apigateway")
    keys = [
        key
        for page in apigateway.get_paginator("get_api_keys").paginate(includeValues=True)
        for key in page.get("items", [])
        if key.get("value") == value and key.get("enabled")
    ]
    if not keys:
        return None
    plans = apigateway.get_usage_plans(keyId=keys[0]["id"]).get("items", [])
    if not plans:
        return None
    return str(keys[0]["id"]), dict(plans[0].get("throttle") or {})
