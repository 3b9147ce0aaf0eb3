"""What a template sees: `user` (the user's JSON as the API shows it), `company` (the user's
first company's JSON, or nil) and `unsubscribe_url` (an email's one-click unsubscribe link, the
URL of its List-Unsubscribe header; nil in an in-app message). Plain JSON values only: Liquid
can read keys, nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segmentation.people.representations import company_json, user_json


def context(
    user: Mapping[str, Any], company: Mapping[str, Any] | None, unsubscribe_url: str | None = None
) -> dict[str, Any]:
    return {
        "unsubscribe_url": unsubscribe_url,
        "user": user_json(user, user.get("segments") or ()),
        "company": (
            company_json(company, int(company.get("user_count") or 0), company.get("segments") or ())
            if company
            else None
        ),
    }
