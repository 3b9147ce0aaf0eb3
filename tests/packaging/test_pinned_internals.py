"""The internals of Powertools and moto this project leans on, pinned: each test fails the day a
release moves one, before anything breaks silently (docs/architecture.md, "Internals we lean on",
says why each is needed and what public API was missing).
"""

from __future__ import annotations

import inspect
import json
from functools import cached_property

import boto3
import moto.sqs.models as sqs_models
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.sesv2.responses import SESV2Response
from moto.sqs.models import SQSBackend
from pydantic import BaseModel
from segmentation.http.auth import ADMINS, allow
from segmentation.http.resolver import make_resolver

from tests.support.apigw import LambdaContext, proxy_event


class _Body(BaseModel):
    name: str


def test_powertools_runs_the_request_validation_middleware_first_from_the_resolvers_attribute() -> None:
    """http/resolver.py replaces `app._request_validation_middleware` so that the caller and role
    checks answer before the body is validated: no public hook runs before that validation."""
    assert isinstance(
        APIGatewayRestResolver(enable_validation=True)._request_validation_middleware,
        OpenAPIRequestValidationMiddleware,
    )
    router = APIGatewayRouter()

    @router.post("/v1/pinned")
    @allow(*ADMINS)
    def pinned(body: _Body):  # a body that fails validation below
        return {"name": body.name}

    app = make_resolver(router)
    event = proxy_event("POST", "/v1/pinned", {"Content-Type": "application/json"}, json.dumps({"x": 1}))
    reply = app.resolve(event, LambdaContext())
    # 401 (no caller), not 422: the guard replaced Powertools' middleware and ran before validation.
    assert reply["statusCode"] == 401, reply


def test_the_proxy_events_bodies_are_cached_properties_the_guard_can_fill() -> None:
    """The guard parses a body once and stores it where Powertools reads it: `event.__dict__`."""
    for name in ("json_body", "decoded_body"):
        assert isinstance(inspect.getattr_static(BaseProxyEvent, name), cached_property), name


def test_moto_dynamodb_transactions_are_wrapped_where_infra_local_moto_speedups_expects() -> None:
    assert list(inspect.signature(DynamoDBBackend.transact_write_items).parameters) == [
        "self",
        "transact_items",
    ]
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="pinned",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables["pinned"]
        # The item-level snapshot reads items[hash][range], the key attributes and the stream's items.
        assert isinstance(table.items, dict) and (table.hash_key_attr, table.range_key_attr) == ("pk", "sk")
        assert isinstance(table.stream_shard.items, list)


def test_moto_sqs_reads_its_clock_and_retention_where_infra_local_moto_speedups_replaces_them() -> None:
    assert list(inspect.signature(SQSBackend.is_message_valid_based_on_retention_period).parameters) == [
        "self",
        "queue_name",
        "message",
    ]
    source = inspect.getsource(sqs_models)
    assert "unix_time()" in source and "unix_time_millis()" in source
    assert callable(sqs_models.unix_time) and callable(sqs_models.unix_time_millis)


def test_moto_sesv2_still_lacks_get_account_which_infra_local_outbox_adds() -> None:
    """The day moto answers GetAccount itself, the outbox's own can go (and this test says so)."""
    ours = getattr(SESV2Response, "get_account", None)
    assert ours is None or ours.__module__ == "infra.local.outbox", ours
    assert list(inspect.signature(SESV2Response.send_email).parameters) == ["self"]
