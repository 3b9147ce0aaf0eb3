"""A user's `email_status` concerns the address they had when SES reported it: a new `email`
clears it in the same write as the upsert (storage.people_items), one call when nothing is to clear."""

from __future__ import annotations

from typing import Any

import pytest
from segmentation import clock
from segmentation.storage import dynamo
from segmentation.storage import users as user_store

NOW = 1_800_000_000.0


def _bounce(user_id: str, address: str) -> bool:
    return dynamo.transact([user_store.bounced_action(user_id, address, NOW)]) is None


def _calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    original = dynamo.call

    def counted(operation: str, **arguments: Any) -> Any:
        made.append(operation)
        return original(operation, **arguments)

    monkeypatch.setattr(dynamo, "call", counted)
    return made


@pytest.fixture
def bounced(aws: object) -> dict[str, Any]:
    user_store.upsert("ada", {"email": "ada@example.com"}, {}, [], NOW)
    assert _bounce("ada", "ada@example.com")
    item = user_store.get("ada")
    assert item is not None and item["email_status"] == "bounced"
    return item


def test_a_new_email_clears_the_status_in_the_upsert(
    bounced: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _calls(monkeypatch)
    item, created = user_store.upsert("ada", {"email": "ada@new.example"}, {"plan": "pro"}, [], NOW)
    assert not created and "email_status" not in item and item["email"] == "ada@new.example"
    assert item["custom_attributes"] == {"plan": "pro"} and item["rev"] == bounced["rev"] + 1
    assert made == ["update_item", "update_item"]  # the first found a status to clear


def test_the_same_email_or_other_fields_keep_it_in_one_call(
    bounced: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _calls(monkeypatch)
    item, _ = user_store.upsert("ada", {"email": "ada@example.com", "name": "Ada"}, {}, [], NOW)
    assert item["email_status"] == "bounced"
    item, _ = user_store.upsert("ada", {"phone": "123"}, {}, [], NOW)
    assert item["email_status"] == "bounced"
    assert made == ["update_item", "update_item"]  # one each


def test_removing_the_email_clears_it_too(bounced: dict[str, Any]) -> None:
    item, _ = user_store.upsert("ada", {"email": None}, {}, [], NOW)
    assert "email" not in item and "email_status" not in item


def test_a_user_without_a_status_changes_email_in_one_call(
    aws: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_store.upsert("bob", {"email": "bob@example.com"}, {}, [], NOW)
    made = _calls(monkeypatch)
    item, _ = user_store.upsert("bob", {"email": "bob@new.example"}, {}, [], NOW)
    assert item["email"] == "bob@new.example" and made == ["update_item"]


def test_an_email_changed_by_another_writer_between_the_two_calls_is_still_cleared(
    bounced: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = dynamo.call
    raced: list[bool] = []

    def racing(operation: str, **arguments: Any) -> Any:
        if operation == "update_item" and "REMOVE" in arguments["UpdateExpression"] and not raced:
            raced.append(True)  # another app write lands first: a third address, and a new bounce
            monkeypatch.setattr(dynamo, "call", original)
            user_store.upsert("ada", {"email": "ada@third.example"}, {}, [], NOW)
            assert _bounce("ada", "ada@third.example")
            monkeypatch.setattr(dynamo, "call", racing)
        return original(operation, **arguments)

    monkeypatch.setattr(dynamo, "call", racing)
    item, _ = user_store.upsert("ada", {"email": "ada@new.example"}, {}, [], NOW)
    assert raced and item["email"] == "ada@new.example" and "email_status" not in item


def test_a_bounce_for_the_old_address_after_the_change_does_not_mark(bounced: dict[str, Any]) -> None:
    user_store.upsert("ada", {"email": "ada@new.example"}, {}, [], clock.now())
    assert not _bounce("ada", "ada@example.com")
    item = user_store.get("ada")
    assert item is not None and "email_status" not in item
