"""Cold start per function of template.yaml: init in a fresh interpreter against the boto3 floor.

Each sample is a new `python -P bench/cold_probe.py` process (nothing cached in the interpreter;
the OS file cache is warm for both sides alike). Handler and floor samples alternate so that a
machine that gets busier mid-run slows both. The environment is the function's own from the
template (intrinsics replaced by placeholders: nothing is called) as Lambda would set it, plus
AWS_LAMBDA_FUNCTION_NAME so that Powertools behaves as in Lambda.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local.template import Function, load_template

ROOT = Path(__file__).resolve().parent.parent
PROBE = Path(__file__).resolve().parent / "cold_probe.py"
# What a function makes when the call counting never saw it run (its path was not exercised).
ASSUMED_CLIENTS = ["resource:dynamodb"]


@dataclass
class FunctionStart:
    function: str
    clients: list[str]
    init_ms: float
    floor_ms: float
    assumed_clients: bool

    @property
    def ratio(self) -> float:
        return self.init_ms / self.floor_ms

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "init_ms": round(self.init_ms, 1),
            "floor_ms": round(self.floor_ms, 1),
            "ratio": round(self.ratio, 2),
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


def _environment(spec: Function, parameters: dict[str, Any]) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_LAMBDA", "LOG_LEVEL"))
    }
    for name, value in spec.environment.items():
        env[name] = _value(value, parameters)
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
        AWS_LAMBDA_FUNCTION_NAME=spec.logical_id,
        PYTHONDONTWRITEBYTECODE="",
    )
    env.pop("PYTHONDONTWRITEBYTECODE")
    return env


def _sample(args: list[str], env: dict[str, str]) -> float:
    done = subprocess.run(
        [sys.executable, "-P", str(PROBE), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold probe {args[:2]} failed: {done.stderr[-800:]}")
    return float(done.stdout.strip().splitlines()[-1])


def run(
    clients_by_function: dict[str, list[str]], repeats: int, only: list[str] | None = None
) -> list[FunctionStart]:
    """Median init per function and median floor per set of clients, samples interleaved by round."""
    template = load_template(ROOT / "template.yaml")
    layer = str(template.layer_dirs[0]) if template.layer_dirs else str(ROOT / "layers" / "segmentation")
    chosen = {k: v for k, v in template.functions.items() if only is None or k in only}
    clients = {k: clients_by_function.get(k) or ASSUMED_CLIENTS for k in chosen}
    envs = {k: _environment(spec, template.parameters) for k, spec in chosen.items()}
    floors_needed = {",".join(c): k for k, c in clients.items()}  # client set -> a function's env
    handler_ms: dict[str, list[float]] = {k: [] for k in chosen}
    floor_ms: dict[str, list[float]] = {joined: [] for joined in floors_needed}
    for _ in range(repeats):
        for logical_id, spec in chosen.items():
            joined = ",".join(clients[logical_id])
            handler_ms[logical_id].append(
                _sample(["handler", str(spec.code_dir), layer, joined], envs[logical_id])
            )
        for joined, logical_id in floors_needed.items():
            floor_ms[joined].append(_sample(["floor", joined], envs[logical_id]))
    return [
        FunctionStart(
            function=logical_id,
            clients=clients[logical_id],
            init_ms=statistics.median(handler_ms[logical_id]),
            floor_ms=statistics.median(floor_ms[",".join(clients[logical_id])]),
            assumed_clients=logical_id not in clients_by_function,
        )
        for logical_id in chosen
    ]
