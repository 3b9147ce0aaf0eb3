"""The console over HTTP through the local API Gateway: no key needed, safe headers, the API's 404."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest

from tests.e2e.harness import RunningStack


def _raw_get(stack: RunningStack, raw_path: str) -> tuple[int, dict[str, str], bytes]:
    """A GET with the path sent exactly as given (no client-side normalization)."""
    netloc = urlsplit(stack.base_url).netloc
    connection = http.client.HTTPConnection(netloc, timeout=30)
    try:
        connection.putrequest("GET", raw_path, skip_accept_encoding=True)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def test_the_console_loads_without_a_key_with_safe_headers(console_stack: RunningStack) -> None:
    status, headers, body = _raw_get(console_stack, "/console")
    assert status == 308 and headers["Location"] == "console/"
    status, headers, body = _raw_get(console_stack, "/console/")
    assert status == 200 and b"<title>Segmentation console</title>" in body
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    for path, content_type in [
        ("/console/js/app.js", "text/javascript; charset=utf-8"),
        ("/console/console.css", "text/css; charset=utf-8"),
        ("/console/favicon.svg", "image/svg+xml"),
    ]:
        status, headers, _ = _raw_get(console_stack, path)
        assert (status, headers["Content-Type"]) == (200, content_type), path


@pytest.mark.parametrize(
    "raw_path",
    [
        "/console/nothing.js",
        "/console/../template.yaml",
        "/console/..%2F..%2Ftemplate.yaml",
        "/console/js/%2e%2e/%2e%2e/functions/console/app.py",
        "/console/%2e%2e/app.py",
        "/console/app.py",
        "/console/js/",
    ],
)
def test_unknown_files_and_traversals_get_the_apis_json_404(
    console_stack: RunningStack, raw_path: str
) -> None:
    status, headers, body = _raw_get(console_stack, raw_path)
    assert status == 404, (raw_path, body[:200])
    assert headers["Content-Type"] == "application/json"
    assert b'"code": "not_found"' in body
