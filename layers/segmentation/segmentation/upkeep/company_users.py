"""Re-evaluate the users linked to a company (its change may move their company.* segments)."""

from __future__ import annotations

from collections.abc import Callable

from segmentation.jobs import REQUEUE_WHEN_SECONDS_LEFT, CompanyUsersJob
from segmentation.settings import get_settings
from segmentation.storage import memberships, queues
from segmentation.upkeep.refresh import RefreshRun

_PAGE = 100


def refresh_company_users(
    upkeep: RefreshRun,
    company_id: str,
    now: float,
    cursor: str | None = None,
    time_left: Callable[[], float] | None = None,
    *,
    inline: bool = False,
) -> str | None:
    """Re-evaluate the users linked to a company, a page at a time, within `upkeep`.

    Big companies go to the RebuildQueue unless `inline` (a worker running that job). Returns the
    cursor to continue from when time runs low, else None.
    """
    group = memberships.company_group(company_id)
    if not inline and cursor is None and memberships.count(group) > get_settings().inline_build_limit:
        queues.send_rebuild_jobs([CompanyUsersJob(company_id=company_id)])
        return None
    while True:
        user_ids, cursor = memberships.group_page(group, _PAGE, cursor)
        upkeep.refresh_ids("users", user_ids, now, "company")
        if cursor is None:
            return None
        if time_left is not None and time_left() < REQUEUE_WHEN_SECONDS_LEFT:
            return cursor


def companies_moved(upkeep: RefreshRun, company_ids: frozenset[str], now: float) -> None:
    """Companies whose links moved: their user_count changed, so their own segments may have, and
    so may their users' when user segments read `company.user_count`."""
    if not company_ids:
        return
    # Their own attribute `user_count` moved: for their segments, a change of attributes.
    upkeep.refresh_ids("companies", sorted(company_ids), now, "attributes")
    if "user_count" in upkeep.workspace.company_fields_read:
        for company_id in sorted(company_ids):
            refresh_users_of(upkeep, company_id, now, None)


def refresh_users_of(
    upkeep: RefreshRun, company_id: str, now: float, time_left: Callable[[], float] | None
) -> None:
    """A company's users re-evaluated now, or the rest of them queued when time runs low."""
    rest = refresh_company_users(upkeep, company_id, now, time_left=time_left)
    if rest is not None:
        queues.send_rebuild_jobs([CompanyUsersJob(company_id=company_id, cursor=rest)])
