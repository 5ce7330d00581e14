"""Request validation: the app in process (built by the composition root, role `api`) against
the real Redis; no daemon, no Docker. Every refusal is a 4xx in the error model, never a 500."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from api.app import create_app
from pool.entry.root import Root
from pool.infra.settings import Settings
from pool.store import keys

pytestmark = pytest.mark.integration

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings_for(redis_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(_env_file=None, redis_url=redis_url,
                    pool_name=f"test-{uuid.uuid4().hex[:8]}", data_dir=tmp_path, **overrides)


async def serve(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    root = Root(settings, role="api")
    root.build()
    assert root.api is not None and root.redis is not None
    await root.api.store.ensure_group()
    transport = httpx.ASGITransport(app=create_app(root.api))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://vwe.test") as client:
            yield client
    finally:
        await root.redis.close()


@pytest.fixture
def settings(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    return settings_for(redis_url, tmp_path, api_token=TOKEN, queue_max=2)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for client in serve(settings):
        yield client


@pytest.fixture
async def no_token_api(redis_url: str, redis_client: redis.Redis, tmp_path: Path
                       ) -> AsyncIterator[httpx.AsyncClient]:
    async for client in serve(settings_for(redis_url, tmp_path)):
        yield client


@pytest.mark.parametrize(("body", "fragment"), [
    ({"seed": ""}, "seed: seed must not be empty"),
    ({"seed": "abcdefghijk"}, "at most 10 characters"),
    ({"seed": "ab\ncd"}, "control characters"),
    ({"seed": 12}, "seed"),
    ({}, "seed: Field required"),
    ({"seed": "ok", "worldgen_version": 7}, "worldgen_version"),
    ({"seed": "ok", "resolution": 3}, "resolution"),
    ({"seed": "ok", "extra": 1}, "extra"),
])
async def test_bad_bodies_get_422_with_a_message(api: httpx.AsyncClient, body: dict[str, object],
                                                 fragment: str) -> None:
    r = await api.post("/v1/worlds", json=body)
    assert r.status_code == 422, r.text
    assert fragment in r.json()["error"]["message"]


async def test_queue_cap_answers_429_with_retry_after(api: httpx.AsyncClient) -> None:
    assert (await api.post("/v1/worlds", json={"seed": "q1"})).status_code == 202
    assert (await api.post("/v1/worlds", json={"seed": "q2"})).status_code == 202
    full = await api.post("/v1/worlds", json={"seed": "q3"})
    assert full.status_code == 429
    assert int(full.headers["retry-after"]) > 0
    assert full.json()["error"]["code"] == "queue_full"
    # Joining a queued job is not a new one.
    assert (await api.post("/v1/worlds", json={"seed": "q1"})).status_code == 202


async def test_bad_ids_names_and_json_are_4xx_never_500(api: httpx.AsyncClient) -> None:
    job_id = (await api.post("/v1/worlds", json={"seed": "paths"})).json()["job_id"]
    cases = {
        "/v1/jobs/nothex": 422,
        f"/v1/jobs/{'0' * 32}": 404,
        f"/v1/jobs/{job_id}/artifacts/..%2F..%2Fetc%2Fpasswd": 422,
        f"/v1/jobs/{job_id}/artifacts/world.json": 404,
        "/v1/nope": 404,
    }
    for path, status in cases.items():
        r = await api.get(path)
        assert r.status_code == status, (path, r.text)
        assert "message" in r.json()["error"]
    raw = await api.post("/v1/worlds", content=b"{not json",
                         headers={"content-type": "application/json"})
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "invalid_json"
    huge = await api.post("/v1/worlds", content=b'{"seed": "ok"' + b" " * 200_000 + b"}",
                          headers={"content-type": "application/json"})
    assert huge.status_code == 413 and "message" in huge.json()["error"], huge.text


async def test_patch_needs_the_token(api: httpx.AsyncClient) -> None:
    assert (await api.patch("/v1/pool", json={"size": 2})).status_code == 401
    wrong = await api.patch("/v1/pool", json={"size": 2},
                            headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"


async def test_admin_routes_refuse_without_a_configured_token(
        no_token_api: httpx.AsyncClient) -> None:
    r = await no_token_api.patch("/v1/pool", json={"size": 1},
                                 headers={"Authorization": "Bearer anything"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_disabled"


async def test_a_conflicting_policy_is_409(api: httpx.AsyncClient) -> None:
    r = await api.patch("/v1/pool", json={"size": 9, "max": 3}, headers=AUTH)
    assert r.status_code == 409 and "size" in r.json()["error"]["message"], r.text


# Issue 13, items 7 and 8: each was once accepted (and persisted).
@pytest.mark.parametrize("body", [
    b'{"max_age_s": 5e-324}', b'{"max_uses": 4.1e26}', b'{"idle_ttl_s": 1.2e-148}',
    b'{"min": 303}', b'{"idle_ttl_s": Infinity}', b'{"idle_ttl_s": 1e999}',
    b'{"max_age_s": NaN}', b'{"size": true}', b'{"autoscale": 1}',
])
async def test_degenerate_policy_values_are_422_and_not_persisted(
        api: httpx.AsyncClient, settings: Settings, redis_client: redis.Redis,
        body: bytes) -> None:
    r = await api.patch("/v1/pool", content=body,
                        headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 422, r.text
    field = body.decode().split('"')[1]
    assert field in r.json()["error"]["message"]
    shown = (await api.get("/v1/pool")).json()
    assert shown["max_age_s"] == 3600 and math.isfinite(shown["idle_ttl_s"])
    assert not redis_client.exists(keys.key(keys.POLICY_KEY, settings.pool_name))


async def test_a_valid_patch_is_persisted_in_the_policy_hash(
        api: httpx.AsyncClient, settings: Settings, redis_client: redis.Redis) -> None:
    r = await api.patch("/v1/pool", json={"size": 1, "max": 4, "idle_ttl_s": 120}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["idle_ttl_s"] == 120 and r.json()["max"] == 4
    raw: dict[bytes, bytes] = redis_client.hgetall(  # type: ignore[assignment]
        keys.key(keys.POLICY_KEY, settings.pool_name))
    stored = {k.decode(): v.decode() for k, v in raw.items()}
    assert float(stored["idle_ttl_s"]) == 120 and stored["max"] == "4"
    assert stored["autoscale"] == "0"


async def test_api_docs_load_nothing_from_outside(api: httpx.AsyncClient) -> None:
    """/docs and /redoc work on a machine without internet: every script, style and icon
    they reference is served by the daemon itself."""
    for page in ("/docs", "/redoc"):
        r = await api.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        refs = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', r.text)
        refs += re.findall(r"url:\s*'([^']+)'", r.text)
        assert refs, r.text
        for ref in refs:
            assert not re.match(r"(https?:)?//", ref), f"{page} loads {ref} from outside"
            assert (await api.get(ref)).status_code == 200, f"{page}: {ref}"


async def test_every_operation_documents_503(api: httpx.AsyncClient) -> None:
    """The in-flight cap (api/httpguard.py) and a Redis outage can answer 503 on any route,
    so every operation's description lists it."""
    schema = (await api.get("/openapi.json")).json()
    missing = [f"{method.upper()} {path}" for path, item in schema["paths"].items()
               for method, op in item.items() if "503" not in op.get("responses", {})]
    assert not missing, missing
