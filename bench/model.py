"""A written-down model of the nightly rebuild at 10 million users and 1,000 segments on AWS.

Inputs measured in this run: CPU per user and per user-segment (the scale fit) and the rebuild's
calls per 100 unchanged users. Everything else is a stated assumption or a published price
(us-east-1, on demand, as of late 2024 / 2025), kept here as named constants so that the
arithmetic can be read and re-run.
"""

from __future__ import annotations

import math
from typing import Any

USERS = 10_000_000
SEGMENTS = 1_000
ITEM_BYTES = 1024  # a user item with ~20 attributes, a dozen custom ones and its segment ids
CHANGED_FRACTION = 0.01  # users whose stored membership the nightly run must fix (recheck did the rest)
WRU_PER_CHANGE = 6  # TransactWriteItems: 2 WRU per item; the user item, one membership item, one count
WORKERS = 100  # parallel-scan segments = concurrent RebuildWorkerFunction invocations
MEMORY_GB = 1.769  # 1,769 MB is one full vCPU on Lambda
SCAN_PAGE_SECONDS = 0.02  # one Scan page of 200 items (about 200 KB): DynamoDB latency, measured elsewhere

PRICE_LAMBDA_GB_S = 0.0000166667  # x86, per GB-second
PRICE_LAMBDA_REQUEST = 0.20 / 1e6
PRICE_READ_UNIT = 0.125 / 1e6  # on-demand read request unit
PRICE_WRITE_UNIT = 0.625 / 1e6  # on-demand write request unit
PAGE_ITEMS = 200  # segmentation.jobs.SCAN_PAGE_LIMIT


def rebuild(
    ns_per_user: float, ns_per_user_segment: float, calls_per_100_users: float | None
) -> dict[str, Any]:
    cpu_per_user_s = (ns_per_user + ns_per_user_segment * SEGMENTS) / 1e9
    cpu_s = cpu_per_user_s * USERS
    pages = math.ceil(USERS / PAGE_ITEMS)
    io_s = pages * SCAN_PAGE_SECONDS
    # Eventually consistent Scan: half a read unit per 4 KB read.
    read_units = math.ceil(USERS * ITEM_BYTES / 4096) * 0.5
    write_units = USERS * CHANGED_FRACTION * WRU_PER_CHANGE
    wall_s = (cpu_s + io_s) / WORKERS
    gb_s = (cpu_s + io_s) * MEMORY_GB
    # A worker re-queues its cursor before Lambda's 15 minutes: one more invocation per 14 minutes of work.
    invocations = WORKERS * max(1, math.ceil(wall_s / 840))
    cost = {
        "lambda_compute": gb_s * PRICE_LAMBDA_GB_S,
        "lambda_requests": invocations * PRICE_LAMBDA_REQUEST,
        "dynamodb_reads": read_units * PRICE_READ_UNIT,
        "dynamodb_writes": write_units * PRICE_WRITE_UNIT,
    }
    return {
        "users": USERS,
        "segments": SEGMENTS,
        "assumptions": {
            "item_bytes": ITEM_BYTES,
            "changed_fraction": CHANGED_FRACTION,
            "wru_per_change": WRU_PER_CHANGE,
            "workers": WORKERS,
            "memory_gb": MEMORY_GB,
            "scan_page_seconds": SCAN_PAGE_SECONDS,
        },
        "cpu_per_user_ms": round(cpu_per_user_s * 1000, 3),
        "cpu_hours": round(cpu_s / 3600, 2),
        "scan_pages": pages,
        "api_calls_unchanged": round(USERS / 100 * calls_per_100_users)
        if calls_per_100_users is not None
        else None,
        "wall_minutes": round(wall_s / 60, 1),
        "worker_invocations": invocations,
        "lambda_gb_s": round(gb_s),
        "read_units": round(read_units),
        "write_units": round(write_units),
        "cost_usd": {k: round(v, 2) for k, v in cost.items()} | {"total": round(sum(cost.values()), 2)},
    }
