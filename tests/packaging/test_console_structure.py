"""The console's structure (docs/console.md, "How it is built"), held by reading its modules.

Every API path is built in js/endpoints.js, every previous/next pager is paging.js's Pager, and
the try/catch-to-error-box pattern is dom.js's withErrors: a view that writes its own again fails
here, not in review.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[2] / "functions" / "console" / "site" / "js"
COMMENT = re.compile(r"/\*.*?\*/|(?:^|(?<=\s))//[^\n]*", re.DOTALL)


def _code(path: Path) -> str:
    """The module without its comments (a comment may name a path: API.md's words)."""
    return COMMENT.sub("", path.read_text(encoding="utf-8"))


def _modules() -> list[Path]:
    modules = sorted(JS.glob("*.js"))
    assert len(modules) > 10, f"no console modules under {JS}"
    return modules


def _lines_with(pattern: str, skip: str) -> list[str]:
    found = []
    for path in _modules():
        if path.name == skip:
            continue
        for number, line in enumerate(_code(path).splitlines(), 1):
            if re.search(pattern, line):
                found.append(f"{path.name}:{number}: {line.strip()}")
    return found


def test_the_comment_filter_keeps_code_and_drops_comments() -> None:
    code = COMMENT.sub("", 'api("GET", "v1/x"); // GET /v1/y\n/* v1/z */ const u = "https://a/v1/w";')
    assert "v1/x" in code and "v1/w" in code and "v1/y" not in code and "v1/z" not in code


def test_only_the_endpoints_module_writes_an_api_path() -> None:
    assert (JS / "endpoints.js").is_file()
    assert re.search(r"\bv1/", _code(JS / "endpoints.js"))
    found = _lines_with(r"\bv1/", skip="endpoints.js")
    assert not found, "API paths outside js/endpoints.js (use endpoints.*):\n" + "\n".join(found)


@pytest.mark.parametrize("label", ["Previous page", "Next page", "page-number"])
def test_only_the_pager_draws_previous_and_next(label: str) -> None:
    found = _lines_with(re.escape(label), skip="paging.js")
    assert not found, f"a pager outside paging.js ({label!r}: use Pager or pagedList):\n" + "\n".join(found)


def test_no_view_catches_an_error_only_to_show_its_box() -> None:
    """`catch (error) { x.replaceChildren(errorBox(error)) }` is withErrors(x, ...)."""
    pattern = re.compile(
        r"catch \((\w+)\) \{\s*"  # the catch
        r"(?:if \([^)]*\) (?:return;\s*)?)?"  # maybe a guard (a stale answer, an abort)
        r"\w+\.replaceChildren\([^;]*errorBox\(\1"  # the box put in a node
    )
    found = [
        f"{path.name}: {match.group(0)!r}"
        for path in _modules()
        if path.name != "dom.js"
        for match in pattern.finditer(_code(path))
    ]
    assert not found, "error boxes shown by hand (use withErrors from dom.js):\n" + "\n".join(found)
