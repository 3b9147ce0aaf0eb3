"""UnsubscribeFunction: one-click unsubscribe links (`GET`/`POST /u/{token}`, RFC 8058), no auth.

A function of its own rather than a route of IngestFunction: these routes are open to anyone on
the internet (mail scanners follow every link), so they get only what they need (update one
user's `unsubscribed_from_emails`, read the key that signs links), their own concurrency, and a
resolver that does not read bodies as JSON (a mailbox provider posts a form).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation.handler_wiring import entry_point, metrics
from segmentation.http.resolver import make_form_resolver
from segmentation.http.routes import unsubscribe

app = make_form_resolver(unsubscribe.router)


@entry_point(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    metrics.add_metric(name=f"Http{response['statusCode'] // 100}xx", unit=MetricUnit.Count, value=1)
    return response
