"""Powertools Tracer, made on a function's first invocation instead of at import.

`Tracer()` imports `aws_xray_sdk.core` in its constructor, whether tracing is on or off, and that
import builds the X-Ray recorder (about as costly as importing boto3 again). Made on the first
invocation, the Tracer works as before: it patches botocore and the other libraries at class
level, so clients made earlier are traced too, and X-Ray discards subsegments opened during
Lambda's init phase anyway. The import is paid by the first invocation rather than by init.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Tracer

Handler = TypeVar("Handler", bound=Callable[..., Any])


class DeferredTracer:
    """Stands in for a module-level `Tracer()`: decorate with `capture_lambda_handler`."""

    def __init__(self) -> None:
        self._tracer: Tracer | None = None
        self._lock = threading.Lock()

    @property
    def tracer(self) -> Tracer:
        """The Powertools Tracer, made (and the X-Ray SDK imported) on first use."""
        if self._tracer is None:
            with self._lock:
                if self._tracer is None:
                    self._tracer = Tracer()
        return self._tracer

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        """`Tracer.capture_lambda_handler`, applied when the handler first runs."""
        traced: Callable[..., Any] | None = None

        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            nonlocal traced
            if traced is None:
                traced = self.tracer.capture_lambda_handler(handler)
            return traced(event, context)

        return run  # type: ignore[return-value]
