"""Redis settings for high availability: Sentinel addresses, the database, secrets."""

from __future__ import annotations

import pytest

from pool.core.exceptions import ConfigError
from pool.infra.settings import load_settings, parse_sentinels
from pool.store.redis_client import SentinelRedis, connect_redis, database

pytestmark = pytest.mark.unit


def test_sentinels_parse_from_commas_or_spaces() -> None:
    assert parse_sentinels("a:1, b:26379 [::1]:3") == (("a", 1), ("b", 26379), ("::1", 3))
    assert parse_sentinels("") is None
    assert parse_sentinels(None) is None


@pytest.mark.parametrize("bad", ["host", "host:", ":26379", "host:0", "host:70000", "h:p"])
def test_a_bad_sentinel_entry_is_named(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VWE_REDIS_SENTINELS", f"ok:26379,{bad}")
    with pytest.raises(ConfigError, match=rf"VWE_REDIS_SENTINELS: .*'{bad}' is not host:port"):
        load_settings(_env_file=None)


def test_min_replicas_must_be_a_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VWE_REDIS_MIN_REPLICAS", "-1")
    with pytest.raises(ConfigError, match="VWE_REDIS_MIN_REPLICAS"):
        load_settings(_env_file=None)


def test_database_comes_from_the_url_path() -> None:
    assert database("redis://sentinel/3") == 3
    assert database("redis://h:6379") == 0
    with pytest.raises(ValueError, match="invalid literal"):
        database("redis://h/abc")


def test_passwords_are_secrets_and_reach_the_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VWE_REDIS_PASSWORD", "pw-data")
    monkeypatch.setenv("VWE_REDIS_SENTINEL_PASSWORD", "pw-sentinel")
    monkeypatch.setenv("VWE_REDIS_SENTINELS", "s1:26379,s2:26380")
    monkeypatch.setenv("VWE_REDIS_URL", "redis://ignored:1/5")
    settings = load_settings(_env_file=None)
    assert "pw-data" not in repr(settings) and "pw-sentinel" not in repr(settings)
    client = connect_redis(settings)  # no connection is made until a command runs
    assert isinstance(client, SentinelRedis)
    pool = client.connection_pool
    assert pool.connection_kwargs["password"] == "pw-data"
    assert pool.connection_kwargs["db"] == 5
    sentinels = pool.sentinel_manager.sentinels  # type: ignore[attr-defined]
    assert [s.connection_pool.connection_kwargs["port"] for s in sentinels] == [26379, 26380]
    assert {s.connection_pool.connection_kwargs["password"] for s in sentinels} == {"pw-sentinel"}


def test_without_sentinels_the_url_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VWE_REDIS_URL", "redis://10.1.2.3:6390/2")
    client = connect_redis(load_settings(_env_file=None), max_connections=7)
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("10.1.2.3", 6390, 2)
    assert client.connection_pool.max_connections == 7
