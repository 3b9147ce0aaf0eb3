"""The whole local stack in one object: moto, resources, environment, functions, pollers, schedules,
the default event bus and what SES reports back through it.

Order matters: moto starts first, resources are made, the functions' environment is resolved
and exported, and only then are the function modules imported (settings and clients are read
lazily, but some modules may read them at import).
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segmentation import clock
from segmentation.auth.keys import KEY_SHAPE

from infra.local import calls, files, moto_speedups, outbox, ses_events
from infra.local.apigw import INTEGRATION_TIMEOUT_SECONDS, ApiGateway, HttpRequest, HttpResponse
from infra.local.eventbridge import DEFAULT_ASYNC_RETRIES, LocalEventBus, Rule, Target, compile_pattern
from infra.local.intrinsics import ACCOUNT_ID, REGION
from infra.local.lambdas import LocalFunction, invoke_lock, load_function
from infra.local.pollers import POLL_INTERVAL, QueuePoller, StreamPoller, next_poll_wait, scheduled_event
from infra.local.rate_limits import KeyRateLimits, MethodThrottles
from infra.local.resources import Provisioned, initial_secret_value, provision
from infra.local.template import Function, Template, load_template

log = logging.getLogger("infra.local")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Frequent schedules (the recheck) fire this often locally, whatever their rate in the template.
SCHEDULE_INTERVAL = 2.0
# `drain()` gives up after this long, in case functions keep feeding each other forever.
DRAIN_TIMEOUT = 120.0

# What a Lambda runtime sets, plus what makes moto answer in process.
BASE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
# The env var of each secret ARN that settings know, and the local value the secret gets.
SECRET_ARN_VARIABLES = {"IDENTITY_SECRET_ARN": "identity_secret", "ADMIN_KEY_SECRET_ARN": "admin_key"}
# Seconds before a request gets API Gateway's 504 (29 s, as deployed); tests make it tiny.
GATEWAY_TIMEOUT_VARIABLE = "LOCAL_GATEWAY_TIMEOUT"


def local_base_url(host: str, port: int) -> str:
    """The stack's own address, as links it gives out name it (a wildcard host is not one)."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


class ConfigurationError(ValueError):
    """The environment asks for something the stack cannot do: it refuses to start, saying why."""


def gateway_timeout_from(environ: Mapping[str, str]) -> float:
    text = environ.get(GATEWAY_TIMEOUT_VARIABLE, "").strip()
    if not text:
        return INTEGRATION_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigurationError(
            f"{GATEWAY_TIMEOUT_VARIABLE} must be a number of seconds above 0; got {text!r}."
        )
    return seconds


@dataclass
class Keys:
    admin_key: str
    ingest_key: str
    identity_secret: str
    generated: list[str] = field(default_factory=list)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Keys:
        """The keys the shell gives, others generated; ConfigurationError for a key the
        authorizer would refuse (shorter than 8 characters, say), before anything starts."""
        generated = []

        def value(name: str, prefix: str, *, api_key: bool = True) -> str:
            if environ.get(name):
                given = environ[name]
                if api_key and not KEY_SHAPE.fullmatch(given):
                    what = (
                        f"is {len(given)} characters; an API key needs at least 8"
                        if len(given) < 8
                        else "is not an API key: 8 to 512 printable ASCII characters, no spaces"
                    )
                    raise ConfigurationError(
                        f"{name} {what}, so every request with it would be refused. "
                        f"Set another {name}, or unset it to have one generated."
                    )
                return given
            generated.append(name)
            return prefix + secrets.token_urlsafe(24)

        return cls(
            admin_key=value("ADMIN_API_KEY", "sk_admin_"),
            ingest_key=value("INGEST_API_KEY", "sk_ingest_"),
            identity_secret=value("IDENTITY_SECRET", "", api_key=False),
            generated=generated,
        )


_pause = threading.Condition(invoke_lock)


def _sleep_letting_others_run(seconds: float) -> None:
    """The sender's pace, locally: wait without holding the invocation lock, so API requests
    and other functions go on meanwhile (as they would beside a Lambda instance)."""
    with _pause:
        _pause.wait(seconds)


class LocalStack:
    def __init__(
        self,
        template_path: Path = PROJECT_ROOT / "template.yaml",
        *,
        keys: Keys,
        parameters: dict[str, str] | None = None,
        function_loader: Callable[[Function, str], LocalFunction] = load_function,
        gateway_timeout: float | None = None,
        key_rate_limits: bool = True,
        base_url: str | None = None,
    ) -> None:
        self.template: Template = load_template(template_path)
        # LOCAL_GATEWAY_TIMEOUT unless given; ConfigurationError here, before anything starts.
        self.gateway_timeout = (
            gateway_timeout_from(os.environ) if gateway_timeout is None else gateway_timeout
        )
        self.keys = keys
        self.key_rate_limits = key_rate_limits  # KEY_RATE_LIMITS=off makes it False
        # The stack's own address: presigned URLs of the files bucket point at it (files.py).
        self.base_url = base_url or local_base_url("127.0.0.1", 3000)
        self.parameter_overrides = parameters or {}
        self.function_loader = function_loader
        self.functions: dict[str, LocalFunction] = {}
        self.stream_pollers: list[StreamPoller] = []
        self.queue_pollers: list[QueuePoller] = []
        self.event_bus = LocalEventBus([])
        self.gateway: ApiGateway | None = None
        self.provisioned: Provisioned | None = None
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._may_have_work = threading.Event()
        self._threads: list[threading.Thread] = []
        self._mock: Any = None

    # --- start and stop ---------------------------------------------------------------------

    def start(self) -> None:
        """Start moto, make the resources, export the environment, import the functions."""
        from moto import mock_aws

        unhandled = self.template.unhandled_types()
        if unhandled:
            raise ValueError(
                f"template.yaml has resource types the local stack does not know: {sorted(unhandled)}; "
                "provision them (infra/local/resources.py) or ignore them (IGNORED_TYPES in template.py)"
            )
        os.environ.update(BASE_ENVIRONMENT)
        calls.install_from_environment()  # LOCAL_AWS_CALL_LOG: each function's AWS calls, for the e2e tests
        self._mock = mock_aws()
        self._mock.start()
        self._reset_clients()
        outbox.install()
        outbox.configure(rate=outbox.rate_from_environment() or 0, paused=False)
        clock.set_sleeper(_sleep_letting_others_run)
        moto_speedups.install()
        # The API's own address (API.md's default port) unless given: emails' unsubscribe links.
        overrides = {"UnsubscribeBaseUrl": local_base_url("127.0.0.1", 3000), **self.parameter_overrides}
        for name, value in overrides.items():
            self.template.parameters.setdefault(name, {})["Default"] = value
        self.provisioned = provision(self.template)
        self._export_environment()
        self._store_secrets()
        for path in reversed(self.template.layer_dirs):
            if str(path) not in sys.path:
                sys.path.insert(0, str(path))
        for logical_id, spec in self.template.functions.items():
            self.functions[logical_id] = self.function_loader(spec, self.provisioned.resolver.ref(logical_id))
        self.gateway = ApiGateway(
            self.template,
            self.functions,
            KeyRateLimits(enforce=self.key_rate_limits),
            timeout_seconds=self.gateway_timeout,
            method_throttles=MethodThrottles(self._method_throttles(), enforce=self.key_rate_limits),
        )
        self._build_pollers()
        self._build_event_bus()
        self._install_keys()
        self._verify_sender()

    def start_background(self) -> None:
        """Poll streams and queues, and fire the frequent schedules, until `stop()`."""
        for target, name in ((self._poll_loop, "pollers"), (self._schedule_loop, "schedules")):
            thread = threading.Thread(target=target, name=f"local-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        clock.set_sleeper(None)
        self._stop.set()
        self._may_have_work.set()
        for thread in self._threads:
            thread.join(timeout=30)
        if self._mock is not None:
            with invoke_lock:
                self._mock.stop()
            self._mock = None

    # --- what the HTTP server and the seed call ---------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        assert self.gateway is not None, "start() first"
        return self.gateway.handle(request)

    def wake_pollers(self) -> None:
        """Something may have written (a request, a schedule): poll now, not after the idle wait."""
        self._may_have_work.set()

    def invoke(self, logical_id: str) -> Any:
        """Run one function now with its scheduled event (or {}), then wait for the work it queued."""
        function = self.functions[logical_id]
        schedule = next((s for s in self.template.schedules if s.function_id == logical_id), None)
        with invoke_lock:
            result = function.invoke(scheduled_event(schedule, function, ACCOUNT_ID))
            self.drain()
        return result

    def run_frequent_schedules(self) -> None:
        self._run_schedules(lambda schedule: schedule.frequent)

    def _run_schedules(self, which: Callable[[Any], bool]) -> None:
        for schedule in self.template.schedules:
            if schedule.enabled and which(schedule):
                function = self.functions[schedule.function_id]
                try:
                    function.invoke(scheduled_event(schedule, function, ACCOUNT_ID))
                except Exception:
                    log.exception("scheduled %s failed", schedule.function_id)

    def set_clock(self, offset_seconds: float) -> None:
        """Move every function's now, then run the recheck and wait for what it causes.

        Forward, the recheck finds every user whose result flipped. Backward, results flip that
        no recheck instant was stored for (a user back inside their first day), so every
        schedule runs, the nightly rebuild included, as if a night had passed.
        """
        with invoke_lock:
            backward = offset_seconds < clock.offset_seconds()
            clock.set_offset_seconds(offset_seconds)
            self._run_schedules(lambda schedule: backward or schedule.frequent)
            self.drain()

    def drain(self) -> int:
        """Poll every stream and queue until a whole pass finds nothing; the records handed over."""
        total = 0
        deadline = time.monotonic() + DRAIN_TIMEOUT
        with invoke_lock:
            while time.monotonic() < deadline:
                handled = self._poll_all()
                total += handled
                if handled == 0:
                    return total
        log.warning("drain stopped after %.0f s with work still arriving", DRAIN_TIMEOUT)
        return total

    def outbox(self) -> list[dict[str, Any]]:
        with invoke_lock:
            return outbox.messages(ACCOUNT_ID, REGION)

    def report_ses_event(self, request: ses_events.SesEventRequest) -> dict[str, Any]:
        """SES reports `request.type` about the last email it accepted for `request.email`:
        through each enabled event destination of that email's configuration set that matches
        the type and publishes to EventBridge, onto the default bus, whose rules route it.
        LookupError when SES accepted no email for that address."""
        assert self.provisioned is not None
        resolve = self.provisioned.resolver.resolve
        now = clock.now()
        with invoke_lock:
            email = ses_events.last_email_to(outbox.accepted(ACCOUNT_ID, REGION), request.email)
            if email is None:
                raise LookupError(request.email)
            configuration_set = (email.get("sent") or {}).get("configuration_set")
            destinations = [
                d.logical_id
                for d in self.template.ses_destinations
                if d.enabled
                and configuration_set
                and str(resolve(d.configuration_set)) == configuration_set
                and ses_events.matching_type(request) in d.matching_types
                and str(resolve(d.event_bus)).endswith(":event-bus/default")  # SES's only bus
            ]
            detail = ses_events.record(request, email, now)
            published = (
                self.event_bus.put_events([ses_events.bus_entry(request, detail, now)])
                if destinations
                else []
            )
        return {
            "ses_message_id": email["ses_message_id"],
            "destinations": destinations,
            "rules": [rule for event in published for rule in event["rules"]],
            "event": published[0]["event"] if published else None,
        }

    # --- internals --------------------------------------------------------------------------

    def _reset_clients(self) -> None:
        from segmentation.storage import aws

        aws.reset()

    def _export_environment(self) -> None:
        """The union of every function's resolved environment; a variable the shell set wins."""
        assert self.provisioned is not None
        merged: dict[str, str] = {}
        for logical_id, spec in self.template.functions.items():
            for name, raw in spec.environment.items():
                resolved = self.provisioned.resolver.resolve(raw)
                if resolved is None:  # `!If [..., !Ref AWS::NoValue]`: the variable is not set
                    continue
                value = str(resolved)
                if name in merged and merged[name] != value:
                    log.warning(
                        "%s sets %s=%r, another function %r; one process keeps the first",
                        logical_id,
                        name,
                        value,
                        merged[name],
                    )
                    continue
                merged[name] = value
        # Locally the functions log warnings and errors only, unless the shell sets LOG_LEVEL.
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        # One sender runs at a time here (one process, one poller): it has the whole SES rate.
        os.environ.setdefault("SENDER_CONCURRENCY", "1")
        # Webhooks may call a receiver on this machine (http://127.0.0.1, localhost): never deployed.
        os.environ.setdefault("WEBHOOK_ALLOW_LOCAL", "true")
        # Presigned URLs point at this stack, which serves them from moto (files.py).
        os.environ.setdefault("FILES_ENDPOINT_URL", files.endpoint_url(self.base_url))
        for name, value in merged.items():
            os.environ.setdefault(name, value)
        # IDENTITY_SECRET is left out of the template on purpose; locally it comes from here.
        os.environ["IDENTITY_SECRET"] = self.keys.identity_secret
        self._reset_clients()

    def _store_secrets(self) -> None:
        """Put the local keys into the template's secrets that settings point at."""
        assert self.provisioned is not None
        from segmentation.storage import aws

        values = {"identity_secret": self.keys.identity_secret, "admin_key": self.keys.admin_key}
        by_arn = {arn: logical_id for logical_id, arn in self.provisioned.secret_arns.items()}
        for variable, key in SECRET_ARN_VARIABLES.items():
            logical_id = by_arn.get(os.environ.get(variable, ""))
            if logical_id:
                secret = initial_secret_value(self.provisioned.secret_specs[logical_id], values[key])
                aws.client("secretsmanager").put_secret_value(
                    SecretId=os.environ[variable], SecretString=secret
                )

    def _install_keys(self) -> None:
        from segmentation.auth import access

        now = clock.now()
        access.install_key(self.keys.admin_key, "admin", "local admin", now=now)
        access.install_key(self.keys.ingest_key, "ingest", "local ingest", now=now)

    def _verify_sender(self) -> None:
        from segmentation.settings import get_settings
        from segmentation.storage import aws

        aws.client("ses").verify_email_identity(EmailAddress=get_settings().sender_email)

    def _method_throttles(self) -> dict[tuple[str, str], tuple[float, int]]:
        """The REST APIs' per-method throttles, with the template's parameters resolved."""
        assert self.provisioned is not None
        resolve = self.provisioned.resolver.resolve
        return {
            route: (
                float(resolve(setting["ThrottlingRateLimit"])),
                int(resolve(setting["ThrottlingBurstLimit"])),
            )
            for api in self.template.rest_apis.values()
            for route, setting in api.method_throttles.items()
        }

    def _build_pollers(self) -> None:
        assert self.provisioned is not None
        resolve = self.provisioned.resolver.resolve
        for source in self.template.streams:
            if not source.enabled:
                continue
            destination = resolve(source.on_failure_destination) if source.on_failure_destination else None
            self.stream_pollers.append(
                StreamPoller(
                    source,
                    self.functions[source.function_id],
                    str(resolve(source.stream)),
                    self.provisioned.queue_urls.get(str(destination)) if destination else None,
                )
            )
        for queue_source in self.template.queues:
            if not queue_source.enabled:
                continue
            arn = str(resolve(queue_source.queue))
            self.queue_pollers.append(
                QueuePoller(
                    queue_source,
                    self.functions[queue_source.function_id],
                    arn,
                    self.provisioned.queue_urls[arn],
                )
            )

    def _build_event_bus(self) -> None:
        """The template's rules on the default bus, each target a function of the template."""
        assert self.provisioned is not None
        resolve = self.provisioned.resolver.resolve
        rules = []
        for rule in self.template.rules:
            if not rule.enabled:
                continue
            targets = []
            for target in rule.targets:
                function = self.functions[target.function_id]
                props = function.spec.properties
                retries = resolve((props.get("EventInvokeConfig") or {}).get("MaximumRetryAttempts"))
                dead_letter = resolve((props.get("DeadLetterQueue") or {}).get("TargetArn"))
                targets.append(
                    Target(
                        function=function,
                        retries=DEFAULT_ASYNC_RETRIES if retries in (None, "") else int(retries),
                        dead_letter_queue_url=self.provisioned.queue_urls.get(str(dead_letter)),
                    )
                )
            pattern = compile_pattern(resolve(rule.pattern))
            rules.append(Rule(name=rule.logical_id, pattern=pattern, targets=tuple(targets)))
        self.event_bus = LocalEventBus(rules)

    def _pollers(self) -> Iterable[StreamPoller | QueuePoller | LocalEventBus]:
        yield from self.stream_pollers
        yield from self.queue_pollers
        yield self.event_bus

    def _poll_all(self) -> int:
        handled = 0
        for poller in self._pollers():
            try:
                handled += poller.poll_once()
            except Exception:
                log.exception("poller %s failed", poller.name)
        return handled

    def _poll_loop(self) -> None:
        wait = POLL_INTERVAL
        while not self._stop.is_set():
            started = time.monotonic()
            if self._poll_all() > 0:
                wait = POLL_INTERVAL
                continue
            # Cut short by a request or a schedule (one that comes before the clear is not lost:
            # the next pass polls anyway), but never sooner than POLL_INTERVAL after the last pass
            # began: a burst of requests makes one pass, not one each.
            self._may_have_work.wait(wait)
            self._may_have_work.clear()
            self._stop.wait(max(0.0, started + POLL_INTERVAL - time.monotonic()))
            wait = next_poll_wait(wait)

    def _schedule_loop(self) -> None:
        while not self._stop.wait(SCHEDULE_INTERVAL):
            if self.ready.is_set():
                with invoke_lock:
                    self.run_frequent_schedules()
                self.wake_pollers()
