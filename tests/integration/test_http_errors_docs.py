"""The OpenAPI document and the docs page: public, and covering every route of both functions."""

from __future__ import annotations

import hashlib
import importlib
import json
import re

import pytest

from tests.support import apigw as tests_apigw
from tests.support.apigw import call


def test_the_openapi_document_lists_every_route(aws: object) -> None:
    reply = call("GET", "/v1/openapi.json")
    assert reply.status == 200
    paths = reply.body["paths"]
    for path, method in [
        ("/v1/users", "post"),
        ("/v1/users/{user_id}", "get"),
        ("/v1/users/{user_id}", "delete"),
        ("/v1/users/{user_id}/logins", "post"),
        ("/v1/users/{user_id}/messages", "get"),
        ("/v1/companies", "post"),
        ("/v1/companies/{company_id}", "get"),
        ("/v1/api_keys", "post"),
        ("/v1/api_keys/{key_id}", "delete"),
        ("/v1/users/search", "post"),
        ("/v1/segments", "post"),
        ("/v1/messages", "post"),
        ("/v1/batch", "post"),
        ("/v1/track", "post"),
    ]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not documented"
    assert "UserUpsert" in reply.body["components"]["schemas"]
    assert reply.body["servers"] == [{"url": "/prod"}]


def test_every_route_of_the_template_is_documented_with_its_error_statuses(aws: object) -> None:
    from pathlib import Path

    from infra.local.template import load_template

    template = load_template(Path(__file__).resolve().parents[2] / "template.yaml")
    paths = call("GET", "/v1/openapi.json").body["paths"]
    public = {"/v1/openapi.json", "/v1/docs", "/v1/docs/{asset}"}
    # CORS preflights (OPTIONS) are the browsers' protocol, not operations of the API: left out.
    routes = [
        (r.path, r.method.lower())
        for r in template.routes
        if r.path.startswith("/v1/") and r.path not in public and r.method != "OPTIONS"
    ]
    assert routes
    assert not [path for path, operations in paths.items() if "options" in operations]
    for path, method in routes:
        operation = paths.get(path, {}).get(method)
        assert operation is not None, f"{method.upper()} {path} is not documented"
        assert {"400", "401", "403", "422", "429"} <= set(operation["responses"]), (path, method)


def test_the_docs_page_is_swagger_ui(aws: object) -> None:
    reply = call("GET", "/v1/docs")
    assert reply.status == 200 and "swagger" in reply.body.lower()


def test_every_link_leads_to_a_documented_operation(aws: object) -> None:
    document = call("GET", "/v1/openapi.json").body
    operations = {op["operationId"]: op for ops in document["paths"].values() for op in ops.values()}
    links = [
        (name, link)
        for ops in document["paths"].values()
        for op in ops.values()
        for response in op["responses"].values()
        for name, link in (response.get("links") or {}).items()
    ]
    assert len(links) >= 17
    for name, link in links:
        target = operations.get(link["operationId"])
        assert target is not None, name
        declared = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
        assert set(link["parameters"]) <= declared, name


# --- caching: ETags, 304s, and Swagger UI's files apart from the page ----------------------------


def _page_files(page: str) -> list[str]:
    """What the page loads from the stack (its favicon is an empty data: URL, asking nothing)."""
    return [url for url in re.findall(r'(?:src|href)="([^"]+)"', page) if not url.startswith("data:")]


def test_the_docs_page_is_small_and_names_its_files_under_the_stage(aws: object) -> None:
    page = call("GET", "/v1/docs")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert len(page.body) < 2_000  # Swagger UI itself (about 1.7 MB) is not in it
    files = _page_files(page.body)
    assert len(files) == 3 and all(f.startswith("/prod/v1/docs/") for f in files)
    assert 'data-spec="/prod/v1/openapi.json"' in page.body  # the document of this stage
    assert "script-src 'self'" in page.headers["content-security-policy"]
    kinds = set()
    for url in files:
        served = call("GET", url.removeprefix("/prod"))
        assert served.status == 200, url
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
        digest = url.rsplit("/", 1)[1].split(".")[1]
        assert served.headers["etag"].strip('"').startswith(digest)  # a new content is a new URL
        assert hashlib.sha256(served.body.encode()).hexdigest().startswith(digest)
        kinds.add(served.headers["content-type"].split(";")[0])
    assert kinds == {"text/javascript", "text/css"}
    assert sum(len(call("GET", url.removeprefix("/prod")).body) for url in files) > 1_000_000


def test_an_unknown_or_outdated_docs_file_is_a_404(aws: object) -> None:
    for name in ("swagger-ui-bundle.000000000000.js", "..%2Fapp.py", "x"):
        reply = call("GET", f"/v1/docs/{name}")
        assert reply.status == 404 and reply.error_code == "not_found", name


@pytest.mark.parametrize("path", ["/v1/docs", "/v1/openapi.json"])
def test_the_page_and_the_document_are_revalidated_by_etag(aws: object, path: str) -> None:
    first = call("GET", path)
    etag = first.headers["etag"]
    assert first.status == 200 and first.headers["cache-control"] == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    for held in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = call("GET", path, headers={"If-None-Match": held})
        assert again.status == 304 and again.body == "", held
        assert again.headers["etag"] == etag and again.headers["cache-control"] == "no-cache"
    changed = call("GET", path, headers={"If-None-Match": '"something-else"'})
    assert changed.status == 200 and changed.body == first.body


def test_a_files_revalidation_is_a_304_too(aws: object) -> None:
    url = _page_files(call("GET", "/v1/docs").body)[0].removeprefix("/prod")
    etag = call("GET", url).headers["etag"]
    assert call("GET", url, headers={"If-None-Match": etag}).status == 304


def test_the_documents_etag_follows_its_server_url(aws: object) -> None:
    staged = call("GET", "/v1/openapi.json")
    event = tests_apigw.proxy_event("GET", "/v1/openapi.json", {}, None)
    event["requestContext"]["path"] = "/v1/openapi.json"  # a custom domain: no stage in the path
    handler = importlib.import_module(tests_apigw.API).lambda_handler
    bare = handler(event, tests_apigw.LambdaContext())
    assert json.loads(bare["body"])["servers"] == [{"url": "/"}]
    assert staged.body["servers"] == [{"url": "/prod"}]
    assert bare["multiValueHeaders"]["ETag"] != [staged.headers["etag"]]
