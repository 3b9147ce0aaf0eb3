"""Makes the template's tables, queues, secrets, usage plans, API keys, SES configuration sets,
event buses and S3 buckets in moto, and tells the Resolver (SAM CLI's) their names.

Physical names: a resource's own name property when it has one (TableName, QueueName, Name),
otherwise its logical id, so that the local tables are easy to find in a debugger. Usage plans
and API keys get moto's ids, as API Gateway's own; calls.py names a plan by its logical id.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from segmentation.storage import aws

from infra.local import calls
from infra.local.intrinsics import ACCOUNT_ID, REGION, Resolver
from infra.local.template import (
    API_KEY,
    BUCKET,
    CONFIGURATION_SET,
    EVENT_BUS,
    FUNCTION,
    QUEUE,
    SECRET,
    TABLE,
    USAGE_PLAN,
    USAGE_PLAN_KEY,
    Template,
)

_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


@dataclass
class Provisioned:
    """What was made: the resolver plus lookups the pollers need."""

    resolver: Resolver
    table_names: dict[str, str] = field(default_factory=dict)  # logical id -> name
    stream_tables: dict[str, str] = field(default_factory=dict)  # stream ARN -> table name
    queue_urls: dict[str, str] = field(default_factory=dict)  # queue ARN -> URL
    secret_arns: dict[str, str] = field(default_factory=dict)  # logical id -> ARN
    secret_specs: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> properties
    bucket_names: dict[str, str] = field(default_factory=dict)  # logical id -> name


def provision(template: Template) -> Provisioned:
    """Create every table, queue and secret of `template` in the (already started) moto mock.

    A resource not made here (a function, an API, an alarm...) refs to its logical id, and its
    Arn is Lambda-style: SAM CLI's defaults, which `sam local` gives functions too."""
    resolver = Resolver(template.raw)
    made = Provisioned(resolver=resolver)
    for logical_id, resource in template.of_type(FUNCTION).items():
        name_property = (resource.get("Properties") or {}).get("FunctionName")
        if name_property:
            name = str(resolver.resolve(name_property))
            resolver.made(logical_id, name, Arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}")
    for logical_id, resource in template.of_type(TABLE).items():
        _create_table(made, logical_id, resolver.resolve(resource.get("Properties") or {}))
    # Dead-letter queues before the queues that redrive into them.
    queues = sorted(
        template.of_type(QUEUE).items(), key=lambda item: "RedrivePolicy" in item[1].get("Properties", {})
    )
    for logical_id, resource in queues:
        _create_queue(made, logical_id, resolver.resolve(resource.get("Properties") or {}))
    for logical_id, resource in template.of_type(SECRET).items():
        _create_secret(made, logical_id, resolver.resolve(resource.get("Properties") or {}))
    for logical_id, resource in template.of_type(USAGE_PLAN).items():
        _create_usage_plan(logical_id, resolver.resolve(resource.get("Properties") or {}), resolver)
    for logical_id, resource in template.of_type(API_KEY).items():
        _create_api_key(logical_id, resolver.resolve(resource.get("Properties") or {}), resolver)
    for logical_id, resource in template.of_type(EVENT_BUS).items():
        _create_event_bus(logical_id, resolver.resolve(resource.get("Properties") or {}), resolver)
    for resource in template.of_type(USAGE_PLAN_KEY).values():
        props = resolver.resolve(resource.get("Properties") or {})
        aws.client("apigateway").create_usage_plan_key(
            usagePlanId=props["UsagePlanId"], keyId=props["KeyId"], keyType=props.get("KeyType", "API_KEY")
        )
    for logical_id, resource in template.of_type(BUCKET).items():
        _create_bucket(made, logical_id, resolver.resolve(resource.get("Properties") or {}))
    for logical_id, resource in template.of_type(CONFIGURATION_SET).items():
        # Ref gives its name; SendEmail must name one that exists (the local SES checks).
        name = str(resolver.resolve((resource.get("Properties") or {}).get("Name")) or logical_id)
        aws.client("sesv2").create_configuration_set(ConfigurationSetName=name)
        resolver.made(logical_id, name)
    return made


def _create_table(
    made: Provisioned,
    logical_id: str,
    props: dict[str, Any],
) -> None:
    name = str(props.get("TableName") or logical_id)
    provisioned = props.get("BillingMode") == "PROVISIONED"
    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": "PROVISIONED" if provisioned else "PAY_PER_REQUEST",
    }
    if provisioned:
        request["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(key):
            indexes = [dict(index) for index in props[key]]
            if not provisioned:
                for index in indexes:
                    index.pop("ProvisionedThroughput", None)
            request[key] = indexes
    stream = props.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    dynamodb = aws.client("dynamodb")
    description = dynamodb.create_table(**request)["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    stream_arn = description.get("LatestStreamArn")
    made.resolver.made(
        logical_id, name, Arn=description["TableArn"], **({"StreamArn": stream_arn} if stream_arn else {})
    )
    made.table_names[logical_id] = name
    if stream_arn:
        made.stream_tables[stream_arn] = name


def _create_queue(
    made: Provisioned,
    logical_id: str,
    props: dict[str, Any],
) -> None:
    fifo = bool(props.get("FifoQueue"))
    name = str(props.get("QueueName") or (f"{logical_id}.fifo" if fifo else logical_id))
    attributes = {key: _attribute_text(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
    if props.get("RedrivePolicy"):
        attributes["RedrivePolicy"] = _json_text(props["RedrivePolicy"])
    url = aws.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
    made.resolver.made(logical_id, url, Arn=arn, QueueName=name, QueueUrl=url)
    made.queue_urls[arn] = url


def _create_bucket(
    made: Provisioned,
    logical_id: str,
    props: dict[str, Any],
) -> None:
    """The bucket with its queue notifications (moto sends S3's event records to the queue, and
    a test event when the configuration is set) and lifecycle rules (kept, not applied). Its
    encryption is left out: moto keeps objects in memory, unencrypted either way."""
    name = str(props.get("BucketName") or logical_id.lower())
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=name)
    queues = (props.get("NotificationConfiguration") or {}).get("QueueConfigurations") or []
    if queues:
        s3.put_bucket_notification_configuration(
            Bucket=name,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": str(queue["Queue"]),
                        "Events": [str(queue["Event"])],
                        **(
                            {"Filter": {"Key": {"FilterRules": _filter_rules(queue["Filter"])}}}
                            if "Filter" in queue
                            else {}
                        ),
                    }
                    for queue in queues
                ]
            },
        )
    rules = (props.get("LifecycleConfiguration") or {}).get("Rules") or []
    if rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in rules]}
        )
    made.resolver.made(logical_id, name, Arn=f"arn:aws:s3:::{name}")
    made.bucket_names[logical_id] = name
    calls.name_resource(name, logical_id)


def _filter_rules(spec: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Name": str(rule["Name"]), "Value": str(rule["Value"])} for rule in spec["S3Key"]["Rules"]]


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule as the S3 API spells it."""
    made: dict[str, Any] = {"ID": str(rule.get("Id", "rule")), "Status": str(rule.get("Status", "Enabled"))}
    made["Filter"] = {"Prefix": str(rule.get("Prefix", ""))}
    if "ExpirationInDays" in rule:
        made["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        made["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return made


def _create_secret(
    made: Provisioned,
    logical_id: str,
    props: dict[str, Any],
) -> None:
    name = str(props.get("Name") or logical_id)
    arn = aws.client("secretsmanager").create_secret(Name=name, SecretString=initial_secret_value(props))[
        "ARN"
    ]
    made.resolver.made(logical_id, arn, Id=arn)
    made.secret_arns[logical_id] = arn
    made.secret_specs[logical_id] = props


def _create_event_bus(logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
    name = str(props.get("Name") or logical_id)
    arn = aws.client("events").create_event_bus(Name=name)["EventBusArn"]
    calls.name_resource(name, logical_id)
    resolver.made(logical_id, name, Arn=arn, Name=name)


def _create_usage_plan(logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
    """The plan with its throttle from the resolved parameters. Its ApiStages are not made: the
    local API is not in moto, and locally a plan applies to every route that requires a key."""
    throttle = props.get("Throttle") or {}
    request: dict[str, Any] = {"name": str(props.get("UsagePlanName") or logical_id)}
    if throttle:
        request["throttle"] = {
            "rateLimit": float(throttle["RateLimit"]),
            "burstLimit": int(float(throttle["BurstLimit"])),
        }
    plan_id = aws.client("apigateway").create_usage_plan(**request)["id"]
    resolver.made(logical_id, plan_id)
    calls.name_resource(plan_id, logical_id)


def _create_api_key(logical_id: str, props: dict[str, Any], resolver: Resolver) -> None:
    request: dict[str, Any] = {
        "name": str(props.get("Name") or logical_id),
        "enabled": bool(props.get("Enabled")),
    }
    if props.get("Value"):
        request["value"] = str(props["Value"])
    resolver.made(logical_id, aws.client("apigateway").create_api_key(**request)["id"])


def initial_secret_value(props: dict[str, Any], value: str | None = None) -> str:
    """The secret string CloudFormation would store; `value` replaces the generated part."""
    if "SecretString" in props and value is None:
        return str(props["SecretString"])
    generate = props.get("GenerateSecretString") or {}
    value = value if value is not None else secrets.token_urlsafe(int(generate.get("PasswordLength", 32)))
    key = generate.get("GenerateStringKey")
    if not key:
        return value
    document = json.loads(generate.get("SecretStringTemplate") or "{}")
    document[key] = value
    return json.dumps(document)


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
