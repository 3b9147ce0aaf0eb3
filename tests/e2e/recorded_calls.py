"""The functions' real AWS calls, as the local stack recorded them (infra/local/calls.py), against
their policies in template.yaml and the traced USES (tests/support/permissions.py)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from tests.support.permissions import USES, Grant, granted


def _observed(log: Path) -> dict[str, set[Grant]]:
    seen: dict[str, set[Grant]] = defaultdict(set)
    for line in log.read_text(encoding="utf-8").splitlines():
        call = json.loads(line)
        seen[call["function"]].add((call["resource"], call["action"]))
    return seen


def assert_recorded_calls_granted(log: Path) -> None:
    observed = _observed(log)
    assert observed, "the local stack recorded no call"
    for function, calls in sorted(observed.items()):
        missing = sorted(calls - granted(function))
        assert not missing, f"{function} called these without a permission in template.yaml: {missing}"
        untraced = sorted(calls - USES[function])
        assert not untraced, f"{function} makes calls the traced USES lack: {untraced}"
