"""Makes moto cost what a call touches, not the whole table or queue.

- DynamoDB TransactWriteItems: moto 5.2 snapshots a transaction's tables with `copy.deepcopy`
  (once per item of the transaction, stream records included) so that it can roll back. That is
  O(table) per transaction, and the local stack writes memberships in transactions: a few hundred
  users took minutes. Here the snapshot is of the items the transaction names (and the length of
  each table's stream), and a rollback puts exactly those back.
- SQS: for each message it considers, ReceiveMessage reads the queue's retention through
  GetQueueAttributes, which counts every message of the queue three times (O(queue²) per receive),
  and SendMessage reads every attribute to learn one (O(queue) per message). Each count asks
  every message whether it is visible, and each asks for the time through datetime arithmetic.
  With a few thousand delivery jobs waiting, one receive took seconds. Here the retention is read
  off the queue itself, and SQS's clock is `time.time()` (the same instant: moto's `unix_time()`
  is the seconds since the epoch of `datetime.now(UTC)`), an order of magnitude cheaper.

Behaviour is unchanged; only the local stack (and the simulations built on it) installs this.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

_state = threading.local()
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table
    from moto.sqs import models as sqs_models
    from moto.sqs.models import SQSBackend

    original_transact = DynamoDBBackend.transact_write_items
    original_deepcopy = getattr(Table, "__deepcopy__", None)

    def table_deepcopy(self: Table, memo: dict[int, Any]) -> Table:
        if getattr(_state, "skip_table_copies", False):
            return self  # the item-level snapshot below handles the rollback
        if original_deepcopy is not None:
            return original_deepcopy(self, memo)
        clone = copy.copy(self)
        clone.__dict__ = copy.deepcopy(self.__dict__, memo)
        return clone

    def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        try:
            snapshot = _snapshot(self, transact_items)
        except Exception:
            return original_transact(self, transact_items)  # unusual input: moto's own way
        _state.skip_table_copies = True
        try:
            original_transact(self, transact_items)
        except Exception:
            _restore(snapshot)
            raise
        finally:
            _state.skip_table_copies = False

    Table.__deepcopy__ = table_deepcopy  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign,assignment]
    sqs_models.unix_time = _unix_time
    sqs_models.unix_time_millis = _unix_time_millis
    _installed = True


def _unix_time(dt: Any = None) -> float:
    return time.time() if dt is None else _moto_unix_time(dt)


def _unix_time_millis(dt: Any = None) -> float:
    return _unix_time(dt) * 1000.0


def _moto_unix_time(dt: Any) -> float:
    from moto.core.utils import unix_time

    return float(unix_time(dt))


def _within_retention(backend: Any, queue_name: str, message: Any) -> bool:
    """moto's own rule, with the retention read off the queue instead of all its attributes."""
    retention = int(backend.get_queue(queue_name).message_retention_period)
    return bool(retention + message.sent_timestamp / 1000 > _unix_time())


def _key_types(table: Any, op: dict[str, Any]) -> tuple[Any, Any]:
    from moto.dynamodb.models.dynamo_type import DynamoType

    key = op.get("Key") or op["Item"]
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    return hash_value, range_value


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any, int]]:
    """(table, hash, range, deep copy of the item or None, stream length) per item of the transaction."""
    snapshot = []
    for entry in transact_items:
        ((_, op),) = entry.items()
        table = backend.tables.get(op.get("TableName"))
        if table is None:
            continue
        hash_value, range_value = _key_types(table, op)
        if range_value is None:
            current = table.items.get(hash_value)
        else:
            current = table.items.get(hash_value, {}).get(range_value)
        stream_length = len(table.stream_shard.items) if table.stream_shard is not None else 0
        snapshot.append((table, hash_value, range_value, copy.deepcopy(current), stream_length))
    return snapshot


def _restore(snapshot: list[tuple[Any, Any, Any, Any, int]]) -> None:
    for table, hash_value, range_value, item, stream_length in reversed(snapshot):
        if range_value is None:
            if item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item
        else:
            ranges = table.items[hash_value]
            if item is None:
                ranges.pop(range_value, None)
            else:
                ranges[range_value] = item
            if not ranges:
                table.items.pop(hash_value, None)
        if table.stream_shard is not None:
            del table.stream_shard.items[stream_length:]
