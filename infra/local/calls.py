"""Records which AWS actions each function calls on which resource, as IAM would see them.

Off unless `LOCAL_AWS_CALL_LOG` names a file: then every botocore call made while a function of
the template runs is written there once per (function, action, resource), as a JSON line
`{"function", "action", "resource"}`. The e2e tests compare it with the functions' policies in
template.yaml (moto enforces no IAM, so a missing permission would otherwise pass locally).

Resources are named as the template names them: locally a table, queue or secret is called by
its logical id, so `UsersTable`, `UsersTable/index/by_recheck`, `DeliveryQueue`, `IdentitySecret`;
API Gateway's management paths as `apigateway:/apikeys`, and a usage plan's keys by the plan's
logical id (`IngestUsagePlan/keys`, through `name_resource`), an event bus by its logical id too;
an S3 object by its bucket's logical id and the first folder of its key, as policies grant them
(`FilesBucket/uploads/*`).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

VARIABLE = "LOCAL_AWS_CALL_LOG"

# TransactWriteItems is authorized per item, as these actions.
_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
# Calls IAM authorizes under another action's name.
_RENAMED = {
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sesv2", "SendEmail"): "ses:SendEmail",
    ("sesv2", "GetAccount"): "ses:GetAccount",
}

# S3 operations and the IAM action that authorizes each (on an object of the bucket).
_S3_OBJECT_ACTIONS = {
    "PutObject": "s3:PutObject",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "ListParts": "s3:ListMultipartUploadParts",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
}

# API Gateway operations the functions call: (IAM action, resource path with {param} from the call).
_APIGATEWAY = {
    "GetUsagePlans": ("apigateway:GET", "/usageplans"),
    "CreateApiKey": ("apigateway:POST", "/apikeys"),
    "DeleteApiKey": ("apigateway:DELETE", "/apikeys/*"),
    "CreateUsagePlanKey": ("apigateway:POST", "{usagePlanId}/keys"),
}

_current = threading.local()
_lock = threading.Lock()
_seen: set[tuple[str, str, str]] = set()
_path: Path | None = None
_logical_names: dict[str, str] = {}  # physical id (moto's) -> logical id


def name_resource(physical_id: str, logical_id: str) -> None:
    """Resources whose local id is not their logical id (usage plans) are named by the latter."""
    _logical_names[physical_id] = logical_id


@contextlib.contextmanager
def invoking(logical_id: str) -> Iterator[None]:
    """Attribute the AWS calls made inside to this function."""
    previous = getattr(_current, "function", None)
    _current.function = logical_id
    try:
        yield
    finally:
        _current.function = previous


def requests(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(IAM action, resource) pairs one botocore call needs."""
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            out = []
            for item in params.get("TransactItems", []):
                for kind, spec in item.items():
                    out.append((_TRANSACT_ACTIONS[kind], str(spec["TableName"])))
            return out
        action = f"dynamodb:{operation}"
        if "RequestItems" in params:
            return [(action, str(table)) for table in params["RequestItems"]]
        table = str(params.get("TableName", "*"))
        if params.get("IndexName"):
            table = f"{table}/index/{params['IndexName']}"
        return [(action, table)]
    if service == "s3" and operation in _S3_OBJECT_ACTIONS and "Key" in params:
        bucket = str(params.get("Bucket", "*"))
        folder = str(params["Key"]).split("/", 1)[0]
        return [(_S3_OBJECT_ACTIONS[operation], f"{_logical_names.get(bucket, bucket)}/{folder}/*")]
    action = _RENAMED.get((service, operation), f"{service}:{operation}")
    if service == "sqs" and "QueueUrl" in params:
        return [(action, str(params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1])]
    if service == "secretsmanager" and "SecretId" in params:
        return [(action, _secret_name(str(params["SecretId"])))]
    if service == "sesv2":
        if operation == "GetAccount":  # no resource but the account
            return [(action, "ses:account")]
        identity = [(action, "ses:identity")]
        # SES authorizes a send through a configuration set on it too.
        return identity + ([(action, "ses:configuration-set")] if params.get("ConfigurationSetName") else [])
    if service == "events" and operation == "PutEvents":
        # Authorized on each entry's bus; a bus is named by its logical id (through `name_resource`).
        buses = {str(entry.get("EventBusName", "default")) for entry in params.get("Entries", [])}
        return [(action, _logical_names.get(bus, bus)) for bus in sorted(buses)]
    if service == "apigateway" and operation in _APIGATEWAY:
        action, path = _APIGATEWAY[operation]
        if "{usagePlanId}" in path:
            plan = str(params.get("usagePlanId", "*"))
            return [(action, path.replace("{usagePlanId}", _logical_names.get(plan, plan)))]
        return [(action, "apigateway:" + path)]
    return [(action, "*")]


def _secret_name(secret_id: str) -> str:
    if not secret_id.startswith("arn:"):
        return secret_id
    name = secret_id.split(":secret:", 1)[-1]
    # Secrets Manager ARNs end with "-" and six random characters.
    return name[:-7] if len(name) > 7 and name[-7] == "-" else name


def _record(service: str, operation: str, params: dict[str, Any]) -> None:
    function = getattr(_current, "function", None)
    if function is None or _path is None:
        return
    for action, resource in requests(service, operation, params):
        key = (function, action, resource)
        with _lock:
            if key in _seen:
                continue
            _seen.add(key)
            with _path.open("a", encoding="utf-8") as log:
                log.write(json.dumps({"function": function, "action": action, "resource": resource}) + "\n")


def install_from_environment() -> bool:
    """Start recording when LOCAL_AWS_CALL_LOG is set (once per process). True when recording."""
    global _path
    target = os.environ.get(VARIABLE)
    if not target:
        return False
    if _path is not None:
        return True
    from botocore.client import BaseClient

    _path = Path(target)
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def recorded(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        _record(self.meta.service_model.service_name, operation_name, api_params)
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = recorded  # type: ignore[attr-defined]
    return True
