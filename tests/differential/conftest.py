"""The in-process local stack for the differential tests, started once per module, and a thin client.

No HTTP server and no subprocess: requests go straight to `LocalStack.handle` (the local API
Gateway, authorizer included), and the test drives the streams and queues itself with
`stack.drain()`. The workspace starts empty (the demo seed is never run). Keys of the four roles
are known: admin and ingest are installed by the stack, read and write are created through the API.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from infra.local.apigw import HttpRequest, HttpResponse
from infra.local.stack import Keys, LocalStack

ADMIN_KEY = "sk_admin_difftest_0123456789abcdefghij"
INGEST_KEY = "sk_ingest_difftest_0123456789abcdefghi"
IDENTITY_SECRET = "difftest-identity-secret"
# Custom attributes the filters use; their types are fixed once, by a first write, at start.
USER_ATTRIBUTE_TYPES = {"plan": "string", "photos": "number"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "differential: differential tests of the in-process local stack against a reference"
    )


class ApiError(AssertionError):
    """An answer the client did not expect (outside the differential comparison itself)."""


@dataclass
class Api:
    stack: LocalStack
    keys: dict[str, str]  # role -> raw key

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        role: str = "admin",
        query: Sequence[tuple[str, str]] = (),
    ) -> HttpResponse:
        headers = [("Authorization", f"Bearer {self.keys[role]}")]
        raw = b""
        if body is not None:
            headers.append(("Content-Type", "application/json"))
            raw = json.dumps(body).encode()
        return self.stack.handle(
            HttpRequest(method=method, path=path, query=list(query), headers=headers, body=raw)
        )

    def ok(self, method: str, path: str, body: Any = None, *, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, body, **kwargs)
        if response.status != status:
            raise ApiError(
                f"{method} {path} answered {response.status}, expected {status}: {response.body[:600]!r}"
            )
        return response.json()

    def get_pages(self, path: str, *, role: str = "read", limit: int = 3) -> list[dict[str, Any]]:
        """Every item of a GET list, following `next_cursor`."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(1000):
            query = [("limit", str(limit))] + ([("cursor", cursor)] if cursor else [])
            page = self.ok("GET", path, role=role, query=query)
            items.extend(page["data"])
            cursor = page["next_cursor"]
            if not cursor:
                return items
        raise ApiError(f"GET {path} kept returning cursors")

    def search_pages(
        self, target: str, filter_: dict[str, Any], *, role: str = "read", limit: int = 3
    ) -> list[dict[str, Any]]:
        """Every item of a users/companies search, following `next_cursor`."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(1000):
            body = {"filter": filter_, "limit": limit, "cursor": cursor}
            page = self.ok("POST", f"/v1/{target}/search", body, role=role)
            items.extend(page["data"])
            cursor = page["next_cursor"]
            if not cursor:
                return items
        raise ApiError(f"search of {target} kept returning cursors")


def _forget_process_caches() -> None:
    """Caches that would outlive a mock: clients, settings, fixed attribute types, secrets."""
    from segmentation.storage import attributes, secrets
    from segmentation.storage import aws as storage_aws

    storage_aws.reset()
    attributes.clear_cache()
    secrets.clear_cache()


@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    """The whole stack on moto in this process, empty, with a key of each role."""
    from segmentation import clock

    saved_environment = dict(os.environ)
    _forget_process_caches()
    stack = LocalStack(
        keys=Keys(admin_key=ADMIN_KEY, ingest_key=INGEST_KEY, identity_secret=IDENTITY_SECRET),
        parameters={"SenderEmail": "no-reply@example.com"},
        # Random operations as fast as moto goes, most with the admin key (20 a second): the
        # per-key limits are not what this compares (tests/integration/test_key_rate_limits.py).
        key_rate_limits=False,
    )
    try:
        stack.start()
        client = Api(stack, {"admin": ADMIN_KEY, "ingest": INGEST_KEY})
        for role in ("read", "write"):
            created = client.ok(
                "POST", "/v1/api_keys", {"role": role, "name": f"difftest {role}"}, status=201
            )
            client.keys[role] = created["key"]
        # Fix the custom attributes' types (a filter may name an attribute only once it is known).
        bootstrap = {"user_id": "difftest-bootstrap", "custom_attributes": {"plan": "free", "photos": 0}}
        client.ok("POST", "/v1/users", bootstrap, status=201, role="ingest")
        client.ok("DELETE", "/v1/users/difftest-bootstrap", status=204, role="ingest")
        stack.drain()
        yield client
    finally:
        stack.stop()
        clock.set_offset_seconds(0)
        os.environ.clear()
        os.environ.update(saved_environment)
        _forget_process_caches()
