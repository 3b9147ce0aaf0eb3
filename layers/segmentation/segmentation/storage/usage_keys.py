"""API Gateway's API keys that meter ours: the per-key rate limits (docs/api-notes.md, "Rate limits").

Each API key of ours has its own API Gateway API key, its usage key, in its role's usage plan;
API Gateway throttles each usage key with a token bucket of its own at the plan's limits. With
`ApiKeySourceType: AUTHORIZER` API Gateway never reads an API key from a request: the authorizer
names the caller's usage key (`usageIdentifierKey`). Its value is random, never the caller's
secret key, and is stored with the key record (storage.api_keys), so the authorizer returns it
without another call.

The plans are found by name (`<USAGE_PLAN_PREFIX><role>`) at each creation, which is rare (an
admin's POST /v1/api_keys): the template cannot give the functions their ids (a plan needs the
API's stage, which needs the functions).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from segmentation import errors
from segmentation.settings import get_settings
from segmentation.storage import aws, dynamo

logger = logging.getLogger(__name__)

VALUE_PREFIX = "usage_"
# API Gateway's answers that mean "try again later" (its control plane allows a few calls a second).
_TRANSIENT = frozenset({"TooManyRequestsException", "LimitExceededException", "ServiceUnavailableException"})


@dataclass(frozen=True)
class UsageKey:
    id: str  # API Gateway's id of the API key: what deleting it takes
    value: str  # what the authorizer returns as usageIdentifierKey


def new_value() -> str:
    return VALUE_PREFIX + secrets.token_urlsafe(24)


def create(key_id: str, role: str) -> UsageKey:
    """A new usage key for our key `key_id`, in the usage plan of `role`."""
    plan_id = usage_plan_id(role)
    apigateway = aws.client("apigateway")
    value = new_value()
    created = _call(
        apigateway.create_api_key,
        name=key_id,
        description=f"Meters the {role} API key {key_id}; never sent by clients.",
        enabled=True,
        value=value,
    )
    usage = UsageKey(id=str(created["id"]), value=value)
    try:
        _call(apigateway.create_usage_plan_key, usagePlanId=plan_id, keyId=usage.id, keyType="API_KEY")
    except Exception:
        discard(usage.id)
        raise
    return usage


def delete(usage_key_id: str) -> None:
    """Delete a usage key (API Gateway takes it out of its plan too); one already gone is fine."""
    try:
        _call(aws.client("apigateway").delete_api_key, apiKey=usage_key_id)
    except ClientError as error:
        if dynamo.error_code(error) != "NotFoundException":
            raise


def discard(usage_key_id: str) -> None:
    """Delete a usage key nothing refers to (a step after it failed, or a lost race), or log it."""
    try:
        delete(usage_key_id)
    except Exception:
        # Harmless when it stays: no key record names it, so the authorizer never returns it.
        logger.warning("an unused usage key could not be deleted", extra={"usage_key_id": usage_key_id})


def usage_plan_id(role: str) -> str:
    name = get_settings().usage_plan_prefix + role
    pages = aws.client("apigateway").get_paginator("get_usage_plans").paginate()
    found = [
        plan["id"] for page in _pages(pages) for plan in page.get("items", []) if plan.get("name") == name
    ]
    if len(found) != 1:
        raise RuntimeError(f"expected one API Gateway usage plan named {name!r}, found {len(found)}")
    return str(found[0])


def _pages(pages: Any) -> list[dict[str, Any]]:
    return _call(lambda: list(pages))


def _call(operation: Callable[..., Any], **arguments: Any) -> Any:
    """The operation's answer; API Gateway's throttling becomes errors.Retryable (a 429)."""
    try:
        return operation(**arguments)
    except ClientError as error:
        code = dynamo.error_code(error)
        if code in _TRANSIENT:
            raise errors.Retryable(f"API Gateway: {code}") from error
        raise
