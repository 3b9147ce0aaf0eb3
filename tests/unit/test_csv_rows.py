"""CSV imports' pure parts: records read from any byte offset with where each ends, the header's
checks, each row's rules and the typing of custom attribute cells."""

from __future__ import annotations

from decimal import Decimal

import pytest
from segmentation.errors import Invalid
from segmentation.people.csv_reader import records
from segmentation.people.imports import read_header, read_row, typed_value

FILE = (
    b"\xef\xbb\xbfuser_id,name\r\n"  # line 1, after a byte order mark
    b'u1,"Ada\nLovelace"\r\n'  # lines 2-3: a quoted line break
    b"\r\n"  # line 4: blank, no record
    b"u2,B\xff\n"  # line 5: not UTF-8
    b'u3,"x"y\n'  # line 6: not CSV
    b"u4,z"  # line 7: no final line break
)


def test_records_say_their_first_line_and_where_they_end() -> None:
    found = list(records([FILE[i : i + 5] for i in range(0, len(FILE), 5)], 0, 1))
    assert [(r.line, r.cells) for r in found] == [
        (1, ["user_id", "name"]),
        (2, ["u1", "Ada\nLovelace"]),
        (5, None),
        (6, None),
        (7, ["u4", "z"]),
    ]
    assert "UTF-8" in str(found[2].problem) and "CSV" in str(found[3].problem)
    assert found[-1].end == len(FILE)


@pytest.mark.parametrize("after", [0, 1, 2, 3])
def test_reading_again_from_where_a_record_ended_gives_the_same_records(after: int) -> None:
    whole = list(records([FILE], 0, 1))
    resumed = list(records([FILE[whole[after].end :]], whole[after].end, whole[after].next_line))
    assert resumed == whole[after + 1 :]


def test_a_lone_quote_does_not_make_the_rest_of_the_file_one_field() -> None:
    data = b'user_id\n"' + b"x" * 200_000 + b"\nu2\n"
    found = list(records([data], 0, 1))
    assert found[1].cells is None and "field" in str(found[1].problem)


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (None, "empty"),
        (["email"], "no user_id"),
        (["user_id", " email ", "email"], "twice"),
        (["user_id", ""], "no name"),
        (["user_id", "plan-type"], "plan-type"),
        (["user_id", *(f"a{i}" for i in range(251))], "at most 250"),
    ],
)
def test_a_header_that_cannot_be_imported_names_why_at_line_1(header: list[str] | None, says: str) -> None:
    with pytest.raises(Invalid) as refused:
        read_header(header)
    assert says in refused.value.message and refused.value.details[0]["line"] == 1  # type: ignore[index]


def test_the_header_reads_standard_export_and_custom_columns() -> None:
    assert read_header([" user_id", "tags ", "segments", "plan"]) == ["user_id", "tags", "segments", "plan"]


def row(columns: list[str], *cells: str) -> object:
    record = next(records([(",".join(columns) + "\n" + ",".join(cells) + "\n").encode()], 0, 1))
    header = read_header(record.cells)
    found = list(records([(",".join(cells) + "\n").encode()], 0, 2))
    return read_row(header, found[0])


def test_a_row_converts_the_standard_columns_and_skips_empty_cells() -> None:
    parsed = row(
        [
            "user_id",
            "email",
            "name",
            "signed_up_at",
            "unsubscribed_from_emails",
            "company_ids",
            "tags",
            "session_count",
        ],
        " u1 ",
        "a@b.c",
        "",
        "1700000000",
        "FALSE",
        "acme;;initech; acme",
        "VIP; vip ;New",
        "12",
    )
    assert parsed.user_id == "u1"  # type: ignore[attr-defined]
    assert parsed.fields == {  # type: ignore[attr-defined]
        "email": "a@b.c",
        "signed_up_at": Decimal(1700000000),
        "unsubscribed_from_emails": False,
        "company_ids": ["acme", "initech"],
    }
    assert parsed.tag_names == ["VIP", "vip", "New"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("cells", "says"),
    [
        (("", "x"), "user_id: required"),
        (("u" * 256, "x"), "user_id: at most 255"),
        (("u1", "x", "extra"), "2 columns"),
        (("u1", "a\x01b"), "control"),
    ],
)
def test_a_bad_row_names_its_column(cells: tuple[str, ...], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        row(["user_id", "name"], *cells)


@pytest.mark.parametrize(
    ("name", "cell", "known", "expected"),
    [
        ("plan", "pro", None, ("string", "pro")),
        ("seats", "12", None, ("number", Decimal(12))),
        ("ratio", "-0.5e3", None, ("number", Decimal("-0.5e3"))),
        ("zip", "02139", None, ("string", "02139")),
        ("big", "NaN", None, ("string", "NaN")),
        ("paid", "True", None, ("boolean", True)),
        ("renewed_at", "2026-12-15T00:00:00Z", None, ("timestamp", Decimal(1797292800))),
        ("renewed_at", "1797292800", None, ("timestamp", Decimal(1797292800))),
        ("label", "42", "string", ("string", "42")),
        ("count", "7", "number", ("number", Decimal(7))),
        ("paid", "false", "boolean", ("boolean", False)),
    ],
)
def test_a_cell_is_typed_as_its_attribute_or_as_the_api_would_type_its_value(
    name: str, cell: str, known: str | None, expected: tuple[str, object]
) -> None:
    assert typed_value(name, cell, known) == expected


@pytest.mark.parametrize(
    ("name", "cell", "known"),
    [
        ("count", "many", "number"),
        ("count", "1e999", "number"),
        ("paid", "yes", "boolean"),
        ("renewed_at", "soon", None),
        ("plan", "x" * 256, "string"),
    ],
)
def test_a_cell_that_does_not_fit_names_its_attribute(name: str, cell: str, known: str | None) -> None:
    with pytest.raises(ValueError, match=name):
        typed_value(name, cell, known)
