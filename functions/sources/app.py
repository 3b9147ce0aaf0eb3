"""SourcesFunction: the Segment HTTP Tracking API (`/v1/batch`, `/v1/identify`, `/v1/track`,
`/v1/group`, `/v1/page`, `/v1/screen`, `/v1/alias`). No authorizer: the write key may be in the
body, so the routes check it themselves (http.segment_request)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation.handler_wiring import entry_point, metrics
from segmentation.http.resolver import make_resolver
from segmentation.http.routes import sources

app = make_resolver(sources.router)


@entry_point(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    # Answers by status class (Http2xx, Http4xx, Http5xx): the error rates an operator alarms on.
    metrics.add_metric(name=f"Http{response['statusCode'] // 100}xx", unit=MetricUnit.Count, value=1)
    return response
