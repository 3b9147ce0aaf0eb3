"""A local API Gateway (REST API, Lambda proxy integration) over the template's Api events.

A request is matched to a resource the way API Gateway does (a literal segment beats a
`{param}`, which beats a `{proxy+}`), its Lambda REQUEST authorizer runs first, a route that
requires an API key is metered by the caller's usage key (infra/local/rate_limits.py), and the
function gets the REST proxy event. Gateway errors take the template's GatewayResponses when it
has them. A request still running after `timeout_seconds` (API Gateway's 29 s) gets the
INTEGRATION_TIMEOUT response, 504; its function goes on in the background, as on AWS.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import logging
import math
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from segmentation import clock

from infra.local.intrinsics import ACCOUNT_ID, REGION
from infra.local.lambdas import LocalFunction
from infra.local.rate_limits import KeyRateLimits, MethodThrottles
from infra.local.template import ApiRoute, RestApi, Template

log = logging.getLogger("infra.local.apigw")

LOCAL_API_ID = "localapi01"
# API Gateway refuses payloads over 10 MB itself; smaller ones reach the function (which answers 413).
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# API Gateway's integration timeout for REST APIs.
INTEGRATION_TIMEOUT_SECONDS = 29.0

_DEFAULT_GATEWAY_RESPONSES = {
    "UNAUTHORIZED": (401, "unauthorized", "Send a valid API key as 'Authorization: Bearer <key>'."),
    # API Gateway's own default is 403; our authorizer denies only unknown or revoked credentials.
    "ACCESS_DENIED": (401, "unauthorized", "The API key or user hash is not valid."),
    "AUTHORIZER_FAILURE": (500, "internal_error", "The authorizer failed; see the stack's log."),
    "REQUEST_TOO_LARGE": (413, "payload_too_large", "The request body is over the size API Gateway accepts."),
    "BAD_GATEWAY": (502, "internal_error", "The function failed; see the stack's log."),
    "INTEGRATION_TIMEOUT": (
        504,
        "gateway_timeout",
        "The request took longer than API Gateway's 29 seconds; it may still complete: check "
        "before retrying.",
    ),
    "INVALID_API_KEY": (403, "forbidden", "Forbidden: the request names no valid API key."),
    "THROTTLED": (429, "rate_limited", "Too many requests."),
}


@dataclass
class HttpRequest:
    method: str
    path: str  # raw (percent-encoded) path, without the query string
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    source_ip: str = "127.0.0.1"


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def error_response(
    status: int, code: str, message: str, details: list[dict[str, str]] | None = None
) -> HttpResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    body = json.dumps({"error": error}).encode()
    return HttpResponse(status, [("Content-Type", "application/json")], body)


@dataclass(frozen=True)
class _Resource:
    path: str
    segments: tuple[str, ...]
    methods: dict[str, ApiRoute]  # method (or ANY) -> route

    def match(self, parts: list[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
        """(specificity key, path parameters) when this resource template matches `parts`."""
        rank: list[int] = []
        params: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            if segment.startswith("{") and segment.endswith("+}"):
                if index >= len(parts):
                    return None
                params[segment[1:-2]] = "/".join(parts[index:])
                return (*rank, 2), params
            if index >= len(parts):
                return None
            if segment.startswith("{") and segment.endswith("}"):
                params[segment[1:-1]] = parts[index]
                rank.append(1)
            elif segment == parts[index]:
                rank.append(0)
            else:
                return None
        if len(parts) != len(self.segments):
            return None
        return tuple(rank), params


def _split(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


class ApiGateway:
    def __init__(
        self,
        template: Template,
        functions: Mapping[str, LocalFunction],
        rate_limits: KeyRateLimits | None = None,
        *,
        timeout_seconds: float = INTEGRATION_TIMEOUT_SECONDS,
        method_throttles: MethodThrottles | None = None,
    ) -> None:
        self.functions = functions
        self.rate_limits = rate_limits or KeyRateLimits()
        self.method_throttles = method_throttles or MethodThrottles({})
        self.timeout_seconds = timeout_seconds
        self.rest_apis = template.rest_apis
        grouped: dict[str, dict[str, ApiRoute]] = {}
        for route in template.routes:
            grouped.setdefault(route.path, {})[route.method] = route
        self.resources = [_Resource(path, tuple(_split(path)), methods) for path, methods in grouped.items()]

    def route_for(self, method: str, path: str) -> tuple[ApiRoute | None, str | None, dict[str, str]]:
        """(route, resource path, path parameters); route None with a resource path means wrong method."""
        parts = [unquote(part) for part in _split(path)]
        best: tuple[tuple[int, ...], _Resource, dict[str, str]] | None = None
        for resource in self.resources:
            found = resource.match(parts)
            if found and (best is None or found[0] < best[0]):
                best = (found[0], resource, found[1])
        if best is None:
            return None, None, {}
        _, resource, params = best
        route = resource.methods.get(method.upper()) or resource.methods.get("ANY")
        return route, resource.path, params

    def handle(self, request: HttpRequest) -> HttpResponse:
        """The answer, or the 504 of INTEGRATION_TIMEOUT once `timeout_seconds` have passed.

        The request runs in a thread of its own that is left to finish when it is late: functions
        run one at a time (lambdas.invoke_lock), so a request queued behind a long one is bounded
        by the same timeout and never waits for it forever.
        """
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["response"] = self._handle(request)
            except Exception as error:
                outcome["error"] = error

        worker = threading.Thread(target=run, name="local-integration", daemon=True)
        worker.start()
        worker.join(self.timeout_seconds)
        if "error" in outcome:
            raise outcome["error"]
        if "response" in outcome:
            return outcome["response"]
        log.warning(
            "%s %s ran past the gateway's %g s: answered 504, it goes on in the background",
            request.method,
            request.path,
            self.timeout_seconds,
        )
        route, _, _ = self.route_for(request.method, request.path)
        return self._gateway_response(
            self.rest_apis.get(route.rest_api_id or "") if route else None, "INTEGRATION_TIMEOUT"
        )

    def _handle(self, request: HttpRequest) -> HttpResponse:
        route, resource_path, params = self.route_for(request.method, request.path)
        if route is None:
            if resource_path is None:
                return error_response(404, "not_found", f"No route {request.method} {request.path}.")
            return error_response(
                405, "method_not_allowed", f"{request.method} is not allowed on {request.path}."
            )
        api = self.rest_apis.get(route.rest_api_id or "")
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return self._gateway_response(api, "REQUEST_TOO_LARGE")
        event = self._proxy_event(request, route, api, resource_path or route.path, params)
        throttled = self.method_throttles.check(resource_path or route.path, request.method)
        if throttled.outcome == "throttled":
            wait = [("Retry-After", str(max(1, math.ceil(throttled.retry_after))))]
            return self._gateway_response(api, "THROTTLED", default_headers=wait)
        usage_key = None
        if route.authorizer:
            denied, usage_key = self._authorize(api, route.authorizer, event)
            if denied:
                return denied
        if route.api_key_required:
            refused = self._meter(api, event, usage_key)
            if refused:
                return refused
        try:
            result = self.functions[route.function_id].invoke(event)
        except Exception:
            log.exception("%s raised on %s %s", route.function_id, request.method, request.path)
            return self._gateway_response(api, "BAD_GATEWAY")
        return self._lambda_response(api, route, result)

    # --- events -----------------------------------------------------------------------------

    def _proxy_event(
        self,
        request: HttpRequest,
        route: ApiRoute,
        api: RestApi | None,
        resource: str,
        params: dict[str, str],
    ) -> dict[str, Any]:
        stage = api.stage if api else "Prod"
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers:
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in request.query:
            query[name] = value
            multi_query.setdefault(name, []).append(value)
        body, is_base64 = _event_body(request.body)
        now = clock.now()
        request_id = str(uuid.uuid4())
        path = unquote(request.path)
        return {
            "resource": resource,
            "path": path,
            "httpMethod": request.method.upper(),
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": LOCAL_API_ID,
                "resourceId": resource,
                "resourcePath": resource,
                "stage": stage,
                # Locally the API is served at the root (no stage in the URL), as behind a custom
                # domain: the path as the client sent it.
                "path": path,
                "httpMethod": request.method.upper(),
                "requestId": request_id,
                "extendedRequestId": request_id,
                "protocol": "HTTP/1.1",
                "requestTime": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now * 1000),
                "domainName": headers.get("Host", "127.0.0.1"),
                "identity": {
                    "sourceIp": request.source_ip,
                    "userAgent": _header(headers, "User-Agent"),
                    "accountId": None,
                    "caller": None,
                    "user": None,
                    "userArn": None,
                },
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }

    def _authorize(
        self, api: RestApi | None, name: str, event: dict[str, Any]
    ) -> tuple[HttpResponse | None, str | None]:
        """(None, the usage key it named) when the authorizer allows (its context is then in the
        event), else (the gateway answer, None)."""
        authorizer = api.authorizers.get(name) if api else None
        function = self.functions.get(authorizer.function_id or "") if authorizer else None
        if authorizer is None or function is None:
            log.error("authorizer %s is not defined in the template", name)
            return self._gateway_response(api, "AUTHORIZER_FAILURE"), None
        # API Gateway checks the identity sources itself and answers 401 without calling the function.
        headers = {k.lower(): v for k, v in (event["headers"] or {}).items()}
        query = event["queryStringParameters"] or {}
        if any(not headers.get(h.lower()) for h in authorizer.identity_headers) or any(
            not query.get(q) for q in authorizer.identity_query
        ):
            return self._gateway_response(api, "UNAUTHORIZED"), None
        context = event["requestContext"]
        method_arn = (
            f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{LOCAL_API_ID}/{context['stage']}/"
            f"{context['httpMethod']}{event['path']}"
        )
        authorizer_event = {
            "type": "REQUEST",
            "methodArn": method_arn,
            **{key: event[key] for key in ("resource", "path", "httpMethod", "headers", "multiValueHeaders")},
            **{key: event[key] for key in ("queryStringParameters", "multiValueQueryStringParameters")},
            "pathParameters": event["pathParameters"],
            "stageVariables": None,
            "requestContext": context,
        }
        try:
            result = function.invoke(authorizer_event)
        except Exception as exc:
            if str(exc) == "Unauthorized":
                return self._gateway_response(api, "UNAUTHORIZED"), None
            log.exception("authorizer %s failed", name)
            return self._gateway_response(api, "AUTHORIZER_FAILURE"), None
        if not isinstance(result, dict) or not _allows(result.get("policyDocument"), method_arn):
            return self._gateway_response(api, "ACCESS_DENIED"), None
        # REST APIs hand the context to the integration with every value as a string.
        authorizer_context: dict[str, Any] = {
            key: _context_text(value) for key, value in (result.get("context") or {}).items()
        }
        authorizer_context["principalId"] = result.get("principalId")
        authorizer_context["integrationLatency"] = 0
        context["authorizer"] = authorizer_context
        usage_key = result.get("usageIdentifierKey")
        return None, usage_key if isinstance(usage_key, str) else None

    def _meter(
        self, api: RestApi | None, event: dict[str, Any], usage_key: str | None
    ) -> HttpResponse | None:
        """None when the caller's usage key is valid and has a token (the key is then in the
        event's identity, as API Gateway puts it), else INVALID_API_KEY or THROTTLED."""
        if api is None or api.api_key_source != "AUTHORIZER":
            usage_key = _header(event["headers"] or {}, "X-API-Key")
        verdict = self.rate_limits.check(usage_key)
        if verdict.outcome == "invalid_key":
            return self._gateway_response(api, "INVALID_API_KEY")
        if verdict.outcome == "throttled":
            # The template's THROTTLED response sets Retry-After; without one, the bucket's own wait.
            wait = [("Retry-After", str(max(1, math.ceil(verdict.retry_after))))]
            return self._gateway_response(api, "THROTTLED", default_headers=wait)
        event["requestContext"]["identity"].update(apiKey=usage_key, apiKeyId=verdict.api_key_id)
        return None

    # --- responses --------------------------------------------------------------------------

    def _lambda_response(self, api: RestApi | None, route: ApiRoute, result: Any) -> HttpResponse:
        if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
            log.error("%s returned a malformed proxy response: %r", route.function_id, result)
            return self._gateway_response(api, "BAD_GATEWAY")
        headers: list[tuple[str, str]] = []
        single = result.get("headers") or {}
        multi = result.get("multiValueHeaders") or {}
        for name, values in multi.items():
            headers.extend((name, str(v)) for v in values)
        headers.extend((name, str(v)) for name, v in single.items() if name not in multi)
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        return HttpResponse(int(result["statusCode"]), headers, raw)

    def _gateway_response(
        self, api: RestApi | None, kind: str, default_headers: list[tuple[str, str]] | None = None
    ) -> HttpResponse:
        """The template's gateway response of this kind (or its family's); `default_headers`
        are added unless it sets them itself."""
        status, code, message = _DEFAULT_GATEWAY_RESPONSES[kind]
        family = "DEFAULT_5XX" if status >= 500 else "DEFAULT_4XX"
        configured = (api.gateway_responses.get(kind) or api.gateway_responses.get(family)) if api else None
        if not configured:
            response = error_response(status, code, message)
            response.headers.extend(default_headers or [])
            return response
        status = int(configured.get("StatusCode", status))
        headers = [("Content-Type", "application/json")]
        for name, value in ((configured.get("ResponseParameters") or {}).get("Headers") or {}).items():
            headers.append((name, str(value).strip("'")))
        named = {name.lower() for name, _ in headers}
        headers.extend((name, value) for name, value in default_headers or [] if name.lower() not in named)
        template = (configured.get("ResponseTemplates") or {}).get("application/json")
        if template is None:
            return HttpResponse(status, headers, json.dumps({"message": message}).encode())
        body = (
            str(template)
            .replace("$context.error.messageString", json.dumps(message))
            .replace("$context.error.message", message)
            .replace("$context.requestId", str(uuid.uuid4()))
        )
        return HttpResponse(status, headers, body.encode())


def _event_body(raw: bytes) -> tuple[str | None, bool]:
    if not raw:
        return None, False
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), True


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _context_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _allows(policy: Any, method_arn: str) -> bool:
    """IAM evaluation in short: an explicit Deny wins, else some Allow must match the method ARN."""
    if not isinstance(policy, dict):
        return False
    statements = policy.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    allowed = False
    for statement in statements:
        resources = statement.get("Resource") or []
        resources = [resources] if isinstance(resources, str) else resources
        if not any(fnmatch.fnmatchcase(method_arn, pattern) for pattern in resources):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed
