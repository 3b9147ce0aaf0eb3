"""The Liquid environment message templates render in: python-liquid 2, every render metered by a
template_budget.Budget.

What is charged, and where python-liquid lets us hook it:
- a loop, its whole length when it starts (RenderContext.loop: `for` and `tablerow`);
- a step per tag or output evaluated, weighted by the size of its expressions: every node of a
  parsed template is wrapped once, after parsing (a `when 1, 1, 1, ...` or a long `or` chain is
  as much work as a loop, and no loop counter sees it);
- a variable read, its path and what it returns (RenderContext.get): a long text compared or
  searched on every iteration costs its length every time;
- a range, its length when it is made: range literals are replaced, after parsing, by a subclass
  that charges (a lazy `range` of a billion items costs nothing to make, but `contains` scans it
  and `for ... reversed` lists it, both before any other limit is looked at);
- a filter, every value it takes and returns, and what join/replace/append/concat would build is
  refused before they build it (the wrapper around every filter);
- output, every character written to the result or to a `capture` (the output buffers).

python-liquid is imported on the first template checked or rendered: most routes and functions
never need it. Its classes are subclassed inside `_runtime()` for that reason.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, cast

from segmentation.messaging.template_budget import (
    ITEMS,
    ITERATIONS,
    LIST,
    TEXT,
    Budget,
    BudgetExceeded,
    size_of_range,
)

if TYPE_CHECKING:
    from liquid import BoundTemplate, Environment, RenderContext
    from liquid.ast import Node
    from liquid.expression import Expression

# Output of one render or one `capture`, in UTF-8 bytes (python-liquid's own limit).
MAX_OUTPUT = TEXT.maximum
# Filters slower per character or item than the rest (measured: docs/messaging.md) pay that
# many units per unit, so a budget spent on them takes no longer than one spent on `upcase`.
FILTER_WEIGHTS = {
    "date": 200,
    "url_decode": 20,
    "url_encode": 5,
    "newline_to_br": 5,
    "escapejs": 10,
    "strip_html": 10,
    "strip_newlines": 5,
    "escape_once": 3,
}


@dataclass(frozen=True)
class _Runtime:
    plain: Environment  # to check templates: python-liquid's own classes, nothing metered
    metered: Environment
    metered_html: Environment  # the same, escaping every value it outputs (an email's HTML part)
    range_class: type[Expression]
    node_class: type[Node]
    liquid_error: type[Exception]
    resource_limit_error: type[Exception]


def parse(source: str) -> BoundTemplate:
    """The template as python-liquid parses it: for checks and static analysis."""
    return _parse_plain(source)


def filter_names() -> frozenset[str]:
    return frozenset(_runtime().plain.filters)


def liquid_errors() -> tuple[type[Exception], type[Exception]]:
    """(any python-liquid error, python-liquid's resource limit errors)."""
    runtime = _runtime()
    return runtime.liquid_error, runtime.resource_limit_error


def render(source: str, data: dict[str, Any], *, html: bool, budget: Budget) -> str:
    """Render with every unit of work charged to `budget`. Raises BudgetExceeded, or a python-liquid
    error for anything else (a type error in a filter, a limit of its own)."""
    template = _parse_metered(source, html)
    return cast(Any, template).render_metered(data, budget)


def reset_cache() -> None:
    _parse_plain.cache_clear()
    _parse_metered.cache_clear()


@lru_cache(maxsize=512)
def _parse_plain(source: str) -> BoundTemplate:
    return _runtime().plain.from_string(source)


@lru_cache(maxsize=512)
def _parse_metered(source: str, html: bool) -> BoundTemplate:
    runtime = _runtime()
    template = (runtime.metered_html if html else runtime.metered).from_string(source)
    _bound_ranges(template.nodes, runtime.range_class)
    _meter(template, runtime.node_class)
    return template


def _budget_of(context: RenderContext) -> Budget:
    budget: Budget = cast(Any, context).budget
    return budget


@cache
def _runtime() -> _Runtime:
    from liquid import BoundTemplate, Environment, RenderContext
    from liquid.ast import Node
    from liquid.builtin.expressions.primitive import RangeLiteral
    from liquid.exceptions import LiquidError, ResourceLimitError
    from liquid.output import LimitedStringIO
    from liquid.undefined import UNDEFINED

    class MeteredOutput(LimitedStringIO):
        def __init__(self, budget: Budget, limit: int) -> None:
            super().__init__(limit=limit)
            self.budget = budget

        def write(self, text: str) -> int:
            self.budget.write(len(text))
            return super().write(text)

    class MeteredContext(RenderContext):
        __slots__ = ("budget",)

        def __init__(self, *args: Any, budget: Budget | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            parent = kwargs.get("parent_context")
            self.budget = budget or (_budget_of(parent) if parent is not None else Budget())

        def get(self, path: list[object], *, token: Any, default: object = UNDEFINED) -> object:
            value = super().get(path, token=token, default=default)
            self.budget.step(len(path))
            return self.budget.handle(value, f"'{_path_text(path)}'")

        def loop(self, namespace: Any, forloop: Any) -> Any:
            self.budget.iterate(forloop.length)
            return super().loop(namespace, forloop)

        def get_buffer(self, buf: Any = None) -> MeteredOutput:
            carry = buf.size if isinstance(buf, LimitedStringIO) else 0
            return MeteredOutput(self.budget, MAX_OUTPUT - carry)

    class MeteredTemplate(BoundTemplate):
        context_class = MeteredContext

        def render_metered(self, data: dict[str, Any], budget: Budget) -> str:
            context = MeteredContext(self, globals=self.make_globals(data), budget=budget)
            buffer = MeteredOutput(budget, MAX_OUTPUT)
            self.render_with_context(context, buffer)
            return buffer.getvalue()

    class MeteredEnvironment(Environment):
        template_class = MeteredTemplate
        # python-liquid's limits stay as a second line; the budget is stricter on loops and
        # output. Its local namespace limit is left off: it sums the size of every local on
        # every `assign` (quadratic in the number of locals), and every value a template can
        # hold was charged when it was built.
        loop_iteration_limit = ITERATIONS.maximum
        output_stream_limit = MAX_OUTPUT
        context_depth_limit = 20

        def setup_tags_and_filters(self, *, extra: bool = False) -> None:
            super().setup_tags_and_filters(extra=extra)
            self.filters["uniq"] = _linear_uniq(self.filters["uniq"])
            self.filters = {name: _metered_filter(name, function) for name, function in self.filters.items()}

    class BoundedRange(RangeLiteral):
        """A range literal that charges its length when made, and refuses one over LIST."""

        __slots__ = ()

        def evaluate(self, context: RenderContext) -> range:
            made = super().evaluate(context)
            _budget_of(context).handle(made, f"the range {self}")
            return made

    class MeteredNode(Node):
        """A node that charges its weight, then renders as it is."""

        __slots__ = ("node", "weight")

        def __init__(self, node: Node, weight: int) -> None:
            super().__init__(node.token)
            self.node = node
            self.weight = weight
            self.blank = node.blank

        def __str__(self) -> str:
            return str(self.node)

        def render_to_output(self, context: RenderContext, buffer: Any) -> int:
            _budget_of(context).step(self.weight)
            return self.node.render(context, buffer)

        def children(self, static_context: RenderContext, *, include_partials: bool = True) -> Iterable[Node]:
            return self.node.children(static_context, include_partials=include_partials)

        def expressions(self) -> Iterable[Expression]:
            return self.node.expressions()

    return _Runtime(
        plain=Environment(),
        metered=MeteredEnvironment(),
        metered_html=MeteredEnvironment(autoescape=True),
        range_class=BoundedRange,
        node_class=MeteredNode,
        liquid_error=LiquidError,
        resource_limit_error=ResourceLimitError,
    )


def _path_text(path: list[object]) -> str:
    return ".".join(str(segment) for segment in path)[:60]


def _metered_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, charging every value it takes and returns, and refusing before it runs what
    it would build too big. python-liquid passes the render context to filters marked
    `with_context`: the budget is found there."""
    from liquid.exceptions import FilterError

    weight = FILTER_WEIGHTS.get(name, 1)
    wants_context = getattr(function, "with_context", False)
    where = f"filter '{name}'"

    @functools.wraps(function, updated=())
    def metered(left: Any, *args: Any, context: RenderContext, **kwargs: Any) -> Any:
        budget = _budget_of(context)
        for value in (left, *args, *(v for k, v in kwargs.items() if k != "environment")):
            budget.handle(value, where, weight)
        _refuse_growth(name, left, args)
        if wants_context:
            kwargs["context"] = context
        try:
            result = function(left, *args, **kwargs)
        except (ValueError, ArithmeticError, LookupError) as exc:
            # Some filters let Python's own errors out (base64_decode of bytes that are not
            # UTF-8): a template error like any other, not a crash of the caller.
            raise FilterError(f"{name}: {exc}", token=None) from exc
        return budget.handle(result, where, weight)

    # python-liquid reads these attributes to know what to pass.
    setattr(metered, "with_context", True)  # noqa: B010
    setattr(metered, "with_environment", getattr(function, "with_environment", False))  # noqa: B010
    return metered


def _linear_uniq(quadratic: Callable[..., Any]) -> Callable[..., Any]:
    """python-liquid's `uniq` compares every item with those before it (it allows unhashable
    items): 10,000 items take seconds. Hashable items go through a dict instead, same result
    (first occurrences, in order); the rest still take the quadratic way, charged as such."""
    from liquid.filter import flatten

    def uniq(sequence: Any, key: object = None, *, context: RenderContext) -> Any:
        if key is None and isinstance(sequence, list | tuple | range):
            try:
                return list(dict.fromkeys(flatten(sequence)))
            except TypeError:
                pass  # an unhashable item
        count = len(sequence) if isinstance(sequence, list | tuple | range) else 1
        _budget_of(context).charge(ITEMS, count * (count - 1) // 2, "filter 'uniq'")
        return quadratic(sequence, key)

    setattr(uniq, "with_context", True)  # noqa: B010
    return uniq


def _refuse_growth(name: str, left: Any, args: tuple[Any, ...]) -> None:
    """Refuse, before it runs, a filter whose result would pass TEXT or LIST: `split: '' | join: s`
    repeated grows a text a thousandfold a step."""
    where = f"filter '{name}'"
    size: int | None = None
    if name == "join" and isinstance(left, list | tuple | range):
        separator = str(args[0]) if args else " "
        size = sum(len(str(item)) for item in left) + len(separator) * max(0, len(left) - 1)
    elif name in ("replace", "replace_first", "replace_last") and isinstance(left, str) and args:
        old, new = str(args[0]), str(args[1]) if len(args) > 1 else ""
        times = (len(left) + 1 if old == "" else left.count(old)) if name == "replace" else 1
        size = len(left) + times * len(new)
    elif name in ("append", "prepend") and args:
        size = len(str(left)) + len(str(args[0]))
    elif (
        name == "concat"
        and args
        and isinstance(left, list | tuple)
        and isinstance(args[0], list | tuple)
        and len(left) + len(args[0]) > LIST.maximum
    ):
        raise BudgetExceeded(LIST, where)
    if size is not None and size > TEXT.maximum:
        raise BudgetExceeded(TEXT, where)


# --- After parsing: ranges bounded, every node metered -------------------------------------------


def _bound_ranges(nodes: list[Node], range_class: type[Expression]) -> None:
    """Replace every range literal in the tree by `range_class`. Expressions keep their parts in
    slots, lists and tuples; this walks them all rather than knowing each tag's layout."""
    from liquid.builtin.expressions.primitive import RangeLiteral

    seen: set[int] = set()

    def visit(value: Any) -> Any:
        if type(value) is RangeLiteral:
            value = range_class(value.token, value.start, value.stop)  # type: ignore[call-arg]
        if isinstance(value, list):
            value[:] = [visit(item) for item in value]
        elif type(value) is tuple:
            value = tuple(visit(item) for item in value)
        elif (_is_liquid_object(value) or type(value) is range_class) and id(value) not in seen:
            seen.add(id(value))
            for slot in _slots(type(value).__mro__):
                if hasattr(value, slot):
                    old = getattr(value, slot)
                    new = visit(old)
                    if new is not old:
                        setattr(value, slot, new)
        return value

    visit(nodes)


def _is_liquid_object(value: object) -> bool:
    return type(value).__module__.startswith("liquid.") and not isinstance(value, str | tuple | int)


@cache
def _slots(classes: tuple[type, ...]) -> tuple[str, ...]:
    """The slot names a class and its bases declare (`classes`: its __mro__, hashable)."""
    names: list[str] = []
    for klass in classes:
        declared = klass.__dict__.get("__slots__", ())
        names.extend([declared] if isinstance(declared, str) else declared)
    return tuple(dict.fromkeys(names))


def _meter(template: BoundTemplate, node_class: type[Node]) -> None:
    """Wrap every node the template renders so that rendering it first charges its weight: 1,
    plus every expression term it evaluates itself (its conditions, `when` values, filters and
    their arguments). Nodes inside a block are wrapped in their own right."""
    from liquid import RenderContext
    from liquid.ast import BlockNode

    static_context = RenderContext(template)

    def own_parts(node: Node) -> Iterator[Node]:
        """The node and what it evaluates itself (elsif and when clauses), not its blocks."""
        yield node
        for child in node.children(static_context, include_partials=False):
            if not isinstance(child, BlockNode):
                yield from own_parts(child)

    def blocks(node: Node) -> Iterator[BlockNode]:
        for child in node.children(static_context, include_partials=False):
            if isinstance(child, BlockNode):
                yield child
            else:
                yield from blocks(child)

    def meter(nodes: list[Node]) -> None:
        for index, node in enumerate(nodes):
            for block in blocks(node):
                meter(block.nodes)
            weight = sum(1 + sum(_terms(e) for e in part.expressions()) for part in own_parts(node))
            nodes[index] = cast(Any, node_class)(node, weight)

    meter(template.nodes)


def _terms(expression: Expression) -> int:
    """The number of expression objects in `expression`, itself included."""
    return 1 + sum(_terms(child) for child in expression.children())


# --- Before rendering: what a template shows it will spend ----------------------------------------


def static_overrun(template: BoundTemplate) -> str | None:
    """Why the template is sure to exceed its budget whenever a part of it runs, or None. Seen
    without rendering: a range with literal bounds longer than a list may be; loops over literal
    ranges nested so deep that their lengths multiply past the iterations; a literal range made
    inside such loops more often than the items allow (the issue's `(1..9999) | join` in a
    10,000-iteration loop). Loops over anything else count as running once."""
    from liquid import RenderContext
    from liquid.builtin.tags.for_tag import ForNode
    from liquid.builtin.tags.tablerow_tag import TablerowNode

    static_context = RenderContext(template)

    def visit(node: Node, times: int) -> str | None:
        for expression in node.expressions():
            for bounds in _literal_ranges(expression):
                found = _range_overrun(bounds, times)
                if found:
                    return found
        inner = times
        if isinstance(node, ForNode | TablerowNode):
            length = _literal_loop_length(node.expression)
            if length is not None:
                inner = times * length
                if inner > ITERATIONS.maximum:
                    return (
                        f"loops over literal ranges nest to {inner:,} iterations; a render may run "
                        f"{ITERATIONS.maximum:,}"
                    )
        for child in node.children(static_context, include_partials=False):
            runs = times if isinstance(node, ForNode) and child is node.default else inner
            found = visit(child, runs)
            if found:
                return found
        return None

    for node in template.nodes:
        found = visit(node, 1)
        if found:
            return found
    return None


def _range_overrun(bounds: tuple[str, int], times: int) -> str | None:
    text, size = bounds
    if size > LIST.maximum:
        return f"the range {text} has {size:,} items; a range may have at most {LIST.maximum:,}"
    if times > 1 and times * size > ITEMS.maximum:
        return (
            f"the range {text} is made {times:,} times (in loops), {times * size:,} items; a render "
            f"may handle {ITEMS.maximum:,}"
        )
    return None


def _literal_ranges(expression: Expression) -> Iterator[tuple[str, int]]:
    """(text, length) of every range with integer literal bounds in `expression`."""
    length = _literal_range_length(expression)
    if length is not None:
        yield str(expression), length
    for child in expression.children():
        yield from _literal_ranges(child)


def _literal_range_length(expression: Expression) -> int | None:
    from liquid.builtin.expressions.primitive import IntegerLiteral, RangeLiteral

    if (
        isinstance(expression, RangeLiteral)
        and isinstance(expression.start, IntegerLiteral)
        and isinstance(expression.stop, IntegerLiteral)
    ):
        return size_of_range(range(expression.start.value, expression.stop.value + 1))
    return None


def _literal_loop_length(loop: Any) -> int | None:
    """How many times a loop over a literal range with literal (or no) offset and limit runs."""
    from liquid.builtin.expressions.primitive import IntegerLiteral

    length = _literal_range_length(loop.iterable)
    if length is None or any(
        part is not None and not isinstance(part, IntegerLiteral) for part in (loop.offset, loop.limit)
    ):
        return None
    offset = loop.offset.value if loop.offset is not None else 0
    length = max(length - max(offset, 0), 0)
    if loop.limit is not None:
        length = min(length, max(loop.limit.value, 0))
    return length
