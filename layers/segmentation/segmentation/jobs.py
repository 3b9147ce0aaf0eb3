"""The bodies of the jobs functions pass each other on queues: one definition, used by the
producer and the consumer alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from segmentation.engine.fields import Target

SCAN = "scan"
COMPANY_USERS = "company_users"
# A worker stops and re-queues its cursor with this much of its Lambda time left.
REQUEUE_WHEN_SECONDS_LEFT = 60.0
SCAN_PAGE_LIMIT = 200


def scan_jobs(
    run_id: str, workers: int, targets: Sequence[Target] = ("users", "companies")
) -> list[dict[str, Any]]:
    """One job per parallel-scan segment of each target table."""
    return [
        {
            "kind": SCAN,
            "run_id": run_id,
            "target": target,
            "segment": i,
            "total_segments": workers,
            "cursor": None,
        }
        for target in targets
        for i in range(workers)
    ]


def company_users_job(company_id: str, cursor: str | None = None) -> dict[str, Any]:
    return {"kind": COMPANY_USERS, "company_id": company_id, "cursor": cursor}
