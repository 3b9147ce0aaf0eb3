"""Compiles segment filters into one generated Python function per use.

Why generate code: a workspace's segments are checked for every user on every change, login and
nightly rebuild. The generated function reads each field of the record once, case-folds strings
once, evaluates every segment in dependency order (a reference to another segment reads that
segment's result), and short-circuits and/or like Python does.

Numbers stay Decimal (converting one to float costs ~10 comparisons): each float bound of the
filter language becomes a Decimal "cut" (engine/exact.py) with the very same answers, made once
at compile time, or once per `now` for the time thresholds. A stored int/float is read as an
exact Decimal; unknown is None. A NaN Decimal makes ordering raise: that record is evaluated
again with its NaNs marked unknown (the rare slow path). Every ordering condition is one of four
shapes over its cuts (engine/bounds.py); a field that many conditions test is ranked once per
record among its sorted cuts, and each of those conditions is then an int comparison.

The memberships program adds a bit per segment that holds to an int key, which finds the result's
frozenset (engine/results.py). Its reads and now-values are engine/scope.py's.

Safety: no text from a filter or a segment (names, values, ids) is ever written into the source.
Every such string or value is a constant bound by reference in the exec namespace as `_k<i>` (a
name made here); the source holds only identifiers and operators made here. The exec namespace
has no builtins but float.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol, cast

from segmentation.engine.bounds import SHAPES, Cut, bounds, rank
from segmentation.engine.calendar import Calendar
from segmentation.engine.costs import cost
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
from segmentation.engine.fields import TRUE_WHEN_UNKNOWN
from segmentation.engine.model import And, Condition, FieldRef, Filter, Not, Or, conditions
from segmentation.engine.results import ResultSets, bit_of, chunks_for
from segmentation.engine.scope import FieldKey, NowValues, Scope, field_key, raw_key, read_field
from segmentation.engine.values import NO_COMPANY, companies_of, tags_of

Record = Mapping[str, Any]


class MembershipProgram(Protocol):
    """The ids of the segments of `target` a record is in at `now`."""

    def __call__(self, record: Record, now: float, target: str = "users") -> frozenset[str]: ...


_NO_NOW = object()  # the now-values' key before the first call: equal to no instant
_UNSET = object()  # a shared condition's answer before it is first needed
# A field of the main record tested by this many ordering conditions or more is ranked: one bisect
# per record (~100 ns for 7 cuts here), then an int comparison per condition (~10 ns) instead of
# a Decimal one (~33 ns). Measured: a loss at 4 conditions, even at 5, a 14 % gain at 100 segments.
RANK_MIN_CONDITIONS = 6
# A condition found in several places is answered once per record (kept in a local, made where
# first needed) when it costs this much or more (engine/costs.py); looking the answer up costs ~8.
SHARE_MIN_COST = 30

# Expression templates of the conditions that are no ordering (those are shapes, engine/bounds.py):
# {x} the normalized value (None when unknown), {k} the constant.
_OPS: dict[tuple[str, str], str] = {
    ("string", "eq"): "({x} == {k})",
    ("string", "ne"): "({x} != {k})",
    ("string", "in"): "({x} in {k})",
    ("string", "not_in"): "({x} not in {k})",
    ("string", "contains"): "({x} is not None and {k} in {x})",
    ("string", "not_contains"): "({x} is None or {k} not in {x})",
    ("string", "starts_with"): "({x} is not None and {x}.startswith({k}))",
    ("string", "ends_with"): "({x} is not None and {x}.endswith({k}))",
    ("number", "in"): "({x} is not None and _is_among({x}, {k}))",
    ("number", "not_in"): "({x} is None or not _is_among({x}, {k}))",
    ("boolean", "is_true"): "({x} is True)",
    ("boolean", "is_false"): "({x} is False)",
    ("any", "exists"): "({x} is not None)",
    ("any", "not_exists"): "({x} is None)",
    ("tag", "has_tag"): "({k} in {x})",
    ("tag", "not_has_tag"): "({k} not in {x})",
}


# A string op on known text {x} (folded), for a string read in place; {k} the constant.
_STRING_TESTS = {
    "eq": "{x} == {k}",
    "ne": "{x} != {k}",
    "in": "{x} in {k}",
    "not_in": "{x} not in {k}",
    "contains": "{k} in {x}",
    "not_contains": "{k} not in {x}",
    "starts_with": "{x}.startswith({k})",
    "ends_with": "{x}.endswith({k})",
}


class Compiler:
    """Builds one function from filters. Add segments in dependency order, then `build`.

    `trees` are all the filters the function will evaluate (to count how often each field is read).
    """

    def __init__(self, calendar: Calendar, trees: Iterable[Filter]):
        self.calendar = calendar
        self.constants: list[object] = []
        self._constant_index: dict[tuple[type, object], int] = {}
        self._company_tests: dict[Condition, tuple[str, str]] = {}  # name, now-value arguments
        self._inline_tests = 0
        self._functions: list[str] = []
        self.segment_vars: dict[str, str] = {}
        self._segments: list[tuple[str, str, str]] = []  # (id, local, expression), dependency order
        self._referenced: set[str] = set()  # locals of segments that other filters refer to
        self._bounds: dict[Condition, tuple[str, tuple[Cut, ...]] | None] = {}
        # How often each field of the main record is read, and the distinct cuts it is tested
        # against (in the order first seen).
        uses: Counter[FieldKey] = Counter()
        types: dict[FieldKey, set[str]] = {}  # per stored value, the types it is read as
        cuts: dict[FieldKey, dict[Cut, None]] = {}
        orderings: Counter[FieldKey] = Counter()
        occurrences: Counter[Condition] = Counter()
        for tree in trees:
            for condition in conditions(tree):
                occurrences[condition] += 1
                if condition.field.kind == "segment" or condition.field.via_company:
                    continue
                field = read_field(condition)
                key = field_key(field)
                uses[key] += 1
                types.setdefault(raw_key(field), set()).add(field.type)
                found = self.bounds(condition)
                if found is not None:
                    cuts.setdefault(key, {}).update(dict.fromkeys(found[1]))
                    orderings[key] += 1
        ranked = {key: tuple(found) for key, found in cuts.items() if orderings[key] >= RANK_MIN_CONDITIONS}
        self.now_values = NowValues(self.const)
        shared = {raw for raw, read_as in types.items() if len(read_as) > 1}
        self.main = Scope(self.const, self.now_values, uses=uses, shared=shared, ranked=ranked)
        # Conditions found more than once (in several segments), each answered once per record.
        self._repeated = {c for c, count in occurrences.items() if count > 1 and c.field.kind != "segment"}
        self._answers: dict[Condition, str] = {}

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
        results = ResultSets(segment_ids)
        extra = {"_known": results.known, "_make": results.make, "_TARGET": target, "_elsewhere": elsewhere}
        lookup = ["try:", f"    return _known[{key}]", "except KeyError:", f"    return _make({key})"]
        return self._build([*body, *lookup], extra, ", target=_TARGET", head)

    def _build(
        self, tail: list[str], extra: dict[str, Any], parameters: str = "", head: Sequence[str] = ()
    ) -> tuple[Any, str]:
        lines = [*self._functions, *self.now_values.refresh_function()]
        lines += [f"def _program(rec, now{parameters}):"]
        lines += [f"    {line}" for line in [*head, *self.now_values.prelude()]]
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
            "KeyError": KeyError,
            "_UNSET": _UNSET,
            "_EMPTY": {},  # custom attributes that are not a map: none (never written to)
            "_DICT": dict,
            "_STR": str,
            "_companies_of": companies_of,
            "_k_companies": "companies",
            "_NO_COMPANY": NO_COMPANY,
            "_LIST": list,
            "_LEN": len,
            "_days_ago": self.calendar.days_ago_bounds,
            "_rank": rank,
            "_bisect": bisect_right,
            "_event_stat": event_stat,
            "_SET": set,
            "_tags_of": tags_of,
        }
        namespace["_now_cell"] = [self.now_values.first_state(_NO_NOW)]  # the first call computes
        namespace.update(extra)
        namespace.update((f"_k{index}", value) for index, value in enumerate(self.constants))
        exec(compile(source, "<segment-engine>", "exec"), namespace)
        return namespace["_program"], source

    # -- expressions --------------------------------------------------------------------------

    def expression(self, node: Filter, scope: Scope) -> str:
        if isinstance(node, And | Or):  # the cheapest items first (engine/costs.py)
            items = sorted(node.items, key=lambda item: cost(item, scope.reads_in_place, scope.is_ranked))
            joined = " and " if isinstance(node, And) else " or "
            return "(" + joined.join(self.expression(item, scope) for item in items) + ")"
        if isinstance(node, Not):
            return f"(not {self.expression(node.item, scope)})"
        return self.condition(node, scope)

    def condition(self, condition: Condition, scope: Scope) -> str:
        """A condition's expression; one found in several places is answered once per record."""
        if condition not in self._repeated or not scope.is_main:
            return self._condition(condition, scope)
        if cost(condition, scope.reads_in_place, scope.is_ranked) < SHARE_MIN_COST:
            return self._condition(condition, scope)  # cheaper than looking the answer up
        name = self._answers.get(condition)
        if name is None:  # unknown until first needed, since and/or may skip every place of it
            name = self._answers[condition] = f"e{len(self._answers)}"
            scope.prelude.append(f"{name} = _UNSET")
        return f"({name} if {name} is not _UNSET else ({name} := {self._condition(condition, scope)}))"

    def _condition(self, condition: Condition, scope: Scope) -> str:
        field, op = condition.field, condition.op
        if field.kind == "segment":
            name = self.segment_vars[str(condition.value)]
            self._referenced.add(name)
            return name if op == "in_segment" else f"(not {name})"
        if field.via_company and scope.is_main:
            return self._any_company(condition, scope.companies())
        field = read_field(condition)
        found = self.bounds(condition)
        if found is not None:
            return self._ordering(found[0], found[1], field, scope)
        value = condition.value
        if field.type == "number":  # in, not_in
            constant = self.const(equal_cuts(cast(Iterable[float], value)))
        else:
            constant = self.const(value) if value is not None else ""
        if scope.reads_in_place(field) and field.type not in ("number", "tag"):
            return self._in_place(field, op, constant, scope.read(field))
        local, loading = scope.load(field)
        template = _OPS[(field.type, op)]
        if loading is not None:  # load in place: bind the local where it is first read
            template = template.replace("{x}", f"({local} := {loading})", 1)
        return template.format(x=local, k=constant)

    @staticmethod
    def _in_place(field: FieldRef, op: str, constant: str, read: str) -> str:
        """A condition on a value read once, where it is tested: no local. A string is tested on
        its folded text once its class is known (unknown: the op's answer on unknown)."""
        if field.type != "string":  # boolean, any: the stored value is the value
            return _OPS[(field.type, op)].format(x=read)
        test = _STRING_TESTS[op].format(x="v.casefold()", k=constant)
        if op in TRUE_WHEN_UNKNOWN:
            return f"((v := {read}).__class__ is not _STR or {test})"
        return f"((v := {read}).__class__ is _STR and {test})"

    def bounds(self, condition: Condition) -> tuple[str, tuple[Cut, ...]] | None:
        """The shape and cuts of an ordering condition (made once per condition)."""
        if condition not in self._bounds:
            self._bounds[condition] = bounds(condition, self.calendar)
        return self._bounds[condition]

    def _ordering(self, shape: str, cuts: tuple[Cut, ...], field: FieldRef, scope: Scope) -> str:
        """An ordering condition: on the field's rank when it is ranked, else on its value."""
        on_value, on_rank = SHAPES[shape]
        if scope.is_ranked(field):
            position, indexes = scope.rank(field)
            names = [indexes[cut] for cut in cuts]
            return on_rank.format(p=position, i=names[0], j=names[-1])
        local, loading = scope.load(field)
        names = [scope.cut(cut) for cut in cuts]
        if loading is not None:  # load in place: bind the local where it is first read
            on_value = on_value.replace("{x}", f"({local} := {loading})", 1)
        return on_value.format(x=local, a=names[0], b=names[-1])

    def _any_company(self, condition: Condition, companies: str) -> str:
        """Does any of a user's companies meet a company.* condition? A user has one company, or
        none, in the usual case: one is tested in place (a call costs more than the test), none
        is one all-unknown company, whose answer the op alone gives. Anything else (several, or
        not a list of maps) goes to the condition's function."""
        name, arguments = self._company_test(condition)
        prefix = f"c{self._inline_tests}_"  # its locals, apart from the main scope's
        self._inline_tests += 1
        inline = Scope(self.const, self.now_values, record="company", prefix=prefix, inline=True)
        alone = (
            f"{companies}.__class__ is _LIST and _LEN({companies}) == 1"
            f" and (company := {companies}[0]).__class__ is _DICT"
        )
        none = self.const(condition.op in TRUE_WHEN_UNKNOWN)  # no list, or an empty one
        return (
            f"({self.condition(condition, inline)} if ({alone})"
            f" else {none} if not {companies} else {name}({companies}{arguments}))"
        )

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
            scope = Scope(self.const, self.now_values, record="company", takes_now_values=True)
            expression = self.condition(condition, scope)
            arguments = "".join(f", {param}" for param in scope.params)
            known = self._company_tests[condition] = (name, arguments)
            self._functions += [
                f"def {name}(companies{arguments}):",
                "    if companies.__class__ is not _LIST or not companies:",
                "        companies = _NO_COMPANY",
                "    for company in companies:",
                "        if company.__class__ is not _DICT:",
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
