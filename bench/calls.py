"""Counting AWS calls per function by hooking botocore, and noting which clients each path makes.

Every API call goes through `botocore.client.BaseClient._make_api_call` (the resource API too),
so one wrapper there sees them all. A call is charged to the function whose handler is running
(the local stack runs one invocation at a time), and only inside an open `window`; calls made by
the harness itself (pollers reading streams and queues, as Lambda's event source mappings do) are
never charged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.client import BaseClient

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class Window:
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (function, service, operation)
    invocations: Counter[str] = field(default_factory=Counter)

    def count(self, function: str) -> int:
        return sum(1 for f, _, _ in self.calls if f == function)

    def operations(self, function: str) -> dict[str, int]:
        return dict(Counter(f"{service}.{op}" for f, service, op in self.calls if f == function))


class CallLog:
    def __init__(self) -> None:
        self.function: str | None = None
        self.window: Window | None = None
        # Discovery: each invocation starts with no clients, so it makes exactly those its path needs.
        self.discovering = False
        self.clients: dict[str, set[str]] = {}  # function -> {"client:sqs", "resource:dynamodb", ...}
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        self._installed = True
        log = self
        make_api_call = BaseClient._make_api_call  # type: ignore[attr-defined]

        def counting(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            if log.function is not None and log.window is not None:
                log.window.calls.append(
                    (log.function, client.meta.service_model.service_name, operation_name)
                )
            return make_api_call(client, operation_name, api_params)

        BaseClient._make_api_call = counting  # type: ignore[attr-defined]
        make_client, make_resource = boto3.client, boto3.resource

        def recording_client(*args: Any, **kwargs: Any) -> Any:
            log._saw("client", args[0] if args else kwargs["service_name"])
            return make_client(*args, **kwargs)

        def recording_resource(*args: Any, **kwargs: Any) -> Any:
            log._saw("resource", args[0] if args else kwargs["service_name"])
            return make_resource(*args, **kwargs)

        boto3.client = recording_client
        boto3.resource = recording_resource

    def _saw(self, kind: str, service: str) -> None:
        if self.function is not None:
            self.clients.setdefault(self.function, set()).add(f"{kind}:{service}")

    def wrap(self, function: str, handler: Handler, reset_clients: Callable[[], None]) -> Handler:
        def charged(event: dict[str, Any], context: Any) -> Any:
            if self.discovering:
                reset_clients()
            outer, self.function = self.function, function
            if self.window is not None:
                self.window.invocations[function] += 1
            try:
                return handler(event, context)
            finally:
                self.function = outer

        return charged

    @contextmanager
    def counting(self) -> Iterator[Window]:
        window = Window()
        self.window = window
        try:
            yield window
        finally:
            self.window = None

    @contextmanager
    def discovery(self) -> Iterator[None]:
        self.discovering = True
        try:
            yield
        finally:
            self.discovering = False
