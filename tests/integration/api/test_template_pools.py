"""One pool per template: a daemon serving `default` and `preview`, jobs naming a template,
each template's pool managed on its own."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
from apiclient import eventually, submit, wait_job
from conftest import DaemonProcess

from pool.store import keys

pytestmark = pytest.mark.integration

TEMPLATES = """
[templates.default]
[templates.preview]
memory = "256m"
size = 1
max = 2
options = { resolution = 32 }
"""


def test_a_pool_per_template(daemon_factory: Callable[..., DaemonProcess],
                             data_dir: Path, pool_name: str,
                             redis_client: redis.Redis) -> None:
    (data_dir / "templates.toml").write_text(TEMPLATES)
    d = daemon_factory(VWE_TEMPLATES_FILE=str(data_dir / "templates.toml"),
                       VWE_TEMPLATES="default,preview", VWE_API_TOKEN="s3cret",
                       VWE_MAP_RESOLUTION="64").start(wait_warm=2)
    ready = httpx.get(f"{d.url}/readyz", timeout=5).json()
    assert ready["templates"] == {"default": 1, "preview": 1}

    preview = wait_job(d.url, submit(d.url, "TplSeed", template="preview").json()["job_id"])
    plain = wait_job(d.url, submit(d.url, "TplSeed").json()["job_id"])
    assert preview["status"] == plain["status"] == "succeeded", (preview, plain)
    # Same seed, another template: another job, on that template's own containers, with its
    # default options.
    assert preview["job_id"] != plain["job_id"]
    assert (preview["template"], plain["template"]) == ("preview", "default")
    assert (preview["options"]["resolution"], plain["options"]["resolution"]) == (32, 64)
    pools = {t: httpx.get(f"{d.url}/v1/pool/{t}", timeout=5).json()
             for t in ("default", "preview")}
    names = {t: {c["name"] for c in p["containers"]} for t, p in pools.items()}
    assert names["default"] and names["preview"] and not names["default"] & names["preview"]
    assert all("-preview-" in n for n in names["preview"])
    assert (pools["preview"]["size"], pools["preview"]["max"]) == (1, 2)
    assert httpx.get(f"{d.url}/v1/pool", timeout=5).json()["size"] == pools["default"]["size"]
    biomes = httpx.get(d.url + next(a["url"] for a in preview["artifacts"]
                                    if a["name"] == "biomes.npy"), timeout=10)
    assert np.load(io.BytesIO(biomes.content)).shape == (32, 32)

    # Managed one at a time: PATCH preview leaves default alone.
    r = httpx.patch(f"{d.url}/v1/pool/preview", json={"size": 2}, timeout=10,
                    headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 200 and r.json()["size"] == 2
    assert httpx.get(f"{d.url}/v1/pool", timeout=5).json()["size"] == pools["default"]["size"]
    eventually(lambda: sum(c["state"] == "warm" for c in httpx.get(
        f"{d.url}/v1/pool/preview", timeout=5).json()["containers"]) == 2, timeout=60)
    # Persisted under the template's own key; the default template's policy is untouched.
    assert redis_client.hget(keys.key(keys.POLICY_KEY, keys.scope(pool_name, "preview")),
                             "size") == b"2"
    assert not redis_client.exists(keys.key(keys.POLICY_KEY, pool_name))
    # Each template's arrivals are its own (the autoscaler and `simulate --from-redis`).
    assert redis_client.zcard(keys.key(keys.ARRIVALS_KEY, keys.scope(pool_name, "preview"))) \
        == redis_client.zcard(keys.key(keys.ARRIVALS_KEY, pool_name)) == 1

    # An API process (no pool) takes a preview job; the worker's preview pool runs it.
    api = daemon_factory(VWE_TEMPLATES_FILE=str(data_dir / "templates.toml")).start(role="api")
    via_api = wait_job(api.url, submit(api.url, "TplApi", template="preview").json()["job_id"])
    assert via_api["status"] == "succeeded" and via_api["options"]["resolution"] == 32
    seen = httpx.get(f"{api.url}/v1/pool/preview", timeout=5).json()
    # It sees the preview pool as the worker publishes it: that template's containers only.
    assert seen["template"] == "preview" and seen["size"] == 2
    assert seen["containers"] and all("-preview-" in c["name"] for c in seen["containers"])

    metrics = httpx.get(f"{d.url}/metrics", timeout=5).text
    assert 'vwe_pool_target{template="preview"} 2.0' in metrics
    assert 'vwe_acquire_total{launch_type="warm",template="preview"}' in metrics \
        or 'vwe_acquire_total{launch_type="cold",template="preview"}' in metrics
    # One series, not one per template.
    assert sum(line.startswith("vwe_queue_depth ") for line in metrics.splitlines()) == 1

    bad = submit(d.url, "TplSeed", template="huge")
    assert bad.status_code == 404 and "defined: default, preview" in bad.json()["error"]["message"]
    missing = httpx.get(f"{d.url}/v1/pool/huge", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "template_not_found"


def test_an_unknown_served_template_stops_start_up(
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    d = daemon_factory(VWE_TEMPLATES="default,nosuch")
    with pytest.raises(RuntimeError, match="no template 'nosuch'; defined: default"):
        d.start(timeout=30)
    assert d.proc is not None and d.proc.wait(10) == 2
