"""Lazily made, process-wide boto3 clients and resources.

Made on first use, not at import, so a cold start pays only for what its path needs and the
local stack (moto in process) can start its mock before any client exists.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from segmentation.settings import get_settings

# Standard retry mode backs off on throttling; our own code treats what is left as Retryable.
_CONFIG = Config(retries={"max_attempts": 4, "mode": "standard"})
# Sending an email is not idempotent: after a timeout or a 5xx, SES may have accepted it. Its
# client never retries on its own (storage.email decides what may be tried again).
_SEND_ONCE = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=3, read_timeout=10)
_CONFIG_OF = {"sesv2": _SEND_ONCE}
_lock = threading.Lock()


@cache
def client(service: str) -> Any:
    with _lock:
        return boto3.client(service, config=_CONFIG_OF.get(service, _CONFIG))  # type: ignore[call-overload]


@cache
def dynamodb() -> Any:
    with _lock:
        return boto3.resource("dynamodb", config=_CONFIG)


@cache
def s3_signer(endpoint_url: str) -> Any:
    """The S3 client that signs URLs: for S3's own endpoint, or for the one given (path-style
    there: the local stack serves presigned URLs on its own address)."""
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"} if endpoint_url else {})
    with _lock:
        return boto3.client("s3", endpoint_url=endpoint_url or None, config=config)


def table(name: str) -> Any:
    """The boto3 Table resource of a table name from Settings."""
    return dynamodb().Table(name)


def reset() -> None:
    """Forget every client (tests and the local stack call this after starting a new mock)."""
    client.cache_clear()
    dynamodb.cache_clear()
    s3_signer.cache_clear()
    get_settings.cache_clear()
