"""Email out through Amazon SES v2 `SendEmail`, with every answer mapped to what the sender may
do next, so that an email is never sent twice and an account-wide refusal never fails a user:

- accepted: the SES message id;
- EmailThrottled: SES said slow down: nothing went out, send it later, more slowly;
- EmailNotSent: the request never reached SES (no connection, TLS or proxy failure): nothing went
  out, send it later;
- EmailAccountRefused: SES (or the account's set-up) refuses every email for now: sending paused
  or suspended, the sender identity or MAIL FROM domain not verified, the daily quota reached,
  no credentials or no permission. Nothing went out; the message is held until resumed;
- EmailRejected: SES refused this one recipient's email for good (a 4xx about the address or
  content): never retry it;
- EmailOutcomeUnknown: the request went out and no answer came back (a read timeout, a dropped
  connection, a 5xx): SES may have accepted it, so it is never sent again.

The SES client never retries on its own (storage.aws).
"""

from __future__ import annotations

from collections.abc import Sequence

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    SSLError,
)

from segmentation.settings import get_settings
from segmentation.storage import aws

THROTTLING_CODES = frozenset({"TooManyRequestsException", "Throttling", "ThrottlingException"})
# Refusals of the whole account or of its set-up, whoever the recipient.
ACCOUNT_CODES = frozenset(
    {
        "SendingPausedException",
        "AccountSendingPausedException",
        "ConfigurationSetSendingPausedException",
        "AccountSuspendedException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",  # the configuration set or the sender identity is gone
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "ExpiredToken",
    }
)


class EmailThrottled(Exception):
    """SES said slow down: nothing was sent; retry later, more slowly."""


class EmailNotSent(Exception):
    """The request never reached SES: nothing was sent; retry later."""


class EmailOutcomeUnknown(Exception):
    """The request may have reached SES: the email may or may not have been sent."""


class _Refusal(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class EmailRejected(_Refusal):
    """SES refused this email for good (bad address, content): the recipient's own failure."""


class EmailAccountRefused(_Refusal):
    """SES refuses every email for now (paused, suspended, unverified sender, quota, credentials)."""


def send_email(to: str, subject: str, text: str, html: str, headers: Sequence[tuple[str, str]] = ()) -> str:
    """Send one email; the SES message id. `headers`: (name, value) pairs SES adds to the message
    (at most 15; printable ASCII). Raises one of this module's exceptions."""
    simple: dict[str, object] = {
        "Subject": {"Data": subject, "Charset": "UTF-8"},
        "Body": {
            "Text": {"Data": text, "Charset": "UTF-8"},
            "Html": {"Data": html, "Charset": "UTF-8"},
        },
    }
    if headers:
        simple["Headers"] = [{"Name": name, "Value": value} for name, value in headers]
    try:
        response = aws.client("sesv2").send_email(
            FromEmailAddress=get_settings().sender_email,
            Destination={"ToAddresses": [to]},
            **_configuration_set(),
            Content={"Simple": simple},
        )
    except (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError) as exc:
        raise EmailAccountRefused("NoCredentials", str(exc)) from exc
    except (ConnectTimeoutError, EndpointConnectionError, ProxyConnectionError, SSLError) as exc:
        raise EmailNotSent(type(exc).__name__) from exc  # never connected: nothing went out
    except (ReadTimeoutError, ConnectionClosedError, HTTPClientError) as exc:
        raise EmailOutcomeUnknown(type(exc).__name__) from exc
    except ClientError as exc:
        raise classify(exc) from exc
    return str(response.get("MessageId", ""))


def _configuration_set() -> dict[str, str]:
    """The stack's configuration set, whose event destination reports bounces, complaints and
    deliveries back (messaging.feedback)."""
    name = get_settings().ses_configuration_set
    return {"ConfigurationSetName": name} if name else {}


def classify(exc: ClientError) -> Exception:
    """What an SES error answer means for the sender."""
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    lowered = message.lower()
    if "daily message quota" in lowered or (code == "LimitExceededException" and "rate" not in lowered):
        return EmailAccountRefused("DailyQuotaExceeded", message)  # back tomorrow, not in seconds
    if code in THROTTLING_CODES or code == "LimitExceededException":
        return EmailThrottled(code)
    if code in ACCOUNT_CODES:
        return EmailAccountRefused(code, message)
    if (
        code == "MessageRejected"
        and "not verified" in lowered
        and get_settings().sender_email.lower() in lowered
    ):
        # The sandbox answers so for an unverified recipient too; only our From address is ours.
        return EmailAccountRefused("SenderNotVerified", message)
    if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400) < 500:
        return EmailRejected(code, message)
    return EmailOutcomeUnknown(code)


def max_send_rate() -> float:
    """The account's sending rate (emails a second), from SES v2 GetAccount."""
    quota = aws.client("sesv2").get_account().get("SendQuota") or {}
    return float(quota.get("MaxSendRate") or 0.0)
