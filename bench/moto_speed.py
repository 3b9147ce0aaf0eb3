"""Make moto's TransactWriteItems cost O(items) instead of O(table) for the benchmark's own setup.

moto backs up every table a transaction touches with `copy.deepcopy` (the whole table and its
stream records) so that it can roll back; at a few thousand users that is seconds per write, and
the rebuild sizes here need thousands of writes. The backup is only read when a transaction
fails, so this skips it and counts failures instead: the benchmark reports the count, and a run
with a failed transaction says its moto state may hold a partial write. Call counts are unaffected
(this is below botocore, inside moto's backend).
"""

from __future__ import annotations

import copy
import types
from typing import Any

failed_transactions = 0


def install() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    if getattr(models.DynamoDBBackend.transact_write_items, "_bench_fast", False):
        return

    def deepcopy_except_tables(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    shim = types.SimpleNamespace(deepcopy=deepcopy_except_tables, copy=copy.copy)
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        global failed_transactions
        saved, models.copy = models.copy, shim  # type: ignore[assignment]
        try:
            original(self, transact_items)
        except Exception:
            failed_transactions += 1
            raise
        finally:
            models.copy = saved

    transact_write_items._bench_fast = True  # type: ignore[attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
