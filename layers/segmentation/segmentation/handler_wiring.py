"""What every Lambda handler wires: one Logger, Tracer and Metrics, and `entry_point`, the
decorators around a function's `lambda_handler`.

X-Ray records neither a handler's response nor its error: they can hold keys or personal data.
Only botocore is patched for tracing: it is the only library that does I/O here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])
metrics = Metrics(namespace="Segmentation")

F = TypeVar("F", bound=Callable[..., Any])


def entry_point(*, correlation_id_path: str | None = None) -> Callable[[F], F]:
    """Log with the invocation's context (and correlation id), trace without payloads, and flush
    the metrics the handler added, in that order from the outside in."""

    def wrap(handler: F) -> F:
        measured = metrics.log_metrics(handler)
        traced = tracer.capture_lambda_handler(measured, capture_response=False, capture_error=False)
        return cast(F, logger.inject_lambda_context(traced, correlation_id_path=correlation_id_path))

    return wrap
