"""Compiles segment filters into one generated Python function per use.

Why generate code: a workspace's segments are checked for every user on every change, login and
nightly rebuild. The generated function reads each field of the record once, case-folds strings
once, evaluates every segment in dependency order (a reference to another segment reads that
segment's result), and short-circuits and/or like Python does.

Numbers stay Decimal (converting one to float costs ~10 comparisons): each float bound of the
filter language becomes a Decimal "cut" (engine/exact.py) with the very same answers, made once
at compile time, or once per `now` for the time thresholds. A stored int/float is read as an
exact Decimal; unknown is None. A NaN Decimal makes ordering raise: that record is evaluated
again with its NaNs marked unknown (the rare slow path).

Safety: no text from a filter or a segment (names, values, ids) is ever written into the source.
Every such string or value is a constant bound by reference in the exec namespace as `_k<i>` (a
name made here); the source holds only identifiers and operators made here. The exec namespace
has no builtins but float.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol, cast

from segmentation.engine.calendar import Calendar
from segmentation.engine.events import compiled_stat as event_stat
from segmentation.engine.exact import (
    NAN_TROUBLE,
    cut_above,
    cut_below,
    cuts_below,
    equal_cuts,
    is_among,
    number_of,
    timestamp_of,
    without_nan,
)
from segmentation.engine.fields import DAYS_OPS, SECONDS_PER_DAY
from segmentation.engine.model import And, Condition, DateValue, FieldRef, Filter, Not, Or, conditions
from segmentation.engine.results import ResultSets, bit_of, chunks_for
from segmentation.engine.values import NO_COMPANY, companies_of

Record = Mapping[str, Any]


class MembershipProgram(Protocol):
    """The ids of the segments of `target` a record is in at `now`."""

    def __call__(self, record: Record, now: float, target: str = "users") -> frozenset[str]: ...


_NO_NOW = object()  # the now-values' key before the first call: equal to no instant

# How a raw value becomes the compared value, per field type. `{v}` is `v := <read>`: the value is
# read once, its class checked (Decimal first: what boto3 returns, used as is), else converted.
_NORMALIZE = {
    "string": "v.casefold() if ({v}).__class__ is _STR else None",
    "number": "v if ({v}).__class__ is _DEC else _number_of(v)",
    "timestamp": "v if ({v}).__class__ is _DEC else _timestamp_of(v)",
    "boolean": "({v})",
    "any": "({v})",
}

# Expression templates: {x} the normalized value (None when unknown), {k} the constant, {a}/{b}
# Decimal cuts (`float(x) < k` is `x < cut_below(k)`; `float(x) <= k` is `x < cut_above(k)`).
_OPS: dict[tuple[str, str], str] = {
    ("string", "eq"): "({x} == {k})",
    ("string", "ne"): "({x} != {k})",
    ("string", "in"): "({x} in {k})",
    ("string", "not_in"): "({x} not in {k})",
    ("string", "contains"): "({x} is not None and {k} in {x})",
    ("string", "not_contains"): "({x} is None or {k} not in {x})",
    ("string", "starts_with"): "({x} is not None and {x}.startswith({k}))",
    ("string", "ends_with"): "({x} is not None and {x}.endswith({k}))",
    ("number", "eq"): "({x} is not None and {a} <= {x} < {b})",
    ("number", "ne"): "({x} is None or not {a} <= {x} < {b})",
    ("number", "gt"): "({x} is not None and {x} >= {b})",
    ("number", "gte"): "({x} is not None and {x} >= {a})",
    ("number", "lt"): "({x} is not None and {x} < {a})",
    ("number", "lte"): "({x} is not None and {x} < {b})",
    ("number", "in"): "({x} is not None and _is_among({x}, {k}))",
    ("number", "not_in"): "({x} is None or not _is_among({x}, {k}))",
    ("boolean", "is_true"): "({x} is True)",
    ("boolean", "is_false"): "({x} is False)",
    ("any", "exists"): "({x} is not None)",
    ("any", "not_exists"): "({x} is None)",
    # a < t <= now, t < a, a <= t < b, now <= t < a, t > a, t < D, t > D, D's day start <= t < end
    ("timestamp", "less_than_days_ago"): "({x} is not None and {a} <= {x} < {b})",
    ("timestamp", "more_than_days_ago"): "({x} is not None and {x} < {a})",
    ("timestamp", "exactly_days_ago"): "({x} is not None and {a} <= {x} < {b})",
    ("timestamp", "less_than_days_from_now"): "({x} is not None and {a} <= {x} < {b})",
    ("timestamp", "more_than_days_from_now"): "({x} is not None and {x} >= {a})",
    ("timestamp", "before"): "({x} is not None and {x} < {a})",
    ("timestamp", "after"): "({x} is not None and {x} >= {a})",
    ("timestamp", "on"): "({x} is not None and {a} <= {x} < {b})",
}


def field_key(field: FieldRef) -> tuple[object, ...]:
    return ("field", field.kind, field.name, field.type, field.stat, field.window)


def read_field(condition: Condition) -> FieldRef:
    """The field as the condition reads it. Presence is about the stored value, whatever its type
    (unknown is missing or null), so exists/not_exists read it untyped."""
    if condition.op in ("exists", "not_exists"):
        return dataclasses.replace(condition.field, type="any")
    return condition.field


class _Scope:
    """One record the generated code reads: the evaluated record, or one company of a user.

    A field read in several places is loaded once at the top; a field read in one place only is
    loaded where it is used, so short-circuiting skips it (`plan eq starter and photos gt 80`).
    """

    def __init__(self, compiler: Compiler, is_main: bool, uses: Counter[tuple[object, ...]] | None = None):
        self.compiler = compiler
        self.is_main = is_main
        self.uses = uses if uses is not None else Counter()
        self.prelude: list[str] = []
        self.now_values: list[tuple[str, str]] = []  # (local or "low, low_end", expression)
        self.params: dict[str, None] = {}  # a company test's arguments: the now-values it reads
        self._names: dict[tuple[object, ...], str] = {}

    def _new(self, key: tuple[object, ...], prefix: str, lines: Callable[[str], list[str]]) -> str:
        name = self._names.get(key)
        if name is None:
            name = f"{prefix}{len(self._names)}"
            self._names[key] = name
            self.prelude.extend(lines(name))
        return name

    def load(self, field: FieldRef) -> tuple[str, str | None]:
        """(local, None) for a value loaded at the top, or (local, expression) to load it in place."""
        # `rec.get(k)`, not a bound `get = rec.get`: making a bound method object costs more than
        # several calls through the attribute (CPython specializes those for dicts).
        if field.kind == "custom":
            attributes = self.compiler.const("custom_attributes")
            holder = self._new(
                ("custom",),
                "_custom",
                lambda name: [f"{name} = v if (v := rec.get({attributes})).__class__ is _DICT else _EMPTY"],
            )
        else:
            holder = "rec"
        key = field_key(field)
        if field.kind == "event":  # a summary's statistic, counted at `now` for a window
            read = ", ".join(self.compiler.const(part) for part in (field.name, field.stat, field.window))
            loading = _NORMALIZE[field.type].format(v=f"v := _event_stat(rec, {read}, now)")
        else:
            loading = _NORMALIZE[field.type].format(v=f"v := {holder}.get({self.compiler.const(field.name)})")
        if self.uses[key] == 1:
            name = f"x{len(self._names)}"
            self._names[("inline", len(self._names))] = name
            return name, loading
        return self._new(key, "x", lambda name: [f"{name} = {loading}"]), None

    def _from_now(self, key: tuple[object, ...], prefix: str, expression: str, names: int) -> str:
        """A value that depends on `now` only. The main function computes them once per `now` (a
        rebuild evaluates many records at one instant) and passes them to the company tests."""
        main = self.compiler.main
        name = main._names.get(key)
        if name is None:
            name = f"{prefix}{len(main._names)}"
            main._names[key] = name
            main.now_values.append((", ".join([name, f"{name}_end"][:names]), expression))
        if not self.is_main:
            self.params.update(dict.fromkeys([name, f"{name}_end"][:names]))
        return name

    def now_cut(self, side: str, sign: str = "", seconds: float = 0.0) -> str:
        """The cut (`below` or `above`) of `now`, or of `now - seconds` / `now + seconds`."""
        instant = f"now {sign} {self.compiler.const(seconds)}" if sign else "now"
        return self._from_now(("cut", side, sign, seconds), "t", f"_cut_{side}({instant})", 1)

    def days_ago_cuts(self, days: float) -> tuple[str, str]:
        """Cuts of [start, end) of the calendar day `days` days before today."""
        expression = f"_cuts_below(*_days_ago(now, {self.compiler.const(days)}))"
        low = self._from_now(("days_ago", days), "d", expression, 2)
        return low, f"{low}_end"

    def companies(self) -> str:
        """The raw `companies` value; each company test reads it as companies_of does."""
        return self._new(
            ("companies",),
            "_companies",
            lambda name: [f"{name} = rec.get({self.compiler.const('companies')})"],
        )


class Compiler:
    """Builds one function from filters. Add segments in dependency order, then `build`.

    `trees` are all the filters the function will evaluate (to count how often each field is read).
    """

    def __init__(self, calendar: Calendar, trees: Iterable[Filter]):
        self.calendar = calendar
        self.constants: list[object] = []
        self._constant_index: dict[tuple[type, object], int] = {}
        self._company_tests: dict[Condition, tuple[str, str]] = {}  # name, now-value arguments
        self._functions: list[str] = []
        self.segment_vars: dict[str, str] = {}
        self._segments: list[tuple[str, str, str]] = []  # (id, local, expression), dependency order
        self._referenced: set[str] = set()  # locals of segments that other filters refer to
        uses: Counter[tuple[object, ...]] = Counter()
        for tree in trees:
            uses.update(
                field_key(read_field(c))
                for c in conditions(tree)
                if c.field.kind != "segment" and not c.field.via_company
            )
        self.main = _Scope(self, is_main=True, uses=uses)

    def const(self, value: object) -> str:
        key = (type(value), value)
        index = self._constant_index.get(key)
        if index is None:
            index = len(self.constants)
            self.constants.append(value)
            self._constant_index[key] = index
        return f"_k{index}"

    # -- building -----------------------------------------------------------------------------

    def add_segment(self, segment_id: str, tree: Filter) -> str:
        """Add a segment, evaluated after the segments it refers to; its local's name."""
        expression = self.expression(tree, self.main)
        name = f"s{len(self.segment_vars)}"
        self.segment_vars[segment_id] = name
        self._segments.append((segment_id, name, expression))
        return name

    def build_predicate(self, tree: Filter) -> tuple[Callable[[Record, float], bool], str]:
        """`(record, now) -> bool` for one filter (its segments added before), and its source."""
        expression = self.expression(tree, self.main)
        body = [f"{name} = {segment}" for _, name, segment in self._segments]
        return self._build([*body, f"return {expression}"], {})

    def build_memberships(
        self, segment_ids: Sequence[str], target: str, elsewhere: MembershipProgram
    ) -> tuple[MembershipProgram, str]:
        """`(record, now, target=target) -> frozenset of the ids it is in`: each segment that holds
        adds its bit to the key (engine/results.py), which finds the frozenset. Another target is
        handed to `elsewhere`, so that this function can be the workspace's `segments_of` itself
        (one call per record, no wrapper in between)."""
        chunks = chunks_for(len(segment_ids))
        body = [f"k{chunk} = 0" for chunk in range(chunks)]
        position = {sid: index for index, sid in enumerate(segment_ids)}
        for sid, name, expression in self._segments:
            if name in self._referenced:  # another segment reads it: keep it in its local
                body.append(f"{name} = {expression}")
                expression = name
            if sid in position:
                chunk, bit = bit_of(position[sid])
                body.append(f"if {expression}:")
                body.append(f"    k{chunk} += {self.const(bit)}")
        key = "k0" if chunks == 1 else "(" + "".join(f"k{chunk}, " for chunk in range(chunks)) + ")"
        head = ["if target is not _TARGET and target != _TARGET:", "    return _elsewhere(rec, now, target)"]
        extra = {"_results": ResultSets(segment_ids), "_TARGET": target, "_elsewhere": elsewhere}
        return self._build([*body, f"return _results[{key}]"], extra, ", target=_TARGET", head)

    def _build(
        self, tail: list[str], extra: dict[str, Any], parameters: str = "", head: Sequence[str] = ()
    ) -> tuple[Any, str]:
        lines = [*self._functions, *self._now_function()]
        lines += [f"def _program(rec, now{parameters}):"]
        lines += [f"    {line}" for line in [*head, *self._now_prelude()]]
        lines += ["    try:"]
        lines += [f"        {line}" for line in self.main.prelude + tail]
        lines += ["    except _NAN_TROUBLE:  # a NaN Decimal was ordered: NaNs are unknown values"]
        lines += ["        return _program(_without_nan(rec), now)"]
        source = "\n".join(lines) + "\n"
        namespace: dict[str, Any] = {
            "__builtins__": {"float": float},
            "_DEC": Decimal,
            "_number_of": number_of,
            "_timestamp_of": timestamp_of,
            "_is_among": is_among,
            "_cut_below": cut_below,
            "_cut_above": cut_above,
            "_cuts_below": cuts_below,
            "_NAN_TROUBLE": NAN_TROUBLE,
            "_without_nan": without_nan,
            "_EMPTY": {},  # custom attributes that are not a map: none (never written to)
            "_DICT": dict,
            "_STR": str,
            "_companies_of": companies_of,
            "_k_companies": "companies",
            "_NO_COMPANY": NO_COMPANY,
            "_LIST": list,
            "_days_ago": self.calendar.days_ago_bounds,
            "_event_stat": event_stat,
        }
        namespace["_now_cell"] = [(_NO_NOW, ())]  # equal to no now: the first call computes
        namespace.update(extra)
        namespace.update((f"_k{index}", value) for index, value in enumerate(self.constants))
        exec(compile(source, "<segment-engine>", "exec"), namespace)
        return namespace["_program"], source

    def _now_function(self) -> list[str]:
        """`_refresh(now)`: every now-derived value at once, kept in `_now_cell` as one tuple (so a
        concurrent reader sees one consistent instant)."""
        if not self.main.now_values:
            return []
        values = ", ".join(f"*{e}" if ", " in n else e for n, e in self.main.now_values)
        return [
            "def _refresh(key):",
            "    now = float(key)",
            f"    state = (key, ({values},))",
            "    _now_cell[0] = state",
            "    return state",
            "",
        ]

    def _now_prelude(self) -> list[str]:
        if not self.main.now_values:
            return []
        names = ", ".join(n for n, _ in self.main.now_values)
        return [
            "state = _now_cell[0]",
            "if state[0] is not now and state[0] != now:",
            "    state = _refresh(now)",
            f"{names}, = state[1]",
        ]

    # -- expressions --------------------------------------------------------------------------

    def expression(self, node: Filter, scope: _Scope) -> str:
        if isinstance(node, And):
            return "(" + " and ".join(self.expression(item, scope) for item in node.items) + ")"
        if isinstance(node, Or):
            return "(" + " or ".join(self.expression(item, scope) for item in node.items) + ")"
        if isinstance(node, Not):
            return f"(not {self.expression(node.item, scope)})"
        return self.condition(node, scope)

    def condition(self, condition: Condition, scope: _Scope) -> str:
        field, op = condition.field, condition.op
        if field.kind == "segment":
            name = self.segment_vars[str(condition.value)]
            self._referenced.add(name)
            return name if op == "in_segment" else f"(not {name})"
        if field.via_company and scope.is_main:
            name, arguments = self._company_test(condition)
            return f"{name}({scope.companies()}{arguments})"
        field = read_field(condition)
        local, loading = scope.load(field)
        parts: dict[str, str] = {"x": local}
        value = condition.value
        seconds = cast(float, value) * SECONDS_PER_DAY if op in DAYS_OPS else 0.0  # days are floats
        if op == "less_than_days_ago":  # now - seconds < t <= now
            parts["a"], parts["b"] = scope.now_cut("above", "-", seconds), scope.now_cut("above")
        elif op == "more_than_days_ago":  # t < now - seconds
            parts["a"] = scope.now_cut("below", "-", seconds)
        elif op == "less_than_days_from_now":  # now <= t < now + seconds
            parts["a"], parts["b"] = scope.now_cut("below"), scope.now_cut("below", "+", seconds)
        elif op == "more_than_days_from_now":  # t > now + seconds
            parts["a"] = scope.now_cut("above", "+", seconds)
        elif op == "exactly_days_ago":
            parts["a"], parts["b"] = scope.days_ago_cuts(cast(float, value))
        elif op == "on":
            low, high = self.calendar.bounds_of(cast(DateValue, value))
            parts["a"], parts["b"] = self.const(cut_below(low)), self.const(cut_below(high))
        elif op == "before":
            parts["a"] = self.const(cut_below(self.calendar.instant(cast(DateValue, value))))
        elif op == "after":
            parts["a"] = self.const(cut_above(self.calendar.instant(cast(DateValue, value))))
        elif field.type == "number" and op in ("in", "not_in"):
            parts["k"] = self.const(equal_cuts(cast(Iterable[float], value)))
        elif field.type == "number":  # parsed numbers are floats
            parts["a"], parts["b"] = (
                self.const(cut_below(cast(float, value))),
                self.const(cut_above(cast(float, value))),
            )
        elif value is not None:
            parts["k"] = self.const(value)
        template = _OPS[(field.type, op)]
        if loading is not None:  # load in place: bind the local where it is first read
            template = template.replace("{x}", f"({local} := {loading})", 1)
        return template.format(**parts)

    def _company_test(self, condition: Condition) -> tuple[str, str]:
        """A function `(companies, *now-values) -> bool`: does any company meet this company.*
        condition? (One per distinct condition, looping inside: one call per user, not one per
        company.) Returns its name and the now-value arguments to call it with (", t1, t3").

        `companies` is the raw stored value, read as companies_of reads it (no list or an empty
        one: one all-unknown company; a list with other things than maps: its maps) without
        a call in the usual case of a list of maps."""
        known = self._company_tests.get(condition)
        if known is None:
            name = f"_company_test{len(self._company_tests)}"
            scope = _Scope(self, is_main=False)
            expression = self.condition(condition, scope)
            arguments = "".join(f", {param}" for param in scope.params)
            known = self._company_tests[condition] = (name, arguments)
            self._functions += [
                f"def {name}(companies{arguments}):",
                "    if companies.__class__ is not _LIST or not companies:",
                "        companies = _NO_COMPANY",
                "    for rec in companies:",
                "        if rec.__class__ is not _DICT:",
                f"            return {name}(_LIST(_companies_of({{_k_companies: companies}})){arguments})",
            ]
            self._functions += [f"        {line}" for line in scope.prelude]
            self._functions += [
                f"        if {expression}:",
                "            return True",
                "    return False",
                "",
            ]
        return known
