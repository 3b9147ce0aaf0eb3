"""template.yaml agrees with the code around it: folders, sample events, settings, queues, logs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sam_template import REPO, function_timeout, functions, load_template, resources_of_type
from segmentation import jobs
from segmentation.auth.keys import KEY_ROLES
from segmentation.messaging import ses_events
from segmentation.settings import Settings

from infra.local.intrinsics import Resolver

FUNCTIONS = functions()
TEMPLATE = load_template()
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


def _rules_targeting(logical_id: str) -> list[dict[str, Any]]:
    """The properties of the AWS::Events::Rule resources with this function as a target."""
    return [
        rule["Properties"]
        for rule in resources_of_type("AWS::Events::Rule").values()
        if any(
            target["Arn"] == {"Fn::GetAtt": [logical_id, "Arn"]} for target in rule["Properties"]["Targets"]
        )
    ]


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
            if logical_id == "UnsubscribeFunction":  # what a mailbox provider posts (RFC 8058)
                assert event["body"] == "List-Unsubscribe=One-Click"
            else:
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
    elif not kinds and _rules_targeting(logical_id):
        [pattern] = [rule["EventPattern"] for rule in _rules_targeting(logical_id)]
        assert event["source"] in pattern["source"] and event["detail-type"] in pattern["detail-type"]
        assert ses_events.parse(event) is not None  # what the function reads
    else:
        pytest.fail(f"{logical_id} has triggers {kinds} that this test does not know")


@pytest.mark.parametrize(
    ("logical_id", "parse"),
    [
        ("RebuildWorkerFunction", jobs.rebuild_job_from_body),
        ("FanoutFunction", jobs.fanout_job_from_body),
        ("SenderFunction", jobs.delivery_job_from_body),
        ("WebhookSenderFunction", jobs.webhook_job_from_body),
        ("ImportFunction", jobs.bulk_jobs_from_body),
        ("ExportFunction", jobs.bulk_jobs_from_body),
    ],
)
def test_sample_queue_bodies_are_the_jobs_their_consumer_reads(logical_id: str, parse: Any) -> None:
    for record in _sample_event(logical_id)["Records"]:
        assert parse(record["body"])  # raises on a body the consumer would refuse (or finds no job)


def test_globals_set_every_setting_and_nothing_else() -> None:
    variables = set(load_template()["Globals"]["Function"]["Environment"]["Variables"])
    expected = {name.upper() for name in Settings.names() if name not in LOCAL_ONLY_SETTINGS}
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
    assert consumers == 6


def test_every_dead_letter_queue_has_an_alarm() -> None:
    queues = resources_of_type("AWS::SQS::Queue")
    dead_letter_ids = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    } | {"StreamFailureQueue", "ScheduleDeadLetterQueue", "EmailFeedbackDeadLetterQueue"}
    alarmed = {
        dimension["Value"]["Fn::GetAtt"][0]
        for alarm in resources_of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/SQS"
        for dimension in alarm["Properties"]["Dimensions"]
    }
    assert dead_letter_ids <= alarmed


def test_every_function_has_a_log_group_with_retention() -> None:
    names = {
        group["Properties"]["LogGroupName"]["Fn::Sub"]
        for group in resources_of_type("AWS::Logs::LogGroup").values()
        if group["Properties"].get("RetentionInDays")
        and group["Properties"]["LogGroupName"]["Fn::Sub"].startswith("/aws/lambda/")
    }
    assert names == {f"/aws/lambda/${{{logical_id}}}" for logical_id in FUNCTIONS}


def test_every_log_group_keeps_its_logs_a_while_under_the_stacks_key() -> None:
    groups = resources_of_type("AWS::Logs::LogGroup")
    for logical_id, group in groups.items():
        props = group["Properties"]
        assert props.get("RetentionInDays") == {"Ref": "LogRetentionInDays"}, logical_id
        assert props.get("KmsKeyId") == {"Fn::GetAtt": ["DataKey", "Arn"]}, logical_id


def test_the_api_stage_logs_each_request_with_the_callers_key_as_json() -> None:
    api = resources_of_type("AWS::Serverless::Api")["RestApi"]["Properties"]
    assert api["TracingEnabled"] is True
    setting = api["AccessLogSetting"]
    assert setting["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    # API Gateway fills the $context variables in; the line must stay one JSON object.
    line = json.loads(setting["Format"])
    assert {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "method": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "key_id": "$context.authorizer.key_id",
        "role": "$context.authorizer.role",
    }.items() <= line.items()


def test_data_tables_are_protected_from_deletion_and_encrypted_with_the_stacks_key() -> None:
    tables = resources_of_type("AWS::DynamoDB::Table")
    # the nine of the contract, EventIds, CountCache, WorkspaceSettings, Changes, Webhooks, Tags and Jobs
    assert len(tables) == 16
    for logical_id, table in tables.items():
        props = table["Properties"]
        assert props["DeletionProtectionEnabled"] is True, logical_id
        assert table["DeletionPolicy"] == "Retain", logical_id
        assert props["SSESpecification"] == {
            "SSEEnabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": {"Fn::GetAtt": ["DataKey", "Arn"]},
        }, logical_id
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_the_files_bucket_is_private_encrypted_tls_only_and_short_lived() -> None:
    [(logical_id, bucket)] = resources_of_type("AWS::S3::Bucket").items()
    props = bucket["Properties"]
    [encryption] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": ["DataKey", "Arn"]},
    }
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    rules = {rule.get("Prefix"): rule for rule in props["LifecycleConfiguration"]["Rules"]}
    assert all(rule["Status"] == "Enabled" for rule in rules.values())
    assert 1 <= rules["uploads/"]["ExpirationInDays"] <= 7
    assert 1 <= rules["exports/"]["ExpirationInDays"] <= 7
    assert rules[None]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    [policy] = [
        p["Properties"]["PolicyDocument"]
        for p in resources_of_type("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": logical_id}
    ]
    [tls] = policy["Statement"]
    assert (tls["Effect"], tls["Principal"], tls["Action"]) == ("Deny", "*", "s3:*")
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert len(tls["Resource"]) == 2  # the bucket and its objects


def test_uploads_notify_the_import_queue_which_takes_only_that_buckets_events() -> None:
    bucket = resources_of_type("AWS::S3::Bucket")["FilesBucket"]
    [notification] = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert notification["Queue"] == {"Fn::GetAtt": ["ImportQueue", "Arn"]}
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]
    assert bucket["DependsOn"] == "ImportQueuePolicy"  # S3 checks the destination when it is set
    statement = resources_of_type("AWS::SQS::QueuePolicy")["ImportQueuePolicy"]["Properties"][
        "PolicyDocument"
    ]
    [allowed] = statement["Statement"]
    assert allowed["Principal"] == {"Service": "s3.amazonaws.com"}
    # The policy names the bucket as the bucket names itself (a reference would be a cycle).
    name = bucket["Properties"]["BucketName"]["Fn::Sub"]
    source = allowed["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert source[0] == "arn:${AWS::Partition}:s3:::" + name[0] and source[1] == name[1]
    assert allowed["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_secrets_and_the_alarm_topic_use_the_stacks_key() -> None:
    for logical_id, secret in resources_of_type("AWS::SecretsManager::Secret").items():
        assert secret["Properties"]["KmsKeyId"] == {"Ref": "DataKey"}, logical_id
    for logical_id, topic in resources_of_type("AWS::SNS::Topic").items():
        assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "DataKey"}, logical_id
    key = resources_of_type("AWS::KMS::Key")["DataKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    services = {
        str(statement["Principal"].get("Service"))
        for statement in key["KeyPolicy"]["Statement"]
        if "Service" in statement["Principal"]
    }
    # CloudWatch Logs writes the log groups; CloudWatch alarms publish to the encrypted topic;
    # EventBridge keeps the SES events it could not deliver in the encrypted dead-letter queue.
    assert services == {
        str({"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}),
        "cloudwatch.amazonaws.com",
        "events.amazonaws.com",
    }


def _alarms() -> list[dict[str, Any]]:
    return [alarm["Properties"] for alarm in resources_of_type("AWS::CloudWatch::Alarm").values()]


def _alarmed(namespace: str, metric: str) -> set[str]:
    """Logical ids named by the alarms on one metric (via !Ref or !GetAtt in a dimension)."""
    named = set()
    for alarm in _alarms():
        if alarm.get("Namespace") != namespace or alarm.get("MetricName") != metric:
            continue
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
        for dimension in alarm["Dimensions"]:
            value = dimension["Value"]
            if isinstance(value, dict):
                named.add(value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0])
            else:
                named.add(value)
    return named


def test_every_function_has_an_errors_and_a_throttles_alarm() -> None:
    assert _alarmed("AWS/Lambda", "Errors") == set(FUNCTIONS)
    assert _alarmed("AWS/Lambda", "Throttles") == set(FUNCTIONS)


def test_api_5xx_and_the_work_queues_age_are_alarmed() -> None:
    assert _alarmed("AWS/ApiGateway", "5XXError") == {"AWS::StackName", "prod"}
    work_queues = {
        event["Properties"]["Queue"]["Fn::GetAtt"][0]
        for props in FUNCTIONS.values()
        for event in props.get("Events", {}).values()
        if event["Type"] == "SQS"
    }
    assert work_queues == {
        "RebuildQueue",
        "DeliveryQueue",
        "FanoutQueue",
        "WebhookQueue",
        "ImportQueue",
        "ExportQueue",
    }
    assert _alarmed("AWS/SQS", "ApproximateAgeOfOldestMessage") == work_queues
    assert {"MembershipStreamFunction", "ChangesPublisherFunction"} <= _alarmed("AWS/Lambda", "IteratorAge")


def _resolver(**overrides: Any) -> Resolver:
    """The template's parameters at their defaults, but for `overrides` (as a deploy would pass)."""
    template = load_template()
    parameters = {
        name: {**spec, **({"Default": overrides[name]} if name in overrides else {})}
        for name, spec in template["Parameters"].items()
    }
    return Resolver({**template, "Parameters": parameters})


def _reservations(resolver: Resolver) -> dict[str, int]:
    """Function -> its reserved concurrency, for the functions that reserve any."""
    found = {}
    for logical_id, props in FUNCTIONS.items():
        resolved = resolver.resolve({"R": props.get("ReservedConcurrentExecutions", {"Ref": "AWS::NoValue"})})
        if resolved:
            found[logical_id] = int(resolved["R"])
    return found


def _queue_concurrency(resolver: Resolver) -> dict[str, int]:
    """SQS consumer -> its event's MaximumConcurrency."""
    return {
        logical_id: int(resolver.resolve(event["Properties"]["ScalingConfig"]["MaximumConcurrency"]))
        for logical_id, props in FUNCTIONS.items()
        for event in props.get("Events", {}).values()
        if event["Type"] == "SQS"
    }


# What a large account might reserve (README, "Sizing concurrency").
LARGE_ACCOUNT = {
    "AuthorizerReservedConcurrency": "50",
    "IngestReservedConcurrency": "100",
    "SourcesReservedConcurrency": "20",
    "ApiReservedConcurrency": "50",
    "ConsoleReservedConcurrency": "10",
    "UnsubscribeReservedConcurrency": "10",
    "MembershipStreamReservedConcurrency": "50",
    "ChangesPublisherReservedConcurrency": "10",
    "ScheduledReservedConcurrency": "1",
    "QueueConsumersReserved": "Yes",
    "SenderConcurrency": "6",
    "EmailFeedbackReservedConcurrency": "10",
}


def test_the_defaults_reserve_nothing_so_the_stack_deploys_into_any_account() -> None:
    # Lambda keeps 100 executions unreserved; a new account's quota may be 10: nothing can be reserved.
    assert _reservations(_resolver()) == {}


def test_every_function_can_reserve_through_its_parameter() -> None:
    reserved = _reservations(_resolver(**LARGE_ACCOUNT))
    assert set(reserved) == set(FUNCTIONS)
    assert reserved["IngestFunction"] == 100 and reserved["SenderFunction"] == 6
    scheduled = (
        "RebuildCoordinatorFunction",
        "RecheckFunction",
        "ReconcilerFunction",
        "WebhookRetryFunction",
    )
    assert {reserved[f] for f in scheduled} == {1}


@pytest.mark.parametrize("overrides", [{}, LARGE_ACCOUNT], ids=["defaults", "large account"])
def test_queue_pollers_are_bounded_and_equal_any_reservation(overrides: dict[str, str]) -> None:
    resolver = _resolver(**overrides)
    bounds = _queue_concurrency(resolver)
    assert set(bounds) == {
        "RebuildWorkerFunction",
        "SenderFunction",
        "FanoutFunction",
        "WebhookSenderFunction",
        "ImportFunction",
        "ExportFunction",
    }
    assert all(bound >= 2 for bound in bounds.values()), bounds  # SQS's MaximumConcurrency minimum
    reserved = _reservations(resolver)
    for logical_id, bound in bounds.items():
        # A poller above the reservation gets throttled, and throttled receives count towards
        # maxReceiveCount: jobs would reach the dead-letter queue unprocessed.
        assert reserved.get(logical_id, bound) == bound, logical_id


def test_concurrency_parameters_allow_only_what_lambda_and_settings_accept() -> None:
    parameters = load_template()["Parameters"]
    for name in (
        "RebuildWorkerConcurrency",
        "SenderConcurrency",
        "FanoutConcurrency",
        "WebhookSenderConcurrency",
    ):
        assert (parameters[name]["MinValue"], parameters[name]["MaxValue"]) == (2, 1000), name
    sender = Settings.from_env({"SENDER_CONCURRENCY": str(parameters["SenderConcurrency"]["MinValue"])})
    assert sender.sender_concurrency == 2
    with pytest.raises(ValueError):
        Settings.from_env({"SENDER_CONCURRENCY": str(parameters["SenderConcurrency"]["MaxValue"] + 1)})


def test_functions_read_the_senders_concurrency_from_its_parameter() -> None:
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SENDER_CONCURRENCY"] == {"Ref": "SenderConcurrency"}
    event = FUNCTIONS["SenderFunction"]["Events"]["Deliveries"]["Properties"]
    assert event["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "SenderConcurrency"}


def test_each_sender_knows_how_many_share_the_ses_rate() -> None:
    """The sender paces itself at rate / SENDER_CONCURRENCY: that must be what its poller runs."""
    sender = FUNCTIONS["SenderFunction"]
    (event,) = sender["Events"].values()
    running = event["Properties"]["ScalingConfig"]["MaximumConcurrency"]
    told = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["SENDER_CONCURRENCY"]
    assert running == told == {"Ref": "SenderConcurrency"}


def test_scheduled_functions_keep_failed_runs_in_the_schedule_dead_letter_queue() -> None:
    for logical_id, props in FUNCTIONS.items():
        if _event_types(props) == {"Schedule"}:
            assert props["DeadLetterQueue"] == {
                "Type": "SQS",
                "TargetArn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]},
            }, logical_id


# --- per-key rate limits (API.md: ingest 500/s, bursts of 1,000; other roles 20, bursts of 40) ---


def _default(parameter: dict[str, Any]) -> Any:
    return load_template()["Parameters"][parameter["Ref"]]["Default"]


def test_each_role_and_the_identity_callers_have_a_usage_plan_with_api_mds_limits() -> None:
    plans = {}
    for plan in resources_of_type("AWS::ApiGateway::UsagePlan").values():
        props = plan["Properties"]
        role = props["UsagePlanName"]["Fn::Sub"].removeprefix("${AWS::StackName}-")
        throttle = props["Throttle"]
        plans[role] = (_default(throttle["RateLimit"]), _default(throttle["BurstLimit"]))
        assert props["ApiStages"] == [{"ApiId": {"Ref": "RestApi"}, "Stage": {"Ref": "RestApi.Stage"}}], role
    assert plans == {
        "ingest": (500, 1000),
        "read": (20, 40),
        "write": (20, 40),
        "admin": (20, 40),
        "identity": (500, 1000),
    }
    assert set(plans) == set(KEY_ROLES) | {"identity"}
    # The functions find the plans by that name (storage/usage_keys.py).
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["USAGE_PLAN_PREFIX"] == {"Fn::Sub": "${AWS::StackName}-"}


def test_the_identity_callers_usage_key_is_the_one_the_authorizer_names() -> None:
    key = resources_of_type("AWS::ApiGateway::ApiKey")["IdentityUsageKey"]["Properties"]
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert key["Enabled"] is True and key["Value"] == variables["IDENTITY_USAGE_KEY"]
    [plan_key] = resources_of_type("AWS::ApiGateway::UsagePlanKey").values()
    assert plan_key["Properties"] == {
        "KeyId": {"Ref": "IdentityUsageKey"},
        "KeyType": "API_KEY",
        "UsagePlanId": {"Ref": "IdentityUsagePlan"},
    }


def test_routes_with_an_authorizer_are_metered_by_the_usage_key_it_names_and_no_other_route() -> None:
    api = resources_of_type("AWS::Serverless::Api")["RestApi"]["Properties"]
    assert api["ApiKeySourceType"] == "AUTHORIZER"
    assert api["Auth"]["ApiKeyRequired"] is True
    assert "Cors" not in api  # the identity routes' preflights are routes of their own, below
    for logical_id, props in FUNCTIONS.items():
        for name, event in props.get("Events", {}).items():
            if event["Type"] != "Api":
                continue
            auth = event["Properties"].get("Auth") or {}
            # Without an authorizer nothing names a usage key: requiring one would answer 403.
            expected = auth.get("Authorizer") != "NONE"
            assert auth.get("ApiKeyRequired", True) is expected, (logical_id, name)


def test_every_limit_is_at_least_one_a_second_and_the_stage_admits_an_ingest_key() -> None:
    parameters = load_template()["Parameters"]
    limits = [name for name in parameters if name.endswith(("RateLimit", "BurstLimit"))]
    assert len(limits) == 14
    for name in limits:
        # THROTTLED's Retry-After is a fixed 1 s: at 1 a second or more, a token is back by then.
        assert parameters[name]["Type"] == "Number" and parameters[name]["MinValue"] >= 1, name
    stage = resources_of_type("AWS::Serverless::Api")["RestApi"]["Properties"]["MethodSettings"][0]
    assert _default(stage["ThrottlingRateLimit"]) >= parameters["IngestRateLimit"]["Default"]
    assert _default(stage["ThrottlingBurstLimit"]) >= parameters["IngestBurstLimit"]["Default"]


def test_throttled_answers_rate_limited_with_retry_after_and_no_wildcard_origin() -> None:
    responses = resources_of_type("AWS::Serverless::Api")["RestApi"]["Properties"]["GatewayResponses"]
    throttled = responses["THROTTLED"]
    assert throttled["StatusCode"] == 429
    assert throttled["ResponseParameters"]["Headers"] == {"Retry-After": "'1'"}
    body = json.loads(throttled["ResponseTemplates"]["application/json"])
    assert body["error"]["code"] == "rate_limited" and body["error"]["message"]
    # A revoked key's usage key is deleted: while API Gateway still caches the authorizer's answer,
    # it refuses the key with INVALID_API_KEY, which must say 401 as a revoked key does.
    invalid = responses["INVALID_API_KEY"]
    assert invalid["StatusCode"] == 401
    assert json.loads(invalid["ResponseTemplates"]["application/json"])["error"]["code"] == "unauthorized"
    assert "Access-Control-Allow-Origin" not in invalid["ResponseParameters"]["Headers"]


# --- SES's events back: configuration set -> default bus -> rule -> EmailFeedbackFunction ---


def test_every_email_goes_through_the_configuration_set_whose_events_reach_the_feedback_function() -> None:
    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SES_CONFIGURATION_SET"] == {"Ref": "EmailConfigurationSet"}
    [destination] = resources_of_type("AWS::SES::ConfigurationSetEventDestination").values()
    props = destination["Properties"]
    assert props["ConfigurationSetName"] == {"Ref": "EmailConfigurationSet"}
    spec = props["EventDestination"]
    assert spec["Enabled"] is True
    assert set(spec["MatchingEventTypes"]) == {"delivery", "bounce", "complaint"}
    # SES publishes to the account's default bus only.
    assert spec["EventBridgeDestination"]["EventBusArn"]["Fn::Sub"].endswith(":event-bus/default")
    [rule] = _rules_targeting("EmailFeedbackFunction")
    assert rule["EventBusName"] == "default" and rule["State"] == "ENABLED"
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.ses"]
    assert set(pattern["detail-type"]) == {"Email Delivered", "Email Bounced", "Email Complaint Received"}
    # Only this stack's emails: another sender's configuration set in the account is not ours.
    assert pattern["detail"]["mail"]["tags"]["ses:configuration-set"] == [{"Ref": "EmailConfigurationSet"}]


def test_the_feedback_rule_and_function_keep_what_failed_in_an_alarmed_encrypted_queue() -> None:
    [rule] = _rules_targeting("EmailFeedbackFunction")
    [target] = rule["Targets"]
    queue = {"Fn::GetAtt": ["EmailFeedbackDeadLetterQueue", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": queue}
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400
    assert FUNCTIONS["EmailFeedbackFunction"]["DeadLetterQueue"] == {"Type": "SQS", "TargetArn": queue}
    dead_letters = resources_of_type("AWS::SQS::Queue")["EmailFeedbackDeadLetterQueue"]["Properties"]
    assert dead_letters["KmsMasterKeyId"] == {"Ref": "DataKey"}
    assert "EmailFeedbackDeadLetterQueue" in _alarmed("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    [permission] = resources_of_type("AWS::Lambda::Permission").values()
    assert permission["Properties"]["SourceArn"] == {"Fn::GetAtt": ["EmailEventsRule", "Arn"]}


def _rate_alarm(numerator: str) -> dict[str, Any]:
    [alarm] = [
        a
        for a in _alarms()
        if any(
            (m.get("MetricStat") or {}).get("Metric", {}).get("MetricName") == numerator
            for m in a.get("Metrics", [])
        )
    ]
    return alarm


@pytest.mark.parametrize(("numerator", "percent"), [("EmailsBouncedPermanent", 5), ("EmailsComplained", 0.1)])
def test_bounce_and_complaint_rates_of_the_last_day_are_alarmed_at_ses_review_thresholds(
    numerator: str, percent: float
) -> None:
    alarm = _rate_alarm(numerator)
    stats = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert {stat["Metric"]["MetricName"] for stat in stats.values()} == {"EmailsSent", numerator}
    assert all(stat["Period"] == 86400 and stat["Stat"] == "Sum" for stat in stats.values())
    assert all(stat["Metric"]["Namespace"] == "Segmentation" for stat in stats.values())
    [expression] = [m for m in alarm["Metrics"] if "Expression" in m]
    assert expression["ReturnData"] is True and expression["Expression"].startswith("100 *")
    assert alarm["Threshold"] == percent and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["EvaluationPeriods"] == 1 and alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_segment_routes_without_an_authorizer_each_have_a_throttle_of_their_own() -> None:
    # No authorizer names a usage key on them (the key may be in the body): per-key limits cannot
    # apply, so each is bounded by a method throttle (docs/api-notes.md, Sources).
    routes = {
        path
        for method, path in _public_routes(FUNCTIONS["SourcesFunction"])
        if method == "POST" and path.startswith("/v1/")
    }
    assert routes == {
        f"/v1/{kind}" for kind in ("batch", "identify", "track", "group", "page", "screen", "alias")
    }
    settings = resources_of_type("AWS::Serverless::Api")["RestApi"]["Properties"]["MethodSettings"]
    throttled = {
        setting["ResourcePath"].removeprefix("/").replace("~1", "/"): setting
        for setting in settings
        if setting["ResourcePath"] != "/*"
    }
    assert set(throttled) == routes
    for setting in throttled.values():
        assert setting["HttpMethod"] == "POST"
        assert setting["ThrottlingRateLimit"] == {"Ref": "SourcesRateLimit"}
        assert setting["ThrottlingBurstLimit"] == {"Ref": "SourcesBurstLimit"}
