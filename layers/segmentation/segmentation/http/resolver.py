"""The project's API Gateway (REST, proxy events) resolver.

Validation is on: route signatures with pydantic models are validated and documented in the
OpenAPI document. Before that validation, every request passes a guard that refuses, in this
order, a guarded route without a caller (401), bodies over 256 KB (413) and callers without the
route's role (403, from `@allow`), so those answers never depend on the body's content, then
parses the body once, safely (http.body). A route marked `@reads_own_request(reader)` (the
Segment sources: their own key check, gzip and size limit) skips all of that: `reader` gets the
raw event, refuses what it must and returns the parsed body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from segmentation.http import auth, body, errors

F = TypeVar("F", bound=Callable[..., Any])
_OWN_REQUEST_MARK = "__reads_own_request__"


def reads_own_request(reader: Callable[[dict[str, Any]], Any]) -> Callable[[F], F]:
    """Mark a route whose request `reader(raw_event)` checks (caller, body) and parses itself."""

    def mark(func: F) -> F:
        setattr(func, _OWN_REQUEST_MARK, reader)
        return func

    return mark


class _GuardThenValidate(OpenAPIRequestValidationMiddleware):
    def handler(self, app: Any, next_middleware: Any) -> Any:
        event = app.current_event
        route = app.context["_route"]
        reader = getattr(route.func, _OWN_REQUEST_MARK, None)
        if reader is not None:
            parsed = reader(event.raw_event)
            _read_body_as_json(event.raw_event, empty_too=True)  # the reader parsed it, whatever it was
            event.__dict__["json_body"] = parsed
            event.__dict__["decoded_body"] = None
            return super().handler(app, next_middleware)
        auth.check_caller(route.func)
        raw = body.body_bytes(event.body, bool(event.is_base64_encoded))
        auth.check_route(route.func, app.context.get("_route_args") or {})
        _read_body_as_json(event.raw_event)
        # Parsed once, here; Powertools' validation reads these cached values and parses nothing.
        event.__dict__["json_body"] = body.parse(raw)
        event.__dict__["decoded_body"] = raw.decode("utf-8") if raw else None
        return super().handler(app, next_middleware)


def _read_body_as_json(raw_event: dict[str, Any], *, empty_too: bool = False) -> None:
    """Every body is JSON (API.md), whatever Content-Type says: Powertools would otherwise parse
    `curl -d`'s form type as a form (junk 422s) and answer other types with a 500."""
    headers = raw_event.get("headers")
    if not (raw_event.get("body") or empty_too) or not isinstance(headers, dict):
        return
    for name in [name for name in headers if name.lower() == "content-type"]:
        del headers[name]
    headers["Content-Type"] = "application/json"


def make_resolver(*routers: APIGatewayRouter) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)
    # Powertools runs this middleware first on every route (and on the not-found route).
    app._request_validation_middleware = _GuardThenValidate()
    errors.register(app)
    for router in routers:
        app.include_router(router)
    return app


def make_form_resolver(*routers: APIGatewayRouter) -> APIGatewayRestResolver:
    """A resolver for the routes whose bodies are not JSON and are not read (the one-click
    unsubscribe, whose body is a form): no body validation, the same error answers."""
    app = APIGatewayRestResolver()
    errors.register(app)
    for router in routers:
        app.include_router(router)
    return app
