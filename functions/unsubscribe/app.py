"""UnsubscribeFunction: one-click unsubscribe links (`GET`/`POST /u/{token}`, RFC 8058), no auth.

A function of its own rather than a route of IngestFunction: these routes are open to anyone on
the internet (mail scanners follow every link), so they get only what they need (update one
user's `unsubscribed_from_emails`, read the key that signs links), their own concurrency, and a
resolver that does not read bodies as JSON (a mailbox provider posts a form).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation.http.resolver import make_form_resolver
from segmentation.http.routes import unsubscribe

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # the only library that does I/O here
metrics = Metrics(namespace="Segmentation")
app = make_form_resolver(unsubscribe.router)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
# The path holds a token that unsubscribes a user: X-Ray records neither answers nor errors.
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    metrics.add_metric(name=f"Http{response['statusCode'] // 100}xx", unit=MetricUnit.Count, value=1)
    return response
