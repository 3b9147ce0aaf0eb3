"""The local stack invokes a function the way Lambda does, per invocation."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from infra.local.lambdas import LocalFunction
from infra.local.stack import PROJECT_ROOT
from infra.local.template import load_template


def test_disabled_metrics_never_pile_up_into_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Locally metrics are off; Powertools then neither prints nor clears them after an invocation.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics = Metrics(namespace="Local")

    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        metrics.add_metric(name="Http2xx", unit=MetricUnit.Count, value=1)
        return {"statusCode": 200}

    spec = load_template(PROJECT_ROOT / "template.yaml").functions["IngestFunction"]
    function = LocalFunction(spec=spec, name="ingest", handler=handler)
    for _ in range(150):  # Powertools prints a metric by itself when it holds 100 values
        assert function.invoke({})["statusCode"] == 200
    assert '"_aws"' not in capsys.readouterr().out
    assert metrics.metric_set == {}
