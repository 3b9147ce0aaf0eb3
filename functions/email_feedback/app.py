"""EmailFeedbackFunction (EventBridge rule on the default bus): SES's delivery, bounce and
complaint events of the stack's configuration set, applied to deliveries, message stats and
users (segmentation.messaging.feedback).

Invoked asynchronously by EventBridge: an error (errors.Retryable: throttled, or the email not
found yet) is retried by Lambda, then the event goes to the function's dead-letter queue. An
event that can never be read is logged and dropped: retrying would not change it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from segmentation import clock
from segmentation.handler_wiring import entry_point, logger, metrics
from segmentation.messaging import feedback, ses_events


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


@entry_point()
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        parsed = ses_events.parse(event)
    except ses_events.NotAnSesEvent as error:
        logger.warning("event dropped", extra={"reason": str(error), "detail_type": event.get("detail-type")})
        _count("EmailFeedbackIgnored")
        return {"outcome": "ignored"}
    if parsed is None:
        return {"outcome": "ignored"}
    applied = feedback.apply(parsed, clock.now())
    logger.info(
        "email feedback",
        extra={"kind": parsed.kind, "ses_message_id": parsed.ses_message_id, "outcome": applied.outcome},
    )
    if applied.outcome == "recorded":
        # Counted once per email: the bounce and complaint rates' numerators (EmailsSent is the sender's).
        _count(f"Emails{parsed.kind.capitalize()}")
        if parsed.kind == ses_events.BOUNCED and parsed.permanent:
            _count("EmailsBouncedPermanent")
    elif applied.outcome == "unmatched":
        _count("EmailFeedbackUnmatched")
    return {"outcome": applied.outcome, "kind": parsed.kind, "user_updated": applied.user_updated}
