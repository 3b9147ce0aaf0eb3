"""The operations boto3 clients call while a block runs, counted through botocore's own events.

The handler is removed on the way out, failure or not, so the count covers the block alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def operations_called(*clients: Any) -> Iterator[list[str]]:
    """The names ("GetItem", "SendEmail") of every call the clients make inside the block, in order."""
    calls: list[str] = []

    def note(event_name: str, **_: Any) -> None:
        calls.append(event_name.split(".")[-1])

    for client in clients:
        client.meta.events.register("before-call.*.*", note)
    try:
        yield calls
    finally:
        for client in clients:
            client.meta.events.unregister("before-call.*.*", note)
