"""DynamoDB applies each write atomically; moto checks a condition and writes without a lock, so
two threads can both pass it. Tests of our own races give moto's write paths the service's
atomicity (one lock), so the race they test is ours, not moto's."""

from __future__ import annotations

import threading
from typing import Any

import pytest


def atomic_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("transact_write_items", "update_item", "put_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)
