"""IngestFunction: the app-facing routes (users, companies, logins, a user's in-app messages), and
the preflights of the three routes browsers call (http.cors)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation.handler_wiring import entry_point, metrics
from segmentation.http import cors
from segmentation.http.resolver import make_resolver
from segmentation.http.routes import companies, users

app = make_resolver(users.router, companies.router, cors.router)


@entry_point(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Browsers read the identity routes' answers, errors included, only with their CORS headers.
    response = cors.add_headers(event, app.resolve(event, context))
    # Answers by status class (Http2xx, Http4xx, Http5xx): the error rates an operator alarms on.
    metrics.add_metric(name=f"Http{response['statusCode'] // 100}xx", unit=MetricUnit.Count, value=1)
    return response
