"""What the local stack promises beyond its routes (API.md, The local stack): at least 200
connections at once, and a key the authorizer would refuse stops it at start, saying so. (The 504
past API Gateway's 29 s is in tests/integration/test_local_stack_template.py, where a function
can be held running.)"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from tests.e2e.harness import PROJECT_ROOT, RunningStack, free_port

pytestmark = pytest.mark.e2e

CONNECTIONS = 200


def test_two_hundred_connections_at_once_are_all_answered(stack: RunningStack) -> None:
    address = urlsplit(stack.base_url)
    ready = threading.Barrier(CONNECTIONS, timeout=120)

    def one_client(index: int) -> int | str:
        ready.wait()  # all 200 connect at the same instant
        # A deadline for a stack that never answers; a healthy one answers all within seconds.
        connection = http.client.HTTPConnection(str(address.hostname), address.port, timeout=60)
        try:
            # Half go through the gateway (authorizer and function), half to a local route.
            if index % 2:
                connection.request(
                    "GET", "/v1/segments", headers={"Authorization": f"Bearer {stack.admin_key}"}
                )
            else:
                connection.request("GET", "/_local/health")
            answer = connection.getresponse()
            answer.read()
            return answer.status
        except OSError as error:  # reset, refused, timed out
            return type(error).__name__
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        outcomes = list(pool.map(one_client, range(CONNECTIONS)))
    assert Counter(outcomes) == {200: CONNECTIONS}


@pytest.mark.parametrize("variable", ["ADMIN_API_KEY", "INGEST_API_KEY"])
def test_a_key_shorter_than_eight_characters_stops_the_start_with_a_message(variable: str) -> None:
    env = {**os.environ, "SEED_DEMO": "0", "PORT": str(free_port()), variable: "sk_1234"}  # 7 characters
    finished = subprocess.run(
        [sys.executable, "-m", "infra.local"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode != 0
    assert f"{variable} is 7 characters; an API key needs at least 8" in finished.stderr
    assert "ready" not in finished.stdout  # nothing was announced, let alone installed
