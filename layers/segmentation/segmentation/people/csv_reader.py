"""CSV records read from a byte stream that starts anywhere, with where each ends: so that an
import can stop after any record and go on later from its byte offset. Pure: no AWS.

Records are RFC 4180 as Python's csv module reads them (commas, double quotes, a quoted field
may hold line breaks). Text is UTF-8 (a byte order mark at the start of the file is skipped);
a line that is not UTF-8 makes its record bad, not the file. Blank lines are no records.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Record:
    line: int  # the physical line the record starts on (the file's first is 1)
    cells: list[str] | None  # None when the record cannot be read
    problem: str | None  # why it cannot be read
    end: int  # the byte offset just after it
    next_line: int  # the physical line after it


def _lines(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines with their line breaks (\\n, or \\r\\n), the last one without when it has none."""
    pending = b""
    for block in blocks:
        pending += block
        start = 0
        while True:
            end = pending.find(b"\n", start)
            if end < 0:
                break
            yield pending[start : end + 1]
            start = end + 1
        pending = pending[start:]
    if pending:
        yield pending


def records(blocks: Iterable[bytes], offset: int, line: int) -> Iterator[Record]:
    """The records of the bytes from `offset` (the byte offset `blocks` start at, a record's
    start), the first starting on physical line `line`."""
    consumed = offset
    physical = line - 1
    undecodable: set[int] = set()
    first = offset == 0

    def text_lines() -> Iterator[str]:
        nonlocal consumed, physical, first
        for raw in _lines(blocks):
            consumed += len(raw)
            physical += 1
            if first:
                raw = raw.removeprefix(BOM)
                first = False
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                undecodable.add(physical)
                yield raw.decode("utf-8", "replace")

    # csv's field size limit (128 K characters) bounds a record: a lone quote cannot make the
    # rest of the file one field.
    reader = csv.reader(text_lines(), strict=True)
    start = line
    while True:
        try:
            cells: list[str] | None = next(reader)
            problem = None
        except StopIteration:
            return
        except csv.Error as error:
            cells, problem = None, f"the row is not valid CSV ({error})"
        if cells == []:  # a blank line
            start = physical + 1
            continue
        if problem is None and any(start <= n <= physical for n in undecodable):
            cells, problem = None, "the row is not UTF-8 text; save the file as UTF-8"
        yield Record(start, cells, problem, consumed, physical + 1)
        start = physical + 1
