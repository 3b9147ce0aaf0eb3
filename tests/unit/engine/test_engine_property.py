"""Property tests: the compiled engine agrees with the plain reference interpreter, and next_change
never reports a change later than one that happens."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from unittest.mock import patch

from engine_helpers import ATTRIBUTES, DAY, NOW
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segmentation.engine import SegmentDef, Workspace, compiler
from segmentation.engine.fields import (
    BOOLEAN_OPS,
    COMPANY_FIELDS,
    DAYS_OPS,
    NUMBER_OPS,
    PRESENCE_OPS,
    STRING_OPS,
    TAG_OPS,
    USER_FIELDS,
)
from segmentation.engine.reference import evaluate
from segmentation.engine.segments import PREDEFINED_IDS, PREDEFINED_SEGMENTS
from segmentation.event_summaries.stored import added

ZONES = ["UTC", "America/New_York", "Asia/Kolkata"]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- values ----------------------------------------------------------------------------------------

short_text = st.text(alphabet="aAbBß ", max_size=3)
numbers = st.sampled_from([0, 1, 2, -1, 2.5, 1e9, 0.1, 1 / 3])
# Stored numbers are Decimal (as DynamoDB returns them) or int/float (tests, the local stack), and
# include values a hair either side of the constants, where Decimal and float answers could part.
stored_numbers = st.one_of(
    numbers,
    numbers.map(lambda n: Decimal(str(n))),
    numbers.map(lambda n: Decimal(n) + Decimal("1e-30")),
    numbers.map(lambda n: Decimal(n) - Decimal("1e-20")),
    st.integers(-2, 3).map(Decimal),
    st.just(Decimal("2.50")),
    st.just(Decimal("0.1")),
)
# Timestamps and nows on a coarse grid around NOW, so that the day boundaries of the ops are hit often.
DAY_OFFSETS = [0, 0.5, 1, 1.25, 2, 3, 30, 31]
stored_timestamps = st.builds(
    lambda days, sign, hours, seconds, fraction: (
        Decimal(int(NOW + sign * days * DAY + hours * 3600 + seconds)) + fraction
    ),
    st.sampled_from(DAY_OFFSETS),
    st.sampled_from([1, -1]),
    st.sampled_from([0, 0, 6, -12]),
    st.sampled_from([0, 0, -1, 1]),
    st.sampled_from([Decimal(0), Decimal(0), Decimal("0.5")]),
)
# Nows with a fraction of a second (like time.time()), and stored timestamps on the very instants
# the ops compare with (now - N days etc.), as the float itself, its Decimal text, or a hair off.
FRACTIONAL_NOWS = [NOW + 0.1234567, NOW - 3600.7, NOW + 1 / 3]
boundary_timestamps = st.builds(
    lambda now, days, sign, form: form(now + sign * days * DAY),
    st.sampled_from(FRACTIONAL_NOWS),
    st.sampled_from([0, 0.5, 1, 1.25, 2, 30]),
    st.sampled_from([1, -1]),
    st.sampled_from(
        [
            float,
            lambda t: Decimal(repr(t)),
            Decimal,
            lambda t: Decimal(t) + Decimal("1e-25"),
            lambda t: Decimal(t) - Decimal("1e-25"),
            lambda t: round(t, 3),
        ]
    ),
)
stored_timestamps = st.one_of(
    stored_timestamps, boundary_timestamps, stored_timestamps.map(float), stored_timestamps.map(int)
)
nows = st.one_of(
    st.sampled_from([0, 6, -12, 18, -5]).map(lambda hours: NOW + hours * 3600),
    st.sampled_from(FRACTIONAL_NOWS),
)
odd_values = st.sampled_from(
    [None, True, False, "x", Decimal(1), "2026-11-28T00:00:00Z", Decimal("NaN"), float("nan")]
)
STORED = {
    "string": st.one_of(short_text, odd_values),
    "number": st.one_of(stored_numbers, odd_values),
    "boolean": st.one_of(st.booleans(), odd_values),
    "timestamp": st.one_of(stored_timestamps, odd_values),
}
dates = st.sampled_from(["2026-11-26", "2026-11-27", "2026-11-28", "2026-11-29", "2026-10-31"])
instants = st.one_of(
    st.sampled_from(["2026-11-27T00:00:00Z", "2026-11-28T05:30:00+05:30", "2026-11-26T19:00:00-05:00"]),
    st.integers(-3, 3).map(lambda d: int(NOW + d * DAY)),
)


def fields_of(target: str, prefix: str = "") -> list[tuple[str, str]]:
    standard = USER_FIELDS if target == "users" else COMPANY_FIELDS
    fields = [(prefix + name, kind) for name, kind in standard.items()]
    return fields + [(f"{prefix}custom_attributes.{name}", kind) for name, kind in ATTRIBUTES[target].items()]


USER_CONDITION_FIELDS = fields_of("users") + fields_of("companies", "company.")


TAG_IDS = sorted(ATTRIBUTES["tags"])
# A user's `tag_ids` as boto3 returns a string set, as a list (JSON, tests), or junk beside.
stored_tags = st.one_of(
    st.sets(st.sampled_from([*TAG_IDS, "tag_other"])),
    st.lists(st.sampled_from([*TAG_IDS, "tag_other", 3])),
    st.sampled_from([None, "tag_vip", 3, {"tag_vip": 1}]),
)


EVENT_FIELDS = [
    (f"event.{name}.{stat}", "number" if stat == "count" else "timestamp")
    for name in ("uploaded_photo", "Invited.Teammate")
    for stat in ("count", "first_at", "last_at")
]


@st.composite
def conditions(draw: Any, segment_ids: list[str]) -> dict[str, Any]:
    if segment_ids and draw(st.integers(0, 5)) == 0:
        op = draw(st.sampled_from(["in_segment", "not_in_segment"]))
        return {"field": "segment", "op": op, "value": draw(st.sampled_from(segment_ids))}
    if draw(st.integers(0, 7)) == 0:
        op = draw(st.sampled_from(TAG_OPS))
        return {"field": "tag", "op": op, "value": draw(st.sampled_from(TAG_IDS))}
    field, kind = draw(st.sampled_from(USER_CONDITION_FIELDS + EVENT_FIELDS))
    ops = {
        "string": STRING_OPS,
        "number": NUMBER_OPS,
        "boolean": BOOLEAN_OPS,
        "timestamp": (*DAYS_OPS, "before", "after", "on"),
    }[kind]
    op = draw(st.sampled_from(PRESENCE_OPS + ops))
    condition: dict[str, Any] = {"field": field, "op": op}
    if field.endswith(".count") and draw(st.booleans()):
        condition["within_days"] = draw(st.sampled_from([1, 2, 3, 7, 90]))
    if op in PRESENCE_OPS or op in BOOLEAN_OPS:
        return condition
    if op in ("in", "not_in"):
        condition["value"] = draw(
            st.lists(short_text if kind == "string" else numbers, min_size=1, max_size=3)
        )
    elif kind == "string":
        condition["value"] = draw(short_text)
    elif kind == "number":
        condition["value"] = draw(numbers)
    elif op == "exactly_days_ago":
        condition["value"] = draw(st.integers(0, 3))
    elif op in DAYS_OPS:
        condition["value"] = draw(st.sampled_from([0, 0.5, 1, 2, 30, 1.25]))
    else:
        condition["value"] = draw(st.one_of(dates, instants))
    return condition


def filters(segment_ids: list[str], depth: int = 3) -> st.SearchStrategy[dict[str, Any]]:
    leaf = conditions(segment_ids)
    if depth == 0:
        return leaf
    child = filters(segment_ids, depth - 1)
    return st.one_of(
        leaf,
        st.lists(child, min_size=1, max_size=3).map(lambda items: {"and": items}),
        st.lists(child, min_size=1, max_size=3).map(lambda items: {"or": items}),
        child.map(lambda item: {"not": item}),
    )


@st.composite
def workspaces(draw: Any) -> list[SegmentDef]:
    """Up to 4 segments; each may refer to the predefined ones and to those made before it."""
    made: list[SegmentDef] = []
    for index in range(draw(st.integers(0, 4))):
        ids = [s.id for s in PREDEFINED_SEGMENTS] + [s.id for s in made]
        made.append(SegmentDef(f"seg{index}", f"Segment {index}", "users", draw(filters(ids, depth=2))))
    return made


@st.composite
def records(draw: Any, target: str) -> dict[str, Any]:
    record: dict[str, Any] = {}
    standard = USER_FIELDS if target == "users" else COMPANY_FIELDS
    for name, kind in standard.items():
        if draw(st.booleans()):
            record[name] = draw(STORED[kind])
    custom = {name: draw(STORED[kind]) for name, kind in ATTRIBUTES[target].items() if draw(st.booleans())}
    if custom or draw(st.booleans()):
        record["custom_attributes"] = custom
    if target == "users" and draw(st.booleans()):
        record["events"] = draw(event_summaries())
    if target == "users" and draw(st.booleans()):
        record["tag_ids"] = draw(stored_tags)
    if target == "users" and draw(st.booleans()):
        company = st.one_of(records("companies"), st.sampled_from(["junk", None, 3]))
        record["companies"] = draw(st.one_of(st.lists(company, max_size=3), st.sampled_from([None, "x"])))
    return record


# Event times around NOW, on and near the window edges (whole days, and 5 minutes ahead).
event_times = st.builds(
    lambda days, seconds: Decimal(int(NOW - days * DAY + seconds)),
    st.sampled_from([0, 0.5, 1, 1.5, 2, 3, 7, 8, 89.5, 90, 91, 120]),
    st.sampled_from([0, 0, 1, -1, 300, -3600, 7200]),
)


@st.composite
def event_summaries(draw: Any) -> Any:
    """A user's `events` as recording builds it (events.added), sometimes with junk beside."""
    events: dict[str, Any] = {}
    for name in draw(
        st.lists(st.sampled_from(["uploaded_photo", "invited.teammate"]), max_size=2, unique=True)
    ):
        summary: dict[str, Any] | None = None
        for at in draw(st.lists(event_times, min_size=1, max_size=30)):
            summary = added(summary, at, NOW)
        events[name] = summary
    if draw(st.integers(0, 5)) == 0:
        events["uploaded_photo"] = draw(st.sampled_from([None, "junk", {"n": "x", "d": "y"}, {}]))
    return draw(st.sampled_from([events, events, "junk", None]))


def reference_segments(segments: list[SegmentDef], record: dict[str, Any], now: float, zone: str) -> set[str]:
    by_id = {s.id: s for s in segments}
    everything = list(PREDEFINED_SEGMENTS) + segments
    return {
        s.id
        for s in everything
        if evaluate(
            s.filter, record, now, target="users", segments=by_id, attributes=ATTRIBUTES, timezone=zone
        )
    }


# -- properties ------------------------------------------------------------------------------------

# Segments, a few users, a time zone and an instant (near NOW by the hour, or anywhere).
SEGMENTS_USERS_ZONE_NOW = given(
    workspaces(),
    st.lists(records("users"), min_size=1, max_size=3),
    st.sampled_from(ZONES),
    st.one_of(st.integers(-2 * 24, 2 * 24).map(lambda h: NOW + h * 3600), nows),
)


@SETTINGS
@SEGMENTS_USERS_ZONE_NOW
def test_segments_of_agrees_with_the_reference(segments, users, zone, now):
    typed = Workspace(segments, timezone=zone, attributes=ATTRIBUTES)
    lenient = Workspace(segments, timezone=zone)
    for user in users:
        expected = reference_segments(segments, user, now, zone)
        assert typed.segments_of(user, now) == expected
        assert lenient.segments_of(user, now) == expected


@SETTINGS
@SEGMENTS_USERS_ZONE_NOW
def test_ranked_fields_agree_with_the_reference(segments, users, zone, now):
    """Every number and timestamp field answered through its rank among its sorted cuts, as a
    workspace does for a field that many segments test (engine/bounds.py)."""
    with patch.object(compiler, "RANK_MIN_CONDITIONS", 1):
        workspace = Workspace(segments, timezone=zone, attributes=ATTRIBUTES)
        predicates = {s.id: workspace.predicate(s.filter) for s in segments}
    assert "_bisect(" in workspace.sources["users"]  # the predefined segments alone rank two fields
    for user in users:
        expected = reference_segments(segments, user, now, zone)
        assert workspace.segments_of(user, now) == expected
        assert {sid for sid, holds in predicates.items() if holds(user, now)} == expected - PREDEFINED_IDS


@SETTINGS
@given(workspaces(), st.data(), records("users"), st.sampled_from(ZONES), nows)
def test_predicate_agrees_with_the_reference(segments, data, user, zone, now):
    ids = [s.id for s in PREDEFINED_SEGMENTS] + [s.id for s in segments]
    raw = data.draw(filters(ids))
    workspace = Workspace(segments, timezone=zone, attributes=ATTRIBUTES)
    expected = evaluate(
        raw,
        user,
        now,
        target="users",
        segments={s.id: s for s in segments},
        attributes=ATTRIBUTES,
        timezone=zone,
    )
    assert workspace.predicate(raw)(user, now) is expected


@SETTINGS
@given(workspaces(), records("users"), st.sampled_from(ZONES), nows)
def test_nothing_changes_before_next_change(segments, user, zone, now):
    workspace = Workspace(segments, timezone=zone, attributes=ATTRIBUTES)
    current = workspace.segments_of(user, now)
    change = workspace.next_change(user, now)
    if change is None:
        probes = [now + 1, now + 37 * DAY, now + 400 * DAY]
    else:
        assert change > now
        probes = [now + (change - now) * fraction for fraction in (0.001, 0.5, 0.999)] + [change - 0.001]
    for probe in probes:
        if now < probe and (change is None or probe < change):  # strictly between now and the change
            assert workspace.segments_of(user, probe) == current, (change, probe)
