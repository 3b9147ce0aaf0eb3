"""The HTTP front door: `/_local/...` routes here, everything else through the local API Gateway."""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import ValidationError
from segmentation import clock

from infra.local import files, outbox, ses_events
from infra.local.apigw import HttpRequest, HttpResponse, error_response
from infra.local.stack import LocalStack

log = logging.getLogger("infra.local.server")

_INVOKE = re.compile(r"^/_local/invoke/([A-Za-z0-9]+)$")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(status: int, payload: Any) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", "application/json")], json.dumps(payload).encode())


def local_route(stack: LocalStack, request: HttpRequest) -> HttpResponse:
    """The local-only routes (no auth, never deployed)."""
    path, method = request.path.rstrip("/"), request.method
    if path.startswith(files.PREFIX + "/"):
        return files.serve(request)
    if path == "/_local/health" and method == "GET":
        ready = stack.ready.is_set()
        return _json(200 if ready else 503, {"status": "ok" if ready else "starting"})
    if path == "/_local/clock" and method == "GET":
        return _json(200, {"offset_seconds": clock.offset_seconds(), "now": _iso(clock.now())})
    if path == "/_local/clock" and method == "POST":
        offset = _offset_from(request.body)
        if offset is None:
            return error_response(422, "invalid_request", 'Send {"offset_seconds": <number>}.')
        stack.set_clock(offset)
        return _json(200, {"offset_seconds": clock.offset_seconds(), "now": _iso(clock.now())})
    if path == "/_local/outbox" and method == "GET":
        messages = [{**m, "at": _iso(m["at"])} for m in stack.outbox()]
        return _json(200, {"data": messages})
    if path == "/_local/ses" and method == "POST":
        paused = _field(request.body, "sending_paused")
        if not isinstance(paused, bool):
            return error_response(422, "invalid_request", 'Send {"sending_paused": true|false}.')
        outbox.configure(paused=paused)
        return _json(200, {"sending_paused": paused, "send_rate": outbox.gate.rate})
    if path == "/_local/ses/events" and method == "POST":
        return _ses_event(stack, request.body)
    match = _INVOKE.match(path)
    if match and method == "POST":
        logical_id = match.group(1)
        if logical_id not in stack.functions:
            return error_response(404, "not_found", f"template.yaml has no function {logical_id}.")
        result = stack.invoke(logical_id)
        return _json(200, {"function": logical_id, "result": _jsonable(result)})
    if (
        path in ("/_local/health", "/_local/clock", "/_local/outbox", "/_local/ses", "/_local/ses/events")
        or match
    ):
        return error_response(405, "method_not_allowed", f"{method} is not allowed on {path}.")
    return error_response(404, "not_found", f"No local route {method} {path}.")


def _ses_event(stack: LocalStack, body: bytes) -> HttpResponse:
    """SES reports a bounce, complaint or delivery of the last email it accepted for an address."""
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        return error_response(400, "malformed_json", "The body is not JSON.")
    try:
        wanted = ses_events.SesEventRequest.model_validate(payload)
    except ValidationError as error:
        details = [
            {"path": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in error.errors()
        ]
        return error_response(
            422,
            "invalid_request",
            'Send {"type": "Bounce"|"Complaint"|"Delivery", "email": "<address>", '
            '"bounce_type": "Permanent"|"Transient"}.',
            details,
        )
    try:
        reported = stack.report_ses_event(wanted)
    except LookupError:
        return error_response(404, "not_found", f"SES accepted no email for {wanted.email}.")
    return _json(200, reported)


def _field(body: bytes, name: str) -> Any:
    """`name` of a JSON object body, or None."""
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        return None
    return payload.get(name) if isinstance(payload, dict) else None


def _offset_from(body: bytes) -> float | None:
    value = _field(body, "offset_seconds")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


class _Handler(BaseHTTPRequestHandler):
    stack: LocalStack
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes. On a kept-alive connection Nagle's algorithm holds the
    # body until the client ACKs the headers, and the client delays that ACK: 40 ms on every
    # request (browsers, requests.Session, schemathesis), against about 1 ms without.
    disable_nagle_algorithm = True

    def do_request(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        request = HttpRequest(
            method=self.command,
            path=parts.path or "/",
            query=parse_qsl(parts.query, keep_blank_values=True),
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
        )
        try:
            if request.path.startswith("/_local/"):
                response = local_route(self.stack, request)
            else:
                response = self.stack.handle(request)
        except Exception:
            log.exception("local stack failed on %s %s", self.command, self.path)
            response = error_response(500, "internal_error", "The local stack failed; see its log.")
        self.stack.wake_pollers()  # the request may have written: its stream records are due now
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_request

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, QUERY, FOO...) goes to the gateway too, which answers it with
        # a JSON error as API Gateway does, never http.server's 501 HTML page.
        if name.startswith("do_"):
            return self.do_request
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    # The listen backlog (socketserver's default is 5): a burst of clients connecting at once
    # waits here to be accepted, a thread each, instead of being reset. Linux caps it at somaxconn.
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up early (curl polling /_local/health) is not an error of ours.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def make_server(stack: LocalStack, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("LocalStackHandler", (_Handler,), {"stack": stack})
    server = _Server((host, port), handler)
    server.daemon_threads = True
    return server
