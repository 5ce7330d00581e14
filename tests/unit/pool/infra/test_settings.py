"""Settings: the fixed names, documented defaults, and clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from pool.core.exceptions import ConfigError
from pool.infra.settings import ENV_PREFIX, Settings, load_settings

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[4] / "config" / "settings.env.example"


def documented() -> dict[str, str]:
    pattern = re.compile(r"^#?\s*(VWE_[A-Z0-9_]+)=(.*)$")
    return {m[1]: m[2] for line in EXAMPLE.read_text().splitlines()
            if (m := pattern.match(line))}


def test_every_setting_is_documented_with_its_default() -> None:
    docs = documented()
    for name, field in Settings.model_fields.items():
        env = f"{ENV_PREFIX}{name.upper()}"
        assert env in docs, f"{env} missing from config/settings.env.example"
        if field.default is not None and not callable(field.default_factory):
            default = field.default
            shown = docs[env]
            if isinstance(default, bool):
                assert shown == str(default).lower(), env
            elif isinstance(default, (int, float)):
                assert float(shown) == float(default), env
            else:
                assert shown == str(default), env


def test_contract_names_exist() -> None:
    for name in ("redis_url", "pool_size", "pool_max", "api_host", "api_port", "data_dir",
                 "worker_image", "api_token"):
        assert name in Settings.model_fields
    assert Settings.model_fields["api_port"].default == 8080


def test_invalid_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VWE_POOL_SIZE", "lots")
    with pytest.raises(ConfigError, match=r"VWE_POOL_SIZE: .*integer.*'lots'"):
        load_settings(_env_file=None)


def test_a_reclaim_limit_below_two_heartbeats_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Peers would take running jobs whose daemon re-claims them every PUBLISH_INTERVAL_S.
    monkeypatch.setenv("VWE_RECLAIM_IDLE_S", "3")
    with pytest.raises(ConfigError, match=r"VWE_RECLAIM_IDLE_S: .*greater than or equal to 4"):
        load_settings(_env_file=None)
    monkeypatch.setenv("VWE_RECLAIM_IDLE_S", "4")
    assert load_settings(_env_file=None).reclaim_idle_s == 4


def test_size_above_max_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VWE_POOL_SIZE", "5")
    monkeypatch.setenv("VWE_POOL_MAX", "2")
    with pytest.raises(ConfigError, match=r"VWE_POOL_SIZE .* must not exceed VWE_POOL_MAX"):
        load_settings(_env_file=None)


def test_settings_are_frozen_and_token_is_secret() -> None:
    s = Settings(_env_file=None, api_token="hunter2")
    assert "hunter2" not in repr(s)
    with pytest.raises(ValidationError, match="frozen"):
        s.pool_size = 3  # type: ignore[misc]
