"""Each function's policies in template.yaml grant exactly what its code calls, nothing more.

What the code calls is `tests.support.permissions.USES`, traced from the storage modules (the
only AWS callers) through each function's app.py; the e2e run checks it against the calls the
functions really make (tests/e2e/test_zz_permissions.py).
"""

from __future__ import annotations

import pytest

from tests.support.permissions import USES, functions, granted


def test_every_function_of_the_template_has_its_traced_uses() -> None:
    assert set(functions()) == set(USES), "trace the new function's AWS calls into USES"


@pytest.mark.parametrize("logical_id", sorted(USES))
def test_the_function_is_granted_what_it_uses_and_nothing_else(logical_id: str) -> None:
    grants, uses = granted(logical_id), USES[logical_id]
    missing = sorted(uses - grants)
    unused = sorted(grants - uses)
    assert not missing, f"{logical_id} calls these without a permission: {missing}"
    assert not unused, f"{logical_id} is granted these and never calls them: {unused}"


def test_no_function_writes_where_its_code_only_reads() -> None:
    # The two examples, spelled out: ingest has no membership writes, and the API's
    # key routes put, scan, query (by id) and update keys, never delete them.
    assert {a for r, a in granted("IngestFunction") if r == "MembershipsTable"} == {"dynamodb:BatchGetItem"}
    assert {a for r, a in granted("ApiFunction") if r.startswith("ApiKeysTable")} == {
        "dynamodb:PutItem",
        "dynamodb:Scan",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
    }
