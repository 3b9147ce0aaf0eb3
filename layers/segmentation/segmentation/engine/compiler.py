"""Compiles segment filters into one generated Python function per use.

Why generate code: a workspace's segments are checked for every user on every change, login and
nightly rebuild. The generated function reads each field of the record once, converts it once
(Decimal -> float, strings case-folded), computes each time threshold once, evaluates every
segment in dependency order (a reference to another segment reads that segment's result), and
short-circuits and/or like Python does.

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
from typing import Any, cast

from segmentation.engine.calendar import Calendar
from segmentation.engine.fields import SECONDS_PER_DAY
from segmentation.engine.model import And, Condition, DateValue, FieldRef, Filter, Not, Or, conditions
from segmentation.engine.values import NAN, as_number, as_timestamp, companies_of

Record = Mapping[str, Any]
Memo = dict[tuple[bool, ...], frozenset[str]]

# How a raw value becomes the compared value, per field type. `{v}` is `v := <read>`: the value is
# read once, its class checked (Decimal first: what boto3 returns), then converted.
_NORMALIZE = {
    "string": "v.casefold() if ({v}).__class__ is _STR else None",
    "number": "float(v) if ({v}).__class__ is _DEC else _as_number(v)",
    "timestamp": "float(v) if ({v}).__class__ is _DEC else _as_timestamp(v)",
    "boolean": "({v})",
    "any": "({v})",
}

# Expression templates: {x} the normalized value, {k} the constant, {a}/{b} thresholds or bounds.
# Unknown numbers are NaN and unknown strings None, so most ops need no explicit unknown check.
_OPS: dict[tuple[str, str], str] = {
    ("string", "eq"): "({x} == {k})",
    ("string", "ne"): "({x} != {k})",
    ("string", "in"): "({x} in {k})",
    ("string", "not_in"): "({x} not in {k})",
    ("string", "contains"): "({x} is not None and {k} in {x})",
    ("string", "not_contains"): "({x} is None or {k} not in {x})",
    ("string", "starts_with"): "({x} is not None and {x}.startswith({k}))",
    ("string", "ends_with"): "({x} is not None and {x}.endswith({k}))",
    ("number", "eq"): "({x} == {k})",
    ("number", "ne"): "({x} != {k})",
    ("number", "gt"): "({x} > {k})",
    ("number", "gte"): "({x} >= {k})",
    ("number", "lt"): "({x} < {k})",
    ("number", "lte"): "({x} <= {k})",
    ("number", "in"): "({x} in {k})",
    ("number", "not_in"): "({x} not in {k})",
    ("boolean", "is_true"): "({x} is True)",
    ("boolean", "is_false"): "({x} is False)",
    ("any", "exists"): "({x} is not None)",
    ("any", "not_exists"): "({x} is None)",
    ("timestamp", "less_than_days_ago"): "({a} < {x} <= now)",
    ("timestamp", "more_than_days_ago"): "({x} < {a})",
    ("timestamp", "exactly_days_ago"): "({a} <= {x} < {b})",
    ("timestamp", "less_than_days_from_now"): "(now <= {x} < {a})",
    ("timestamp", "more_than_days_from_now"): "({x} > {a})",
    ("timestamp", "before"): "({x} < {k})",
    ("timestamp", "after"): "({x} > {k})",
    ("timestamp", "on"): "({a} <= {x} < {b})",
}


def field_key(field: FieldRef) -> tuple[object, ...]:
    return ("field", field.kind, field.name, field.type)


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
        if field.kind == "custom":
            getter = self._new(
                ("custom",),
                "_cget",
                lambda name: [
                    f"{name} = _get({self.compiler.const('custom_attributes')})",
                    f"{name} = {name}.get if {name}.__class__ is _DICT else _EMPTY_GET",
                ],
            )
        else:
            getter = "_get"
        key = field_key(field)
        loading = _NORMALIZE[field.type].format(v=f"v := {getter}({self.compiler.const(field.name)})")
        if self.uses[key] == 1:
            name = f"x{len(self._names)}"
            self._names[("inline", len(self._names))] = name
            return name, loading
        return self._new(key, "x", lambda name: [f"{name} = {loading}"]), None

    def _from_now(self, key: tuple[object, ...], prefix: str, expression: str, names: int) -> str:
        """A value that depends on `now` only. The main function reuses them while `now` repeats
        (a rebuild evaluates many records at one instant); a company test computes them in place."""
        name = self._names.get(key)
        if name is None:
            name = f"{prefix}{len(self._names)}"
            self._names[key] = name
            targets = [name, f"{name}_end"][:names]
            if self.is_main:
                self.now_values.append((", ".join(targets), expression))
            else:
                self.prelude.append(f"{', '.join(targets)} = {expression}")
        return name

    def shifted_now(self, sign: str, seconds: float) -> str:
        """`now - seconds` or `now + seconds`."""
        return self._from_now(("now", sign, seconds), "t", f"now {sign} {self.compiler.const(seconds)}", 1)

    def days_ago_bounds(self, days: float) -> tuple[str, str]:
        """[start, end) of the calendar day `days` days before today."""
        expression = f"_days_ago(now, {self.compiler.const(days)})"
        low = self._from_now(("days_ago", days), "d", expression, 2)
        return low, f"{low}_end"

    def companies(self) -> str:
        return self._new(("companies",), "_companies", lambda name: [f"{name} = _companies_of(rec)"])


class Compiler:
    """Builds one function from filters. Add segments in dependency order, then `build`.

    `trees` are all the filters the function will evaluate (to count how often each field is read).
    """

    def __init__(self, calendar: Calendar, trees: Iterable[Filter]):
        self.calendar = calendar
        self.constants: list[object] = []
        self._constant_index: dict[tuple[type, object], int] = {}
        self._company_tests: dict[Condition, str] = {}
        self._functions: list[str] = []
        self.segment_vars: dict[str, str] = {}
        uses: Counter[tuple[object, ...]] = Counter()
        for tree in trees:
            uses.update(
                field_key(read_field(c))
                for c in conditions(tree)
                if c.field.kind != "segment" and not c.field.via_company
            )
        self.main = _Scope(self, is_main=True, uses=uses)
        self._body: list[str] = []

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
        """Evaluate a segment into a local (after the segments it refers to)."""
        expression = self.expression(tree, self.main)
        name = f"s{len(self.segment_vars)}"
        self.segment_vars[segment_id] = name
        self._body.append(f"{name} = {expression}")
        return name

    def build_predicate(self, tree: Filter) -> tuple[Callable[[Record, float], bool], str]:
        """`(record, now) -> bool` for one filter (its segments added before), and its source."""
        return self._build([f"return {self.expression(tree, self.main)}"], {})

    def build_memberships(
        self, segment_ids: Sequence[str], remember: Callable[[tuple[bool, ...], Memo], frozenset[str]]
    ) -> tuple[Callable[[Record, float], frozenset[str]], str]:
        """`(record, now) -> frozenset of the ids it is in`. Few combinations of results occur, so
        each combination's frozenset is made once (by `remember`) and looked up after that."""
        known: Memo = {}
        results = "".join(f"{self.segment_vars[sid]}, " for sid in segment_ids)
        tail = [f"r = ({results})", "m = _known(r)", "return _remember(r) if m is None else m"]
        return self._build(tail, {"_known": known.get, "_remember": lambda r: remember(r, known)})

    def _build(self, tail: list[str], extra: dict[str, Any]) -> tuple[Any, str]:
        lines = [*self._functions, *self._now_function()]
        lines += ["def _program(rec, now):", "    now = float(now)", "    _get = rec.get"]
        lines += [f"    {line}" for line in self._now_prelude() + self.main.prelude + self._body + tail]
        source = "\n".join(lines) + "\n"
        namespace: dict[str, Any] = {
            "__builtins__": {"float": float},
            "_DEC": Decimal,
            "_as_number": as_number,
            "_as_timestamp": as_timestamp,
            "_NAN": NAN,
            "_EMPTY_GET": {}.get,
            "_DICT": dict,
            "_STR": str,
            "_companies_of": companies_of,
            "_days_ago": self.calendar.days_ago_bounds,
        }
        namespace["_now_cell"] = [(NAN, ())]  # NaN equals no now: the first call computes
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
            "def _refresh(now):",
            f"    state = (now, ({values},))",
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
            "if state[0] != now:",
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
            return name if op == "in_segment" else f"(not {name})"
        if field.via_company and scope.is_main:
            return f"{self._company_test(condition)}({scope.companies()}, now)"
        field = read_field(condition)
        local, loading = scope.load(field)
        parts: dict[str, str] = {"x": local}
        value = condition.value
        days = cast(float, value)  # the parser made days a float and D a DateValue
        if op in ("less_than_days_ago", "more_than_days_ago"):
            parts["a"] = scope.shifted_now("-", days * SECONDS_PER_DAY)
        elif op in ("less_than_days_from_now", "more_than_days_from_now"):
            parts["a"] = scope.shifted_now("+", days * SECONDS_PER_DAY)
        elif op == "exactly_days_ago":
            parts["a"], parts["b"] = scope.days_ago_bounds(days)
        elif op == "on":
            low, high = self.calendar.bounds_of(cast(DateValue, value))
            parts["a"], parts["b"] = self.const(low), self.const(high)
        elif op in ("before", "after"):
            parts["k"] = self.const(self.calendar.instant(cast(DateValue, value)))
        elif value is not None:
            parts["k"] = self.const(value)
        template = _OPS[(field.type, op)]
        if loading is not None:  # load in place: bind the local where it is first read
            template = template.replace("{x}", f"({local} := {loading})", 1)
        return template.format(**parts)

    def _company_test(self, condition: Condition) -> str:
        """A function `(companies, now) -> bool`: does any company meet this company.* condition?
        (One per distinct condition, looping inside: one call per user, not one per company.)"""
        name = self._company_tests.get(condition)
        if name is None:
            name = f"_company_test{len(self._company_tests)}"
            self._company_tests[condition] = name
            scope = _Scope(self, is_main=False)
            expression = self.condition(condition, scope)
            self._functions += [
                f"def {name}(companies, now):",
                "    for rec in companies:",
                "        _get = rec.get",
            ]
            self._functions += [f"        {line}" for line in scope.prelude]
            self._functions += [
                f"        if {expression}:",
                "            return True",
                "    return False",
                "",
            ]
        return name
