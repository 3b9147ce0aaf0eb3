"""Re-evaluate the users linked to a company (its change may move their company.* segments)."""

from __future__ import annotations

from collections.abc import Callable

from segmentation import jobs
from segmentation.engine import Workspace
from segmentation.settings import get_settings
from segmentation.storage import memberships, rebuild_queue
from segmentation.upkeep.refresh import refresh_ids


def refresh_company_users(
    workspace: Workspace,
    company_id: str,
    now: float,
    cursor: str | None = None,
    time_left: Callable[[], float] | None = None,
    *,
    inline: bool = False,
) -> str | None:
    """Re-evaluate the users linked to a company, a page at a time.

    Big companies go to the RebuildQueue unless `inline` (a worker running that job). Returns the
    cursor to continue from when time runs low, else None.
    """
    group = memberships.company_group(company_id)
    if not inline and cursor is None and memberships.count(group) > get_settings().inline_build_limit:
        rebuild_queue.send_jobs([jobs.company_users_job(company_id)])
        return None
    while True:
        user_ids, cursor = memberships.group_page(group, 100, cursor)
        refresh_ids(workspace, "users", user_ids, now)
        if cursor is None:
            return None
        if time_left is not None and time_left() < jobs.REQUEUE_WHEN_SECONDS_LEFT:
            return cursor
