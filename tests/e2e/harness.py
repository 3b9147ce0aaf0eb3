"""Starting and stopping the local stack (`python -m infra.local`) as a subprocess, and talking to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 90.0
ADMIN_API_KEY = "sk_admin_e2e_" + "a" * 16
INGEST_API_KEY = "sk_ingest_e2e_" + "b" * 16
IDENTITY_SECRET = "e2e-identity-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class RunningStack:
    base_url: str
    admin_key: str
    ingest_key: str
    identity_secret: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if key:
            all_headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as answer:
                return Response(answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, dict(error.headers), error.read())

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")


def start_stack(extra_env: dict[str, str] | None = None) -> RunningStack:
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "SEED_DEMO": "0",
        "ADMIN_API_KEY": ADMIN_API_KEY,
        "INGEST_API_KEY": INGEST_API_KEY,
        "IDENTITY_SECRET": IDENTITY_SECRET,
        "PYTHONUNBUFFERED": "1",
        # The e2e and console tests load data fast and run schemathesis with the admin key (20 a
        # second): the per-key limits are tested in process (tests/integration/test_key_rate_limits.py).
        "KEY_RATE_LIMITS": "off",
        **(extra_env or {}),
    }
    log = tempfile.NamedTemporaryFile(prefix="local-stack-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.local"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    stack = RunningStack(
        f"http://127.0.0.1:{port}", ADMIN_API_KEY, INGEST_API_KEY, IDENTITY_SECRET, process, log
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local stack exited with {process.returncode}:\n{stack.log_text()}")
        try:
            if stack.request("GET", "/_local/health").status == 200:
                return stack
        except OSError:
            pass
        time.sleep(0.2)
    stop_stack(stack, signal.SIGKILL)
    raise RuntimeError(f"the local stack was not healthy after {STARTUP_TIMEOUT} s:\n{stack.log_text()}")


def stop_stack(stack: RunningStack, signum: int = signal.SIGTERM) -> int:
    if stack.process.poll() is None:
        stack.process.send_signal(signum)
    try:
        return stack.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stack.process.kill()
        stack.process.wait()
        return -9
