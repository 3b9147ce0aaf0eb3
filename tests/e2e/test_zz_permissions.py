"""The functions' real AWS calls, recorded by the local stack over the whole e2e run, against
their policies in template.yaml. Named to run last: it reads what the other e2e tests caused.

moto enforces no IAM, so without this a missing permission would pass every local test and
fail only when deployed. The other direction (a permission no code path uses) is held by the
packaging test against the traced USES, not here: the e2e data is small (no inline build
outgrows its limit), lost races are rare, and all local functions share one process, so a
cache one function filled (segment definitions, live auto messages, attribute types) hides
the same call from the others. "Not seen here" would not mean "never used" (and for the same
reason this check sees most calls of each function, not provably all).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tests.e2e.harness import RunningStack
from tests.support.permissions import USES, Grant, granted


def _observed(log: Path) -> dict[str, set[Grant]]:
    seen: dict[str, set[Grant]] = defaultdict(set)
    for line in log.read_text(encoding="utf-8").splitlines():
        call = json.loads(line)
        seen[call["function"]].add((call["resource"], call["action"]))
    return seen


def test_no_function_calls_what_its_policies_do_not_grant(stack: RunningStack, aws_call_log: Path) -> None:
    observed = _observed(aws_call_log)
    assert observed, "the local stack recorded no call"
    for function, calls in sorted(observed.items()):
        missing = sorted(calls - granted(function))
        assert not missing, f"{function} called these without a permission in template.yaml: {missing}"
        untraced = sorted(calls - USES[function])
        assert not untraced, f"{function} makes calls the traced USES lack: {untraced}"
