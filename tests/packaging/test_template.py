"""template.yaml agrees with the code around it: folders, sample events, settings, queues, logs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sam_template import REPO, function_timeout, functions, load_template, resources_of_type
from segmentation.settings import Settings

FUNCTIONS = functions()
# Settings that are never set from the template: deployed, the identity secret comes from its ARN.
LOCAL_ONLY_SETTINGS = {"identity_secret"}
# Environment variables that configure libraries, not segmentation.settings.
LIBRARY_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL"}


def _event_types(props: dict[str, Any]) -> set[str]:
    return {event["Type"] for event in props.get("Events", {}).values()}


def _api_routes(props: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for event in props.get("Events", {}).values()
        if event["Type"] == "Api"
    }


def _public_routes(props: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for event in props.get("Events", {}).values()
        if event["Type"] == "Api" and (event["Properties"].get("Auth") or {}).get("Authorizer") == "NONE"
    }


def _sample_event(logical_id: str) -> Any:
    return json.loads((REPO / "events" / f"{logical_id}.json").read_text())


def test_every_function_folder_is_in_the_template_and_back() -> None:
    folders = {path.name for path in (REPO / "functions").iterdir() if path.is_dir()}
    code_uris = {props["CodeUri"] for props in FUNCTIONS.values()}
    assert code_uris == {f"functions/{name}" for name in folders}


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_sample_event_has_the_shape_of_the_functions_trigger(logical_id: str) -> None:
    props = FUNCTIONS[logical_id]
    event = _sample_event(logical_id)
    kinds = _event_types(props)
    if logical_id == "AuthorizerFunction":
        assert event["type"] == "REQUEST"
        assert event["methodArn"].startswith("arn:aws:execute-api:")
    elif kinds == {"Api"}:
        route = (event["httpMethod"], event["resource"])
        assert route in _api_routes(props), f"{route} is not a route of {logical_id}"
        if route in _public_routes(props):  # Auth NONE: no authorizer context, and GETs carry no body
            assert "authorizer" not in event["requestContext"]
            assert event["body"] is None or json.loads(event["body"]) is not None
        else:
            assert event["requestContext"]["authorizer"]["role"]
            json.loads(event["body"])
    elif kinds == {"DynamoDB"}:
        assert {record["eventSource"] for record in event["Records"]} == {"aws:dynamodb"}
        assert all("NewImage" in record["dynamodb"] for record in event["Records"])
    elif kinds == {"SQS"}:
        assert {record["eventSource"] for record in event["Records"]} == {"aws:sqs"}
        assert all(isinstance(json.loads(record["body"]), dict) for record in event["Records"])
    elif kinds == {"Schedule"}:
        assert event["detail-type"] == "Scheduled Event"
    else:
        pytest.fail(f"{logical_id} has triggers {kinds} that this test does not know")


def test_globals_set_every_setting_and_nothing_else() -> None:
    variables = set(load_template()["Globals"]["Function"]["Environment"]["Variables"])
    expected = {name.upper() for name in Settings.model_fields if name not in LOCAL_ONLY_SETTINGS}
    assert variables - LIBRARY_VARIABLES == expected


def test_each_sqs_consumer_has_a_redriven_queue_that_outlives_six_timeouts() -> None:
    queues = resources_of_type("AWS::SQS::Queue")
    consumers = 0
    for logical_id, props in FUNCTIONS.items():
        for event in props.get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            consumers += 1
            queue_id = event["Properties"]["Queue"]["Fn::GetAtt"][0]
            queue = queues[queue_id]["Properties"]
            assert queue["VisibilityTimeout"] >= 6 * function_timeout(props), queue_id
            assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
            assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"], logical_id
    assert consumers == 3


def test_every_dead_letter_queue_has_an_alarm() -> None:
    queues = resources_of_type("AWS::SQS::Queue")
    dead_letter_ids = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    } | {"StreamFailureQueue", "ScheduleDeadLetterQueue"}
    alarmed = {
        dimension["Value"]["Fn::GetAtt"][0]
        for alarm in resources_of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["Namespace"] == "AWS/SQS"
        for dimension in alarm["Properties"]["Dimensions"]
    }
    assert dead_letter_ids <= alarmed


def test_every_function_has_a_log_group_with_retention() -> None:
    names = {
        group["Properties"]["LogGroupName"]["Fn::Sub"]
        for group in resources_of_type("AWS::Logs::LogGroup").values()
        if group["Properties"].get("RetentionInDays")
    }
    assert names == {f"/aws/lambda/${{{logical_id}}}" for logical_id in FUNCTIONS}
