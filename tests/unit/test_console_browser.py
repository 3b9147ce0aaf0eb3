"""Which Chromium the console tests drive (tests/console/browser.py): CHROMIUM=/path wins, a wrong one
says how to get a browser instead of failing later in Playwright."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.console import browser


def test_chromium_names_the_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "my-chromium"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("CHROMIUM", str(binary))
    assert browser.chromium_executable() == binary


@pytest.mark.parametrize("made", [False, True])
def test_a_chromium_that_is_not_an_executable_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made: bool
) -> None:
    named = tmp_path / "chromium"
    if made:
        named.write_text("not executable")
    monkeypatch.setenv("CHROMIUM", str(named))
    with pytest.raises(browser.NoChromium) as missing:
        browser.chromium_executable()
    assert f"CHROMIUM={named}" in str(missing.value)
    assert "playwright install chromium" in str(missing.value)
    assert "apt-get install chromium" in str(missing.value)


def test_without_chromium_debian_or_a_download_it_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setattr(browser, "DEBIAN_CHROMIUM", tmp_path / "no-debian-chromium")
    monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(tmp_path / "no-downloads"))
    with pytest.raises(browser.NoChromium, match="CHROMIUM=/path/to/chromium"):
        browser.chromium_executable()
