"""No text from a filter or a segment ever becomes code: hostile names, values and ids are inert."""

from __future__ import annotations

import builtins

import pytest
from engine_helpers import ATTRIBUTES, NOW, both, cond
from segmentation.engine import SegmentDef, Workspace
from segmentation.engine.calendar import Calendar
from segmentation.engine.compiler import Compiler
from segmentation.engine.model import Condition, FieldRef, Or

CANARY = "__import__('builtins').__dict__.__setitem__('ENGINE_PWNED', 1)"
HOSTILE = [
    CANARY,
    f"'); {CANARY}; ('",
    f'"); {CANARY}; ("',
    f"\n{CANARY}\n",
    f"x\"\"\"\n{CANARY}\n'''",
    "{x} {k} {a} {b} _k0 s0 now rec",
    "\\', \\\" \\n \x00 ünïcödé ß",
    f"}} + {CANARY} + {{",
]


@pytest.fixture(autouse=True)
def no_canary():
    yield
    assert not hasattr(builtins, "ENGINE_PWNED"), "a hostile string was executed"


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_values_are_compared_as_plain_text(text):
    record = {"name": text.upper(), "custom_attributes": {"plan": text}}
    assert both(cond("name", "eq", text), record) is True
    assert both(cond("name", "in", [text, "other"]), record) is True
    assert both(cond("custom_attributes.plan", "contains", text), record) is True
    assert both(cond("custom_attributes.plan", "ne", text + "!"), record) is True
    assert both(cond("name", "starts_with", text + "!"), record) is False


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_segment_ids_and_names_are_inert(text):
    inner = SegmentDef(text, text, "users", cond("email", "eq", text))
    outer = SegmentDef(text + "2", text, "users", {"not": cond("segment", "in_segment", text)})
    workspace = Workspace([inner, outer], attributes=ATTRIBUTES)
    assert workspace.segments_of({"email": text}, NOW) == {text}
    assert workspace.segments_of({"email": "someone"}, NOW) == {text + "2"}
    assert text not in workspace.sources["users"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_field_names_that_skip_validation_are_still_inert(text):
    # Build the tree by hand, as if validation had been bypassed, and compile it directly.
    tree = Or(
        (
            Condition(FieldRef("standard", text, "string"), "eq", "yes"),
            Condition(FieldRef("custom", text, "number"), "gt", 1.0),
            Condition(FieldRef("standard", text, "timestamp", via_company=True), "less_than_days_ago", 1.0),
        )
    )
    compiler = Compiler(Calendar("UTC"), [tree])
    program, source = compiler.build_predicate(tree)
    assert text not in source
    assert program({text: "YES"}, NOW) is True
    assert program({"custom_attributes": {text: 2}}, NOW) is True
    assert program({"companies": [{text: NOW - 10}]}, NOW) is True
    assert program({"name": "yes"}, NOW) is False


def test_the_generated_code_has_no_builtins_but_float():
    workspace = Workspace([SegmentDef("a", "A", "users", cond("email", "eq", "x"))])
    program = workspace.predicate(cond("email", "eq", "x"))
    assert program.__globals__["__builtins__"] == {"float": float}


def test_custom_attribute_names_must_be_identifiers():
    workspace = Workspace([SegmentDef("a", "A", "users", cond(f"custom_attributes.{CANARY}", "exists"))])
    assert "a" in workspace.broken
    assert CANARY not in workspace.sources["users"]
