"""Makes moto's DynamoDB TransactWriteItems cost what the transaction touches, not the whole table.

moto 5.2 snapshots a transaction's tables with `copy.deepcopy` (once per item of the
transaction, stream records included) so that it can roll back. That is O(table) per transaction,
and the local stack writes memberships in transactions: a few hundred users took minutes. Here
the snapshot is of the items the transaction names (and the length of each table's stream), and
a rollback puts exactly those back. Behaviour is unchanged; only the local stack installs this.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

_state = threading.local()
_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

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
    _installed = True


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
