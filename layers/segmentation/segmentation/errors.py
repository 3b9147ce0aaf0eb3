"""Domain errors. One place (segmentation.http.errors) maps them to HTTP answers."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a caller can cause. `code` is the snake_case code of API.md."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class Malformed(DomainError):
    status, code = 400, "malformed_request"


class InvalidCursor(Malformed):
    code = "invalid_cursor"

    def __init__(
        self, message: str = "The cursor is not valid: pass back a next_cursor exactly as it was returned."
    ):
        super().__init__(message, [{"path": "cursor", "message": "not a cursor this API returned"}])


class Unauthorized(DomainError):
    status, code = 401, "unauthorized"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class NotFound(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class PayloadTooLarge(DomainError):
    status, code = 413, "payload_too_large"


class Invalid(DomainError):
    """422: content that parses but breaks a rule. `details` name each bad field by path."""

    status, code = 422, "invalid_request"


class Retryable(Exception):
    """A transient fault (throttling, a lost race) that the caller should retry later."""
