"""Calls the API functions the way API Gateway (REST, proxy integration) would, in process.

`call()` runs AuthorizerFunction with a REQUEST authorizer event first (a raised "Unauthorized"
becomes API Gateway's 401), then the target function with the authorizer's context in
`requestContext.authorizer` (every value a string, as REST APIs pass it). The public documents,
the CORS preflights (OPTIONS) and the unsubscribe links (`/u/{token}`, UnsubscribeFunction) have
no authorizer in template.yaml.
"""

from __future__ import annotations

import importlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

INGEST = "functions.ingest.app"
API = "functions.api.app"
AUTHORIZER = "functions.authorizer.app"
UNSUBSCRIBE = "functions.unsubscribe.app"
SOURCES = "functions.sources.app"
# The Segment routes: no authorizer (the key may be in the body); SourcesFunction checks it.
SOURCES_PATHS = {f"/v1/{kind}" for kind in ("batch", "identify", "track", "group", "page", "screen", "alias")}
PUBLIC_PATHS = {"/v1/openapi.json", "/v1/docs", *SOURCES_PATHS}
STAGE = "prod"
_INGEST_PATHS = re.compile(r"^/v1/(users|companies)(/(?!(search|count)$)[^/]+(/(logins|messages|events))?)?$")


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def error_code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


def function_for(path: str) -> str:
    """The function template.yaml routes a path to (users/companies → ingest, /u/ → unsubscribe,
    the Segment routes → sources, the rest → api)."""
    if path.startswith("/u/"):
        return UNSUBSCRIBE
    if path in SOURCES_PATHS:
        return SOURCES
    return INGEST if _INGEST_PATHS.match(path) else API


def call(
    method: str,
    path: str,
    *,
    key: str | None = None,
    user_hash: str | None = None,
    body: Any = None,
    raw_body: str | None = None,
    base64_encoded: bool = False,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    function: str | None = None,
) -> Reply:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        all_headers["Authorization"] = f"Bearer {key}"
    if user_hash is not None:
        all_headers["X-User-Hash"] = user_hash
    event = proxy_event(method, path, all_headers, raw_body if raw_body is not None else _json(body), query)
    event["isBase64Encoded"] = base64_encoded
    public = path in PUBLIC_PATHS or path.startswith(("/v1/docs/", "/u/")) or method.upper() == "OPTIONS"
    if not public:
        refusal = authorize(event)
        if refusal is not None:
            return refusal
    handler = importlib.import_module(function or function_for(path)).lambda_handler
    result = handler(event, LambdaContext())
    text = result.get("body") or ""
    response_headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        response_headers[name.lower()] = ", ".join(values)
    parsed: Any = json.loads(text) if "json" in response_headers.get("content-type", "") and text else text
    return Reply(status=result["statusCode"], body=parsed, headers=response_headers)


def authorize(event: dict[str, Any]) -> Reply | None:
    """Run the authorizer; None when it allowed (its context is then in the event)."""
    context = event["requestContext"]
    method_arn = (
        f"arn:aws:execute-api:us-east-1:123456789012:api1234/{STAGE}/{event['httpMethod']}{event['path']}"
    )
    authorizer_event = {
        "type": "REQUEST",
        "methodArn": method_arn,
        **{
            name: event[name]
            for name in ("resource", "path", "httpMethod", "headers", "queryStringParameters")
        },
        "pathParameters": event["pathParameters"],
        "requestContext": context,
    }
    handler = importlib.import_module(AUTHORIZER).lambda_handler
    try:
        result = handler(authorizer_event, LambdaContext())
    except Exception as error:
        if str(error) == "Unauthorized":
            return Reply(401, {"message": "Unauthorized"}, {})
        raise
    statement = result["policyDocument"]["Statement"][0]
    if statement["Effect"] != "Allow":
        return Reply(403, {"message": "Forbidden"}, {})
    context["authorizer"] = {name: str(value) for name, value in (result.get("context") or {}).items()}
    context["authorizer"]["principalId"] = result["principalId"]
    return None


def proxy_event(
    method: str, path: str, headers: dict[str, str], body: str | None, query: dict[str, str] | None = None
) -> dict[str, Any]:
    user = re.match(r"^/v1/users/([^/]+)/(logins|messages|events)$", path)
    token = re.match(r"^/u/([^/]+)$", path)
    parameters = {"user_id": unquote(user.group(1))} if user else None
    if token:
        parameters = {"token": unquote(token.group(1))}
    return {
        "resource": "/u/{token}" if token else path,
        "path": path,
        "httpMethod": method.upper(),
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {name: [value] for name, value in query.items()}
        if query
        else None,
        "pathParameters": parameters,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1234",
            "stage": STAGE,
            "path": f"/{STAGE}{path}",
            "httpMethod": method.upper(),
            "requestId": str(uuid.uuid4()),
            "resourcePath": path,
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _json(body: Any) -> str | None:
    return None if body is None else json.dumps(body)
