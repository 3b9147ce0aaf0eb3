"""Differential test: random sequences of API operations on the in-process local stack, then every
read path of membership compared with a plain reference evaluation of the test's own model.

Each example
1. empties the workspace through the API (and moves the clock back to 0),
2. applies a random sequence of operations (upserts, deletes, delete-then-recreate before the stream
   has seen the delete, companies, segment create/edit/delete, logins, clock moves, the nightly
   rebuild, manual and auto messages), draining the stream and queues only at random points,
3. drains, and compares with `segmentation.engine.reference.evaluate` over the model:
   members (all pages) and `count` of every segment, each user's and company's `segments`,
   `user_count` of each company, search by `in_segment` (all pages), the deliveries of manual
   in-app messages (one sent at check time, and any sent during the sequence), and the segments
   a login answers with,
4. deletes everything through the API again and checks that the reads show an empty workspace.

Answers of every write are compared too (201/200, 204/404, 409 for a segment in use, 422 for a
cycle): the model predicts when a 409 or 422 must come, and keeps its state when it does. On a
mismatch the assertion prints the operations (as run, with resolved ids and filters) and, for each
read path, what the reference expected and what the stack answered.

Where API.md leaves something open, the model follows what the product does:
- `company_ids: null` means no companies; a user listing only companies that do not exist is
  evaluated like a user without companies;
- a company's `user_count` counts every existing user listing its id, including users that listed
  it before the company was created;
- a manual message goes to the members at the instant of the send: the fan-out runs right after
  the send (as it does within seconds deployed), before the next operation.

Run: `.venv/bin/pytest tests/differential -p no:cacheprovider` (add `--hypothesis-seed=N` to pin the
seed, `-m "not differential"` elsewhere to leave it out). DIFFTEST_EXAMPLES and
DIFFTEST_SHRINK_SECONDS override the number of examples (25) and the shrinking budget (10 s: an
example takes 1-5 s, so the default barely shrinks; give it 300 for a short sequence; Hypothesis's
warning then still speaks of "five minutes"). DIFFTEST_TRACE=<file> appends every passing
example's operations to that file.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import engine as hypothesis_engine
from segmentation import clock
from segmentation.engine.reference import evaluate
from segmentation.engine.segments import PREDEFINED_SEGMENTS, SegmentDef, find_cycle, raw_references

from tests.differential.conftest import USER_ATTRIBUTE_TYPES, Api

pytestmark = [pytest.mark.differential, pytest.mark.long]

DAY = 86400.0
N_USERS = 5
N_COMPANIES = 3
PREDEFINED_IDS = tuple(s.id for s in PREDEFINED_SEGMENTS)
ATTRIBUTES: dict[str, dict[str, str]] = {"users": dict(USER_ATTRIBUTE_TYPES), "companies": {}}
MAX_EXAMPLES = int(os.environ.get("DIFFTEST_EXAMPLES", "25"))
SHRINK_SECONDS = int(os.environ.get("DIFFTEST_SHRINK_SECONDS", "10"))
TRACE_FILE = os.environ.get("DIFFTEST_TRACE")  # append every passing example's report to this file

# Time. Ages (days before the stack's now at the moment of the write) all have a fraction of .2,
# .3 or .8, clock offsets are 0, 0.6, 2 or 31 days, and day thresholds are whole or half days:
# however the clock moves, every timestamp stays >= 0.1 day (2.4 h) away from every threshold,
# so the seconds a run takes never flip a result and the reference needs no tolerance.
AGES = (0.2, 0.8, 1.3, 6.8, 29.8, 30.2, 45.3)
CLOCK_OFFSETS_DAYS = (0.0, 0.6, 2.0, 31.0)
DAY_THRESHOLDS = (0.5, 1, 7, 30)
USER_PLANS = ("free", "pro", "trial", "Pro")
PLAN_VALUES = ("pro", "FREE", "trial")  # in filters: string comparisons are case-insensitive
PHOTOS = (0, 2, 3, 7, 12)
COMPANY_PLANS = ("free", "pro", "PRO")
COMPANY_SIZES = (1, 5, 40)


# ---- operations (abstract: indices into small pools, ages in days, unresolved references) --------


@dataclass(frozen=True)
class Ref:
    """A segment reference, resolved when the operation runs: the k-th (mod n) existing segment."""

    k: int

    def __repr__(self) -> str:
        return f"Ref({self.k})"


@dataclass
class UpsertUser:
    user: int
    fields: dict[str, Any]  # signed_up_at/last_seen_at: age (days) | None; plan, photos; company_ids


@dataclass
class DeleteUser:
    user: int


@dataclass
class RecreateUser:
    """DELETE then POST at once (the stream has seen neither when the POST lands)."""

    user: int
    fields: dict[str, Any]


@dataclass
class UpsertCompany:
    company: int
    fields: dict[str, Any]  # plan, size (None: null)


@dataclass
class DeleteCompany:
    company: int


@dataclass
class CreateSegment:
    target: str
    filter: dict[str, Any]


@dataclass
class EditSegment:
    slot: int
    user_filter: dict[str, Any]
    company_filter: dict[str, Any]


@dataclass
class DeleteSegment:
    slot: int


@dataclass
class Login:
    user: int
    age: float | None  # None: no body (at = now)


@dataclass
class MoveClock:
    days: float


@dataclass
class NightlyRebuild:
    pass


@dataclass
class Drain:
    pass


@dataclass
class SendManual:
    """Drain, then send a manual in-app message to a user segment; its audience is that instant's."""

    segment: Ref


@dataclass
class LiveAutoMessage:
    """An auto in-app message, put live, whose audience refers to a user segment."""

    segment: Ref
    in_filter: bool  # the reference sits in the audience filter rather than in segment_id


@dataclass
class PauseMessage:
    slot: int


@dataclass
class DeleteMessage:
    slot: int


Operation = (
    UpsertUser
    | DeleteUser
    | RecreateUser
    | UpsertCompany
    | DeleteCompany
    | CreateSegment
    | EditSegment
    | DeleteSegment
    | Login
    | MoveClock
    | NightlyRebuild
    | Drain
    | SendManual
    | LiveAutoMessage
    | PauseMessage
    | DeleteMessage
)


# ---- strategies ----------------------------------------------------------------------------------


def _maybe_null[T](values: tuple[T, ...]) -> st.SearchStrategy[T | None]:
    return st.sampled_from((*values, None))


USER_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "signed_up_at": _maybe_null(AGES),
        "last_seen_at": _maybe_null(AGES),
        "plan": _maybe_null(USER_PLANS),
        "photos": _maybe_null(PHOTOS),
        "company_ids": st.none() | st.lists(st.integers(0, N_COMPANIES - 1), max_size=2).map(tuple),
    },
)
COMPANY_FIELDS = st.fixed_dictionaries(
    {}, optional={"plan": _maybe_null(COMPANY_PLANS), "size": _maybe_null(COMPANY_SIZES)}
)


def _condition(field_name: str, ops: tuple[str, ...], values: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return st.builds(
        lambda op, value: {"field": field_name, "op": op, "value": value},
        st.sampled_from(ops),
        st.sampled_from(values),
    )


SEGMENT_CONDITION = st.builds(
    lambda op, ref: {"field": "segment", "op": op, "value": ref},
    st.sampled_from(("in_segment", "not_in_segment")),
    st.integers(0, 7).map(Ref),
)
USER_CONDITIONS = st.one_of(
    _condition("custom_attributes.plan", ("eq", "ne"), PLAN_VALUES),
    _condition("custom_attributes.photos", ("gte", "lt"), (0, 3, 10)),
    _condition("signed_up_at", ("less_than_days_ago", "more_than_days_ago"), DAY_THRESHOLDS),
    st.sampled_from(("exists", "not_exists")).map(lambda op: {"field": "last_seen_at", "op": op}),
    _condition("session_count", ("gte",), (1, 2)),
    _condition("company.plan", ("eq",), ("pro", "FREE")),
    _condition("company.user_count", ("gte",), (1, 2, 3)),
    _condition("company.user_count", ("gte",), (1, 2, 3)),  # twice: derived counts are the subtle part
    SEGMENT_CONDITION,
)
COMPANY_CONDITIONS = st.one_of(
    _condition("plan", ("eq", "ne"), ("pro", "FREE")),
    _condition("size", ("gte", "lt"), (5, 10)),
    _condition("user_count", ("gte",), (1, 2)),
    SEGMENT_CONDITION,
)


def _filters(conditions: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        conditions,
        lambda children: st.one_of(
            st.lists(children, min_size=1, max_size=3).map(lambda items: {"and": items}),
            st.lists(children, min_size=1, max_size=3).map(lambda items: {"or": items}),
            children.map(lambda item: {"not": item}),
        ),
        max_leaves=4,
    )


USER_FILTERS = _filters(USER_CONDITIONS)
COMPANY_FILTERS = _filters(COMPANY_CONDITIONS)

USER_INDEX = st.integers(0, N_USERS - 1)
COMPANY_INDEX = st.integers(0, N_COMPANIES - 1)
SLOT = st.integers(0, 7)

# (weight, operation) pairs. Each example leaves out a few kinds ("swarm testing"), so that some
# examples never drain or rebuild before the end, others never delete, and so on.
_WEIGHTED: tuple[tuple[int, st.SearchStrategy[Any]], ...] = (
    (4, st.builds(UpsertUser, USER_INDEX, USER_FIELDS)),
    (2, st.builds(RecreateUser, USER_INDEX, USER_FIELDS)),
    (1, st.builds(DeleteUser, USER_INDEX)),
    (2, st.builds(UpsertCompany, COMPANY_INDEX, COMPANY_FIELDS)),
    (1, st.builds(DeleteCompany, COMPANY_INDEX)),
    (1, st.builds(CreateSegment, st.just("users"), USER_FILTERS)),
    (1, st.builds(CreateSegment, st.just("companies"), COMPANY_FILTERS)),
    (2, st.builds(EditSegment, SLOT, USER_FILTERS, COMPANY_FILTERS)),
    (2, st.builds(DeleteSegment, SLOT)),
    (2, st.builds(Login, USER_INDEX, st.none() | st.sampled_from(AGES))),
    (1, st.builds(MoveClock, st.sampled_from(CLOCK_OFFSETS_DAYS))),
    (1, st.just(NightlyRebuild())),
    (2, st.builds(SendManual, SLOT.map(Ref))),
    (2, st.builds(LiveAutoMessage, SLOT.map(Ref), st.booleans())),
    (1, st.builds(PauseMessage, SLOT)),
    (1, st.builds(DeleteMessage, SLOT)),
    (2, st.just(Drain())),
)


def _operations(disabled: frozenset[int]) -> st.SearchStrategy[list[Any]]:
    kinds: list[st.SearchStrategy[Any]] = []
    for index, (weight, strategy) in enumerate(_WEIGHTED):
        if index not in disabled:
            kinds += [strategy] * weight
    return st.lists(st.one_of(kinds), min_size=6, max_size=24)


OPERATIONS = st.frozensets(st.integers(0, len(_WEIGHTED) - 1), max_size=6).flatmap(_operations)


# Each example starts from a few complete companies and users and some segments, written and not
# yet drained (so that the first operations race the stream).
SETUP_COMPANY_FIELDS = st.fixed_dictionaries(
    {"plan": st.sampled_from(COMPANY_PLANS), "size": st.sampled_from(COMPANY_SIZES)}
)
SETUP_USER_FIELDS = st.fixed_dictionaries(
    {
        "signed_up_at": st.sampled_from(AGES),
        "plan": st.sampled_from(USER_PLANS),
        "photos": st.sampled_from(PHOTOS),
        "company_ids": st.lists(COMPANY_INDEX, min_size=1, max_size=2, unique=True).map(tuple),
    },
    optional={"last_seen_at": st.sampled_from(AGES)},
)
SETUP = st.tuples(
    st.lists(SETUP_COMPANY_FIELDS, max_size=N_COMPANIES).map(
        lambda fields: [UpsertCompany(i, f) for i, f in enumerate(fields)]
    ),
    st.lists(SETUP_USER_FIELDS, min_size=1, max_size=N_USERS).map(
        lambda fields: [UpsertUser(i, f) for i, f in enumerate(fields)]
    ),
    st.lists(st.builds(CreateSegment, st.just("users"), USER_FILTERS), min_size=1, max_size=3),
    st.lists(st.builds(CreateSegment, st.just("companies"), COMPANY_FILTERS), max_size=2),
).map(lambda parts: [op for part in parts for op in part])


# ---- the model -----------------------------------------------------------------------------------


@dataclass
class AutoMessage:
    id: str
    segment_id: str
    in_filter: bool
    state: str = "live"


@dataclass
class ManualSend:
    id: str
    segment_id: str
    step: int
    expected: frozenset[str]
    fanout_pending: bool = True  # no drain since the send
    dont_care: set[str] = field(default_factory=set)  # deleted (or re-created) before the fan-out ran


class Mismatch(AssertionError):
    pass


def _fmt(values: Any) -> str:
    return "[" + ", ".join(sorted(str(v) for v in values)) + "]"


class Run:
    """One example: the operations against the stack, and the model they should produce."""

    def __init__(self, api: Api, prefix: str) -> None:
        self.api = api
        self.prefix = prefix
        self.users: dict[str, dict[str, Any]] = {}
        self.companies: dict[str, dict[str, Any]] = {}
        self.segments: dict[str, SegmentDef] = {}  # in creation order
        self.auto_messages: list[AutoMessage] = []
        self.manual_sends: list[ManualSend] = []
        self.log: list[str] = []
        self.drained = True
        self.names = 0

    # -- ids and references --

    def uid(self, index: int) -> str:
        return f"{self.prefix}u{index}"

    def cid(self, index: int) -> str:
        return f"{self.prefix}c{index}"

    def user_segment_ids(self) -> list[str]:
        return [*PREDEFINED_IDS, *(s.id for s in self.segments.values() if s.target == "users")]

    def audience_segment(self, ref: Ref) -> str:
        """A user segment for a message: the stored ones first (they can be edited and deleted)."""
        candidates = [*self.user_segment_ids()[len(PREDEFINED_IDS) :], *PREDEFINED_IDS]
        return candidates[ref.k % len(candidates)]

    def company_segment_ids(self) -> list[str]:
        return [s.id for s in self.segments.values() if s.target == "companies"]

    def resolve(self, raw: Any, target: str) -> Any:
        """The filter with each Ref replaced by an existing segment of the target (or a fallback)."""
        if isinstance(raw, list):
            return [self.resolve(item, target) for item in raw]
        if not isinstance(raw, dict):
            return raw
        if raw.get("field") == "segment" and isinstance(raw.get("value"), Ref):
            candidates = self.user_segment_ids() if target == "users" else self.company_segment_ids()
            if not candidates:  # no company segment yet
                return {"field": "plan", "op": "exists"}
            return {**raw, "value": candidates[raw["value"].k % len(candidates)]}
        return {key: self.resolve(value, target) for key, value in raw.items()}

    # -- the reference --

    def user_count(self, company_id: str) -> int:
        return sum(company_id in user["company_ids"] for user in self.users.values())

    def company_record(self, company_id: str) -> dict[str, Any]:
        fields = self.companies[company_id]
        return {
            "company_id": company_id,
            **fields,
            "custom_attributes": {},
            "user_count": self.user_count(company_id),
        }

    def user_record(self, user_id: str) -> dict[str, Any]:
        user = self.users[user_id]
        record = {key: value for key, value in user.items() if key != "custom_attributes"}
        record.update(
            user_id=user_id,
            unsubscribed_from_emails=False,
            custom_attributes=dict(user["custom_attributes"]),
            companies=[self.company_record(c) for c in user["company_ids"] if c in self.companies],
        )
        return record

    def matches(self, segment_id: str, target: str, record: Mapping[str, Any], now: float) -> bool:
        segment = self.segments.get(segment_id) or next(s for s in PREDEFINED_SEGMENTS if s.id == segment_id)
        return evaluate(
            segment.filter, record, now, target=target, segments=self.segments, attributes=ATTRIBUTES
        )

    def expected_members(self, segment_id: str, target: str, now: float) -> frozenset[str]:
        if target == "users":
            return frozenset(
                u for u in self.users if self.matches(segment_id, "users", self.user_record(u), now)
            )
        return frozenset(
            c for c in self.companies if self.matches(segment_id, "companies", self.company_record(c), now)
        )

    # -- running operations --

    def expect(self, what: str, got: int, wanted: int, body: bytes = b"") -> None:
        if got != wanted:
            raise Mismatch(f"{what}: expected status {wanted}, got {got} {body[:400]!r}")

    def step(self, text: str) -> None:
        self.log.append(text)

    def apply(self, op: Any) -> None:
        handler: Callable[[Any], None] = getattr(self, "_" + type(op).__name__)
        handler(op)

    def _user_body(self, user_id: str, fields: Mapping[str, Any], now: float) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": user_id}
        custom: dict[str, Any] = {}
        for name, value in fields.items():
            if name in ("signed_up_at", "last_seen_at"):
                body[name] = None if value is None else int(now - value * DAY)
            elif name == "company_ids":
                body[name] = None if value is None else [self.cid(i) for i in value]
            else:
                custom[name] = value
        if custom:
            body["custom_attributes"] = custom
        return body

    def _apply_user_body(self, body: Mapping[str, Any]) -> None:
        user = self.users.setdefault(
            body["user_id"], {"session_count": 0, "custom_attributes": {}, "company_ids": []}
        )
        for name in ("signed_up_at", "last_seen_at"):
            if name in body:
                if body[name] is None:
                    user.pop(name, None)
                else:
                    user[name] = body[name]
        if "company_ids" in body:
            user["company_ids"] = list(dict.fromkeys(body["company_ids"] or []))
        for name, value in (body.get("custom_attributes") or {}).items():
            if value is None:
                user["custom_attributes"].pop(name, None)
            else:
                user["custom_attributes"][name] = value

    def _upsert(self, user_id: str, fields: Mapping[str, Any]) -> None:
        body = self._user_body(user_id, fields, clock.now())
        response = self.api.call("POST", "/v1/users", body, role="ingest")
        wanted = 200 if user_id in self.users else 201
        text = f"POST /v1/users {body} -> {response.status}"
        self.step(text)
        self.expect(text, response.status, wanted, response.body)
        self._apply_user_body(body)
        self.drained = False

    def _delete_user(self, user_id: str) -> None:
        response = self.api.call("DELETE", f"/v1/users/{user_id}", role="ingest")
        text = f"DELETE /v1/users/{user_id} -> {response.status}"
        self.step(text)
        self.expect(text, response.status, 204 if user_id in self.users else 404, response.body)
        self.users.pop(user_id, None)
        for send in self.manual_sends:
            if send.fanout_pending:
                send.dont_care.add(user_id)
        self.drained = False

    def _UpsertUser(self, op: UpsertUser) -> None:
        self._upsert(self.uid(op.user), op.fields)

    def _DeleteUser(self, op: DeleteUser) -> None:
        self._delete_user(self.uid(op.user))

    def _RecreateUser(self, op: RecreateUser) -> None:
        user_id = self.uid(op.user)
        self._delete_user(user_id)
        self._upsert(user_id, op.fields)

    def _UpsertCompany(self, op: UpsertCompany) -> None:
        company_id = self.cid(op.company)
        body = {"company_id": company_id, **op.fields}
        response = self.api.call("POST", "/v1/companies", body, role="ingest")
        text = f"POST /v1/companies {body} -> {response.status}"
        self.step(text)
        self.expect(text, response.status, 200 if company_id in self.companies else 201, response.body)
        company = self.companies.setdefault(company_id, {})
        for name, value in op.fields.items():
            if value is None:
                company.pop(name, None)
            else:
                company[name] = value
        self.drained = False

    def _DeleteCompany(self, op: DeleteCompany) -> None:
        company_id = self.cid(op.company)
        response = self.api.call("DELETE", f"/v1/companies/{company_id}", role="ingest")
        text = f"DELETE /v1/companies/{company_id} -> {response.status}"
        self.step(text)
        self.expect(text, response.status, 204 if company_id in self.companies else 404, response.body)
        self.companies.pop(company_id, None)
        self.drained = False

    def _CreateSegment(self, op: CreateSegment) -> None:
        filter_ = self.resolve(op.filter, op.target)
        self.names += 1
        name = f"{self.prefix}s{self.names}"
        body = {"name": name, "target": op.target, "filter": filter_}
        response = self.api.call("POST", "/v1/segments", body, role="write")
        segment_id = (response.json() or {}).get("id") if response.status == 201 else None
        text = f"POST /v1/segments {body} -> {response.status} {segment_id or ''}"
        self.step(text)
        self.expect(text, response.status, 201, response.body)
        assert segment_id is not None
        self.segments[segment_id] = SegmentDef(segment_id, name, op.target, filter_)

    def _edges(self, replaced: str | None = None, filter_: Any = None) -> dict[str, list[str]]:
        return {
            sid: raw_references(filter_ if sid == replaced else s.filter) for sid, s in self.segments.items()
        }

    def _EditSegment(self, op: EditSegment) -> None:
        if not self.segments:
            self.step(f"{op}: no segment to edit (nothing sent)")
            return
        segment = list(self.segments.values())[op.slot % len(self.segments)]
        raw = op.user_filter if segment.target == "users" else op.company_filter
        filter_ = self.resolve(raw, segment.target)
        cycle = find_cycle([segment.id], self._edges(segment.id, filter_))
        response = self.api.call("PUT", f"/v1/segments/{segment.id}", {"filter": filter_}, role="admin")
        text = f"PUT /v1/segments/{segment.id} {{'filter': {filter_}}} -> {response.status}"
        self.step(text + (f" (model: cycle {cycle})" if cycle else ""))
        self.expect(text, response.status, 422 if cycle else 200, response.body)
        if not cycle:
            self.segments[segment.id] = SegmentDef(segment.id, segment.name, segment.target, filter_)

    def _dependents(self, segment_id: str) -> list[str]:
        referring = [sid for sid, s in self.segments.items() if segment_id in raw_references(s.filter)]
        messages = [m.id for m in self.auto_messages if m.segment_id == segment_id]
        return referring + messages

    def _DeleteSegment(self, op: DeleteSegment) -> None:
        if not self.segments:
            self.step(f"{op}: no segment to delete (nothing sent)")
            return
        # Segments a live or paused message uses come first: deleting them must be refused.
        used = {m.segment_id for m in self.auto_messages}
        candidates = sorted(self.segments, key=lambda sid: sid not in used)  # stable: creation order
        self._delete_segment(candidates[op.slot % len(candidates)])

    def _delete_segment(self, segment_id: str) -> None:
        dependents = self._dependents(segment_id)
        response = self.api.call("DELETE", f"/v1/segments/{segment_id}", role="admin")
        text = f"DELETE /v1/segments/{segment_id} -> {response.status}"
        self.step(text + (f" (model: in use by {dependents})" if dependents else ""))
        self.expect(text, response.status, 409 if dependents else 204, response.body)
        if not dependents:
            del self.segments[segment_id]

    def _Login(self, op: Login) -> None:
        self._login(self.uid(op.user), op.age)

    def _login(self, user_id: str, age: float | None) -> dict[str, Any] | None:
        now = clock.now()
        at = math.floor(now * 1000) / 1000 if age is None else int(now - age * DAY)
        body = None if age is None else {"at": at}
        response = self.api.call("POST", f"/v1/users/{user_id}/logins", body, role="ingest")
        text = f"POST /v1/users/{user_id}/logins {body or ''} -> {response.status}"
        self.step(text)
        self.expect(text, response.status, 200 if user_id in self.users else 404, response.body)
        if user_id not in self.users:
            return None
        user = self.users[user_id]
        user["session_count"] += 1
        user["last_seen_at"] = max(user.get("last_seen_at", at), at)
        self.drained = False
        answer: dict[str, Any] = response.json()
        return answer

    def _MoveClock(self, op: MoveClock) -> None:
        self.api.stack.set_clock(op.days * DAY)  # moves every function's now, runs the recheck, drains
        self.step(f"set_clock({op.days} days) (recheck, drain)")
        self._mark_drained()

    def _NightlyRebuild(self, op: NightlyRebuild) -> None:
        self.api.stack.invoke("RebuildCoordinatorFunction")
        self.step("invoke RebuildCoordinatorFunction (drain)")
        self._mark_drained()

    def _Drain(self, op: Drain) -> None:
        self.drain()

    def drain(self) -> None:
        handled = self.api.stack.drain()
        self.step(f"drain ({handled} records)")
        self._mark_drained()

    def _mark_drained(self) -> None:
        self.drained = True
        for send in self.manual_sends:
            send.fanout_pending = False

    def _SendManual(self, op: SendManual) -> None:
        if not self.drained:
            self.drain()
        segment_id = self.audience_segment(op.segment)
        expected = self.expected_members(segment_id, "users", clock.now())
        message_id = self.send_manual(segment_id)
        self.manual_sends.append(ManualSend(message_id, segment_id, len(self.log), expected))
        # The fan-out reads the audience within seconds of the send (docs/messaging.md): nothing the
        # model does in between is compared, so let it run now.
        self.drain()

    def send_manual(self, segment_id: str) -> str:
        body = {
            "name": f"{self.prefix}manual",
            "type": "manual",
            "channel": "in_app",
            "audience": {"segment_id": segment_id},
            "body": "hi",
        }
        created = self.api.call("POST", "/v1/messages", body, role="write")
        message_id = (created.json() or {}).get("id") if created.status == 201 else None
        text = f"POST /v1/messages manual in_app to {segment_id} -> {created.status} {message_id or ''}"
        self.step(text)
        self.expect(text, created.status, 201, created.body)
        sent = self.api.call("POST", f"/v1/messages/{message_id}/send", role="write")
        text = f"POST /v1/messages/{message_id}/send -> {sent.status}"
        self.step(text)
        self.expect(text, sent.status, 202, sent.body)
        assert message_id is not None
        return message_id

    def _LiveAutoMessage(self, op: LiveAutoMessage) -> None:
        segment_id = self.audience_segment(op.segment)
        audience: dict[str, Any] = (
            {"filter": {"field": "segment", "op": "in_segment", "value": segment_id}}
            if op.in_filter
            else {"segment_id": segment_id}
        )
        body = {"name": f"{self.prefix}auto", "type": "auto", "channel": "in_app", "audience": audience}
        created = self.api.call("POST", "/v1/messages", {**body, "body": "hello"}, role="write")
        message_id = (created.json() or {}).get("id") if created.status == 201 else None
        text = f"POST /v1/messages auto in_app audience {audience} -> {created.status} {message_id or ''}"
        self.step(text)
        self.expect(text, created.status, 201, created.body)
        live = self.api.call("POST", f"/v1/messages/{message_id}/live", role="write")
        text = f"POST /v1/messages/{message_id}/live -> {live.status}"
        self.step(text)
        self.expect(text, live.status, 200, live.body)
        assert message_id is not None
        self.auto_messages.append(AutoMessage(message_id, segment_id, op.in_filter))

    def _PauseMessage(self, op: PauseMessage) -> None:
        if not self.auto_messages:
            self.step(f"{op}: no auto message (nothing sent)")
            return
        message = self.auto_messages[op.slot % len(self.auto_messages)]
        response = self.api.call("POST", f"/v1/messages/{message.id}/pause", role="write")
        text = f"POST /v1/messages/{message.id}/pause -> {response.status}"
        self.step(text)
        self.expect(text, response.status, 200, response.body)
        message.state = "paused"

    def _DeleteMessage(self, op: DeleteMessage) -> None:
        if not self.auto_messages:
            self.step(f"{op}: no auto message (nothing sent)")
            return
        message = self.auto_messages.pop(op.slot % len(self.auto_messages))
        self._delete_message(message.id)

    def _delete_message(self, message_id: str) -> None:
        response = self.api.call("DELETE", f"/v1/messages/{message_id}", role="admin")
        text = f"DELETE /v1/messages/{message_id} -> {response.status}"
        self.step(text)
        self.expect(text, response.status, 204, response.body)

    # -- the comparison --

    def check(self, check_pick: int) -> list[str]:
        """Every read path against the reference; returns the differences (empty when all agree)."""
        problems: list[str] = []

        def compare(path: str, expected: Any, got: Any) -> None:
            if expected != got:
                if isinstance(expected, set | frozenset) and isinstance(got, set | frozenset):
                    detail = (
                        f"expected {_fmt(expected)} got {_fmt(got)} "
                        f"(missing {_fmt(set(expected) - set(got))}, extra {_fmt(set(got) - set(expected))})"
                    )
                else:
                    detail = f"expected {expected!r} got {got!r}"
                problems.append(f"{path}: {detail}")

        api, now = self.api, clock.now()
        mine = self.prefix
        user_segments = self.user_segment_ids()
        company_segments = self.company_segment_ids()
        expected = {sid: self.expected_members(sid, "users", now) for sid in user_segments}
        expected |= {sid: self.expected_members(sid, "companies", now) for sid in company_segments}

        def segments_of(item_id: str, target: str) -> set[str]:
            ids = user_segments if target == "users" else company_segments
            return {sid for sid in ids if item_id in expected[sid]}

        def item_segments(path: str, items: list[dict[str, Any]], key: str, target: str) -> None:
            """Members and search results carry each record's `segments` (evaluated now)."""
            for item in items:
                if item[key].startswith(mine):
                    wanted = segments_of(item[key], target)
                    compare(f"segments of {item[key]} in {path}", wanted, set(item["segments"]))

        for sid in user_segments + company_segments:
            target, key = ("users", "user_id") if sid in user_segments else ("companies", "company_id")
            items = api.get_pages(f"/v1/segments/{sid}/members")
            members = [item[key] for item in items]
            if len(members) != len(set(members)):
                problems.append(f"members of {sid}: a member listed twice: {members}")
            compare(f"members of {sid}", expected[sid], {m for m in members if m.startswith(mine)})
            item_segments(f"members of {sid}", items, key, target)
            count = api.ok("GET", f"/v1/segments/{sid}", role="read")["count"]
            compare(f"count of {sid}", len(expected[sid]), count)
            condition = {"field": "segment", "op": "in_segment", "value": sid}
            items = api.search_pages(target, condition)
            found = {item[key] for item in items if item[key].startswith(mine)}
            compare(f"{target} search in_segment {sid}", expected[sid], found)
            item_segments(f"{target} search in_segment {sid}", items, key, target)

        for sid in user_segments + company_segments:
            self._check_changes(sid, expected[sid], compare)

        for index in range(N_USERS):
            user_id = self.uid(index)
            response = api.call("GET", f"/v1/users/{user_id}", role="read")
            if user_id not in self.users:
                compare(f"GET /v1/users/{user_id} status", 404, response.status)
                continue
            if response.status != 200:
                compare(f"GET /v1/users/{user_id} status", 200, response.status)
                continue
            user, model = response.json(), self.users[user_id]
            compare(
                f"segments of GET /v1/users/{user_id}", segments_of(user_id, "users"), set(user["segments"])
            )
            compare(f"session_count of {user_id}", model["session_count"], user["session_count"])
            compare(f"company_ids of {user_id}", model["company_ids"], user["company_ids"])
            seen = user["last_seen_at"]
            seen_epoch = None if seen is None else _epoch(seen)
            wanted_seen = model.get("last_seen_at")
            if (seen_epoch is None) != (wanted_seen is None) or (
                seen_epoch is not None and wanted_seen is not None and abs(seen_epoch - wanted_seen) > 5
            ):
                compare(f"last_seen_at of {user_id}", wanted_seen, seen_epoch)

        for index in range(N_COMPANIES):
            company_id = self.cid(index)
            response = api.call("GET", f"/v1/companies/{company_id}", role="read")
            if company_id not in self.companies:
                compare(f"GET /v1/companies/{company_id} status", 404, response.status)
                continue
            if response.status != 200:
                compare(f"GET /v1/companies/{company_id} status", 200, response.status)
                continue
            company = response.json()
            compare(f"user_count of {company_id}", self.user_count(company_id), company["user_count"])
            wanted = segments_of(company_id, "companies")
            compare(f"segments of GET /v1/companies/{company_id}", wanted, set(company["segments"]))

        for send in self.manual_sends:
            got = {d["user_id"] for d in api.get_pages(f"/v1/messages/{send.id}/deliveries")}
            compare(
                f"deliveries of manual message {send.id} to {send.segment_id} sent at step {send.step} "
                f"(ignoring {_fmt(send.dont_care)}, deleted before the fan-out)",
                set(send.expected) - send.dont_care,
                got - send.dont_care,
            )

        # A manual in-app message to one segment, sent now: its deliveries are the members now.
        audience = user_segments[check_pick % len(user_segments)]
        message_id = self.send_manual(audience)
        self.drain()
        got = {d["user_id"] for d in api.get_pages(f"/v1/messages/{message_id}/deliveries")}
        compare(f"deliveries of manual message {message_id} to {audience} (check)", expected[audience], got)

        # One more login of each user: its answer holds the segments at that instant.
        for user_id in sorted(self.users):
            answer = self._login(user_id, None)
            assert answer is not None
            login_now = clock.now()
            record = self.user_record(user_id)
            wanted = {sid for sid in user_segments if self.matches(sid, "users", record, login_now)}
            compare(f"segments of the login of {user_id}", wanted, set(answer["segments"]))
        return problems

    def _check_changes(self, segment_id: str, members: frozenset[str], compare: Any) -> None:
        """The segment's recorded changes tell its membership: for each member of this run,
        sequences 1, 2, 3... with no gap or repeat, entries and exits in turn from an entry, the
        last one an entry exactly for the members now."""
        shared = segment_id in PREDEFINED_IDS
        history = self._member_histories(segment_id) if shared else self._feed(segment_id)
        for member_id in sorted(set(history) | {m for m in members if m.startswith(self.prefix)}):
            changes = sorted(history.get(member_id, []))
            alternating = [(n + 1, ("entered", "exited")[n % 2]) for n in range(len(changes))]
            compare(f"recorded changes of {member_id} in {segment_id}", alternating, changes)
            last_entered = bool(changes) and changes[-1][1] == "entered"
            compare(
                f"last change of {member_id} in {segment_id} is an entry", member_id in members, last_entered
            )

    def _feed(self, segment_id: str) -> dict[str, list[tuple[int, str]]]:
        """This run's changes in one of its own segments, read as a feed to its end (an empty page)."""
        history: dict[str, list[tuple[int, str]]] = {}
        cursor: str | None = None
        for _ in range(1000):
            query = [("limit", "100")] + ([("cursor", cursor)] if cursor else [])
            page = self.api.ok("GET", f"/v1/segments/{segment_id}/changes", role="read", query=query)
            for change in page["data"]:
                if change["member_id"].startswith(self.prefix):
                    history.setdefault(change["member_id"], []).append((change["sequence"], change["change"]))
            cursor = page["next_cursor"]
            if not page["data"]:
                break
        return history

    def _member_histories(self, segment_id: str) -> dict[str, list[tuple[int, str]]]:
        """This run's changes in a predefined segment, read from each of its users' histories.

        Not from the segment's feed: every example shares the predefined segments, and an earlier
        example that moved the clock ahead left changes dated after this example's clock (set back
        to 0 between examples, which no deployment's clock does). They never grow older than the
        feed's settle window here, so past 100 of them (what a cursor remembers) a page stops
        early for good, and an empty page no longer means the end (docs/changes.md)."""
        history: dict[str, list[tuple[int, str]]] = {}
        for index in range(N_USERS):
            user_id = self.uid(index)
            path = f"/v1/users/{user_id}/segment_history"
            if self.api.call("GET", path, role="read").status == 404:
                continue  # never created in this run
            for change in self.api.get_pages(path, limit=100):
                if change["segment_id"] == segment_id:
                    history.setdefault(user_id, []).append((change["sequence"], change["change"]))
        return history

    def _delete_segments(self, *, refused_once: bool) -> None:
        """Delete segments no other segment refers to until none is left; with `refused_once`, also
        try once each one that a message still uses (the model expects a 409 and keeps it)."""
        tried: set[str] = set()
        while True:
            referred = {target for targets in self._edges().values() for target in targets}
            used = {m.segment_id for m in self.auto_messages}
            leaves = [sid for sid in self.segments if sid not in referred and sid not in tried]
            free = [sid for sid in leaves if sid not in used]
            if free:
                self._delete_segment(free[0])
            elif leaves and refused_once:
                tried.add(leaves[0])
                self._delete_segment(leaves[0])
            else:
                return

    def wipe_and_check_empty(self) -> list[str]:
        """Delete everything this example made through the API; the reads must then show nothing."""
        problems: list[str] = []
        # Segments first, each after those referring to it: the ones a live or paused message uses
        # must be refused (409) until the message is deleted.
        self._delete_segments(refused_once=True)
        for message in self.auto_messages:
            self._delete_message(message.id)
        self.auto_messages.clear()
        self._delete_segments(refused_once=False)
        for user_id in list(self.users):
            self._delete_user(user_id)
        for company_id in list(self.companies):
            response = self.api.call("DELETE", f"/v1/companies/{company_id}", role="ingest")
            self.step(f"DELETE /v1/companies/{company_id} -> {response.status}")
            self.expect(f"DELETE /v1/companies/{company_id}", response.status, 204, response.body)
        self.companies.clear()
        self.drain()
        listed = self.api.ok("GET", "/v1/segments", role="read", query=[("target", "users")])["data"]
        counts = {s["id"]: s["count"] for s in listed}
        if counts != dict.fromkeys(PREDEFINED_IDS, 0):
            problems.append(f"after deleting everything, GET /v1/segments?target=users: {counts}")
        listed = self.api.ok("GET", "/v1/segments", role="read", query=[("target", "companies")])["data"]
        if listed:
            problems.append(f"after deleting everything, company segments remain: {listed}")
        for sid in PREDEFINED_IDS:
            members = [m["user_id"] for m in self.api.get_pages(f"/v1/segments/{sid}/members")]
            if members:
                problems.append(f"after deleting everything, members of {sid}: {members}")
        return problems

    def report(self, problems: list[str], title: str) -> str:
        model = {
            "users": self.users,
            "companies": {c: {**f, "user_count": self.user_count(c)} for c, f in self.companies.items()},
            "segments": {s.id: (s.target, s.filter) for s in self.segments.values()},
            "auto messages": [
                (m.id, m.state, "audience filter" if m.in_filter else "audience segment_id", m.segment_id)
                for m in self.auto_messages
            ],
        }
        lines = [
            f"{title} (ids prefixed {self.prefix!r}; clock offset {clock.offset_seconds() / DAY:g} days)"
        ]
        lines.append("operations, as run:")
        lines += [f"  {i + 1:3d}. {text}" for i, text in enumerate(self.log)]
        lines.append("mismatches (expected = reference over the test's model, got = the stack):")
        lines += [f"  - {problem}" for problem in problems]
        lines.append(f"model at the end: {model}")
        return "\n".join(lines)


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ---- keeping examples apart ----------------------------------------------------------------------


_workspace_is_clean = False  # set when an example's own clean-up passed its checks


def _reset_workspace(api: Api) -> None:
    """Remove whatever earlier examples left (a failed one stops before its own clean-up)."""
    global _workspace_is_clean
    if clock.offset_seconds() != 0:
        api.stack.set_clock(0)
    if _workspace_is_clean:
        _workspace_is_clean = False
        return
    for message in api.get_pages("/v1/messages", role="read", limit=100):
        api.call("DELETE", f"/v1/messages/{message['id']}", role="admin")
    for _ in range(20):
        stored = [
            s
            for target in ("users", "companies")
            for s in api.ok("GET", "/v1/segments", role="read", query=[("target", target)])["data"]
            if not s["predefined"]
        ]
        if not stored:
            break
        for segment in stored:
            api.call("DELETE", f"/v1/segments/{segment['id']}", role="admin")
    for target, key in (("users", "user_id"), ("companies", "company_id")):
        for item in api.search_pages(target, {"field": key, "op": "exists"}, limit=100):
            api.call("DELETE", f"/v1/{target}/{item[key]}", role="ingest")
    api.stack.drain()
    _drop_leftover_memberships()


def _leftover_memberships() -> list[dict[str, Any]]:
    """Membership items with no user, company or segment left to own them: with everything deleted,
    only count items at 0 (`#count#<group>`) and the days' stats rows (`#stats#<group>`, kept 91
    days by their TTL) may remain."""
    from segmentation.settings import get_settings
    from segmentation.storage import aws

    from infra.local.lambdas import invoke_lock

    with invoke_lock:
        table = aws.table(get_settings().memberships_table)
        items: list[dict[str, Any]] = []
        scan: dict[str, Any] = {"ProjectionExpression": "group_id, member_id, n"}
        while True:
            page = table.scan(**scan)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return [
                    item
                    for item in items
                    if not str(item["group_id"]).startswith(("#count#", "#stats#")) or item.get("n", 0) != 0
                ]
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _drop_leftover_memberships() -> None:
    """What a failed example left behind must not spoil the next one (the failure was reported)."""
    from segmentation.settings import get_settings
    from segmentation.storage import aws

    from infra.local.lambdas import invoke_lock

    leftovers = _leftover_memberships()
    with invoke_lock, aws.table(get_settings().memberships_table).batch_writer() as batch:
        for item in leftovers:
            batch.delete_item(Key={"group_id": item["group_id"], "member_id": item["member_id"]})


# ---- the test ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shrink_budget() -> Iterator[None]:
    """Bound Hypothesis's shrinking (5 minutes by default; it documents this constant as patchable)."""
    saved = hypothesis_engine.MAX_SHRINKING_SECONDS
    hypothesis_engine.MAX_SHRINKING_SECONDS = SHRINK_SECONDS
    try:
        yield
    finally:
        hypothesis_engine.MAX_SHRINKING_SECONDS = saved


_examples = iter(range(1, 1_000_000))


def _hypothesis_seed() -> object:
    """The seed of this run: --hypothesis-seed when given, else the one Hypothesis drew."""
    from hypothesis.core import global_force_seed

    if global_force_seed is not None:
        return global_force_seed
    return getattr(test_membership_matches_the_reference, "_hypothesis_internal_use_generated_seed", None)


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(setup=SETUP, operations=OPERATIONS, check_pick=st.integers(0, 15))
def test_membership_matches_the_reference(
    api: Api, shrink_budget: None, setup: list[Any], operations: list[Any], check_pick: int
) -> None:
    note(
        f"Hypothesis seed of this run: --hypothesis-seed={_hypothesis_seed()} (the blob replays one example)"
    )
    _reset_workspace(api)
    run = Run(api, prefix=f"d{next(_examples)}-")
    started = time.monotonic()
    try:
        for operation in setup + operations:
            run.apply(operation)
        run.drain()
        problems = run.check(check_pick)
    except Mismatch as error:
        raise AssertionError(run.report([str(error)], "A write answered other than the model says")) from None
    assert not problems, run.report(problems, "Read paths differ from the reference")
    try:
        problems = run.wipe_and_check_empty()
        problems += [f"a membership item outlived what owned it: {item}" for item in _leftover_memberships()]
    except Mismatch as error:
        raise AssertionError(run.report([str(error)], "Deleting everything failed")) from None
    assert not problems, run.report(problems, "After deleting everything the reads are not empty")
    global _workspace_is_clean
    _workspace_is_clean = True
    if TRACE_FILE:
        with open(TRACE_FILE, "a") as trace:
            print(run.report([], f"Passed in {time.monotonic() - started:.2f} s"), file=trace)
