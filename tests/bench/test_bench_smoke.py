"""`python -m bench --smoke` runs end to end and its last line is the JSON the issue asks for.

It fails when a section breaks, when the engine and GrowthBook disagree on any user, or when the
shape of the JSON changes. Numbers are not judged here (the machine is shared and noisy); the
goals are `make bench`'s business.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.long


@pytest.fixture(scope="module")
def smoke() -> dict[str, Any]:
    env = {**os.environ, "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled", "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    result: dict[str, Any] = json.loads(last)
    return result


def test_every_section_ran(smoke: dict[str, Any]) -> None:
    assert smoke["missing"] == {}
    assert smoke["smoke"] is True


def test_engine_and_growthbook_agree_on_every_user(smoke: dict[str, Any]) -> None:
    evaluated = smoke["eval"]
    assert evaluated["answers_agree"] is True and evaluated["disagreements"] == 0
    assert evaluated["users"] > 0 and evaluated["segments"] >= 12
    assert evaluated["ns_per_check"] > 0 and evaluated["growthbook_ns_per_check"] > 0
    ratio = evaluated["growthbook_ns_per_check"] / evaluated["ns_per_check"]
    assert evaluated["speedup_vs_growthbook"] == pytest.approx(ratio, rel=0.01)


def test_aws_calls_have_every_operation(smoke: dict[str, Any]) -> None:
    calls = smoke["aws_calls"]
    for name in ("login", "stream_no_change", "stream_one_change", "delivery", "ses_feedback_event"):
        assert isinstance(calls[name], int) and calls[name] >= 0, name
    assert isinstance(calls["rebuild_per_100_users_no_change"], int | float)
    # A login writes the user at least once, and one delivery sends one email.
    assert calls["breakdown"]["login"].get("dynamodb.UpdateItem", 0) >= 1
    # A Segment batch is written in batches: fewer calls than messages, transactions among them.
    assert 0 < calls["segment_batch_per_100_messages"] < 100
    assert calls["breakdown"]["segment_batch_per_100_messages"].get("dynamodb.TransactWriteItems", 0) >= 1
    assert calls["breakdown"]["delivery"].get("sesv2.SendEmail") == 1
    assert calls["details"]["moto_failed_transactions"] == 0


def test_cold_start_per_function(smoke: dict[str, Any]) -> None:
    cold = smoke["cold_start"]
    assert cold["functions"]
    for name, measured in cold["functions"].items():
        assert measured["init_ms"] > 0 and measured["first_request_ms"] > 0, name
        assert measured["ratio"] == pytest.approx(measured["total_ms"] / measured["floor_ms"], abs=0.01)
        by_stack = measured["total_ms"] / measured["stack_floor_ms"]
        assert measured["ratio_vs_stack"] == pytest.approx(by_stack, abs=0.01)
        assert measured["kind"] in ("http", "batch", "plain", "direct")
        # The first request did its work against the server: the floor replays those same calls.
        assert measured["calls"], name
    functions = cold["functions"]
    assert functions["AuthorizerFunction"]["answer"] == "policy Allow"
    assert functions["AuthorizerFunction"]["calls"] == ["dynamodb.GetItem"]
    assert functions["IngestFunction"]["answer"].startswith("status 20")
    assert "dynamodb.UpdateItem" in functions["IngestFunction"]["calls"]
    assert functions["MembershipStreamFunction"]["answer"] == "0 batch item failures"
    assert (
        smoke["goals"]["cold_start.functions.IngestFunction.ratio"]["value"]
        == functions["IngestFunction"]["ratio"]
    )


def test_scale_points(smoke: dict[str, Any]) -> None:
    points = smoke["scale"]
    assert len(points) >= 2
    for point in points:
        assert set(point) >= {"users", "segments", "rebuild_cpu_s"}
        assert point["rebuild_cpu_s"] > 0


def test_hostile_templates_are_measured_and_stopped_by_the_budget(smoke: dict[str, Any]) -> None:
    rendered = smoke["templates"]
    cases = rendered["cases"]
    assert cases["issue"]["outcome"] == "template_budget"
    assert cases["issue"]["spent"]["iterations"] == 10_000  # charged when the loop started
    assert cases["near_every_limit"]["outcome"] == "rendered"
    for name, case in cases.items():
        assert case["render_ms"] > 0 and case["message_ms"] > 0, name
        assert set(case["spent"]) == {"iterations", "steps", "items", "characters"}, name
    assert rendered["max_message_ms"] == max(c["message_ms"] for c in cases.values())
    assert smoke["goals"]["templates.max_render_ms"]["value"] == rendered["max_render_ms"]


def test_a_csv_import_is_written_in_batches_and_a_reimport_writes_nothing(smoke: dict[str, Any]) -> None:
    imported = smoke["csv_import"]
    first, again = imported["first"], imported["again"]
    assert first["rows"] == again["rows"] == imported["rows"] > 0
    assert first["rejected"] == again["rejected"] == imported["rows"] // 100
    assert 0 < first["aws_calls_per_100_rows"] < 100 and first["rows_per_second_per_worker"] > 0
    assert first["operations"].get("dynamodb.TransactWriteItems", 0) >= 1
    assert "dynamodb.TransactWriteItems" not in again["operations"]
    assert imported["moto_failed_transactions"] == 0
