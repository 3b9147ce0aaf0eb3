"""template.yaml as data, for the packaging tests (read once)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse  # understands !Ref, !GetAtt, !Sub ...

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = REPO / ".aws-sam" / "build"


@cache
def load_template() -> dict[str, Any]:
    parsed: dict[str, Any] = yaml_parse((REPO / "template.yaml").read_text())
    return parsed


def resources_of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {rid: r for rid, r in load_template()["Resources"].items() if r["Type"] == kind}


def functions() -> dict[str, dict[str, Any]]:
    """Logical id -> Properties of every AWS::Serverless::Function."""
    return {rid: r["Properties"] for rid, r in resources_of_type("AWS::Serverless::Function").items()}


def function_timeout(props: dict[str, Any]) -> int:
    return int(props.get("Timeout", load_template()["Globals"]["Function"]["Timeout"]))
