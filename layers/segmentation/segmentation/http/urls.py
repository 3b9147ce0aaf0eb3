"""The URL a request came to, as the public base of links the API gives out."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

from segmentation.settings import get_settings


def unsubscribe_base_url() -> str:
    """Where unsubscribe links point: the configured base (a custom domain, or locally the
    stack's own address), else the stage URL this request came to (`https://<host>/<stage>`)."""
    configured = get_settings().unsubscribe_base_url
    if configured:
        return configured
    event = BaseRouter.current_event
    context = event.raw_event.get("requestContext") or {}
    host = context.get("domainName") or event.headers.get("host") or "localhost"
    stage = context.get("stage")
    staged = stage and stage != "$default" and str(context.get("path") or "").startswith(f"/{stage}/")
    return f"https://{host}/{stage}" if staged else f"https://{host}"
