"""Every function and every event of the real template.yaml is served by the local stack.

The stack is built from the real template under moto, with each function's handler replaced by a
recorder, so this proves the wiring (routes, authorizers, stream and queue pollers, schedules)
independently of the handlers' own code.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest
import yaml
from samcli.lib.intrinsic_resolver.invalid_intrinsic_exception import InvalidIntrinsicException
from samtranslator.yaml_helper import yaml_parse
from segmentation import clock
from segmentation.storage import aws

from infra.local import pollers
from infra.local.apigw import HttpRequest
from infra.local.intrinsics import Resolver
from infra.local.lambdas import LocalFunction
from infra.local.stack import PROJECT_ROOT, ConfigurationError, Keys, LocalStack
from infra.local.template import IGNORED_TYPES, PROVISIONED_TYPES, Function, load_template

TEMPLATE = PROJECT_ROOT / "template.yaml"
ADMIN_KEY = "sk_admin_test"


class Recorder:
    """Stands in for every handler: records (function, event) and answers in the function's shape."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.behaviour: dict[str, Any] = {}  # logical id -> callable(event) overriding the answer

    def loader(self, spec: Function, name: str) -> LocalFunction:
        def handler(event: dict[str, Any], context: Any) -> Any:
            assert context.function_name == name and context.get_remaining_time_in_millis() > 0
            self.calls.append((spec.logical_id, event))
            if spec.logical_id in self.behaviour:
                return self.behaviour[spec.logical_id](event)
            if event.get("type") == "REQUEST":
                allowed = event["headers"] and event["headers"].get("Authorization") == f"Bearer {ADMIN_KEY}"
                if not allowed:
                    raise Exception("Unauthorized")
                return {
                    "principalId": "k1",
                    "policyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}],
                    },
                    "context": {"role": "admin", "key_id": "k1", "verified": True},
                    # A usage key the template provisions (routes with an authorizer require one).
                    "usageIdentifierKey": os.environ["IDENTITY_USAGE_KEY"],
                }
            if "httpMethod" in event:
                body = {"function": spec.logical_id, "resource": event["resource"]}
                return {
                    "statusCode": 200,
                    "headers": {"Content-Type": "application/json"},
                    "body": json.dumps(body),
                }
            return {"batchItemFailures": []}

        return LocalFunction(spec=spec, name=name, handler=handler)

    def of(self, logical_id: str) -> list[dict[str, Any]]:
        return [event for function_id, event in self.calls if function_id == logical_id]


@pytest.fixture
def served() -> Iterator[tuple[LocalStack, Recorder]]:
    saved = dict(os.environ)
    recorder = Recorder()
    stack = LocalStack(
        TEMPLATE,
        keys=Keys(admin_key=ADMIN_KEY, ingest_key="sk_ingest_test", identity_secret="s3cret"),
        parameters={"SenderEmail": "sender@example.com"},
        function_loader=recorder.loader,
    )
    stack.start()
    try:
        yield stack, recorder
    finally:
        stack.stop()
        clock.set_offset_seconds(0)
        os.environ.clear()
        os.environ.update(saved)
        aws.reset()


def _raw_events() -> list[tuple[str, str, str, dict[str, Any]]]:
    """(function, event name, event type, properties) straight from the YAML."""
    template = load_template(TEMPLATE)
    out = []
    for logical_id, resource in template.resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for name, event in (resource["Properties"].get("Events") or {}).items():
            out.append((logical_id, name, event["Type"], event.get("Properties") or {}))
    return out


def _concrete_path(template_path: str) -> str:
    return "/".join("x1" if part.startswith("{") else part for part in template_path.split("/"))


def test_every_function_of_the_template_is_loaded(served: tuple[LocalStack, Recorder]) -> None:
    stack, _ = served
    raw = load_template(TEMPLATE).of_type("AWS::Serverless::Function")
    assert set(stack.functions) == set(raw)
    assert {"AuthorizerFunction", "IngestFunction", "ApiFunction", "MembershipStreamFunction"} <= set(raw)


def test_a_loaded_template_is_the_callers_own_and_an_edited_file_is_read_again(tmp_path: Path) -> None:
    first = load_template(TEMPLATE)
    first.functions.clear()
    first.raw["Globals"]["Function"]["Environment"]["Variables"]["CHANGED"] = "by a caller"
    again = load_template(TEMPLATE)
    assert "IngestFunction" in again.functions
    assert "CHANGED" not in again.raw["Globals"]["Function"]["Environment"]["Variables"]

    edited = tmp_path / "template.yaml"
    edited.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    assert "IngestFunction" in load_template(edited).functions
    edited.write_text(TEMPLATE.read_text(encoding="utf-8").replace("IngestFunction:", "IntakeFunction:"))
    reread = load_template(edited).functions
    assert "IntakeFunction" in reread and "IngestFunction" not in reread


def test_no_event_type_is_ignored() -> None:
    assert load_template(TEMPLATE).ignored_events == []


def test_every_resource_type_is_provisioned_served_or_deliberately_ignored() -> None:
    template = load_template(TEMPLATE)
    assert template.unhandled_types() == set()
    types = {str(r["Type"]) for r in template.resources.values()}
    # The ignore list names only types the template has (no stale excuses).
    assert set(IGNORED_TYPES) <= types
    for kind in PROVISIONED_TYPES:
        assert template.of_type(kind), kind


def test_a_resource_type_nobody_handles_stops_the_stack_at_start() -> None:
    template = load_template(TEMPLATE)
    template.resources["Mystery"] = {"Type": "AWS::Mystery::Thing", "Properties": {}}
    stack = LocalStack(
        TEMPLATE,
        keys=Keys(admin_key=ADMIN_KEY, ingest_key="sk_ingest_test", identity_secret="s3cret"),
        parameters={"SenderEmail": "sender@example.com"},
    )
    stack.template = template
    with pytest.raises(ValueError, match="AWS::Mystery::Thing"):
        stack.start()


def test_every_api_event_reaches_its_function_through_its_authorizer(
    served: tuple[LocalStack, Recorder],
) -> None:
    stack, recorder = served
    api_events = [e for e in _raw_events() if e[2] == "Api"]
    assert api_events
    for function_id, name, _, props in api_events:
        path = _concrete_path(props["Path"])
        method = props["Method"].upper()
        recorder.calls.clear()
        headers = [("Authorization", f"Bearer {ADMIN_KEY}")]
        response = stack.handle(HttpRequest(method=method, path=path, headers=headers, body=b"{}"))
        assert response.status == 200, (name, response.body)
        assert response.json() == {"function": function_id, "resource": props["Path"]}, name
        proxy_event = recorder.of(function_id)[-1]
        assert proxy_event["httpMethod"] == method and proxy_event["path"] == path
        assert proxy_event["requestContext"]["resourcePath"] == props["Path"]
        assert proxy_event["requestContext"]["stage"] == "prod"
        authorizer = (props.get("Auth") or {}).get("Authorizer", "KeyAuthorizer")
        if authorizer == "NONE":
            assert recorder.of("AuthorizerFunction") == []
            assert "authorizer" not in proxy_event["requestContext"]
        else:
            assert len(recorder.of("AuthorizerFunction")) == 1, name
            # REST APIs pass the authorizer's context on with every value as a string.
            assert proxy_event["requestContext"]["authorizer"]["role"] == "admin"
            assert proxy_event["requestContext"]["authorizer"]["verified"] == "true"
            # The usage key that metered it, as API Gateway shows it to the integration.
            assert proxy_event["requestContext"]["identity"]["apiKey"] == os.environ["IDENTITY_USAGE_KEY"]


def test_routes_without_a_key_get_the_templates_401_and_unknown_paths_404(
    served: tuple[LocalStack, Recorder],
) -> None:
    stack, recorder = served
    no_key = stack.handle(HttpRequest(method="GET", path="/v1/segments"))
    assert no_key.status == 401
    assert no_key.json()["error"]["code"] == "unauthorized"
    assert recorder.of("AuthorizerFunction") == []  # identity source missing: API Gateway answers itself
    bad_key = stack.handle(
        HttpRequest(method="GET", path="/v1/segments", headers=[("Authorization", "Bearer x")])
    )
    assert bad_key.status == 401 and len(recorder.of("AuthorizerFunction")) == 1
    unknown = stack.handle(HttpRequest(method="GET", path="/v2/nothing"))
    assert unknown.status == 404 and unknown.json()["error"]["code"] == "not_found"
    wrong_method = stack.handle(HttpRequest(method="PATCH", path="/v1/segments"))
    assert wrong_method.status == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert recorder.of("ApiFunction") == []


@pytest.mark.parametrize("usage_key", ["usage_deleted_or_never_made_0123", None])
def test_a_route_whose_authorizer_names_no_live_usage_key_gets_the_templates_invalid_api_key(
    served: tuple[LocalStack, Recorder], usage_key: str | None
) -> None:
    stack, recorder = served

    def allow(event: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "principalId": "k1",
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}],
            },
            "context": {"role": "admin"},
        }
        return {**answer, "usageIdentifierKey": usage_key} if usage_key else answer

    recorder.behaviour["AuthorizerFunction"] = allow
    headers = [("Authorization", f"Bearer {ADMIN_KEY}")]
    response = stack.handle(HttpRequest(method="GET", path="/v1/segments", headers=headers))
    assert response.status == 401 and response.json()["error"]["code"] == "unauthorized"
    assert ("WWW-Authenticate", "Bearer") in response.headers
    assert len(recorder.of("AuthorizerFunction")) == 1 and recorder.of("ApiFunction") == []


def test_preflights_reach_ingest_without_an_authorizer_only_where_the_template_routes_options(
    served: tuple[LocalStack, Recorder],
) -> None:
    stack, recorder = served
    for path in ("/v1/users/u-1/logins", "/v1/users/u-1/events", "/v1/users/u-1/messages"):
        recorder.calls.clear()
        response = stack.handle(
            HttpRequest(method="OPTIONS", path=path, headers=[("Origin", "https://a.test")])
        )
        assert response.status == 200 and response.json()["function"] == "IngestFunction", path
        assert recorder.of("AuthorizerFunction") == []
    recorder.calls.clear()
    for path in ("/v1/segments", "/v1/api_keys", "/v1/users/u-1", "/v1/users"):
        response = stack.handle(
            HttpRequest(method="OPTIONS", path=path, headers=[("Origin", "https://a.test")])
        )
        assert response.status == 405, path
        assert not [name for name, _ in response.headers if name.lower().startswith("access-control-")]
    assert recorder.calls == []


def test_a_cors_block_in_the_template_stops_the_local_stack(tmp_path: Any) -> None:
    """SAM's Cors would make OPTIONS methods the local gateway does not make up: refused loudly."""
    text = TEMPLATE.read_text(encoding="utf-8")
    patched = text.replace(
        "      Auth:\n        DefaultAuthorizer:",
        "      Cors: \"'*'\"\n      Auth:\n        DefaultAuthorizer:",
    )
    assert patched != text
    (tmp_path / "template.yaml").write_text(patched, encoding="utf-8")
    with pytest.raises(ValueError, match="Cors is not served locally"):
        load_template(tmp_path / "template.yaml")


def test_literal_segments_win_over_parameters(served: tuple[LocalStack, Recorder]) -> None:
    stack, _ = served
    route, resource, params = stack.gateway.route_for("POST", "/v1/users/search")  # type: ignore[union-attr]
    assert route is not None and route.function_id == "ApiFunction" and resource == "/v1/users/search"
    route, resource, params = stack.gateway.route_for("GET", "/v1/users/u%2D1")  # type: ignore[union-attr]
    assert route is not None and route.function_id == "IngestFunction" and params == {"user_id": "u-1"}


def test_every_stream_event_has_a_poller_that_delivers_real_records(
    served: tuple[LocalStack, Recorder],
) -> None:
    stack, recorder = served
    stream_events = [e for e in _raw_events() if e[2] == "DynamoDB"]
    assert stream_events
    assert {(p.source.function_id, p.source.event_name) for p in stack.stream_pollers} == {
        (f, n) for f, n, _, _ in stream_events
    }
    stack.drain()  # what provisioning queued: S3's test event for the files bucket's notification
    dynamodb = aws.client("dynamodb")
    for poller in stack.stream_pollers:
        table = stack.provisioned.stream_tables[poller.stream_arn]  # type: ignore[union-attr]
        description = dynamodb.describe_table(TableName=table)["Table"]
        types = {a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]}
        item = {
            k["AttributeName"]: {"N": "1"}
            if types[k["AttributeName"]] == "N"
            else {"S": f"id-{poller.source.event_name}"}
            for k in description["KeySchema"]
        }
        dynamodb.put_item(TableName=table, Item={**item, "blob": {"B": b"\x00\x01"}})
    recorder.calls.clear()
    assert stack.drain() == len(stack.stream_pollers)
    seen = {}
    for function_id in {p.source.function_id for p in stack.stream_pollers}:
        for event in recorder.of(function_id):
            for record in event["Records"]:
                seen[record["eventSourceARN"]] = record
    assert set(seen) == {p.stream_arn for p in stack.stream_pollers}
    record = next(iter(seen.values()))
    assert record["eventName"] == "INSERT" and record["eventSource"] == "aws:dynamodb"
    assert record["dynamodb"]["NewImage"]["blob"] == {"B": "AAE="}  # base64, as in Lambda's JSON
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert stack.drain() == 0  # checkpointed: nothing is handed over twice


def test_every_queue_event_has_a_poller_that_deletes_what_succeeded(
    served: tuple[LocalStack, Recorder],
) -> None:
    stack, recorder = served
    queue_events = [e for e in _raw_events() if e[2] == "SQS"]
    assert queue_events
    assert {(p.source.function_id, p.source.event_name) for p in stack.queue_pollers} == {
        (f, n) for f, n, _, _ in queue_events
    }
    sqs = aws.client("sqs")
    for poller in stack.queue_pollers:
        sqs.send_message(QueueUrl=poller.queue_url, MessageBody=json.dumps({"to": poller.source.function_id}))
    recorder.calls.clear()
    stack.drain()
    for poller in stack.queue_pollers:
        bodies = [json.loads(r["body"]) for e in recorder.of(poller.source.function_id) for r in e["Records"]]
        assert {"to": poller.source.function_id} in bodies
        records = [r for e in recorder.of(poller.source.function_id) for r in e["Records"]]
        assert all(r["eventSourceARN"] == poller.queue_arn and r["eventSource"] == "aws:sqs" for r in records)
        attributes = sqs.get_queue_attributes(QueueUrl=poller.queue_url, AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0"
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_a_bucket_notifies_its_queue_of_the_objects_created_under_its_prefix(
    served: tuple[LocalStack, Recorder],
) -> None:
    stack, recorder = served
    stack.drain()
    recorder.calls.clear()
    s3 = aws.client("s3")
    bucket = stack.provisioned.bucket_names["FilesBucket"]  # type: ignore[union-attr]
    s3.put_object(Bucket=bucket, Key="uploads/job_one.csv", Body=b"user_id\n")
    s3.put_object(Bucket=bucket, Key="exports/job_two.csv", Body=b"user_id\n")  # not notified
    stack.drain()
    records = [json.loads(r["body"]) for e in recorder.of("ImportFunction") for r in e["Records"]]
    # S3 events give keys URL-encoded (moto encodes the slash too); ImportFunction decodes them.
    keys = [unquote_plus(record["Records"][0]["s3"]["object"]["key"]) for record in records]
    assert keys == ["uploads/job_one.csv"]
    assert records[0]["Records"][0]["eventName"].startswith("ObjectCreated")


def test_failed_queue_items_are_retried_then_redriven_to_the_dead_letter_queue(
    served: tuple[LocalStack, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack, recorder = served
    monkeypatch.setattr(pollers, "LOCAL_SQS_RETRY_DELAY", 0)
    poller = next(p for p in stack.queue_pollers if p.source.function_id == "SenderFunction")
    recorder.behaviour["SenderFunction"] = lambda event: {
        "batchItemFailures": [
            {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "bad"
        ]
    }
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=poller.queue_url, MessageBody="bad")
    sqs.send_message(QueueUrl=poller.queue_url, MessageBody="good")
    stack.drain()
    bodies = [r["body"] for e in recorder.of("SenderFunction") for r in e["Records"]]
    assert bodies.count("good") == 1
    assert bodies.count("bad") == 5  # maxReceiveCount of the template's redrive policy
    dlq_url = sqs.get_queue_url(QueueName="DeliveryDeadLetterQueue")["QueueUrl"]
    dead = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert [m["Body"] for m in dead] == ["bad"]


def test_a_failing_stream_batch_is_bisected_retried_and_sent_to_the_failure_queue(
    served: tuple[LocalStack, Recorder],
) -> None:
    stack, recorder = served
    recorder.behaviour["MembershipStreamFunction"] = lambda event: {
        "batchItemFailures": [
            {"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
            for r in event["Records"]
            if r["dynamodb"]["Keys"]["user_id"]["S"] == "poison"
        ]
    }
    dynamodb = aws.client("dynamodb")
    table = stack.provisioned.table_names["UsersTable"]  # type: ignore[union-attr]
    for user_id in ("a", "poison", "b"):
        dynamodb.put_item(TableName=table, Item={"user_id": {"S": user_id}})
    stack.drain()
    batches = [
        [r["dynamodb"]["Keys"]["user_id"]["S"] for r in e["Records"]]
        for e in recorder.of("MembershipStreamFunction")
    ]
    handled = [user_id for batch in batches for user_id in batch]
    assert handled.count("a") == 1  # before the failure: checkpointed, never again
    # Bisected down to the poison record alone, tried once plus MaximumRetryAttempts (5) times.
    assert batches.count(["poison"]) == 6
    assert batches[-1] == ["b"]  # then the stream moves on past it
    sqs = aws.client("sqs")
    failure_url = sqs.get_queue_url(QueueName="StreamFailureQueue")["QueueUrl"]
    failures = sqs.receive_message(QueueUrl=failure_url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(failures) == 1
    info = json.loads(failures[0]["Body"])["DDBStreamBatchInfo"]
    assert info["streamArn"].startswith("arn:aws:dynamodb:") and info["batchSize"] >= 1


def test_schedules_frequent_ones_fire_locally_and_any_function_can_be_invoked(
    served: tuple[LocalStack, Recorder],
) -> None:
    stack, recorder = served
    schedule_events = [e for e in _raw_events() if e[2] in ("Schedule", "ScheduleV2")]
    assert schedule_events
    assert {(s.function_id, s.event_name) for s in stack.template.schedules} == {
        (f, n) for f, n, _, _ in schedule_events
    }
    frequent = {s.function_id for s in stack.template.schedules if s.frequent}
    assert "RecheckFunction" in frequent and "RebuildCoordinatorFunction" not in frequent
    recorder.calls.clear()
    stack.set_clock(3600)
    assert {f for f, _ in recorder.calls} >= frequent
    assert clock.offset_seconds() == 3600
    for function_id, _, _, _ in schedule_events:
        recorder.calls.clear()
        stack.invoke(function_id)
        event = recorder.of(function_id)[0]
        assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"


@pytest.mark.usefixtures("served")
def test_functions_see_the_resolved_environment() -> None:
    sqs = aws.client("sqs")
    assert os.environ["USERS_TABLE"] == "UsersTable"
    assert os.environ["DELIVERY_QUEUE_URL"] == sqs.get_queue_url(QueueName="DeliveryQueue")["QueueUrl"]
    assert os.environ["SENDER_EMAIL"] == "sender@example.com"
    assert os.environ["IDENTITY_SECRET"] == "s3cret"
    secret = aws.client("secretsmanager").get_secret_value(SecretId=os.environ["IDENTITY_SECRET_ARN"])
    assert secret["SecretString"] == "s3cret"
    admin = aws.client("secretsmanager").get_secret_value(SecretId=os.environ["ADMIN_KEY_SECRET_ARN"])
    assert admin["SecretString"] == ADMIN_KEY


def test_the_outbox_lists_what_ses_v2_accepted_oldest_first(served: tuple[LocalStack, Recorder]) -> None:
    stack, _ = served
    clock.set_offset_seconds(86400)
    ses = aws.client("sesv2")
    for index, body in enumerate(
        ({"Text": {"Data": "plain"}}, {"Text": {"Data": "t"}, "Html": {"Data": "<p>h</p>"}})
    ):
        ses.send_email(
            FromEmailAddress="sender@example.com",
            Destination={"ToAddresses": [f"user{index}@example.com"]},
            Content={"Simple": {"Subject": {"Data": f"subject {index}"}, "Body": body}},
        )
    messages = stack.outbox()
    assert [(m["to"], m["subject"], m["text"], m["html"]) for m in messages] == [
        (["user0@example.com"], "subject 0", "plain", None),
        (["user1@example.com"], "subject 1", "t", "<p>h</p>"),
    ]
    # Stamped with the stack's clock (a day ahead here), not the wall clock.
    assert all(
        m["at"] >= clock.now() - 60 and m["at"] > clock.now() - clock.offset_seconds() + 3600
        for m in messages
    )


# --- intrinsics: Conditions, Fn::If and AWS::NoValue, as the template's reservations use them ---


def _resolver(**defaults: Any) -> Resolver:
    resolver = Resolver(
        {
            "Parameters": {
                "Reserved": {"Type": "Number", "Default": defaults.get("Reserved", 0)},
                "Switch": {"Type": "String", "Default": defaults.get("Switch", "No")},
            },
            "Conditions": {
                "Reserve": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Reserved"}, "0"]}]},
                "SwitchedOn": {"Fn::Equals": [{"Ref": "Switch"}, "Yes"]},
                "Both": {"Fn::And": [{"Condition": "Reserve"}, {"Condition": "SwitchedOn"}]},
                "Either": {"Fn::Or": [{"Condition": "Reserve"}, {"Condition": "SwitchedOn"}]},
            },
        }
    )
    resolver.made("Queue", "the-queue")
    return resolver


_PROPERTIES = {
    "Timeout": 10,
    "ReservedConcurrentExecutions": {"Fn::If": ["Reserve", {"Ref": "Reserved"}, {"Ref": "AWS::NoValue"}]},
    "Layers": ["a", {"Fn::If": ["SwitchedOn", "b", {"Ref": "AWS::NoValue"}]}],
    "Extra": {"Fn::If": ["Both", {"Tag": "both"}, {"Ref": "AWS::NoValue"}]},
    "Any": {"Fn::If": ["Either", "either", "neither"]},
}


def test_no_value_removes_the_property_or_item_that_holds_it() -> None:
    resolver = _resolver()
    assert resolver.resolve(_PROPERTIES) == {"Timeout": 10, "Layers": ["a"], "Any": "neither"}
    # Again, and alone: SAM CLI's own symbol table fails on a second AWS::NoValue (aws-sam-cli#1396).
    only = {"Only": {"Ref": "AWS::NoValue"}, "Kept": {"Ref": "Queue"}}
    assert resolver.resolve(only) == {"Kept": "the-queue"}
    assert resolver.resolve({"Ref": "AWS::NoValue"}) is None


def test_conditions_follow_the_parameters_number_defaults_included() -> None:
    assert _resolver(Reserved=50, Switch="Yes").resolve(_PROPERTIES) == {
        "Timeout": 10,
        "ReservedConcurrentExecutions": "50",
        "Layers": ["a", "b"],
        "Extra": {"Tag": "both"},
        "Any": "either",
    }
    reserved_only = _resolver(Reserved=1).resolve(_PROPERTIES)
    assert reserved_only["ReservedConcurrentExecutions"] == "1" and "Extra" not in reserved_only
    assert reserved_only["Any"] == "either"
    with pytest.raises(InvalidIntrinsicException):
        _resolver().resolve({"Fn::If": ["NoSuchCondition", 1, 2]})


def test_parameters_resolve_to_strings_and_an_unset_one_to_empty_not_to_its_name() -> None:
    # SAM CLI's symbol table would answer a logical id for a parameter with no value (its
    # fallback for any Ref), and skips a value that is "" (falsy) to the same fallback.
    resolver = Resolver(
        {"Parameters": {"Sender": {"Type": "String"}, "Empty": {"Type": "String", "Default": ""}}}
    )
    assert resolver.resolve({"Fn::Sub": "<${Sender}><${Empty}>"}) == "<><>"
    assert resolver.ref("Sender") == "" and resolver.ref("Empty") == ""
    assert _resolver(Reserved=7).ref("Reserved") == "7"


def test_the_files_bucket_is_named_from_the_local_stack_id() -> None:
    # Fn::Sub with a variable from !Select/!Split of AWS::StackId; SAM CLI looks each variable's
    # value up again as a symbol (harmless for "local", which names nothing).
    template = load_template(TEMPLATE)
    name = Resolver(template.raw).resolve(template.resources["FilesBucket"]["Properties"]["BucketName"])
    assert name == "segmentation-files-local"


def test_the_templates_reservations_resolve_to_none_at_the_defaults() -> None:
    template = load_template(TEMPLATE)
    resolver = Resolver(template.raw)
    for logical_id, function in template.functions.items():
        reserved = function.properties.get("ReservedConcurrentExecutions")
        assert resolver.resolve({"R": reserved}) == {}, logical_id


def test_an_environment_variable_resolving_to_no_value_is_not_set() -> None:
    saved = dict(os.environ)
    template = load_template(TEMPLATE)
    for function in template.functions.values():
        function.environment["LOCAL_PROBE"] = {"Fn::If": ["ReserveIngest", "set", {"Ref": "AWS::NoValue"}]}
    stack = LocalStack(
        TEMPLATE,
        keys=Keys(admin_key=ADMIN_KEY, ingest_key="sk_ingest_test", identity_secret="s3cret"),
        parameters={"SenderEmail": "sender@example.com"},
        function_loader=Recorder().loader,
    )
    stack.template = template
    os.environ.pop("LOCAL_PROBE", None)
    os.environ.pop("SES_MAX_SEND_RATE", None)
    stack.start()
    try:
        assert "LOCAL_PROBE" not in os.environ
        assert os.environ["SES_MAX_SEND_RATE"] == "0"  # the SesMaxSendRate parameter's default
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        aws.reset()


# --- the gateway's 29 s, and what the stack refuses at start -------------------------------------


def _route_of(stack: LocalStack, function_id: str) -> HttpRequest:
    route = next(
        r
        for r in stack.template.routes
        if r.function_id == function_id and r.method == "GET" and r.authorizer
    )
    return HttpRequest(
        method="GET", path=_concrete_path(route.path), headers=[("Authorization", f"Bearer {ADMIN_KEY}")]
    )


def test_a_request_past_the_gateway_timeout_is_a_504_and_holds_no_later_one_forever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    saved = dict(os.environ)
    monkeypatch.setenv("LOCAL_GATEWAY_TIMEOUT", "0.3")
    recorder = Recorder()
    started, release = threading.Event(), threading.Event()

    def runs_until_released(event: dict[str, Any]) -> dict[str, Any]:
        started.set()
        release.wait(60)
        return {"statusCode": 200, "body": "{}"}

    recorder.behaviour["ApiFunction"] = runs_until_released
    stack = LocalStack(
        TEMPLATE,
        keys=Keys(admin_key=ADMIN_KEY, ingest_key="sk_ingest_test", identity_secret="s3cret"),
        parameters={"SenderEmail": "sender@example.com"},
        function_loader=recorder.loader,
    )
    assert stack.gateway_timeout == 0.3
    stack.start()
    try:
        slow = stack.handle(_route_of(stack, "ApiFunction"))
        assert started.is_set() and not release.is_set()  # answered while the function still runs
        assert slow.status == 504
        assert slow.json()["error"]["code"] == "gateway_timeout"
        # Functions run one at a time: a request queued behind the long one gets its 504 too.
        queued = stack.handle(_route_of(stack, "IngestFunction"))
        assert queued.status == 504 and not release.is_set()
        release.set()  # the long one finishes in the background; the stack answers again
        deadline = time.monotonic() + 30
        while (answer := stack.handle(_route_of(stack, "IngestFunction"))).status != 200:
            assert time.monotonic() < deadline, answer
    finally:
        release.set()
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        aws.reset()


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf"])
def test_a_gateway_timeout_that_is_no_positive_number_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LOCAL_GATEWAY_TIMEOUT", value)
    with pytest.raises(ConfigurationError, match="LOCAL_GATEWAY_TIMEOUT must be a number of seconds"):
        LocalStack(TEMPLATE, keys=Keys("sk_admin_test", "sk_ingest_test", "s3cret"))
    monkeypatch.delenv("LOCAL_GATEWAY_TIMEOUT")
    assert LocalStack(TEMPLATE, keys=Keys("sk_admin_test", "sk_ingest_test", "s3cret")).gateway_timeout == 29


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("ADMIN_API_KEY", "short", "ADMIN_API_KEY is 5 characters; an API key needs at least 8"),
        ("INGEST_API_KEY", "1234567", "INGEST_API_KEY is 7 characters; an API key needs at least 8"),
        ("ADMIN_API_KEY", "has a space in it", "ADMIN_API_KEY is not an API key"),
    ],
)
def test_a_key_the_authorizer_would_refuse_is_refused_at_start(variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        Keys.from_environment({variable: value})


def test_keys_of_eight_characters_or_more_are_taken_and_the_rest_generated() -> None:
    keys = Keys.from_environment({"ADMIN_API_KEY": "12345678", "IDENTITY_SECRET": "s"})
    assert keys.admin_key == "12345678" and keys.identity_secret == "s"
    assert keys.generated == ["INGEST_API_KEY"] and len(keys.ingest_key) >= 8


# --- EventBridge: the default bus, its rules and what SES publishes to it ---


def _ses_event(
    configuration_set: str, *, detail_type: str = "Email Bounced", source: str = "aws.ses"
) -> dict:
    detail = {
        "eventType": "Bounce",
        "mail": {"messageId": "m-1", "tags": {"ses:configuration-set": [configuration_set]}},
    }
    return {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)}


def test_every_rule_routes_the_events_its_pattern_matches_to_its_function(
    served: tuple[LocalStack, Recorder],
) -> None:
    stack, recorder = served
    rules = load_template(TEMPLATE).of_type("AWS::Events::Rule")
    assert {rule.name for rule in stack.event_bus.rules} == set(rules) == {"EmailEventsRule"}
    ours = os.environ["SES_CONFIGURATION_SET"]
    published = stack.event_bus.put_events(
        [
            _ses_event(ours),
            _ses_event("another-senders-set"),  # the account's other configuration sets: not ours
            _ses_event(ours, detail_type="Email Opened"),  # a type the rule does not route
            _ses_event(ours, source="my.app"),
        ]
    )
    assert [p["rules"] for p in published] == [["EmailEventsRule"], [], [], []]
    stack.drain()
    [event] = recorder.of("EmailFeedbackFunction")
    # As EventBridge hands it over: the envelope, and SES's record as `detail`.
    assert event["source"] == "aws.ses" and event["detail-type"] == "Email Bounced"
    assert event["detail"]["mail"]["messageId"] == "m-1" and event["id"] == published[0]["event"]["id"]
    assert {"version", "account", "time", "region", "resources"} <= set(event)


def test_a_target_that_keeps_failing_is_retried_twice_then_its_event_is_kept(
    served: tuple[LocalStack, Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.local import eventbridge

    stack, recorder = served
    monkeypatch.setattr(eventbridge, "LOCAL_RETRY_DELAY", 0)

    def fail(event: dict[str, Any]) -> Any:
        raise RuntimeError("throttled")

    recorder.behaviour["EmailFeedbackFunction"] = fail
    stack.event_bus.put_events([_ses_event(os.environ["SES_CONFIGURATION_SET"])])
    stack.drain()
    assert len(recorder.of("EmailFeedbackFunction")) == 3  # Lambda's asynchronous invocation: 1 + 2 retries
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName="EmailFeedbackDeadLetterQueue")["QueueUrl"]
    [kept] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"]).get("Messages", [])
    assert json.loads(kept["Body"])["detail"]["mail"]["messageId"] == "m-1"
    assert kept["MessageAttributes"]["ErrorMessage"]["StringValue"] == "throttled"


def _send(to: list[str], *, configuration_set: str | None, headers: list[dict[str, str]] = ()) -> str:
    extra = {"ConfigurationSetName": configuration_set} if configuration_set else {}
    simple: dict[str, Any] = {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "text"}}}
    if headers:
        simple["Headers"] = list(headers)
    answer = aws.client("sesv2").send_email(
        FromEmailAddress="sender@example.com",
        Destination={"ToAddresses": to},
        Content={"Simple": simple},
        **extra,
    )
    return str(answer["MessageId"])


def test_ses_reports_through_the_configuration_sets_destination_onto_the_bus_and_the_rule(
    served: tuple[LocalStack, Recorder],
) -> None:
    from infra.local.ses_events import SesEventRequest

    stack, recorder = served
    ours = os.environ["SES_CONFIGURATION_SET"]
    first = _send(["ada@example.com", "bob@example.com"], configuration_set=ours)
    last = _send(["Ada@example.com"], configuration_set=ours, headers=[{"Name": "X-Campaign", "Value": "c1"}])
    outbox = stack.outbox()
    assert [m["ses_message_id"] for m in outbox] == [first, last]
    assert outbox[1]["headers"] == {"X-Campaign": "c1"} and outbox[0]["headers"] == {}

    reported = stack.report_ses_event(SesEventRequest(type="Bounce", email="ada@example.com"))
    assert reported["ses_message_id"] == last  # the last email SES accepted for that address
    assert reported["destinations"] == ["EmailEventsToEventBridge"] and reported["rules"] == [
        "EmailEventsRule"
    ]
    stack.drain()
    [event] = recorder.of("EmailFeedbackFunction")
    detail = event["detail"]
    assert event["detail-type"] == "Email Bounced" and detail["eventType"] == "Bounce"
    assert detail["mail"]["messageId"] == last and detail["mail"]["tags"]["ses:configuration-set"] == [ours]
    assert detail["bounce"]["bounceType"] == "Permanent"
    assert [r["emailAddress"] for r in detail["bounce"]["bouncedRecipients"]] == ["Ada@example.com"]
    assert {"name": "X-Campaign", "value": "c1"} in detail["mail"]["headers"]

    recorder.calls.clear()
    reported = stack.report_ses_event(SesEventRequest(type="Delivery", email="bob@example.com"))
    assert reported["ses_message_id"] == first
    stack.drain()
    [event] = recorder.of("EmailFeedbackFunction")
    assert event["detail-type"] == "Email Delivered"
    assert event["detail"]["delivery"]["recipients"] == ["bob@example.com"]
    assert event["detail"]["mail"]["destination"] == ["ada@example.com", "bob@example.com"]


def test_ses_publishes_nothing_for_an_email_sent_without_the_configuration_set(
    served: tuple[LocalStack, Recorder],
) -> None:
    from infra.local.ses_events import SesEventRequest

    stack, recorder = served
    _send(["cy@example.com"], configuration_set=None)
    reported = stack.report_ses_event(SesEventRequest(type="Complaint", email="cy@example.com"))
    assert reported["destinations"] == [] and reported["event"] is None
    stack.drain()
    assert recorder.of("EmailFeedbackFunction") == []
    with pytest.raises(LookupError):
        stack.report_ses_event(SesEventRequest(type="Complaint", email="nobody@example.com"))


@pytest.mark.usefixtures("served")
def test_the_local_ses_refuses_a_configuration_set_that_does_not_exist() -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as refused:
        _send(["dee@example.com"], configuration_set="no-such-set")
    assert refused.value.response["Error"]["Code"] == "NotFoundException"


@pytest.mark.parametrize(
    "change",
    [
        {"EventBusName": "custom-bus"},
        {"ScheduleExpression": "rate(1 minute)"},
        {"Targets": [{"Id": "q", "Arn": {"Fn::GetAtt": ["DeliveryQueue", "Arn"]}}]},
    ],
)
def test_a_rule_the_local_event_bus_cannot_serve_stops_the_stack(
    tmp_path: Any, change: dict[str, Any]
) -> None:
    raw = yaml_parse(TEMPLATE.read_text())
    raw["Resources"]["EmailEventsRule"]["Properties"].update(change)
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="EmailEventsRule"):
        load_template(path)
