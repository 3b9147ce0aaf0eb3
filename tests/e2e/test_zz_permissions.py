"""The functions' real AWS calls, recorded by the local stack over the e2e run, against their
policies in template.yaml. Named to run last: it reads what the other e2e tests caused. Under
pytest-xdist a worker runs only some of them, so the `stack` fixture checks the same once its
stack has stopped, over every e2e test of its worker (tests/e2e/conftest.py).

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
from tests.e2e.recorded_calls import assert_recorded_calls_granted


def test_no_function_calls_what_its_policies_do_not_grant(stack: RunningStack, aws_call_log: Path) -> None:
    assert_recorded_calls_granted(aws_call_log)
