"""The one place that turns errors into HTTP answers: {"error": {"code", "message", "details"?}}.

Domain errors carry their own status and code; request validation (Powertools or pydantic) is
a 422 naming each bad field; malformed JSON a 400; an unknown route 404 (405 when the path
exists with other methods); anything unexpected a logged 500 without internals.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import ValidationError

from segmentation import health
from segmentation.errors import DomainError, Retryable

logger = Logger(child=True)

# What a 429 of the service itself (throttling that outlasted the retries, a lost race) tells the
# client to wait: such conditions pass within moments.
RETRY_AFTER_SECONDS = 1
# Fields a client may read but never write; naming them "read-only" beats "unknown".
READ_ONLY_FIELDS = frozenset(
    {"session_count", "email_status", "segments", "tag_ids", "created_at", "updated_at", "user_count", "rev"}
)


def error_response(
    status: int, code: str, message: str, details: Sequence[Mapping[str, Any]] | None = None
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = list(details)
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps({"error": error})
    )


def validation_details(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """One {"path", "message"} per bad field, from pydantic-style errors (first message per path)."""
    details: dict[str, str] = {}
    for error in errors:
        path = _path_of(error.get("loc", ()))
        if path in details:
            continue  # a union reports once per member; the first message is enough
        details[path] = _message_of(error, path)
    return [{"path": path, "message": message} for path, message in details.items()]


def _path_of(location: Sequence[Any]) -> str:
    parts = list(location)
    if parts and parts[0] in {"body", "path", "query", "header"}:
        parts = parts[1:]
    text = ""
    for part in parts:
        if part == "[key]":
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


def _message_of(error: Mapping[str, Any], path: str) -> str:
    kind = error.get("type", "")
    field = path.rsplit(".", 1)[-1]
    if kind == "extra_forbidden":
        return f"{field} is read-only" if field in READ_ONLY_FIELDS else f"{field} is not a known field"
    if kind == "missing":
        return f"{path} is required"
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    if kind in {"model_attributes_type", "dict_type", "model_type"} and path == "body":
        return "The body must be a JSON object"
    return f"{path}: {message}"


def register(app: APIGatewayRestResolver) -> None:
    """Install the exception handlers on a resolver (make_resolver does this)."""

    @app.exception_handler(DomainError)
    def domain_error(error: DomainError) -> Response:
        response = error_response(error.status, error.code, error.message, error.details)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"  # as API Gateway's own 401 says
        return response

    @app.exception_handler(RequestValidationError)
    def request_invalid(error: RequestValidationError) -> Response:
        errors = list(error.errors())
        if any(item.get("type") == "json_invalid" for item in errors):
            return error_response(400, "malformed_json", "The request body is not valid JSON.")
        return invalid_response(errors)

    @app.exception_handler(ValidationError)
    def model_invalid(error: ValidationError) -> Response:
        return invalid_response(error.errors())

    @app.not_found
    def not_found(_: NotFoundError) -> Response:
        event = app.current_event
        allowed = allowed_methods(app, event.path)
        if allowed:
            response = error_response(
                405,
                "method_not_allowed",
                f"{event.http_method} is not allowed here; use {', '.join(allowed)}.",
            )
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return error_response(404, "not_found", f"There is no route {event.http_method} {event.path}.")

    @app.exception_handler(Retryable)
    def busy(error: Retryable) -> Response:
        logger.warning("retryable error reached the caller", extra={"reason": str(error)})
        response = error_response(
            429, "throttled", f"The service is busy; please retry in {RETRY_AFTER_SECONDS} second."
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response:
        logger.error("unhandled error", extra=health.error_fields(error))
        return error_response(500, "internal_error", "Something went wrong on our side; please retry later.")


def invalid_response(errors: Iterable[Mapping[str, Any]]) -> Response:
    details = validation_details(errors)
    paths = ", ".join(detail["path"] for detail in details)
    return error_response(422, "invalid_request", f"Some fields are not valid: {paths}.", details)


def allowed_methods(app: APIGatewayRestResolver, path: str) -> list[str]:
    """The methods registered for a path (Powertools answers 404 for a known path with a wrong method)."""
    routes = list(getattr(app, "_static_routes", [])) + list(getattr(app, "_dynamic_routes", []))
    # fullmatch: a rule ending in $ would also match a path with a trailing newline.
    return sorted({route.method for route in routes if route.rule.fullmatch(path)})
