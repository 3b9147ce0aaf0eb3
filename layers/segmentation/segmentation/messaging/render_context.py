"""What a template sees: `user` (the user's JSON as the API shows it) and `company` (the user's
first company's JSON, or nil). Plain JSON values only: Liquid can read keys, nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from segmentation.people.representations import company_json, user_json


def context(user: Mapping[str, Any], company: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        "user": user_json(user, user.get("segments") or ()),
        "company": (
            company_json(company, int(company.get("user_count") or 0), company.get("segments") or ())
            if company
            else None
        ),
    }
