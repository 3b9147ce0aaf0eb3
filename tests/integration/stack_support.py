"""The local stack in process, for tests of features that span functions (a route, the users
stream, a job's queue, the files bucket): requests go straight to `LocalStack.handle` (the local
API Gateway, authorizer included) or to its local routes, and the test drives the streams and
queues with `stack.drain()`. The workspace starts empty; keys of the four roles are known.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from infra.local.apigw import HttpRequest, HttpResponse
from infra.local.server import local_route
from infra.local.stack import Keys, LocalStack

ADMIN_KEY = "sk_admin_stacktest_0123456789abcdefghij"
INGEST_KEY = "sk_ingest_stacktest_0123456789abcdefghi"
IDENTITY_SECRET = "stacktest-identity-secret"


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
        raw: bytes | None = None,
        content_type: str = "application/json",
        query: Sequence[tuple[str, str]] = (),
    ) -> HttpResponse:
        headers = [("Authorization", f"Bearer {self.keys[role]}")]
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        if data or raw is not None:
            headers.append(("Content-Type", content_type))
        return self.stack.handle(
            HttpRequest(method=method, path=path, query=list(query), headers=headers, body=data)
        )

    def ok(self, method: str, path: str, body: Any = None, *, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, body, **kwargs)
        assert response.status == status, f"{method} {path}: {response.status} {response.body[:800]!r}"
        return response.json()

    def url(
        self, method: str, url: str, body: bytes = b"", headers: Sequence[tuple[str, str]] = ()
    ) -> HttpResponse:
        """A presigned URL of the files bucket, through the stack's own routes (as over HTTP)."""
        parts = urlsplit(url)
        request = HttpRequest(
            method=method,
            path=parts.path,
            query=parse_qsl(parts.query, keep_blank_values=True),
            headers=list(headers),
            body=body,
        )
        return local_route(self.stack, request)

    def job(self, job_id: str, role: str = "read") -> dict[str, Any]:
        return dict(self.ok("GET", f"/v1/jobs/{job_id}", role=role))

    def finished_job(self, job_id: str) -> dict[str, Any]:
        """The job once the stack's queues are idle (drain runs every chunk it queues)."""
        self.stack.drain()
        job = self.job(job_id)
        assert job["state"] in ("done", "failed"), job
        return job

    def user(self, user_id: str) -> dict[str, Any]:
        return dict(self.ok("GET", f"/v1/users/{user_id}", role="read"))


@contextmanager
def running_stack() -> Iterator[Api]:
    from segmentation import clock, definitions
    from segmentation.storage import attributes, secrets
    from segmentation.storage import aws as storage_aws

    saved = dict(os.environ)

    def forget_caches() -> None:
        storage_aws.reset()
        attributes.clear_cache()
        secrets.clear_cache()
        definitions.reset_cache()

    forget_caches()
    stack = LocalStack(
        keys=Keys(admin_key=ADMIN_KEY, ingest_key=INGEST_KEY, identity_secret=IDENTITY_SECRET),
        parameters={"SenderEmail": "no-reply@example.com"},
        key_rate_limits=False,
    )
    try:
        stack.start()
        keys = {"admin": ADMIN_KEY, "ingest": INGEST_KEY}
        api = Api(stack, keys)
        for role in ("read", "write"):
            keys[role] = api.ok("POST", "/v1/api_keys", {"role": role, "name": role}, status=201)["key"]
        stack.ready.set()
        yield api
    finally:
        stack.stop()
        clock.set_offset_seconds(0)
        os.environ.clear()
        os.environ.update(saved)
        forget_caches()
