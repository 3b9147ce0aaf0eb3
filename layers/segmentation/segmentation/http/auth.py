"""Role checks of the API functions, from the authorizer's context (API.md's role table).

Two ways to guard a route, both answering 403 with the roles that would be allowed:
- `@allow(*roles, identity=...)` on the route function: checked by the resolver BEFORE the body
  is validated, so a caller without the role learns nothing about the body rules;
- `require(*roles)` inside a route function.
Routes with neither are public (the OpenAPI document and the docs page only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from segmentation.auth.keys import Principal
from segmentation.errors import Forbidden, Unauthorized

INGESTERS = ("ingest", "admin")
READERS = ("read", "write", "admin")
USER_READERS = ("ingest", "read", "write", "admin")
WRITERS = ("write", "admin")
ADMINS = ("admin",)

F = TypeVar("F", bound=Callable[..., Any])
_ROLES_MARK = "__allowed_roles__"
_IDENTITY_MARK = "__allows_identity__"


def current_principal() -> Principal:
    """The caller, as the authorizer described it; 401 when the event carries no authorizer context."""
    event = BaseRouter.current_event
    context = (event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    role = context.get("role")
    if not role:
        raise Unauthorized(
            "Send a valid API key as `Authorization: Bearer <key>` (or, on a user's logins, events "
            "and messages, that user's `X-User-Hash`)."
        )
    return Principal(
        role=str(role),
        key_id=str(context.get("key_id") or ""),
        user_id=str(context.get("user_id") or ""),
        name=str(context.get("name") or ""),
    )


def require(*roles: str, identity_user_id: str | None = None) -> Principal:
    """The caller if its role is one of `roles`, or an identity for `identity_user_id`; else 403."""
    principal = current_principal()
    check(principal, roles, identity_user_id)
    return principal


def check(principal: Principal, roles: tuple[str, ...], identity_user_id: str | None) -> None:
    if principal.role == "identity":
        if identity_user_id is not None and principal.user_id == identity_user_id:
            return
        raise Forbidden(
            "An X-User-Hash is good only for its own user's logins and messages; "
            f"this call needs a key with one of the roles: {', '.join(roles)}."
        )
    if principal.role not in roles:
        raise Forbidden(
            f"This call needs a key with one of the roles: {', '.join(roles)}; "
            f"this key has the role {principal.role!r}."
        )


def allow(*roles: str, identity: bool = False) -> Callable[[F], F]:
    """Mark a route function with the roles that may call it (identity: for the path's user_id)."""

    def mark(func: F) -> F:
        setattr(func, _ROLES_MARK, tuple(roles))
        setattr(func, _IDENTITY_MARK, identity)
        return func

    return mark


def check_caller(func: Callable[..., Any]) -> None:
    """401 on a guarded route without a caller: the authorizer lets a refused request reach the
    identity routes so that the 401 carries CORS headers (http.cors); nothing else is read first."""
    if getattr(func, _ROLES_MARK, None) is not None:
        current_principal()


def check_route(func: Callable[..., Any], route_arguments: dict[str, Any]) -> None:
    """Enforce a route's @allow mark (called by the resolver before body validation)."""
    roles: tuple[str, ...] | None = getattr(func, _ROLES_MARK, None)
    if roles is None:
        return
    identity_user_id = route_arguments.get("user_id") if getattr(func, _IDENTITY_MARK, False) else None
    check(current_principal(), roles, identity_user_id)
