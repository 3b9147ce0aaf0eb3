"""The functions' real AWS calls, recorded by the local stack, against their policies in
template.yaml. The test makes calls of its own first (a user, a segment it joins, its members
read back), so it checks something wherever pytest-xdist runs it, even on a worker where no other
e2e test ran before it; it also reads what the tests before it caused. The `stack` fixture checks
the same once its stack has stopped, over every e2e test of its worker (tests/e2e/conftest.py).

moto enforces no IAM, so without this a missing permission would pass every local test and
fail only when deployed. The other direction (a permission no code path uses) is held by the
packaging test against the traced USES, not here: the e2e data is small (no inline build
outgrows its limit), lost races are rare, and all local functions share one process, so a
cache one function filled (segment definitions, live auto messages, attribute types) hides
the same call from the others. "Not seen here" would not mean "never used" (and for the same
reason this check sees most calls of each function, not provably all).
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.harness import RunningStack
from tests.e2e.helpers import create_segment, member_ids, unique, upsert_user, wait_for
from tests.e2e.recorded_calls import assert_recorded_calls_granted


def test_no_function_calls_what_its_policies_do_not_grant(stack: RunningStack, aws_call_log: Path) -> None:
    plan = unique("plan")
    user_id = unique("perm-user")
    upsert_user(stack, {"user_id": user_id, "custom_attributes": {"plan": plan}})
    segment_id = create_segment(
        stack, unique("Permissions"), {"field": "custom_attributes.plan", "op": "eq", "value": plan}
    )
    assert wait_for(lambda: member_ids(stack, segment_id), lambda ids: user_id in ids) == {user_id}

    assert_recorded_calls_granted(aws_call_log)
