"""The work one render of a message template may do, counted in deterministic units.

python-liquid's own limits bound a loop nest's product of lengths, the output and the locals, not
the total: 10,000 iterations that each join a 9,999-item range pass all of them and take minutes
of CPU. So every render gets a Budget, charged as the template runs (liquid_sandbox.py does the
charging): loop iterations, steps (each tag or output evaluated, weighted by the size of its
expressions), list items and characters that filters, ranges, variable reads and output handle,
and the size of every single value. Passing any limit ends the render with BudgetExceeded. The
numbers and why they are what they are: docs/messaging.md, "Templates: the render budget".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limit:
    name: str
    maximum: int
    unit: str  # what is counted, as an error message says it


# Totals per render (one template rendered once for one user).
ITERATIONS = Limit("iterations", 10_000, "loop iterations")
STEPS = Limit("steps", 20_000, "steps (tags and outputs evaluated, weighted by their expressions)")
ITEMS = Limit("items", 50_000, "list items handled (by filters, ranges and variable reads)")
CHARACTERS = Limit("characters", 1_000_000, "characters handled (by filters, variable reads and output)")
# Sizes of any one value a template computes.
TEXT = Limit("text", 200_000, "characters in one text")
LIST = Limit("list", 10_000, "items in one list or range")
INTEGER = Limit("integer", 256, "bits in one integer")


class BudgetExceeded(Exception):
    """A render went past a limit of its budget: it is stopped there, with what was passed."""

    def __init__(self, limit: Limit, where: str = "") -> None:
        super().__init__(f"more than {limit.maximum:,} {limit.unit}" + (f" (at {where})" if where else ""))
        self.limit = limit


class Budget:
    """What one render has spent so far. Every charge adds first and then compares, so the
    counters say how far a render got (tests and the bench read them)."""

    __slots__ = ("characters", "items", "iterations", "steps")

    def __init__(self) -> None:
        self.iterations = 0
        self.steps = 0
        self.items = 0
        self.characters = 0

    def iterate(self, count: int) -> None:
        """A loop starts: it is charged its whole length at once (a `break` refunds nothing)."""
        self.charge(ITERATIONS, count, "a loop")

    def step(self, weight: int) -> None:
        self.charge(STEPS, weight)

    def write(self, characters: int) -> None:
        """Output written, to the result or to a `capture`."""
        self.charge(CHARACTERS, characters, "output")

    def handle(self, value: Any, where: str, weight: int = 1) -> Any:
        """Charge a value a filter takes or gives, a range makes or a variable read returns: its
        characters or items, times `weight` for filters slower than the rest per unit. A value
        bigger than a single value may be is refused whatever the totals."""
        if isinstance(value, str):
            if len(value) > TEXT.maximum:
                raise BudgetExceeded(TEXT, where)
            self.charge(CHARACTERS, len(value) * weight, where)
        elif isinstance(value, list | tuple | range | dict | set):
            count = size_of_range(value) if isinstance(value, range) else len(value)
            if count > LIST.maximum:
                raise BudgetExceeded(LIST, where)
            self.charge(ITEMS, count * weight, where)
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > INTEGER.maximum:
            raise BudgetExceeded(INTEGER, where)
        return value

    def charge(self, limit: Limit, amount: int, where: str = "") -> None:
        spent = getattr(self, limit.name) + amount
        setattr(self, limit.name, spent)
        if spent > limit.maximum:
            raise BudgetExceeded(limit, where)

    def spent(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in ("iterations", "steps", "items", "characters")}


def size_of_range(value: range) -> int:
    """len() without its OverflowError: a range's bounds may be any integers."""
    return max(0, (value.stop - value.start + value.step - (1 if value.step > 0 else -1)) // value.step)
