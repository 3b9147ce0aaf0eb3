"""The Changes table's stream, published: each recorded change on the stack's EventBridge bus,
then to the webhooks (changes.deliveries). At least once: a batch tried again may put a change
on the bus twice; consumers tell them apart by (segment_id, member_id, sequence)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from segmentation.changes import deliveries
from segmentation.changes.history import change_json
from segmentation.storage import bus


def publish(items: Sequence[Mapping[str, Any]], now: float) -> int:
    """Publish recorded changes, in order; returns how many of them, from the first, are done
    (all of them, unless EventBridge kept refusing some: the rest are to be tried again)."""
    try:
        bus.put_changes([change_json(item) for item in items])
        done = len(items)
    except bus.PartlyPut as partly:
        done = partly.put
    deliveries.fan_out(items[:done], now)
    return done
