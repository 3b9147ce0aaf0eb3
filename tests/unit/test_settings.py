"""Settings come from the environment: strings as given, integers checked, a bad value refused."""

from __future__ import annotations

import pytest
from segmentation.settings import Settings


def test_unset_variables_keep_their_defaults_and_set_ones_win() -> None:
    settings = Settings.from_env(
        {"USERS_TABLE": "prod-users", "REBUILD_WORKERS": " 16 ", "SENDER_CONCURRENCY": "6", "UNRELATED": "x"}
    )
    assert settings.users_table == "prod-users"
    assert settings.rebuild_workers == 16
    assert settings.sender_concurrency == 6
    assert Settings().sender_concurrency == 2
    assert settings.companies_table == Settings().companies_table


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("REBUILD_WORKERS", "0", "from 1 to 1000"),
        ("REBUILD_WORKERS", "1001", "from 1 to 1000"),
        ("INLINE_BUILD_LIMIT", "-1", "at least 0"),
        ("INLINE_BUILD_LIMIT", "2k", "a whole number"),
        ("SENDER_CONCURRENCY", "0", "from 1 to 1000"),
        ("SENDER_CONCURRENCY", "1001", "from 1 to 1000"),
        ("SES_MAX_SEND_RATE", "-1", "from 0 to 100000"),
    ],
)
def test_an_integer_out_of_its_bounds_fails_the_cold_start_with_its_name(
    variable: str, value: str, says: str
) -> None:
    with pytest.raises(ValueError, match=f"{variable} must be .*{says}"):
        Settings.from_env({variable: value})


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().users_table = "other"  # type: ignore[misc]


def test_allowed_origins_are_a_comma_separated_list_as_browsers_spell_origins() -> None:
    assert Settings().allowed_origins == ()
    assert Settings.from_env({"ALLOWED_ORIGINS": ""}).allowed_origins == ()
    settings = Settings.from_env(
        {"ALLOWED_ORIGINS": " https://App.Example.com/ , http://127.0.0.1:8080,,http://[::1]:3000"}
    )
    assert settings.allowed_origins == (
        "https://app.example.com",
        "http://127.0.0.1:8080",
        "http://[::1]:3000",
    )


@pytest.mark.parametrize(
    "value",
    [
        "*",
        "https://a.example.com,*",
        "https://*.example.com",
        "https://a.example.com/app",
        "a.example.com",
        "null",
    ],
)
def test_an_origin_that_no_browser_sends_fails_the_cold_start(value: str) -> None:
    with pytest.raises(ValueError, match="ALLOWED_ORIGINS must list origins"):
        Settings.from_env({"ALLOWED_ORIGINS": value})
