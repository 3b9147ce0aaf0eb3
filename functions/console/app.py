"""ConsoleFunction: serves the teammates' console, the static files of site/, at /console/ (no auth).

Only the files found under site/ at cold start can be served: a request names an entry of that
manifest or gets a 404, so no path (`..`, encoded slashes, symlinks) can reach anything else.
The console calls the public API from the same origin with the key the teammate signs in with;
loading it needs no key. Standard library only: this function imports nothing from the layer.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

SITE = Path(__file__).resolve().parent / "site"
# Text types only: a REST API returns binary bodies only for its binaryMediaTypes, and none are set.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
INDEX = "index.html"


def _manifest() -> dict[str, tuple[bytes, str, str]]:
    """relative path -> (body, content type, ETag) of every servable file under site/."""
    files: dict[str, tuple[bytes, str, str]] = {}
    if not SITE.is_dir():
        return files
    root = SITE.resolve()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if not path.is_file() or path.is_symlink() or any(part.startswith(".") for part in relative.parts):
            continue
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        if content_type is None:
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        files[relative.as_posix()] = (body, content_type, etag)
    return files


FILES = _manifest()


def _headers(content_type: str, cache_control: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Content-Type": content_type, "Cache-Control": cache_control, **SECURITY_HEADERS, **(extra or {})}


def _not_found(path: str) -> dict[str, Any]:
    shown = path if len(path) <= 200 else path[:200] + "..."
    body = {"error": {"code": "not_found", "message": f"The console has no file at {shown}."}}
    return {
        "statusCode": 404,
        "headers": _headers("application/json", "no-store"),
        "body": json.dumps(body),
    }


def _header(event: dict[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def resolve(event: dict[str, Any]) -> dict[str, Any]:
    path = str(event.get("path") or "/console")
    proxy = (event.get("pathParameters") or {}).get("proxy")
    if proxy is None:
        if not path.endswith("/"):
            # Relative to the request URL, so it works under a stage prefix (/prod/console) too.
            return {
                "statusCode": 308,
                "headers": _headers("text/plain; charset=utf-8", "no-store", {"Location": "console/"}),
                "body": "See console/",
            }
        name = INDEX
    else:
        name = str(proxy)
    found = FILES.get(name)
    if found is None:
        return _not_found(path)
    body, content_type, etag = found
    # index.html is never cached (it names the current modules); the rest is revalidated by ETag.
    cache_control = "no-store" if name == INDEX else "no-cache"
    if name != INDEX and _header(event, "if-none-match") == etag:
        headers = _headers(content_type, cache_control, {"ETag": etag})
        return {"statusCode": 304, "headers": headers, "body": ""}
    extra = {} if name == INDEX else {"ETag": etag}
    return {
        "statusCode": 200,
        "headers": _headers(content_type, cache_control, extra),
        "body": body.decode("utf-8"),
    }


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return resolve(event)
