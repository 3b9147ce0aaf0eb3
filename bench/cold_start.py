"""Cold start per function of template.yaml: init plus the first request, against a floor.

Each sample is a new `python -S -B -P bench/cold_probe.py` process over what `make build` made,
as Lambda runs it: the function's build folder and the layer's python/ folder on sys.path, no
site-packages, no bytecode written (Lambda's code folders are read-only), the bytecode the build
ships. The environment is the function's own from the template, resolved against the resources
made in a moto server on loopback (AWS_ENDPOINT_URL), plus what Lambda's runtime sets
(AWS_LAMBDA_FUNCTION_NAME, LAMBDA_TASK_ROOT, _X_AMZN_TRACE_ID...), which Powertools and the X-Ray
SDK read. The first request is the function's sample event from events/.

The floor of each handler sample is the next process: `import boto3`, the same clients, and the
same calls that sample sent, with the same parameters, to the same server. So moving work from
init into the first request changes nothing, and the server's own time is on both sides alike.
The stack floor adds what the design puts in every function before any of our code (Powertools,
pydantic; see cold_probe.py): init / stack floor is the share that is this project's own.
Handler and floor samples alternate, so a machine that gets busier mid-run slows both alike.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segmentation.auth import access
from segmentation.storage import aws

from infra.local.resources import Provisioned, provision
from infra.local.template import LAYER, QUEUE, Function, Template, load_template

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"
EVENTS = ROOT / "events"
PROBE = Path(__file__).resolve().parent / "cold_probe.py"
# The keys the sample events carry, so that their first request does the work of a known caller.
SAMPLE_KEYS = {
    "sk_ingest_3Jv9YQ2mW8kT5nR1pL7xC4bZ": "ingest",
    "sk_read_9Pq4Lm2Vx7Rt1Kw6Hs3Nd8Ja": "read",
}
# Lambda sets this per invocation; Sampled=1 because the first request of a new environment is
# traced (X-Ray samples the first request each second), so tracing costs what it costs there.
# How the sample events name a deployed table or queue: <stack>-<logical id>-<suffix>.
DEPLOYED_NAME = re.compile(r"segmentation-service-([A-Za-z0-9]+)-[A-Z0-9]{12}")
TRACE_HEADER = "Root=1-67890abc-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"


@dataclass
class FunctionStart:
    """Medians over the samples; a total is the median of each sample's init + first request."""

    function: str
    total_ms: float
    init_ms: float
    first_ms: float
    floor_ms: float
    floor_init_ms: float
    floor_first_ms: float
    stack_floor_ms: float
    kind: str
    clients: list[str]
    calls: list[str]
    answer: str

    @property
    def ratio(self) -> float:
        return self.total_ms / self.floor_ms

    def as_json(self) -> dict[str, Any]:
        return {
            "ratio": round(self.ratio, 2),
            "total_ms": round(self.total_ms, 1),
            "floor_ms": round(self.floor_ms, 1),
            "init_ms": round(self.init_ms, 1),
            "first_request_ms": round(self.first_ms, 1),
            "floor_init_ms": round(self.floor_init_ms, 1),
            "floor_first_request_ms": round(self.floor_first_ms, 1),
            "stack_floor_ms": round(self.stack_floor_ms, 1),
            "ratio_vs_stack": round(self.total_ms / self.stack_floor_ms, 2),
            "kind": self.kind,
            "clients": self.clients,
            "calls": self.calls,
            "answer": self.answer,
        }


def _kind(spec: Function) -> str:
    """Which Powertools utility the function's events call for (see cold_probe.py)."""
    events = {str(e.get("Type")) for e in (spec.properties.get("Events") or {}).values()}
    if not events:
        return "direct"  # invoked by API Gateway as an authorizer: logs, traced by Lambda alone
    if "Api" in events:
        return "http"
    return "batch" if events & {"SQS", "DynamoDB"} else "plain"


def layer_build_dir(template: Template) -> Path:
    """The layer's python/ folder as `make build` leaves it (`make bench` builds first; the
    packaging tests check that the build holds the current sources)."""
    (layer_id,) = template.of_type(LAYER)
    layer = BUILD / layer_id / "python"
    if not layer.is_dir():
        raise RuntimeError(f"{layer} is absent: run `make build`")
    return layer


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _moto_server() -> Iterator[str]:
    """moto in server mode on loopback, in its own process; yields its endpoint URL."""
    url = f"http://127.0.0.1:{_free_port()}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", url.rsplit(":", 1)[1]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextmanager
def _environment(changes: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(changes)
    aws.reset()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        aws.reset()


def _function_environment(
    spec: Function, template: Template, made: Provisioned, base: dict[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith(("POWERTOOLS_", "AWS_LAMBDA", "LOG_LEVEL"))}
    env.update({name: str(made.resolver.resolve(raw)) for name, raw in spec.environment.items()})
    runtime = str(template.raw.get("Globals", {}).get("Function", {}).get("Runtime", "python3.12"))
    env.update(
        # Set by Lambda's runtime. Without LAMBDA_TASK_ROOT the X-Ray SDK believes it runs on a
        # server and makes a sampler with its own botocore client (~250 ms) that Lambda never makes.
        AWS_LAMBDA_FUNCTION_NAME=spec.logical_id,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(spec.memory_mb),
        AWS_EXECUTION_ENV=f"AWS_Lambda_{runtime}",
        LAMBDA_TASK_ROOT=str(BUILD / spec.logical_id),
        _HANDLER=f"{spec.module_file.stem}.{spec.handler_name}",
        _X_AMZN_TRACE_ID=TRACE_HEADER,
    )
    return env


def _local_event(logical_id: str, template: Template, made: Provisioned, folder: str) -> str:
    """The sample event with the deployed names of tables and queues replaced by the local ones
    (the stream consumer reads which table a record comes from in its eventSourceARN)."""
    names = dict(made.table_names)
    names.update({q: made.resolver.get_att(q, "QueueName") for q in template.of_type(QUEUE)})
    text = (EVENTS / f"{logical_id}.json").read_text()
    local = Path(folder) / f"{logical_id}.event.json"
    local.write_text(DEPLOYED_NAME.sub(lambda m: names.get(m.group(1), m.group(0)), text))
    return str(local)


def _sample(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-S", "-B", "-P", str(PROBE), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold probe {args[:2]} failed: {done.stderr[-800:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _names(recorded: dict[str, Any]) -> tuple[list[str], list[str]]:
    clients = [f"{kind}:{service}" for kind, service in recorded["clients"]]
    calls = [f"{recorded['clients'][index][1]}.{operation}" for index, operation, _ in recorded["calls"]]
    return clients, calls


def run(repeats: int, only: list[str] | None = None) -> list[FunctionStart]:
    """Median of `repeats` (init, first request) per function and per floor, interleaved by round."""
    template = load_template(ROOT / "template.yaml")
    layer = str(layer_build_dir(template))
    chosen = {k: v for k, v in template.functions.items() if only is None or k in only}
    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in chosen}
    floors: dict[str, list[dict[str, Any]]] = {k: [] for k in chosen}
    stacks: dict[str, list[dict[str, Any]]] = {k: [] for k in chosen}
    kinds = {k: _kind(spec) for k, spec in chosen.items()}
    recorded: dict[str, dict[str, Any]] = {}
    base = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
    with (
        _moto_server() as url,
        _environment({**base, "AWS_ENDPOINT_URL": url}),
        tempfile.TemporaryDirectory() as tmp,
    ):
        made = provision(template)
        envs = {
            k: _function_environment(spec, template, made, dict(os.environ)) for k, spec in chosen.items()
        }
        _install_sample_keys(next(iter(envs.values())))
        for _ in range(repeats + 1):  # the first round warms the server and the page cache, untimed
            for logical_id, spec in chosen.items():
                calls = str(Path(tmp) / f"{logical_id}.json")
                event = _local_event(logical_id, template, made, tmp)
                args = ["handler", str(BUILD / logical_id), layer, spec.handler_name, event, calls]
                samples[logical_id].append(_sample(args, envs[logical_id]))
                floors[logical_id].append(_sample(["floor", layer, calls], envs[logical_id]))
                stack = ["stack", layer, calls, kinds[logical_id]]
                stacks[logical_id].append(_sample(stack, envs[logical_id]))
                recorded[logical_id] = json.loads(Path(calls).read_text())
    starts = []
    for logical_id in chosen:
        timed, floor_timed = samples[logical_id][1:], floors[logical_id][1:]
        clients, calls = _names(recorded[logical_id])
        starts.append(
            FunctionStart(
                function=logical_id,
                total_ms=statistics.median(s["init_ms"] + s["first_ms"] for s in timed),
                init_ms=statistics.median(s["init_ms"] for s in timed),
                first_ms=statistics.median(s["first_ms"] for s in timed),
                floor_ms=statistics.median(s["init_ms"] + s["first_ms"] for s in floor_timed),
                floor_init_ms=statistics.median(s["init_ms"] for s in floor_timed),
                floor_first_ms=statistics.median(s["first_ms"] for s in floor_timed),
                stack_floor_ms=statistics.median(
                    s["init_ms"] + s["first_ms"] for s in stacks[logical_id][1:]
                ),
                kind=kinds[logical_id],
                clients=clients,
                calls=calls,
                answer=samples[logical_id][-1]["summary"],
            )
        )
    return starts


def _install_sample_keys(env: dict[str, str]) -> None:
    """Store the sample events' keys, with the settings any function has (the same tables)."""
    with _environment(env):
        for raw_key, role in SAMPLE_KEYS.items():
            access.install_key(raw_key, role, f"sample {role} key", now=time.time())
