"""Unsubscribe link tokens (auth.unsubscribe_links) without AWS: URL-safe, short enough for a
header line whatever the user id, and nothing but the tokens this key made verifies."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from segmentation.auth import unsubscribe_links
from segmentation.settings import get_settings

URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
user_ids = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=255)
message_ids = st.from_regex(r"msg_[A-Za-z0-9]{12}", fullmatch=True)


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_SECRET", "unit-test-identity-secret")
    get_settings.cache_clear()


@settings(max_examples=300)
@given(message_id=message_ids, user_id=user_ids)
def test_every_token_is_url_safe_and_fits_a_header_line(message_id: str, user_id: str) -> None:
    link = unsubscribe_links.make(message_id, user_id)
    assert URL_SAFE.fullmatch(link.token)
    assert len(link.token) <= unsubscribe_links.MAX_TOKEN_CHARACTERS
    header = f"List-Unsubscribe: <{link.url('https://' + 'x' * 192)}>"  # the longest base allowed
    assert len(header) < 995
    if link.reference_put is None:  # inline: it carries the ids themselves
        assert unsubscribe_links.verify(link.token) == (message_id, user_id)
    else:
        assert len(user_id.encode()) > unsubscribe_links.INLINE_MAX_BYTES - 2 - len(message_id)


def test_ascii_ids_of_any_allowed_length_stay_inline() -> None:
    link = unsubscribe_links.make("msg_" + "a" * 12, "u" * 255)
    assert link.reference_put is None
    assert unsubscribe_links.verify(link.token) == ("msg_" + "a" * 12, "u" * 255)


@settings(max_examples=200)
@given(message_id=message_ids, user_id=st.text(min_size=1, max_size=40), data=st.data())
def test_changing_any_character_breaks_the_token(message_id: str, user_id: str, data: st.DataObject) -> None:
    token = unsubscribe_links.make(message_id, user_id).token
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    )
    changed = token[:index] + replacement + token[index + 1 :]
    if changed != token:
        assert unsubscribe_links.verify(changed) is None


def test_a_token_made_with_another_key_does_not_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    token = unsubscribe_links.make("msg_aaaaaaaaaaaa", "u1").token
    monkeypatch.setenv("IDENTITY_SECRET", "another-secret")
    get_settings.cache_clear()
    assert unsubscribe_links.verify(token) is None


@pytest.mark.parametrize("junk", ["", "preview", "a" * 600, "=" * 8, "é", "AQ==", "../../etc/passwd"])
def test_junk_is_none(junk: str) -> None:
    assert unsubscribe_links.verify(junk) is None


def test_links_join_the_base_once_and_a_preview_gets_no_token() -> None:
    assert unsubscribe_links.url("https://mail.example.com/", "tok") == "https://mail.example.com/u/tok"
    assert unsubscribe_links.preview_url("http://127.0.0.1:3000") == "http://127.0.0.1:3000/u/preview"
    assert unsubscribe_links.verify(unsubscribe_links.PREVIEW_TOKEN) is None
