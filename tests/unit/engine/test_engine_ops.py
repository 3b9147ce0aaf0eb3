"""Every op of every type, against the compiled engine and the reference interpreter at once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_helpers import DAY, NOW, both, cond
from segmentation.engine import parse_timestamp

T = parse_timestamp


# -- strings ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "stored", "expected"),
    [
        ("eq", "ada@example.com", "Ada@Example.COM", True),
        ("eq", "ADA@example.com", "bob@example.com", False),
        ("ne", "ada@example.com", "ADA@EXAMPLE.COM", False),
        ("ne", "ada@example.com", "bob@example.com", True),
        ("in", ["x@y.z", "ADA@example.com"], "ada@example.com", True),
        ("in", ["x@y.z"], "ada@example.com", False),
        ("not_in", ["x@y.z", "ADA@example.com"], "ada@example.com", False),
        ("not_in", ["x@y.z"], "ada@example.com", True),
        ("contains", "EXAMPLE", "ada@example.com", True),
        ("contains", "acme", "ada@example.com", False),
        ("not_contains", "EXAMPLE", "ada@example.com", False),
        ("not_contains", "acme", "ada@example.com", True),
        ("starts_with", "ADA@", "ada@example.com", True),
        ("starts_with", "example", "ada@example.com", False),
        ("ends_with", ".COM", "ada@example.com", True),
        ("ends_with", "ada", "ada@example.com", False),
        ("exists", None, "", True),
        ("not_exists", None, "ada@example.com", False),
    ],
)
def test_string_ops_are_case_insensitive(op, value, stored, expected):
    assert both(cond("email", op, value), {"email": stored}) is expected


@pytest.mark.parametrize("stored", ["missing", None, 42, True])
@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", "x", False),
        ("ne", "x", True),
        ("in", ["x"], False),
        ("not_in", ["x"], True),
        ("contains", "", False),
        ("not_contains", "x", True),
        ("starts_with", "", False),
        ("ends_with", "", False),
    ],
)
def test_unknown_strings_make_only_the_negative_ops_true(stored, op, value, expected):
    record = {} if stored == "missing" else {"name": stored}
    assert both(cond("name", op, value), record) is expected


# -- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stored", [Decimal(12), 12, 12.0, Decimal("12.0")])
@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 12, True),
        ("eq", 12.5, False),
        ("ne", 12, False),
        ("ne", 11, True),
        ("gt", 11.5, True),
        ("gt", 12, False),
        ("gte", 12, True),
        ("gte", 12.01, False),
        ("lt", 12.01, True),
        ("lt", 12, False),
        ("lte", 12, True),
        ("lte", 11, False),
        ("in", [1, 12], True),
        ("in", [1, 2], False),
        ("not_in", [1, 12], False),
        ("not_in", [1, 2], True),
        ("exists", None, True),
        ("not_exists", None, False),
    ],
)
def test_number_ops(stored, op, value, expected):
    assert both(cond("session_count", op, value), {"session_count": stored}) is expected


def test_fractional_decimals_compare_as_the_json_number_they_came_from():
    record = {"custom_attributes": {"photos_uploaded": Decimal("0.1")}}
    assert both(cond("custom_attributes.photos_uploaded", "eq", 0.1), record) is True
    assert both(cond("custom_attributes.photos_uploaded", "gt", 0.1), record) is False


@pytest.mark.parametrize("stored", ["missing", None, "12", True, Decimal("NaN")])
@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("eq", 12, False),
        ("ne", 12, True),
        ("gt", -1e300, False),
        ("gte", 0, False),
        ("lt", 1e300, False),
        ("lte", 0, False),
        ("in", [12], False),
        ("not_in", [12], True),
    ],
)
def test_unknown_numbers_make_only_the_negative_ops_true(stored, op, value, expected):
    record = {} if stored == "missing" else {"session_count": stored}
    assert both(cond("session_count", op, value), record) is expected


# -- booleans --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "is_true", "is_false", "exists"),
    [
        (True, True, False, True),
        (False, False, True, True),
        (None, False, False, False),
        ("false", False, False, True),  # a value of another type: present, but neither true nor false
        (0, False, False, True),
        ("missing", False, False, False),
    ],
)
def test_boolean_ops_and_is_false_only_for_a_stored_false(stored, is_true, is_false, exists):
    record = {} if stored == "missing" else {"unsubscribed_from_emails": stored}
    assert both(cond("unsubscribed_from_emails", "is_true"), record) is is_true
    assert both(cond("unsubscribed_from_emails", "is_false"), record) is is_false
    assert both(cond("unsubscribed_from_emails", "exists"), record) is exists
    assert both(cond("unsubscribed_from_emails", "not_exists"), record) is not exists


def test_custom_boolean_attribute():
    record = {"custom_attributes": {"downloaded_mobile_app": False}}
    assert both(cond("custom_attributes.downloaded_mobile_app", "is_false"), record) is True
    assert both(cond("custom_attributes.downloaded_mobile_app", "is_true"), record) is False
    assert (
        both(cond("custom_attributes.downloaded_mobile_app", "is_false"), {"custom_attributes": {}}) is False
    )


# -- timestamps: relative to now -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "days", "offset", "expected"),
    [
        # less_than_days_ago N: now - N days < t <= now
        ("less_than_days_ago", 1, -DAY, False),
        ("less_than_days_ago", 1, -DAY + 1, True),
        ("less_than_days_ago", 1, 0, True),
        ("less_than_days_ago", 1, 1, False),
        ("less_than_days_ago", 0.5, -DAY / 2 + 1, True),
        ("less_than_days_ago", 0.5, -DAY / 2, False),
        ("less_than_days_ago", 0, 0, False),
        # more_than_days_ago N: t < now - N days
        ("more_than_days_ago", 30, -30 * DAY, False),
        ("more_than_days_ago", 30, -30 * DAY - 1, True),
        ("more_than_days_ago", 0.25, -DAY / 4 - 0.5, True),
        ("more_than_days_ago", 0, 0, False),
        ("more_than_days_ago", 0, -1, True),
        # less_than_days_from_now N: now <= t < now + N days
        ("less_than_days_from_now", 1, 0, True),
        ("less_than_days_from_now", 1, -1, False),
        ("less_than_days_from_now", 1, DAY - 1, True),
        ("less_than_days_from_now", 1, DAY, False),
        ("less_than_days_from_now", 1.5, DAY * 1.5 - 1, True),
        # more_than_days_from_now N: t > now + N days
        ("more_than_days_from_now", 1, DAY, False),
        ("more_than_days_from_now", 1, DAY + 1, True),
        ("more_than_days_from_now", 0, 0.001, True),
    ],
)
def test_relative_day_ops_at_their_boundaries(op, days, offset, expected):
    record = {"signed_up_at": Decimal(str(NOW + offset))}
    assert both(cond("signed_up_at", op, days), record) is expected


@pytest.mark.parametrize(
    ("timezone", "now", "days", "inside", "outside"),
    [
        # UTC: 2 days before Nov 28 is Nov 26.
        (
            "UTC",
            "2026-11-28T12:00:00Z",
            2,
            ["2026-11-26T00:00:00Z", "2026-11-26T23:59:59Z"],
            ["2026-11-25T23:59:59Z", "2026-11-27T00:00:00Z"],
        ),
        (
            "UTC",
            "2026-11-28T12:00:00Z",
            0,
            ["2026-11-28T00:00:00Z", "2026-11-28T23:00:00Z"],
            ["2026-11-27T23:59:59Z", "2026-11-29T00:00:00Z"],
        ),
        # New York: now is Nov 27 22:00 local, so 1 day ago is Nov 26 local = [05:00Z, next 05:00Z).
        (
            "America/New_York",
            "2026-11-28T03:00:00Z",
            1,
            ["2026-11-26T05:00:00Z", "2026-11-27T04:59:59Z"],
            ["2026-11-26T04:59:59Z", "2026-11-27T05:00:00Z"],
        ),
        # Kolkata (+05:30): now is Nov 29 01:30 local, so 1 day ago is Nov 28 local.
        (
            "Asia/Kolkata",
            "2026-11-28T20:00:00Z",
            1,
            ["2026-11-27T18:30:00Z", "2026-11-28T18:29:59Z"],
            ["2026-11-27T18:29:59Z", "2026-11-28T18:30:00Z"],
        ),
        # DST ends in New York on 2026-11-01: that day lasts 25 hours, [04:00Z, Nov 2 05:00Z).
        (
            "America/New_York",
            "2026-11-03T12:00:00Z",
            2,
            ["2026-11-01T04:00:00Z", "2026-11-02T04:59:59Z"],
            ["2026-11-01T03:59:59Z", "2026-11-02T05:00:00Z"],
        ),
        # DST starts in New York on 2026-03-08: that day lasts 23 hours, [05:00Z, Mar 9 04:00Z).
        (
            "America/New_York",
            "2026-03-09T12:00:00Z",
            1,
            ["2026-03-08T05:00:00Z", "2026-03-09T03:59:59Z"],
            ["2026-03-08T04:59:59Z", "2026-03-09T04:00:00Z"],
        ),
    ],
)
def test_exactly_days_ago_counts_calendar_days_in_the_zone(timezone, now, days, inside, outside):
    for stamp in inside:
        assert (
            both(
                cond("last_seen_at", "exactly_days_ago", days),
                {"last_seen_at": Decimal(int(T(stamp)))},
                T(now),
                timezone=timezone,
            )
            is True
        ), stamp
    for stamp in outside:
        assert (
            both(
                cond("last_seen_at", "exactly_days_ago", days),
                {"last_seen_at": Decimal(int(T(stamp)))},
                T(now),
                timezone=timezone,
            )
            is False
        ), stamp


# -- timestamps: fixed dates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "op", "value", "stored", "expected"),
    [
        ("UTC", "before", "2026-11-01", "2026-10-31T23:59:59Z", True),
        ("UTC", "before", "2026-11-01", "2026-11-01T00:00:00Z", False),
        ("America/New_York", "before", "2026-11-01", "2026-11-01T03:59:59Z", True),
        ("America/New_York", "before", "2026-11-01", "2026-11-01T04:00:00Z", False),
        ("UTC", "after", "2026-11-01T09:30:00+02:00", "2026-11-01T07:30:00Z", False),
        ("UTC", "after", "2026-11-01T09:30:00+02:00", "2026-11-01T07:30:01Z", True),
        ("UTC", "after", T("2026-11-01T00:00:00Z"), "2026-11-01T00:00:01Z", True),
        ("UTC", "after", "2026-11-01", "2026-11-01T00:00:00Z", False),
        ("UTC", "on", "2026-11-01", "2026-11-01T00:00:00Z", True),
        ("UTC", "on", "2026-11-01", "2026-11-01T23:59:59Z", True),
        ("UTC", "on", "2026-11-01", "2026-11-02T00:00:00Z", False),
        ("Asia/Kolkata", "on", "2026-11-01", "2026-10-31T18:30:00Z", True),
        ("Asia/Kolkata", "on", "2026-11-01", "2026-10-31T18:29:59Z", False),
        # `on` a timestamp means on that instant's calendar day in the zone.
        ("America/New_York", "on", "2026-11-02T02:00:00Z", "2026-11-01T12:00:00Z", True),
        ("America/New_York", "on", "2026-11-02T02:00:00Z", "2026-11-02T12:00:00Z", False),
    ],
)
def test_date_ops(timezone, op, value, stored, expected):
    record = {"signed_up_at": Decimal(int(T(stored)))}
    assert both(cond("signed_up_at", op, value), record, timezone=timezone) is expected


@pytest.mark.parametrize("stored", ["missing", None, "not a date", True])
@pytest.mark.parametrize(
    ("op", "value"),
    [
        ("less_than_days_ago", 100000),
        ("more_than_days_ago", 0),
        ("exactly_days_ago", 0),
        ("less_than_days_from_now", 100000),
        ("more_than_days_from_now", 0),
        ("before", "9999-12-31"),
        ("after", "0001-01-01"),
        ("on", "2026-11-28"),
    ],
)
def test_unknown_timestamps_make_every_op_false(stored, op, value):
    record = {} if stored == "missing" else {"last_seen_at": stored}
    assert both(cond("last_seen_at", op, value), record) is False


def test_a_timestamp_stored_as_iso_text_still_compares():
    record = {"custom_attributes": {"trial_ends_at": "2026-12-01T00:00:00Z"}}
    assert both(cond("custom_attributes.trial_ends_at", "less_than_days_from_now", 3), record) is True
    assert both(cond("custom_attributes.trial_ends_at", "less_than_days_from_now", 2), record) is False


# -- combinators -----------------------------------------------------------------------------------


def test_and_or_not():
    record = {"email": "ada@example.com", "session_count": Decimal(3)}
    yes, no = cond("email", "ends_with", "example.com"), cond("session_count", "gt", 5)
    assert both({"and": [yes, no]}, record) is False
    assert both({"and": [yes, {"not": no}]}, record) is True
    assert both({"or": [no, yes]}, record) is True
    assert both({"or": [no, {"not": yes}]}, record) is False
    assert both({"not": {"not": {"not": yes}}}, record) is False


# -- companies -------------------------------------------------------------------------------------


def test_company_fields_match_when_any_company_matches():
    user = {
        "companies": [{"plan": "Pro", "monthly_spend": Decimal(499)}, {"plan": "free", "size": Decimal(3)}]
    }
    assert both(cond("company.plan", "eq", "pro"), user) is True
    assert both(cond("company.plan", "ne", "pro"), user) is True  # the free one is not pro
    assert both({"not": cond("company.plan", "eq", "pro")}, user) is False
    assert both(cond("company.monthly_spend", "gt", 400), user) is True
    assert both(cond("company.size", "gt", 3), user) is False
    assert both(cond("company.size", "not_exists"), user) is True  # the pro one has no size


def test_each_company_condition_is_checked_on_its_own():
    # No single company is both pro and large, but each condition finds a company.
    user = {"companies": [{"plan": "pro", "size": Decimal(5)}, {"plan": "free", "size": Decimal(500)}]}
    assert both({"and": [cond("company.plan", "eq", "pro"), cond("company.size", "gt", 100)]}, user) is True


@pytest.mark.parametrize("user", [{}, {"companies": []}, {"companies": None}])
def test_a_user_without_companies_has_one_unknown_company(user):
    assert both(cond("company.plan", "not_exists"), user) is True
    assert both(cond("company.plan", "ne", "pro"), user) is True
    assert both(cond("company.plan", "eq", "pro"), user) is False
    assert both(cond("company.plan", "exists"), user) is False
    assert both(cond("company.custom_attributes.tier", "not_in", ["gold"]), user) is True


def test_company_custom_attributes_and_timestamps():
    user = {
        "companies": [
            {
                "custom_attributes": {"tier": "Gold", "renewed_at": Decimal(int(NOW - 2 * DAY))},
                "remote_created_at": Decimal(int(NOW - 400 * DAY)),
            }
        ]
    }
    assert both(cond("company.custom_attributes.tier", "eq", "gold"), user) is True
    assert both(cond("company.custom_attributes.renewed_at", "less_than_days_ago", 3), user) is True
    assert both(cond("company.remote_created_at", "more_than_days_ago", 365), user) is True


def test_company_filters_read_company_fields_directly():
    company = {
        "company_id": "acme",
        "plan": "PRO",
        "user_count": Decimal(3),
        "custom_attributes": {"seats": 10},
    }
    assert both(cond("plan", "eq", "pro"), company, target="companies") is True
    assert both(cond("user_count", "gte", 3), company, target="companies") is True
    assert both(cond("custom_attributes.seats", "lt", 10), company, target="companies") is False


@pytest.mark.parametrize(
    "field",
    [
        "name",
        "session_count",
        "unsubscribed_from_emails",
        "last_seen_at",
        "custom_attributes.plan",
        "custom_attributes.trial_ends_at",
    ],
)
@pytest.mark.parametrize(
    ("stored", "present"),
    [("missing", False), (None, False), ("text", True), ("", True), (Decimal(0), True), (False, True)],
)
def test_exists_means_any_stored_value_and_not_exists_missing_or_null(field, stored, present):
    if stored == "missing":
        record: dict = {"custom_attributes": {}}
    elif field.startswith("custom_attributes."):
        record = {"custom_attributes": {field.split(".")[1]: stored}}
    else:
        record = {field: stored}
    assert both(cond(field, "exists"), record) is present
    assert both(cond(field, "not_exists"), record) is not present


@pytest.mark.parametrize(
    ("stored", "ok", "bounced", "exists"),
    [
        ("missing", True, False, True),  # stored only once SES reports: absent is `ok`, never unknown
        ("bounced", False, True, True),
        ("complained", False, False, True),
        ("BOUNCED", False, True, True),  # string ops fold case, as for every string field
    ],
)
def test_email_status_absent_is_ok(stored: str, ok: bool, bounced: bool, exists: bool) -> None:
    record = {} if stored == "missing" else {"email_status": stored}
    assert both(cond("email_status", "eq", "ok"), record) is ok
    assert both(cond("email_status", "ne", "ok"), record) is not ok
    assert both(cond("email_status", "in", ["bounced", "complained"]), record) is (not ok)
    assert both(cond("email_status", "eq", "bounced"), record) is bounced
    assert both(cond("email_status", "exists"), record) is exists
    assert both(cond("email_status", "not_exists"), record) is not exists
    # Read once for several conditions (a shared local), the default holds too.
    shared = {"and": [cond("email_status", "exists"), cond("email_status", "starts_with", "o")]}
    assert both(shared, record) is ok


def test_email_status_is_a_user_field_only() -> None:
    from segmentation.engine.fields import COMPANY_FIELDS, EMAIL_STATUSES, FIELD_DEFAULTS, USER_FIELDS

    assert USER_FIELDS["email_status"] == "string" and FIELD_DEFAULTS["email_status"] in EMAIL_STATUSES
    assert not set(FIELD_DEFAULTS) & set(COMPANY_FIELDS)  # a company never reads a user's default


@pytest.mark.parametrize(
    ("stored", "has", "has_not"),
    [
        ({"tag_vip", "tag_beta"}, True, False),  # a string set, as boto3 returns it
        (["tag_vip"], True, False),  # a list (JSON)
        ({"tag_beta"}, False, True),
        (None, False, True),  # no tags: not_has_tag holds, like every negative op on unknown
        ("tag_vip", False, True),  # junk is no tags, not a substring match
    ],
)
def test_tag_ops(stored, has, has_not):
    record = {} if stored is None else {"tag_ids": stored}
    assert both(cond("tag", "has_tag", "tag_vip"), record) is has
    assert both(cond("tag", "not_has_tag", "tag_vip"), record) is has_not
