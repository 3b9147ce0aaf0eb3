"""The stack's EventBridge bus: membership changes put on it, 10 entries a PutEvents call.

Entries a call reports failed (FailedEntryCount) are sent again with backoff; what still fails
raises errors.Retryable naming how many of the entries, in order, went out, so the caller can
retry from there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from segmentation import errors
from segmentation.settings import get_settings
from segmentation.storage import aws, dynamo

SOURCE = "segmentation"
DETAIL_TYPE = "Segment Membership Changed"
ENTRIES_PER_CALL = 10  # PutEvents takes at most 10 entries
_ATTEMPTS = 5


class PartlyPut(errors.Retryable):
    """Only the first `put` entries are on the bus; the rest must be tried again."""

    def __init__(self, put: int, reason: str):
        super().__init__(f"EventBridge kept refusing entries ({reason}); {put} put")
        self.put = put


def put_changes(changes: Sequence[Mapping[str, Any]]) -> int:
    """Put each change (API.md's JSON) on the bus as `detail`; returns the PutEvents calls made."""
    bus = get_settings().changes_event_bus
    if not bus:
        return 0
    client = aws.client("events")
    calls = 0
    for start in range(0, len(changes), ENTRIES_PER_CALL):
        entries = [_entry(bus, change) for change in changes[start : start + ENTRIES_PER_CALL]]
        pending = list(range(len(entries)))
        for attempt in range(_ATTEMPTS):
            try:
                answer = client.put_events(Entries=[entries[i] for i in pending])
            except ClientError as error:
                raise PartlyPut(start + (pending[0] if pending else 0), dynamo.error_code(error)) from error
            calls += 1
            results = answer.get("Entries") or []
            if not answer.get("FailedEntryCount"):
                pending = []
                break
            pending = [i for i, result in zip(pending, results, strict=False) if result.get("ErrorCode")]
            dynamo.backoff(attempt)
        if pending:
            raise PartlyPut(start + pending[0], "FailedEntryCount")
    return calls


def _entry(bus: str, change: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "EventBusName": bus,
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Time": datetime.fromisoformat(str(change["at"]).replace("Z", "+00:00")).astimezone(UTC),
        "Detail": json.dumps(change, separators=(",", ":")),
    }
