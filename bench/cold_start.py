"""Cold start per function of template.yaml: init in a fresh interpreter against two floors.

Each sample is a new `python -S -B -P bench/cold_probe.py` process over what `make build` made,
as Lambda runs it: the function's build folder and the layer's python/ folder on sys.path, no
site-packages, no bytecode written (Lambda's code folders are read-only), the bytecode the build
ships. The environment is the function's own from the template (intrinsics replaced by
placeholders: nothing is called) plus the variables Lambda's runtime sets (AWS_LAMBDA_FUNCTION_NAME,
LAMBDA_TASK_ROOT...), which Powertools and the X-Ray SDK read at import. Handler and floor samples
alternate, so a machine that gets busier mid-run slows all sides alike.

The floor is `import boto3` plus the same clients; the stack floor adds what the design puts in
every function before any of our code (see cold_probe.py). The issue's goal is on the first ratio;
the second tells how much of the cold start is this project's own code.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local.template import LAYER, Function, Template, load_template

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"
PROBE = Path(__file__).resolve().parent / "cold_probe.py"
# What a function makes when the call counting never saw it run (its path was not exercised).
ASSUMED_CLIENTS = ["resource:dynamodb"]


@dataclass
class FunctionStart:
    function: str
    kind: str
    clients: list[str]
    init_ms: float
    floor_ms: float
    stack_floor_ms: float
    assumed_clients: bool

    @property
    def ratio(self) -> float:
        return self.init_ms / self.floor_ms

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "init_ms": round(self.init_ms, 1),
            "floor_ms": round(self.floor_ms, 1),
            "ratio": round(self.ratio, 2),
            "stack_floor_ms": round(self.stack_floor_ms, 1),
            "ratio_vs_stack": round(self.init_ms / self.stack_floor_ms, 2),
            "kind": self.kind,
            "clients": self.clients,
        }
        if self.assumed_clients:
            out["note"] = "clients assumed: this path was not exercised by the call counting"
        return out


def _value(raw: Any, parameters: dict[str, Any]) -> str:
    """A template value: a parameter's default, a resource's logical id (a stand-in name), or as is."""
    if isinstance(raw, dict) and "Ref" in raw:
        name = str(raw["Ref"])
        return str((parameters.get(name) or {}).get("Default", name))
    return raw if isinstance(raw, str) else f"placeholder-{raw!r}"


def _environment(spec: Function, template: Template) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_LAMBDA", "LOG_LEVEL"))
    }
    for name, value in spec.environment.items():
        env[name] = _value(value, template.parameters)
    runtime = str(template.raw.get("Globals", {}).get("Function", {}).get("Runtime", "python3.12"))
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        # Set by Lambda's runtime. Without LAMBDA_TASK_ROOT the X-Ray SDK believes it runs on a
        # server and makes a sampler with its own botocore client (~250 ms) that Lambda never makes.
        AWS_LAMBDA_FUNCTION_NAME=spec.logical_id,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(spec.memory_mb),
        AWS_EXECUTION_ENV=f"AWS_Lambda_{runtime}",
        LAMBDA_TASK_ROOT=str(BUILD / spec.logical_id),
        _HANDLER=f"{spec.module_file.stem}.{spec.handler_name}",
    )
    return env


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


def _sample(args: list[str], env: dict[str, str]) -> float:
    done = subprocess.run(
        [sys.executable, "-S", "-B", "-P", str(PROBE), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold probe {args[:2]} failed: {done.stderr[-800:]}")
    return float(done.stdout.strip().splitlines()[-1])


def run(
    clients_by_function: dict[str, list[str]], repeats: int, only: list[str] | None = None
) -> list[FunctionStart]:
    """Median init per function, median floors per set of clients (and kind), interleaved by round."""
    template = load_template(ROOT / "template.yaml")
    layer = str(layer_build_dir(template))
    chosen = {k: v for k, v in template.functions.items() if only is None or k in only}
    clients = {k: ",".join(clients_by_function.get(k) or ASSUMED_CLIENTS) for k in chosen}
    kinds = {k: _kind(spec) for k, spec in chosen.items()}
    envs = {k: _environment(spec, template) for k, spec in chosen.items()}
    floors = {clients[k]: k for k in chosen}  # client set -> a function whose environment it uses
    stacks = {(clients[k], kinds[k]): k for k in chosen}
    handler_ms: dict[str, list[float]] = {k: [] for k in chosen}
    floor_ms: dict[str, list[float]] = {key: [] for key in floors}
    stack_ms: dict[tuple[str, str], list[float]] = {key: [] for key in stacks}
    for _ in range(repeats):
        for logical_id in chosen:
            function_dir = str(BUILD / logical_id)
            args = ["handler", function_dir, layer, clients[logical_id]]
            handler_ms[logical_id].append(_sample(args, envs[logical_id]))
        for joined, logical_id in floors.items():
            floor_ms[joined].append(_sample(["floor", layer, joined], envs[logical_id]))
        for (joined, kind), logical_id in stacks.items():
            stack_ms[(joined, kind)].append(_sample(["stack", layer, joined, kind], envs[logical_id]))
    return [
        FunctionStart(
            function=logical_id,
            kind=kinds[logical_id],
            clients=clients[logical_id].split(","),
            init_ms=statistics.median(handler_ms[logical_id]),
            floor_ms=statistics.median(floor_ms[clients[logical_id]]),
            stack_floor_ms=statistics.median(stack_ms[(clients[logical_id], kinds[logical_id])]),
            assumed_clients=logical_id not in clients_by_function,
        )
        for logical_id in chosen
    ]
