"""Presigned S3 URLs, served by the local stack itself: moto has them only in server mode, and
here moto runs in process.

Locally the functions sign URLs for `<the stack's address>/_local/s3` (settings'
files_endpoint_url, path-style: `/_local/s3/<bucket>/<key>?X-Amz-...`), and these routes serve
them from moto's S3: a PUT writes the object (moto then sends the bucket's event records to its
queues, as S3 would), a GET reads it back with the headers the URL asked for. A URL past its
`X-Amz-Expires` is refused (403, as S3 does); its signature is not checked (moto's credentials
are fake), only that it has one.
"""

from __future__ import annotations

import calendar
import time
from urllib.parse import unquote
from xml.sax.saxutils import escape

from botocore.exceptions import ClientError
from segmentation.storage import aws

from infra.local.apigw import HttpRequest, HttpResponse
from infra.local.lambdas import invoke_lock

PREFIX = "/_local/s3"
_SIGNED = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Signature")


def endpoint_url(base_url: str) -> str:
    """Where the functions point presigned URLs: this stack's own address."""
    return base_url.rstrip("/") + PREFIX


def _error(status: int, code: str, message: str) -> HttpResponse:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
    )
    return HttpResponse(status, [("Content-Type", "application/xml")], body.encode())


def _expired(query: dict[str, str]) -> bool:
    signed_at = calendar.timegm(time.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
    return time.time() > signed_at + int(query["X-Amz-Expires"])  # S3 goes by real time, as botocore signs


def serve(request: HttpRequest) -> HttpResponse:
    """PUT or GET an object through a presigned URL of this stack."""
    bucket, _, key = unquote(request.path[len(PREFIX) :].lstrip("/")).partition("/")
    query = dict(request.query)
    if not bucket or not key:
        return _error(404, "NoSuchKey", "A presigned URL names a bucket and a key.")
    if any(not query.get(name) for name in _SIGNED):
        return _error(403, "AccessDenied", "The URL is not presigned: it lacks its X-Amz-* parameters.")
    try:
        if _expired(query):
            return _error(403, "AccessDenied", "Request has expired")
    except ValueError:
        return _error(403, "AccessDenied", "The URL's X-Amz-Date or X-Amz-Expires is not valid.")
    s3 = aws.client("s3")
    try:
        if request.method == "PUT":
            with invoke_lock:  # moto is not thread-safe: one writer at a time, as the functions run
                answer = s3.put_object(Bucket=bucket, Key=key, Body=request.body)
            return HttpResponse(200, [("ETag", str(answer.get("ETag", "")))], b"")
        if request.method in ("GET", "HEAD"):
            with invoke_lock:
                found = s3.get_object(Bucket=bucket, Key=key)
                body = found["Body"].read()
            headers = [
                ("Content-Type", query.get("response-content-type") or str(found.get("ContentType") or "")),
                ("ETag", str(found.get("ETag", ""))),
            ]
            if query.get("response-content-disposition"):
                headers.append(("Content-Disposition", query["response-content-disposition"]))
            return HttpResponse(200, headers, body)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", "InternalError"))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
        return _error(status, code, str(error.response.get("Error", {}).get("Message", code)))
    return _error(405, "MethodNotAllowed", f"{request.method} is not served on presigned URLs here.")
