"""The internals of Powertools, moto, samtranslator and SAM CLI this project leans on, pinned:
each test fails the day a release moves one, before anything breaks silently
(docs/architecture.md, "Internals we lean on", says why each is needed and what public API was
missing).
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
from functools import cached_property

import boto3
import moto.sqs.models as sqs_models
import pytest
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
from samcli.lib.intrinsic_resolver.intrinsic_property_resolver import IntrinsicResolver
from samcli.lib.intrinsic_resolver.intrinsics_symbol_table import IntrinsicsSymbolTable
from samtranslator.parser.parser import Parser
from samtranslator.plugins.globals.globals_plugin import GlobalsPlugin
from samtranslator.plugins.sam_plugins import SamPlugins
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


def _moto_arguments(cls: type, name: str) -> list[str]:
    """The arguments of moto's own `cls.name`, read from its module's source: the local stack may
    have replaced the attribute in this process already."""
    tree = ast.parse(inspect.getsource(sys.modules[cls.__module__]))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == name:
                    return [argument.arg for argument in item.args.args]
    raise AssertionError(f"moto's {cls.__name__} has no {name} any more")


def test_moto_dynamodb_transactions_are_wrapped_where_infra_local_moto_speedups_expects() -> None:
    assert _moto_arguments(DynamoDBBackend, "transact_write_items") == ["self", "transact_items"]
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
    assert _moto_arguments(SQSBackend, "is_message_valid_based_on_retention_period") == [
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
    assert _moto_arguments(SESV2Response, "send_email") == ["self"]


def test_samtranslators_parser_merges_the_globals_into_functions_leaving_intrinsics_to_the_stack() -> None:
    """infra/local/template.py reads each function and API with the Globals merged by SAM itself."""
    template = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Globals": {
            "Function": {
                "Timeout": 29,
                "Environment": {"Variables": {"TABLE": {"Ref": "Table"}, "LEVEL": "INFO"}},
            },
            "Api": {"TracingEnabled": True},
        },
        "Resources": {
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": "f", "Environment": {"Variables": {"LEVEL": "DEBUG"}}},
            },
            "Api": {"Type": "AWS::Serverless::Api", "Properties": {}},
        },
    }
    Parser().parse(template, {}, SamPlugins([GlobalsPlugin()]))
    assert "Globals" not in template
    function = template["Resources"]["Fn"]["Properties"]
    assert function["Timeout"] == 29
    assert function["Environment"]["Variables"] == {"TABLE": {"Ref": "Table"}, "LEVEL": "DEBUG"}
    assert template["Resources"]["Api"]["Properties"]["TracingEnabled"] is True


def _sam_cli_resolver(translator: dict[str, object]) -> IntrinsicResolver:
    template = {
        "Parameters": {"Count": {"Default": "0"}},
        "Conditions": {"None": {"Fn::Equals": [{"Ref": "Count"}, "0"]}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
    }
    symbols = IntrinsicsSymbolTable(template=template, logical_id_translator=translator)
    return IntrinsicResolver(template=template, symbol_resolver=symbols)


def test_sam_clis_intrinsic_resolver_answers_from_what_it_is_told() -> None:
    """infra/local/intrinsics.py tells the symbol table each made resource's Ref and attributes."""
    resolver = _sam_cli_resolver({"Queue": {"Ref": "http://q", "Arn": "arn:q"}, "AWS::StackName": "local"})
    value = {
        "Url": {"Ref": "Queue"},
        "Sub": {"Fn::Sub": "${AWS::StackName}-${Queue.Arn}"},
        "If": {"Fn::If": ["None", {"Fn::GetAtt": ["Queue", "Arn"]}, "x"]},
        "Count": {"Ref": "Count"},
    }
    assert resolver.intrinsic_property_resolver(value, ignore_errors=False) == {
        "Url": "http://q",
        "Sub": "local-arn:q",
        "If": "arn:q",
        "Count": "0",
    }


def test_sam_clis_resolver_still_fails_on_a_second_no_value() -> None:
    """aws/aws-sam-cli#1396: the symbol table caches AWS::NoValue's None where the next lookup
    fails. The day this test fails, infra/local/intrinsics.py's own marker for it can go."""
    resolver = _sam_cli_resolver({})
    assert resolver.intrinsic_property_resolver({"Ref": "AWS::NoValue"}, ignore_errors=False) is None
    with pytest.raises(AttributeError):
        resolver.intrinsic_property_resolver({"Ref": "AWS::NoValue"}, ignore_errors=False)
