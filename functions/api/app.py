"""ApiFunction: teammate and operator routes (search, segments, messages, tags, imports, exports,
jobs, API keys, settings, docs)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation.handler_wiring import entry_point, metrics
from segmentation.http.resolver import make_resolver
from segmentation.http.routes import (
    api_keys,
    changes,
    docs,
    jobs,
    messages,
    search,
    segments,
    settings,
    tags,
    webhooks,
)

app = make_resolver(
    search.router,
    segments.router,
    messages.router,
    tags.router,
    jobs.router,
    api_keys.router,
    settings.router,
    changes.router,
    webhooks.router,
    docs.router,
)


@entry_point(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = app.resolve(event, context)
    # Answers by status class (Http2xx, Http4xx, Http5xx): the error rates an operator alarms on.
    metrics.add_metric(name=f"Http{response['statusCode'] // 100}xx", unit=MetricUnit.Count, value=1)
    return response
