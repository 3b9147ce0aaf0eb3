"""Reads a SAM template.yaml into the plain description the local runner serves.

Loading is samtranslator's own: its YAML parser (the short tags !Ref, !GetAtt...), then its
`Parser` with its Globals plugin (what the SAM transform does first: the template's shape
checked, the Globals merged into each function and API by SAM's rules). From that, only what the
runner needs is derived: tables, queues, secrets, layers, and each function with its code folder,
environment and events (Api, DynamoDB, SQS, Schedule); the EventBridge rules of the default bus
with their Lambda targets, and the SES configuration sets' event destinations. SAM offers no
reader of these for a runner: `sam local` serves no streams, queues, schedules or rules, and its
API routes carry neither the API keys, usage plans nor per-method throttles the local gateway
applies.
Intrinsic functions stay unresolved here (see `infra.local.intrinsics`): physical names only
exist once moto has made them.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samtranslator.parser.parser import Parser
from samtranslator.plugins.globals.globals_plugin import GlobalsPlugin
from samtranslator.plugins.sam_plugins import SamPlugins
from samtranslator.yaml_helper import yaml_parse

FUNCTION = "AWS::Serverless::Function"
API = "AWS::Serverless::Api"
TABLE = "AWS::DynamoDB::Table"
QUEUE = "AWS::SQS::Queue"
SECRET = "AWS::SecretsManager::Secret"
LAYER = "AWS::Serverless::LayerVersion"
USAGE_PLAN = "AWS::ApiGateway::UsagePlan"
API_KEY = "AWS::ApiGateway::ApiKey"
USAGE_PLAN_KEY = "AWS::ApiGateway::UsagePlanKey"
CONFIGURATION_SET = "AWS::SES::ConfigurationSet"
EVENT_DESTINATION = "AWS::SES::ConfigurationSetEventDestination"
RULE = "AWS::Events::Rule"
EVENT_BUS = "AWS::Events::EventBus"
BUCKET = "AWS::S3::Bucket"

# What the local stack does with each resource type of the template. A type in none of these
# (a new one someone adds) fails `Template.unhandled_types()`, which the stack checks at start:
# provision it in `resources.py`, serve it, or ignore it here with the reason.
# Made in moto by resources.py (usage plans and API keys: apigw.py's per-key rate limits read them).
# Configuration sets too: the local SES refuses a send naming one that does not exist. The
# changes' event bus takes PutEvents as deployed, with no rule consuming it. Buckets with their
# notifications to queues (moto sends the events); files.py serves presigned URLs.
PROVISIONED_TYPES = frozenset(
    {TABLE, QUEUE, SECRET, USAGE_PLAN, API_KEY, USAGE_PLAN_KEY, CONFIGURATION_SET, EVENT_BUS, BUCKET}
)
# Run by lambdas.py, apigw.py and pollers.py; rules by eventbridge.py; event destinations by the
# local SES (ses_events.py), which publishes through them.
SERVED_TYPES = frozenset({FUNCTION, API, LAYER, RULE, EVENT_DESTINATION})
IGNORED_TYPES: dict[str, str] = {
    "AWS::SES::EmailIdentity": "the stack verifies SENDER_EMAIL in moto's SES at start instead",
    "AWS::SQS::QueuePolicy": "moto enforces no resource policy; locally any caller may send",
    "AWS::S3::BucketPolicy": "moto enforces no bucket policy (its one rule, TLS only, cannot hold on "
    "the local stack's http address)",
    "AWS::SNS::Topic": "only alarms publish to it, and alarms never fire locally",
    "AWS::CloudWatch::Alarm": "moto collects no Lambda, API Gateway or SQS metrics to alarm on",
    "AWS::Logs::LogGroup": "functions log to the runner's output; no retention to apply",
    "AWS::KMS::Key": "moto does not encrypt at rest; tables, secrets and logs behave the same",
    "AWS::KMS::Alias": "see AWS::KMS::Key",
    "AWS::IAM::Role": "IAM is not enforced locally (fake credentials); the e2e tests check the "
    "functions' calls against their template policies instead",
    "AWS::IAM::Policy": "see AWS::IAM::Role (tests/support/permissions.py reads these policies too)",
    "AWS::ApiGateway::Account": "an account setting that lets API Gateway write access logs; the "
    "local gateway writes none",
    "AWS::Lambda::Permission": "a function's resource policy (who may invoke it); the local "
    "EventBridge invokes the rules' targets itself",
}

# Schedules at most this often are fired by the local scheduler every few seconds; rarer ones
# (the nightly rebuild) run only on `POST /_local/invoke/{LogicalId}`.
FREQUENT_SCHEDULE_MAX_SECONDS = 6 * 3600


@dataclass(frozen=True)
class ApiRoute:
    function_id: str
    event_name: str
    path: str
    method: str  # upper case, or "ANY"
    authorizer: str | None  # None means Authorizer NONE
    rest_api_id: str | None
    api_key_required: bool = False  # the event's Auth.ApiKeyRequired, else the API's


@dataclass(frozen=True)
class StreamSource:
    function_id: str
    event_name: str
    stream: Any  # intrinsic that resolves to the stream ARN
    batch_size: int
    report_item_failures: bool
    bisect_on_error: bool
    max_retry_attempts: int
    on_failure_destination: Any  # intrinsic resolving to a queue ARN, or None
    enabled: bool


@dataclass(frozen=True)
class QueueSource:
    function_id: str
    event_name: str
    queue: Any  # intrinsic that resolves to the queue ARN
    batch_size: int
    report_item_failures: bool
    enabled: bool


@dataclass(frozen=True)
class ScheduleSource:
    function_id: str
    event_name: str
    expression: str
    input: str | None
    enabled: bool

    @property
    def period_seconds(self) -> float | None:
        """The period of a `rate(...)` expression; None for cron (treated as rare)."""
        match = re.fullmatch(r"rate\((\d+)\s+(second|minute|hour|day)s?\)", self.expression.strip())
        if not match:
            return None
        unit = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}[match.group(2)]
        return int(match.group(1)) * unit

    @property
    def frequent(self) -> bool:
        period = self.period_seconds
        return period is not None and period <= FREQUENT_SCHEDULE_MAX_SECONDS


@dataclass(frozen=True)
class RuleTarget:
    id: str
    function_id: str
    dead_letter_queue: Any  # intrinsic resolving to a queue ARN, or None


@dataclass(frozen=True)
class EventRule:
    """An AWS::Events::Rule with an EventPattern on the default bus and Lambda targets."""

    logical_id: str
    pattern: Any  # the EventPattern, intrinsics unresolved
    enabled: bool
    targets: tuple[RuleTarget, ...]


@dataclass(frozen=True)
class SesEventDestination:
    """An AWS::SES::ConfigurationSetEventDestination that publishes to EventBridge."""

    logical_id: str
    configuration_set: Any  # intrinsic resolving to the configuration set's name
    enabled: bool
    matching_types: frozenset[str]  # lower-case: delivery, bounce, complaint...
    event_bus: Any  # intrinsic resolving to the bus ARN (SES allows only the default bus)


@dataclass(frozen=True)
class Authorizer:
    name: str
    function_arn: Any  # intrinsic, usually !GetAtt <Function>.Arn
    function_id: str | None
    identity_headers: tuple[str, ...]
    identity_query: tuple[str, ...]


@dataclass(frozen=True)
class RestApi:
    logical_id: str
    stage: str
    default_authorizer: str | None
    authorizers: dict[str, Authorizer]
    gateway_responses: dict[str, Any]
    api_key_source: str = "HEADER"  # ApiKeySourceType: HEADER (X-API-Key) or AUTHORIZER
    api_key_required: bool = False  # Auth.ApiKeyRequired: the default of every route
    # The stage's MethodSettings that throttle one method ((path, METHOD) -> the setting, with
    # ThrottlingRateLimit and ThrottlingBurstLimit unresolved); the stage-wide "/*" is not served.
    method_throttles: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Function:
    logical_id: str
    code_dir: Path
    module_file: Path
    handler_name: str
    properties: dict[str, Any]
    environment: dict[str, Any]  # the Globals' merged with the function's own, unresolved
    memory_mb: int
    timeout_s: int


@dataclass
class Template:
    root: Path
    raw: dict[str, Any]  # as written (its Globals included)
    parameters: dict[str, Any]
    resources: dict[str, dict[str, Any]]  # with the Globals merged in, as SAM does
    functions: dict[str, Function] = field(default_factory=dict)
    rest_apis: dict[str, RestApi] = field(default_factory=dict)
    routes: list[ApiRoute] = field(default_factory=list)
    streams: list[StreamSource] = field(default_factory=list)
    queues: list[QueueSource] = field(default_factory=list)
    schedules: list[ScheduleSource] = field(default_factory=list)
    rules: list[EventRule] = field(default_factory=list)
    ses_destinations: list[SesEventDestination] = field(default_factory=list)
    ignored_events: list[tuple[str, str, str]] = field(default_factory=list)  # (function, event, type)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == resource_type}

    def unhandled_types(self) -> set[str]:
        """Resource types the local stack neither provisions, serves nor deliberately ignores."""
        known = PROVISIONED_TYPES | SERVED_TYPES | set(IGNORED_TYPES)
        return {str(r.get("Type")) for r in self.resources.values()} - known

    @property
    def layer_dirs(self) -> list[Path]:
        dirs = []
        for layer in self.of_type(LAYER).values():
            content = layer.get("Properties", {}).get("ContentUri")
            if isinstance(content, str):
                dirs.append((self.root / content).resolve())
        return dirs


def _function_id_of_arn(value: Any) -> str | None:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0])
    if isinstance(value, dict) and "Ref" in value:
        # SAM's `!Ref <Function>.Alias` names the function's AutoPublishAlias: locally, the function.
        return str(value["Ref"]).removesuffix(".Alias")
    return None


def _method(value: str) -> str:
    method = value.upper()
    return "ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method


def _rest_api(logical_id: str, props: dict[str, Any]) -> RestApi:
    auth = props.get("Auth") or {}
    authorizers = {}
    for name, spec in (auth.get("Authorizers") or {}).items():
        identity = spec.get("Identity") or {}
        authorizers[name] = Authorizer(
            name=name,
            function_arn=spec.get("FunctionArn"),
            function_id=_function_id_of_arn(spec.get("FunctionArn")),
            identity_headers=tuple(identity.get("Headers") or ()),
            identity_query=tuple(identity.get("QueryStrings") or ()),
        )
    if props.get("Cors"):
        # SAM's Cors would add mock OPTIONS methods the local gateway does not make up: preflights
        # are `options` events routed to a function, served like any other route.
        raise ValueError(f"{logical_id}: Cors is not served locally; route OPTIONS to a function instead")
    stage = props.get("StageName", "Prod")
    return RestApi(
        logical_id=logical_id,
        stage=stage if isinstance(stage, str) else "Prod",
        default_authorizer=auth.get("DefaultAuthorizer"),
        authorizers=authorizers,
        gateway_responses=props.get("GatewayResponses") or {},
        api_key_source=str(props.get("ApiKeySourceType") or "HEADER"),
        api_key_required=auth.get("ApiKeyRequired") is True,
        method_throttles=_method_throttles(props.get("MethodSettings") or []),
    )


def _method_throttles(settings: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """MethodSettings naming one method's path (`/~1v1~1batch`: "/" written "~1") with a throttle."""
    found = {}
    for setting in settings:
        path = str(setting.get("ResourcePath") or "")
        if path in ("", "/*") or "ThrottlingRateLimit" not in setting:
            continue
        found[(path.removeprefix("/").replace("~1", "/"), str(setting.get("HttpMethod", "*")).upper())] = (
            setting
        )
    return found


def load_template(path: Path) -> Template:
    """Parse template.yaml at `path` (its folder is the root for CodeUri and ContentUri).

    Parsed once per text in a process (0.3 s, most of what a test's fresh stack costs); every
    caller gets a copy of its own (8 ms), free to change."""
    return copy.deepcopy(_parsed(path.parent.resolve(), path.read_text(encoding="utf-8")))


@functools.lru_cache(maxsize=4)
def _parsed(root: Path, text: str) -> Template:
    raw = yaml_parse(text)
    if not isinstance(raw, dict):
        raise ValueError(f"the template of {root} is not a mapping")
    # A copy with the Globals merged in, by SAM's rules (a function's own Environment variables
    # over the Globals', its Layers after theirs...). Only that plugin: SAM CLI's `run_plugins`
    # would also write an OpenAPI body per route (0.25 s) that the local gateway does not read.
    merged = copy.deepcopy(raw)
    Parser().parse(merged, {}, SamPlugins([GlobalsPlugin()]))
    template = Template(
        root=root, raw=raw, parameters=raw.get("Parameters") or {}, resources=merged["Resources"]
    )

    for logical_id, resource in template.of_type(API).items():
        template.rest_apis[logical_id] = _rest_api(logical_id, resource.get("Properties") or {})

    for logical_id, resource in template.of_type(FUNCTION).items():
        props = resource.get("Properties") or {}
        module_name, _, handler_name = str(props.get("Handler", "app.lambda_handler")).rpartition(".")
        code_dir = (root / str(props.get("CodeUri", "."))).resolve()
        template.functions[logical_id] = Function(
            logical_id=logical_id,
            code_dir=code_dir,
            module_file=code_dir / (module_name.replace(".", "/") + ".py"),
            handler_name=handler_name,
            properties=props,
            environment=dict((props.get("Environment") or {}).get("Variables") or {}),
            memory_mb=int(props.get("MemorySize", 128)),
            timeout_s=int(props.get("Timeout", 3)),
        )
        for event_name, event in (props.get("Events") or {}).items():
            _add_event(template, logical_id, event_name, event)
    for logical_id, resource in template.of_type(RULE).items():
        template.rules.append(_rule(logical_id, resource.get("Properties") or {}, set(template.functions)))
    for logical_id, resource in template.of_type(EVENT_DESTINATION).items():
        destination = _ses_destination(logical_id, resource.get("Properties") or {})
        if destination is not None:
            template.ses_destinations.append(destination)
    return template


def _rule(logical_id: str, props: dict[str, Any], functions: set[str]) -> EventRule:
    """A rule the local EventBridge serves; anything else it cannot emulate stops the start."""
    bus = props.get("EventBusName", "default")
    if bus != "default" or "EventPattern" not in props or "ScheduleExpression" in props:
        raise ValueError(
            f"{logical_id}: only rules with an EventPattern on the default bus are served locally "
            "(schedules are a function's Schedule event)"
        )
    targets = []
    for target in props.get("Targets") or []:
        function_id = _function_id_of_arn(target.get("Arn"))
        if function_id not in functions:
            raise ValueError(f"{logical_id}: target {target.get('Id')!r} is not a function of the template")
        dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
        targets.append(
            RuleTarget(id=str(target.get("Id")), function_id=function_id, dead_letter_queue=dead_letter)
        )
    return EventRule(
        logical_id=logical_id,
        pattern=props["EventPattern"],
        enabled=props.get("State", "ENABLED") == "ENABLED",
        targets=tuple(targets),
    )


def _ses_destination(logical_id: str, props: dict[str, Any]) -> SesEventDestination | None:
    """The destination if it publishes to EventBridge (the only kind served locally), else None."""
    spec = props.get("EventDestination") or {}
    bridge = spec.get("EventBridgeDestination")
    if not bridge:
        return None
    return SesEventDestination(
        logical_id=logical_id,
        configuration_set=props.get("ConfigurationSetName"),
        enabled=spec.get("Enabled", False) is True,
        matching_types=frozenset(str(kind).lower() for kind in spec.get("MatchingEventTypes") or ()),
        event_bus=bridge.get("EventBusArn"),
    )


def _response_types(props: dict[str, Any]) -> bool:
    return "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])


def _add_event(template: Template, function_id: str, event_name: str, event: dict[str, Any]) -> None:
    kind = event.get("Type")
    props = event.get("Properties") or {}
    if kind == "Api":
        auth = props.get("Auth") or {}
        api_ref = props.get("RestApiId")
        api_id = str(api_ref["Ref"]) if isinstance(api_ref, dict) and "Ref" in api_ref else None
        api = template.rest_apis.get(api_id or "")
        authorizer = auth.get("Authorizer", api.default_authorizer if api else None)
        key_required = auth.get("ApiKeyRequired", api.api_key_required if api else False)
        template.routes.append(
            ApiRoute(
                function_id=function_id,
                event_name=event_name,
                path=str(props["Path"]),
                method=_method(str(props.get("Method", "ANY"))),
                authorizer=None if authorizer in (None, "NONE") else str(authorizer),
                rest_api_id=api_id,
                api_key_required=key_required is True,
            )
        )
    elif kind == "DynamoDB":
        destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        retries = props.get("MaximumRetryAttempts", -1)
        template.streams.append(
            StreamSource(
                function_id=function_id,
                event_name=event_name,
                stream=props["Stream"],
                batch_size=int(props.get("BatchSize", 100)),
                report_item_failures=_response_types(props),
                bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
                max_retry_attempts=int(retries) if isinstance(retries, int) else -1,
                on_failure_destination=destination,
                enabled=props.get("Enabled", True) is not False,
            )
        )
    elif kind == "SQS":
        template.queues.append(
            QueueSource(
                function_id=function_id,
                event_name=event_name,
                queue=props["Queue"],
                batch_size=min(int(props.get("BatchSize", 10)), 10),
                report_item_failures=_response_types(props),
                enabled=props.get("Enabled", True) is not False,
            )
        )
    elif kind in ("Schedule", "ScheduleV2"):
        expression = props.get("Schedule") or props.get("ScheduleExpression") or ""
        state = props.get("State", "ENABLED")
        template.schedules.append(
            ScheduleSource(
                function_id=function_id,
                event_name=event_name,
                expression=str(expression),
                input=props.get("Input"),
                enabled=props.get("Enabled", True) is not False and state != "DISABLED",
            )
        )
    else:
        template.ignored_events.append((function_id, event_name, str(kind)))
