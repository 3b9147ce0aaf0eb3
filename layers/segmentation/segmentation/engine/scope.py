"""What the generated code reads once: fields of a record (Scope), and values of `now` (NowValues).

Both hand out names of locals (or of constants); the compiler writes expressions over them. No
text from a filter becomes code here either: every value from a filter is a constant named by
`const`, and every name is made here.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence, Set

from segmentation.engine.bounds import Cut, rank
from segmentation.engine.fields import FIELD_DEFAULTS
from segmentation.engine.model import Condition, FieldRef

Const = Callable[[object], str]  # the global name bound to a constant value
FieldKey = tuple[object, ...]

# How a raw value becomes the compared value, per field type. `{r}` is its read: the value is read
# once, its class checked (Decimal first: what boto3 returns, used as is), else converted.
_NORMALIZE = {
    "string": "v.casefold() if (v := {r}).__class__ is _STR else None",
    "number": "v if (v := {r}).__class__ is _DEC else _number_of(v)",
    "timestamp": "v if (v := {r}).__class__ is _DEC else _timestamp_of(v)",
    "boolean": "{r}",
    "any": "{r}",
    # A string set (what boto3 returns) is used as is; anything else through _tags_of.
    "tag": "v if (v := {r}).__class__ is _SET else _tags_of(v)",
}


def field_key(field: FieldRef) -> FieldKey:
    return ("field", field.kind, field.name, field.type, field.stat, field.window)


def raw_key(field: FieldRef) -> FieldKey:
    """The stored value a field reads, whatever type it is read as."""
    return ("raw", field.kind, field.name, field.stat, field.window)


def read_field(condition: Condition) -> FieldRef:
    """The field as the condition reads it. Presence is about the stored value, whatever its type
    (unknown is missing or null), so exists/not_exists read it untyped."""
    if condition.op in ("exists", "not_exists"):
        return dataclasses.replace(condition.field, type="any")
    return condition.field


class NowValues:
    """Values that depend on `now` only: the cuts of relative dates, and the sorted cuts of ranked
    fields. The generated `_refresh(now)` makes them all once per `now` (a rebuild evaluates many
    records at one instant) and keeps them as one tuple, which the program unpacks: a concurrent
    reader sees one consistent instant."""

    def __init__(self, const: Const):
        self._const = const
        self._lines: list[str] = []  # the body of _refresh, after `now = float(at)`
        self._names: dict[Cut, str] = {}
        self.exported: dict[str, None] = {}  # what the program unpacks, in order

    def cut(self, cut: Cut) -> str:
        """The name of a cut's value for the program: a constant, or an exported value."""
        name = self._value(cut)
        if cut.kind != "const":
            self.exported[name] = None
        return name

    def _value(self, cut: Cut) -> str:
        """The name of a cut's value: a constant, or a local of `_refresh`."""
        if cut.kind == "const":
            return self._const(cut.value)
        name = self._names.get(cut)
        if name is None:
            name = f"n{len(self._lines)}"
            if cut.kind == "now":
                side, sign, seconds = cut.value
                instant = f"now {sign} {self._const(seconds)}" if sign else "now"
                self._lines.append(f"{name} = _cut_{side}({instant})")
                self._names[cut] = name
            else:  # the start and the end of one calendar day, made together
                days, _ = cut.value
                self._lines.append(f"{name}, {name}_end = _cuts_below(*_days_ago(now, {self._const(days)}))")
                self._names[Cut("day", (days, False))] = name
                self._names[Cut("day", (days, True))] = f"{name}_end"
                name = self._names[cut]
        return name

    def ranks(self, cuts: Sequence[Cut]) -> tuple[str, list[str]]:
        """(the name of the sorted distinct cuts, the name of each cut's index among them). Made at
        compile time when every cut is a constant, else by `_refresh` (and exported)."""
        if all(cut.kind == "const" for cut in cuts):
            ordered, *indexes = rank([cut.value for cut in cuts])
            return self._const(ordered), [self._const(index) for index in indexes]
        names = ", ".join(self._value(cut) for cut in cuts)
        table = f"n{len(self._lines)}"
        indexes = [f"{table}_{index}" for index in range(len(cuts))]
        self._lines.append(f"{table}, {', '.join(indexes)} = _rank(({names},))")
        self.exported.update(dict.fromkeys([table, *indexes]))
        return table, indexes

    def refresh_function(self) -> list[str]:
        """`_refresh(at)`: every exported value at once, kept in `_now_cell` as one tuple
        (at, value, value, ...), which the program unpacks in one step."""
        if not self.exported:
            return []
        return [
            "def _refresh(at):",
            "    now = float(at)",
            *(f"    {line}" for line in self._lines),
            f"    state = (at, {', '.join(self.exported)})",
            "    _now_cell[0] = state",
            "    return state",
            "",
        ]

    def prelude(self) -> list[str]:
        """The program's first lines: the exported values of this `now` (made again if it moved)."""
        if not self.exported:
            return []
        names = f"at, {', '.join(self.exported)}"
        return [f"{names} = _now_cell[0]", "if at is not now and at != now:", f"    {names} = _refresh(now)"]

    def first_state(self, no_now: object) -> tuple[object, ...]:
        """What `_now_cell` holds before the first call: an instant equal to no `now`."""
        return (no_now, *[None] * len(self.exported))


class Scope:
    """One record the generated code reads, named `record`: the evaluated record (`rec`, the main
    scope), or one company of a user (`company`, read by a company test).

    A field read in several places is loaded once at the top; a field read in one place only is
    loaded where it is used, so short-circuiting skips it (`plan eq starter and photos gt 80`).
    An `inline` scope loads everything in place: its test is one expression inside another
    scope's. A ranked field (the main record's number or timestamp field that many conditions
    test) is loaded at the top with its rank among its sorted cuts (engine/bounds.py). Locals are
    named with `prefix`, so that an inline scope's never meet its host's.
    """

    def __init__(
        self,
        const: Const,
        now_values: NowValues,
        *,
        record: str = "rec",
        prefix: str = "",
        uses: Counter[FieldKey] | None = None,
        shared: Set[FieldKey] = frozenset(),
        ranked: Mapping[FieldKey, Sequence[Cut]] | None = None,
        inline: bool = False,
        takes_now_values: bool = False,
    ):
        self.const = const
        self.now_values = now_values
        self.record = record
        self.is_main = record == "rec"
        self.prefix = prefix
        self.uses = uses if uses is not None else Counter()
        self.shared = shared  # raw keys read as two types or more: read once, at the top
        self.ranked = ranked or {}
        self.inline = inline
        self.takes_now_values = takes_now_values  # a function of its own: now-values are arguments
        self.prelude: list[str] = []
        self.params: dict[str, None] = {}  # the now-values such a function takes
        self._names: dict[tuple[object, ...], str] = {}
        self._indexes: dict[FieldKey, dict[Cut, str]] = {}

    def _name(self, key: tuple[object, ...], prefix: str) -> str:
        self._names[key] = name = f"{self.prefix}{prefix}{len(self._names)}"
        return name

    def _new(self, key: tuple[object, ...], prefix: str, lines: Callable[[str], list[str]]) -> str:
        name = self._names.get(key)
        if name is None:
            name = self._name(key, prefix)
            self.prelude.extend(lines(name))
        return name

    def read(self, field: FieldRef) -> str:
        """The expression of the stored value a field reads (a local when it is shared)."""
        # `rec.get(k)`, not a bound `get = rec.get`: making a bound method object costs more than
        # several calls through the attribute (CPython specializes those for dicts).
        record = self.record
        holder = record
        if field.kind == "custom":  # the custom attributes map, or an empty one
            read = f"{record}.get({self.const('custom_attributes')})"
            attributes = f"v if (v := {read}).__class__ is _DICT else _EMPTY"
            if self.inline:
                holder = f"({attributes})"
            else:
                holder = self._new(("custom",), "_custom", lambda name: [f"{name} = {attributes}"])
        if field.kind == "event":  # a summary's statistic, counted at `now` for a window
            parts = ", ".join(self.const(part) for part in (field.name, field.stat, field.window))
            read = f"_event_stat({record}, {parts}, now)"
        elif field.kind == "standard" and field.name in FIELD_DEFAULTS and not field.via_company:
            read = f"{holder}.get({self.const(field.name)}, {self.const(FIELD_DEFAULTS[field.name])})"
        else:
            read = f"{holder}.get({self.const(field.name)})"
        if raw_key(field) in self.shared:  # `email exists or email ends_with …`: one read
            read = self._new(raw_key(field), "r", lambda name: [f"{name} = {read}"])
        return read

    def load(self, field: FieldRef, *, at_top: bool = False) -> tuple[str, str | None]:
        """(local, None) for a value loaded at the top, or (local, expression) to load it in place."""
        loading = _NORMALIZE[field.type].format(r=self.read(field))
        key = field_key(field)
        if (self.inline or self.uses[key] == 1) and not at_top:
            return self._name(("inline", len(self._names)), "x"), loading
        return self._new(key, "x", lambda name: [f"{name} = {loading}"]), None

    def reads_in_place(self, field: FieldRef) -> bool:
        """Whether a test of this field reads it where it is tested (it is read nowhere else)."""
        return (self.inline or self.uses[field_key(field)] == 1) and not self.is_ranked(field)

    def is_ranked(self, field: FieldRef) -> bool:
        return self.is_main and field_key(field) in self.ranked

    def rank(self, field: FieldRef) -> tuple[str, dict[Cut, str]]:
        """(local, {cut: index name}) of a ranked field: its value's rank among the field's
        sorted cuts (bisect_right), -1 when unknown."""
        key = field_key(field)
        if key not in self._indexes:
            local, _ = self.load(field, at_top=True)
            cuts = self.ranked[key]
            table, indexes = self.now_values.ranks(cuts)
            self._indexes[key] = dict(zip(cuts, indexes, strict=True))
            position = self._name(("rank", key), "p")
            self.prelude.append(f"{position} = -1 if {local} is None else _bisect({table}, {local})")
        return self._names[("rank", key)], self._indexes[key]

    def cut(self, cut: Cut) -> str:
        """The name of a cut as this scope reads it (a function of its own takes it as argument)."""
        name = self.now_values.cut(cut)
        if self.takes_now_values and cut.kind != "const":
            self.params[name] = None
        return name

    def companies(self) -> str:
        """The raw `companies` value; each company test reads it as companies_of does."""
        return self._new(
            ("companies",), "_companies", lambda name: [f"{name} = rec.get({self.const('companies')})"]
        )
