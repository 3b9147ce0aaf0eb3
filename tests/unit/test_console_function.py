"""ConsoleFunction serves only the files of its site/ folder, with safe headers, and 404s the rest."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "events" / "ConsoleFunction.json").read_text())


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("console_app_under_test", ROOT / "functions/console/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


console = _load()


def _event(path: str, proxy: str | None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    event = json.loads(json.dumps(SAMPLE))
    event["path"] = path
    event["resource"] = "/console/{proxy+}" if proxy is not None else "/console"
    event["pathParameters"] = {"proxy": proxy} if proxy is not None else None
    event["headers"] = headers or {}
    return event


def test_the_sample_event_gets_the_module_with_its_type_and_safe_headers() -> None:
    answer = console.lambda_handler(SAMPLE, None)
    assert answer["statusCode"] == 200
    headers = answer["headers"]
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-cache" and headers["ETag"].startswith('"')
    assert answer["body"] == (ROOT / "functions/console/site/js/app.js").read_text()


def test_the_index_is_never_cached_and_the_bare_path_redirects_relatively() -> None:
    index = console.lambda_handler(_event("/console/", None), None)
    assert index["statusCode"] == 200
    assert index["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert index["headers"]["Cache-Control"] == "no-store"
    assert '<script type="module" src="js/app.js">' in index["body"]
    bare = console.lambda_handler(_event("/console", None), None)
    assert bare["statusCode"] == 308 and bare["headers"]["Location"] == "console/"


def test_an_unchanged_file_is_a_304_by_etag() -> None:
    first = console.lambda_handler(_event("/console/console.css", "console.css"), None)
    etag = first["headers"]["ETag"]
    conditional = _event("/console/console.css", "console.css", {"If-None-Match": etag})
    again = console.lambda_handler(conditional, None)
    assert again["statusCode"] == 304 and again["body"] == ""


@pytest.mark.parametrize(
    "proxy",
    [
        "../app.py",
        "js/../../app.py",
        "..%2Fapp.py",
        "/etc/passwd",
        "js/../index.html",
        "./index.html",
        "js\\app.js",
        "js/",
        "js",
        "missing.js",
        "app.py",
        "index.html\x00.js",
        "INDEX.HTML",
        "js/app.js/",
        "js//app.js",
    ],
)
def test_anything_but_a_listed_file_is_the_apis_404(proxy: str) -> None:
    answer = console.lambda_handler(_event(f"/console/{proxy}", proxy), None)
    assert answer["statusCode"] == 404
    assert answer["headers"]["Content-Type"] == "application/json"
    assert answer["headers"]["X-Content-Type-Options"] == "nosniff"
    body = json.loads(answer["body"])
    assert body["error"]["code"] == "not_found" and body["error"]["message"]


def test_the_manifest_holds_text_files_of_site_only() -> None:
    assert set(console.FILES) >= {"index.html", "console.css", "favicon.svg", "js/app.js", "js/api.js"}
    assert all(not name.startswith((".", "/")) and ".." not in name for name in console.FILES)
    assert {Path(name).suffix for name in console.FILES} <= set(console.CONTENT_TYPES)
