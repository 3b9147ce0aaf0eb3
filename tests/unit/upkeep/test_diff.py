from decimal import Decimal

from segmentation.storage.dynamo import chunk_pairs
from segmentation.storage.membership_writes import RECHECK_SHARDS, recheck_shard
from segmentation.upkeep.diff import only_upkeep_changed, plan_update, recheck_value


def user(**fields):
    return {"user_id": "u1", "rev": Decimal(3), **fields}


def test_plan_adds_and_removes_only_the_difference():
    update = plan_update("users", user(segments={"a", "b"}), frozenset({"b", "c"}))
    assert update.added == {"c"}
    assert update.removed == {"a"}
    assert update.stored_segments == {"a", "b"}
    assert update.rev == 3


def test_plan_is_a_noop_when_membership_and_recheck_are_unchanged():
    update = plan_update(
        "users", user(segments={"a"}, recheck_at=Decimal("100.5")), frozenset({"a"}), next_change=100.5
    )
    assert update.is_noop


def test_plan_moves_only_recheck_when_segments_are_unchanged():
    update = plan_update("users", user(segments={"a"}, recheck_at=Decimal(100)), frozenset({"a"}), 200.0)
    assert not update.changes_membership
    assert update.recheck == ("set", Decimal(200))


def test_plan_removes_recheck_when_nothing_will_change_by_time():
    update = plan_update("users", user(recheck_at=Decimal(100)), frozenset(), None)
    assert update.recheck == ("remove", None)


def test_companies_never_carry_recheck():
    update = plan_update("companies", {"company_id": "c", "segments": {"x"}}, frozenset(), 50.0)
    assert update.recheck is None
    assert update.removed == {"x"} and update.rev is None


def test_links_follow_company_ids_only_when_current_links_are_given():
    record = user(company_ids=["acme", "beta"])
    assert plan_update("users", record, frozenset()).linked_companies == frozenset()
    update = plan_update("users", record, frozenset(), current_links=frozenset({"beta", "gone"}))
    assert update.linked_companies == {"acme"}
    assert update.unlinked_companies == {"gone"}


def test_recheck_value_rounds_up_to_the_millisecond():
    assert recheck_value(10.0001) == Decimal("10.001")
    assert recheck_value(10.0) == Decimal(10)
    assert recheck_value(None) is None


def test_recheck_shard_is_stable_and_in_range():
    shards = {recheck_shard(f"user-{i}") for i in range(200)}
    assert shards == set(range(RECHECK_SHARDS))
    assert recheck_shard("user-7") == recheck_shard("user-7")


def test_only_upkeep_changed():
    old = {"user_id": "u", "rev": 1, "segments": {"a"}}
    assert only_upkeep_changed(old, {**old, "segments": {"b"}, "recheck_at": 5, "recheck_shard": 1})
    assert not only_upkeep_changed(old, {**old, "rev": 2})
    assert not only_upkeep_changed(old, {**old, "name": "Ada"})
    assert not only_upkeep_changed(None, old)


def test_chunk_pairs_keeps_pairs_together_and_within_the_limit():
    pairs = [[i, i] for i in range(120)]
    chunks = chunk_pairs(pairs, 99)
    assert [len(c) for c in chunks] == [49, 49, 22]
    assert [p for c in chunks for p in c] == pairs
    assert all(sum(len(p) for p in c) <= 99 for c in chunks)


def test_chunk_pairs_of_nothing_is_one_empty_chunk():
    assert chunk_pairs([], 99) == [[]]
