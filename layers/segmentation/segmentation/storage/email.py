"""Email out through Amazon SES v2 `SendEmail`, with SES's answers mapped to two outcomes the
sender acts on: throttled (retry later) or rejected (never retry)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from segmentation.settings import get_settings
from segmentation.storage import aws

THROTTLING_CODES = frozenset(
    {
        "TooManyRequestsException",
        "Throttling",
        "ThrottlingException",
        "LimitExceededException",
        "LimitExceeded",
    }
)


class EmailThrottled(Exception):
    """SES said slow down: nothing was sent; retry later."""


class EmailRejected(Exception):
    """SES refused this email for good (bad address, unverified sender, suspended account...)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


def send_email(to: str, subject: str, text: str, html: str) -> str:
    """Send one email; the SES message id. Raises EmailThrottled or EmailRejected; any other
    error (a timeout...) propagates: SES may or may not have accepted the email."""
    try:
        response = aws.client("sesv2").send_email(
            FromEmailAddress=get_settings().sender_email,
            Destination={"ToAddresses": [to]},
            Content={
                "Simple": {
                    "Subject": {"Data": subject, "Charset": "UTF-8"},
                    "Body": {
                        "Text": {"Data": text, "Charset": "UTF-8"},
                        "Html": {"Data": html, "Charset": "UTF-8"},
                    },
                }
            },
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in THROTTLING_CODES:
            raise EmailThrottled(code) from exc
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) < 500:
            raise EmailRejected(code, str(error.get("Message", ""))) from exc
        raise
    return str(response.get("MessageId", ""))
