"""schemathesis, a fuzzer no one here wrote, against the served OpenAPI document of a local stack
of its own: every operation, in its four phases (examples, coverage, fuzzing, and stateful
sequences that follow the document's links to real users, segments and messages), with the
checks not_a_server_error, response_schema_conformance and status_code_conformance.

`make test` runs a bounded pass with a fixed seed (the same cases every run). `make fuzz` runs a
longer one with a fresh seed: FUZZ_EXAMPLES (examples per operation) and FUZZ_SEED.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import RunningStack, start_stack, stop_stack

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
SEED = os.environ.get("FUZZ_SEED", "20261130")
# A run's bound: the cases are fixed by EXAMPLES and SEED; this only stops a runaway.
TIMEOUT_SECONDS = 600 + 10 * EXAMPLES


@pytest.fixture(scope="module")
def own_stack() -> Iterator[RunningStack]:
    """A stack of its own: the fuzzer's users and segments must not reach other tests' data."""
    running = start_stack()
    yield running
    assert stop_stack(running) == 0, running.log_text()


@pytest.mark.long
def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    own_stack: RunningStack, tmp_path: Path
) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{own_stack.base_url}/v1/openapi.json",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--header",
        f"Authorization: Bearer {own_stack.admin_key}",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    if SEED != "random":
        command += ["--seed", SEED]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, cwd=tmp_path, check=False
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-20000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in report, report[-5000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected and tested, report[-5000:]
    assert int(tested.group(1)) == int(selected.group(1)) == int(selected.group(2)) >= 30  # every operation
