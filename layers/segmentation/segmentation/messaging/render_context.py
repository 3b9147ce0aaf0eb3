"""What a template sees: `user` (the user's JSON as the API shows it) and `company` (the user's
first company's JSON, or nil). Plain JSON values only: Liquid can read keys, nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from segmentation.records import format_timestamp

_USER_FIELDS = (
    "user_id",
    "email",
    "name",
    "phone",
    "signed_up_at",
    "last_seen_at",
    "session_count",
    "unsubscribed_from_emails",
    "company_ids",
    "custom_attributes",
    "segments",
    "created_at",
    "updated_at",
)
_COMPANY_FIELDS = (
    "company_id",
    "name",
    "plan",
    "monthly_spend",
    "size",
    "industry",
    "website",
    "remote_created_at",
    "custom_attributes",
    "user_count",
    "segments",
    "created_at",
    "updated_at",
)


def _plain(name: str, value: Any) -> Any:
    """A stored value as JSON shows it: `*_at` numbers as ISO 8601, Decimals as int or float,
    sets as sorted lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Decimal | int | float):
        if name.endswith("_at"):
            return format_timestamp(value)
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    if isinstance(value, Mapping):
        return {str(k): _plain(str(k), v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(_plain("", v) for v in value)
    if isinstance(value, list | tuple):
        return [_plain("", v) for v in value]
    return str(value)


def _json(record: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    out = {field: _plain(field, record.get(field)) for field in fields}
    out["custom_attributes"] = out.get("custom_attributes") or {}
    out["segments"] = out.get("segments") or []
    return out


def user_json(record: Mapping[str, Any]) -> dict[str, Any]:
    out = _json(record, _USER_FIELDS)
    out["company_ids"] = out.get("company_ids") or []
    return out


def context(user: Mapping[str, Any], company: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"user": user_json(user), "company": _json(company, _COMPANY_FIELDS) if company else None}
