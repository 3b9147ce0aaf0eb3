"""Starts the local stack once per session on a free port, with an empty workspace and known keys.

Every e2e test talks to it over HTTP through `stack.request(...)`. At the end the stack gets
SIGTERM and must exit 0; its log is shown when it does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import RunningStack, start_stack, stop_stack
from tests.e2e.recorded_calls import assert_recorded_calls_granted


@pytest.fixture(scope="session")
def aws_call_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the stack writes each function's AWS calls (infra/local/calls.py)."""
    return tmp_path_factory.mktemp("aws-calls") / "calls.jsonl"


@pytest.fixture(scope="session")
def stack(aws_call_log: Path) -> Iterator[RunningStack]:
    running = start_stack({"LOCAL_AWS_CALL_LOG": str(aws_call_log)})
    yield running
    code = stop_stack(running)
    assert code == 0, f"the local stack exited with {code} on SIGTERM:\n{running.log_text()}"
    # Every call this worker's e2e tests caused, against the policies (test_zz_permissions sees only
    # the tests run before it, which under pytest-xdist are not all of them).
    assert_recorded_calls_granted(aws_call_log)
