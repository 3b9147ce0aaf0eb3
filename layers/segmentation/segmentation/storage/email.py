"""Email out through Amazon SES v2 `SendEmail`, with every answer mapped to what the sender may
do next, so that an email is never sent twice:

- accepted: the SES message id;
- EmailThrottled: SES said slow down, or the connection was never made: nothing went out,
  retry later;
- EmailRejected: SES refused it for good (a 4xx): never retry;
- EmailOutcomeUnknown: the request went out and no answer came back (a read timeout, a
  dropped connection, a 5xx): SES may have accepted it, so it is never sent again.

The SES client never retries on its own (storage.aws).
"""

from __future__ import annotations

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

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


class EmailOutcomeUnknown(Exception):
    """The request may have reached SES: the email may or may not have been sent."""


class EmailRejected(Exception):
    """SES refused this email for good (bad address, unverified sender, suspended account...)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


def send_email(to: str, subject: str, text: str, html: str) -> str:
    """Send one email; the SES message id. Raises EmailThrottled, EmailRejected or
    EmailOutcomeUnknown."""
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
    except (ConnectTimeoutError, EndpointConnectionError) as exc:
        raise EmailThrottled(type(exc).__name__) from exc  # never connected: nothing went out
    except (ReadTimeoutError, ConnectionClosedError, HTTPClientError) as exc:
        raise EmailOutcomeUnknown(type(exc).__name__) from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        if code in THROTTLING_CODES:
            raise EmailThrottled(code) from exc
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) < 500:
            raise EmailRejected(code, str(error.get("Message", ""))) from exc
        raise EmailOutcomeUnknown(code) from exc
    return str(response.get("MessageId", ""))
