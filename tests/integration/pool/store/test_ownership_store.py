"""Ownership records against the real Redis: the instance lease, takeovers, the lease check."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import pytest
import redis
import redis.asyncio as aioredis

from pool.daemon.lease import LeaseKeeper, LeaseState
from pool.store.ownership import InstanceTaken, LeaseCheck, Owner, OwnershipStore

pytestmark = pytest.mark.integration

POOL = "own-test"


@pytest.fixture
async def client(redis_url: str, redis_client: redis.Redis) -> AsyncIterator[aioredis.Redis]:
    r = aioredis.Redis.from_url(redis_url)
    yield r
    await r.aclose()


@pytest.fixture
def store(client: aioredis.Redis) -> Callable[[str], OwnershipStore]:
    return lambda instance: OwnershipStore(client, POOL, instance)


async def test_the_deployment_id_is_created_once(
        store: Callable[[str], OwnershipStore]) -> None:
    first = await store("a").deployment_id()
    assert len(first) == 32
    assert await store("b").deployment_id() == first


async def test_a_live_instance_id_cannot_be_claimed_twice(
        store: Callable[[str], OwnershipStore]) -> None:
    a1, a2 = store("dup"), store("dup")
    await a1.claim_instance(10)
    with pytest.raises(InstanceTaken, match="VWE_INSTANCE_ID='dup'"):
        await a2.claim_instance(10)
    # The second process cannot release the first's lease either.
    await a2.release_instance()
    assert await a1.lease_ttl("dup") is not None
    await a1.release_instance()
    await a2.claim_instance(10)


async def test_of_two_daemons_racing_for_a_dead_ones_container_exactly_one_wins(
        store: Callable[[str], OwnershipStore]) -> None:
    dead, b, c = store("dead"), store("b"), store("c")
    await dead.claim_instance(10)
    token = await dead.claim_new("box")
    assert token is not None
    seen = (await b.owners(["box"]))["box"]
    assert seen == Owner(token, "dead")
    # While the owner's lease is live, nobody may take the container.
    await b.claim_instance(10)
    await c.claim_instance(10)
    refused = await b.take_over("box", seen)
    assert refused.token is None and refused.owner_alive
    await dead.release_instance()  # dies
    results = await asyncio.gather(*(s.take_over("box", seen) for s in (b, c) * 5))
    winners = [r for r in results if r.token is not None]
    assert len(winners) == 1
    assert winners[0].token is not None and winners[0].token > token
    owner = (await b.owners(["box"]))["box"]
    assert owner is not None and owner.token == winners[0].token
    assert all(r.current == owner for r in results if r.token is None)


async def test_the_lease_check_fences_a_daemon_whose_container_was_taken(
        store: Callable[[str], OwnershipStore], client: aioredis.Redis) -> None:
    a, b = store("a"), store("b")
    await a.claim_instance(10)
    await b.claim_instance(10)
    token = await a.claim_new("box")
    assert token is not None
    assert await a.check_lease("box", token, "own-test:job:j1", "warm") is LeaseCheck.OK
    assert await client.hget("own-test:job:j1", "container") == b"box"
    # a is frozen past its TTL: its lease lapses, b takes over.
    await client.delete(a.lease_key)
    assert await a.check_lease("box", token, "own-test:job:j2", "warm") is LeaseCheck.LAPSED
    taken = await b.take_over("box", Owner(token, "a"))
    assert taken.token is not None
    await a.claim_instance(10)  # a resumes and claims its lease again
    assert await a.check_lease("box", token, "own-test:job:j2", "warm") is LeaseCheck.FENCED
    assert await client.hget("own-test:job:j2", "container") is None
    # Only the current owner may delete the record.
    assert not await a.release("box", token)
    assert await b.release("box", taken.token)


async def test_a_daemon_without_a_live_lease_can_neither_create_nor_take_over(
        store: Callable[[str], OwnershipStore]) -> None:
    a = store("a")
    assert await a.claim_new("box") is None
    result = await a.take_over("box", None)
    assert result.token is None and result.lease_lapsed


def keeper_for(redis_url: str, store: OwnershipStore, ttl_s: float,
               changes: list[LeaseState]) -> LeaseKeeper:
    return LeaseKeeper(lambda: redis.Redis.from_url(redis_url, socket_timeout=1),
                       store.lease_key, store.nonce, ttl_s, changes.append, interval_s=0.2)


async def wait_for(check: Callable[[], object], timeout: float = 10) -> None:
    """Poll a condition the keeper's thread makes true (it has no event to await here)."""
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not met within {timeout} s")


async def test_the_keeper_renews_recovers_a_lapse_and_reports_a_stolen_id(
        redis_url: str, store: Callable[[str], OwnershipStore], client: aioredis.Redis) -> None:
    a = store("k")
    await a.claim_instance(2)
    changes: list[LeaseState] = []
    keeper = keeper_for(redis_url, a, 2, changes)
    keeper.start()
    try:
        await client.pexpire(a.lease_key, 500)
        await asyncio.sleep(0.6)  # renewed in time: the key is still there with a full TTL
        assert keeper.state is LeaseState.HELD and await client.pttl(a.lease_key) > 1500
        await client.delete(a.lease_key)  # as if frozen past the TTL
        await wait_for(lambda: changes == [LeaseState.LAPSED, LeaseState.HELD])
        assert keeper.lapses == 1 and await client.get(a.lease_key) == a.nonce.encode()
        await client.set(a.lease_key, "someone-else")
        await wait_for(lambda: keeper.state is LeaseState.TAKEN)
    finally:
        keeper.stop()


async def test_the_keeper_thread_renews_while_the_event_loop_is_blocked(
        redis_url: str, store: Callable[[str], OwnershipStore], client: aioredis.Redis) -> None:
    a = store("t")
    await a.claim_instance(1)
    keeper = keeper_for(redis_url, a, 1, [])
    keeper.start()
    try:
        # Block this event loop for three TTLs, as a stuck synchronous call would.
        threading.Event().wait(3)
        assert await client.get(a.lease_key) == a.nonce.encode()
        assert keeper.lapses == 0
    finally:
        keeper.stop()


async def two_daemons_fenced_at_30(store: Callable[[str], OwnershipStore],
                                   client: aioredis.Redis) -> tuple[OwnershipStore, OwnershipStore]:
    """Daemons a and b, each holding its instance lease, with the fence counter at 30."""
    a, b = store("a"), store("b")
    await a.claim_instance(10)
    await b.claim_instance(10)
    await client.set(a.fence_key, 30)
    return a, b


async def test_claims_never_go_below_a_token_seen_after_the_counter_is_lost(
        store: Callable[[str], OwnershipStore], client: aioredis.Redis) -> None:
    a, b = await two_daemons_fenced_at_30(store, client)
    first = await a.claim_new("box")
    assert first == 31
    await client.delete(a.fence_key)  # Redis lost the counter alone
    # a's next claim is above every token a has held.
    assert (await a.claim_new("other") or 0) > first
    # b knows nothing, but an agent reports token 40: the takeover's token is above it.
    await client.delete(a.fence_key)
    await a.release_instance()
    seen = (await b.owners(["box"]))["box"]
    taken = await b.take_over("box", seen, agent_fence=40)
    assert taken.token is not None and taken.token > 40


async def test_a_lost_record_is_restored_only_where_none_is_and_reclaim_jumps_the_agent(
        store: Callable[[str], OwnershipStore], client: aioredis.Redis) -> None:
    a, b = await two_daemons_fenced_at_30(store, client)
    token = await a.claim_new("box")
    assert token == 31
    await client.delete(a.owner_key("box"), a.fence_key)  # the data loss
    assert await a.check_lease("box", token, "own-test:job:j1", "warm") is LeaseCheck.MISSING
    assert await a.restore("box", token) is LeaseCheck.OK
    assert (await a.owners(["box"]))["box"] == Owner(token, "a")
    assert int(await client.get(a.fence_key) or 0) >= token
    assert await a.check_lease("box", token, "own-test:job:j1", "warm") is LeaseCheck.OK
    # Another owner's record is never overwritten by a restore.
    other = await b.claim_new("shared")
    assert other is not None
    assert await a.restore("shared", token) is LeaseCheck.FENCED
    # The agent holds 50 (shown by a daemon that knew more): a new token above it, by CAS.
    renewed = await a.reclaim("box", token, agent_fence=50)
    assert renewed is not None and renewed > 50
    assert (await a.owners(["box"]))["box"] == Owner(renewed, "a")
    assert await b.reclaim("box", renewed, agent_fence=0) is None  # not b's record


async def test_the_deployment_id_is_written_back_after_a_loss_but_never_overwritten(
        store: Callable[[str], OwnershipStore], client: aioredis.Redis) -> None:
    a = store("a")
    first = await a.deployment_id()
    await client.delete("own-test:deployment")
    assert await a.restore_deployment(first) == first
    assert await store("b").deployment_id() == first
    await client.set("own-test:deployment", "another")
    assert await a.restore_deployment(first) == "another"
