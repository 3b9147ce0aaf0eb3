"""Shared fixtures. `aws`: a fresh moto account holding every table, queue and secret of template.yaml.

The tables come from template.yaml itself (through the local stack's provisioner), so the keys
and indexes tested here are the deployed ones. The functions' environment (table names, queue
URLs, secret ARNs) is set from the template's Globals, as Lambda would set it, plus the few
variables a function sets for itself (the sender's UNSUBSCRIBE_BASE_URL: the stage URL).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.moto_config import MOTO_CONFIG

ROOT = Path(__file__).resolve().parent.parent
_FAKE_CREDENTIALS = {
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "SegmentationTests",
    "POWERTOOLS_SERVICE_NAME": "segmentation",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `long` tests first, the rest in their order: on every core, a test of minutes that
    starts last would be the whole run's tail while the other workers sit idle."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


def _forget_process_caches() -> None:
    """Caches that would outlive a mock: clients, settings, fixed attribute types, secrets."""
    from segmentation.storage import attributes, secrets
    from segmentation.storage import aws as storage_aws

    storage_aws.reset()
    attributes.clear_cache()
    secrets.clear_cache()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Start moto, create template.yaml's resources and point Settings at them; yields the Provisioned."""
    from moto import mock_aws

    from infra.local.resources import provision
    from infra.local.template import load_template

    for name, value in _FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with mock_aws(config=MOTO_CONFIG):
        _forget_process_caches()
        template = load_template(ROOT / "template.yaml")
        made = provision(template)
        variables = ((template.raw.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
        globals_ = variables.get("Variables") or {}
        for name, raw in globals_.items():
            monkeypatch.setenv(name, str(made.resolver.resolve(raw)))
        for function in template.functions.values():  # one process runs them all
            for name, raw in function.environment.items():
                if globals_.get(name) != raw:
                    monkeypatch.setenv(name, str(made.resolver.resolve(raw)))
        _forget_process_caches()
        yield made
        _forget_process_caches()


# Keys of every role, as the local stack installs ADMIN_API_KEY / INGEST_API_KEY at start.
TEST_KEYS = {
    "admin": "sk_test_admin_0123456789abcdefghijklmnopqrstuvw",
    "ingest": "sk_test_ingest_0123456789abcdefghijklmnopqrstuv",
    "read": "sk_test_read_0123456789abcdefghijklmnopqrstuvwxy",
    "write": "sk_test_write_0123456789abcdefghijklmnopqrstuvwx",
}
TEST_IDENTITY_SECRET = "identity-secret-for-tests"


@pytest.fixture
def keys(aws: object, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """role → raw API key, all stored; IDENTITY_SECRET set to TEST_IDENTITY_SECRET (as locally)."""
    from segmentation.auth import access
    from segmentation.settings import get_settings

    monkeypatch.setenv("IDENTITY_SECRET", TEST_IDENTITY_SECRET)
    get_settings.cache_clear()
    for role, raw_key in TEST_KEYS.items():
        access.install_key(raw_key, role, f"{role} key", now=1_700_000_000)
    return dict(TEST_KEYS)
