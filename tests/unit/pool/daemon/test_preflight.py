"""Start-up checks of settings that would make the pool unusable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pool.core.exceptions import ConfigError
from pool.daemon.preflight import (
    UNIX_PATH_MAX,
    check_data_dir,
    check_settings,
    check_socket_path,
    check_worker_image,
    check_worker_resources,
    check_worker_user,
    parse_worker_user,
)

pytestmark = pytest.mark.unit


def test_a_data_dir_that_pushes_socket_paths_over_the_unix_limit_is_refused(
        tmp_path: Path) -> None:
    long_dir = tmp_path / ("d" * 80)
    with pytest.raises(ConfigError, match=r"VWE_DATA_DIR .* over the 107-byte unix socket limit"):
        check_socket_path(long_dir, "vwe", "default")


def test_the_longest_socket_path_that_fits_is_accepted(tmp_path: Path) -> None:
    sockets = len(os.fsencode((tmp_path / "c").resolve()))
    name = len("vwe-default-") + 10
    room = UNIX_PATH_MAX - sockets - 1 - name - 1 - len("agent.sock") - 1
    fits = tmp_path / ("d" * room)
    check_socket_path(fits, "vwe", "default")
    with pytest.raises(ConfigError, match="VWE_DATA_DIR"):
        check_socket_path(tmp_path / ("d" * (room + 1)), "vwe", "default")


@pytest.mark.parametrize("user", ["vwe", "10001:vwe", "", "-1", "0", "0:0", "10001:"])
def test_a_worker_user_that_is_not_a_numeric_non_root_uid_is_refused(user: str) -> None:
    with pytest.raises(ConfigError, match="VWE_WORKER_USER"):
        parse_worker_user(user)


def test_worker_user_forms() -> None:
    assert parse_worker_user("10001") == (10001, 10001)
    assert parse_worker_user("10001:20") == (10001, 20)


def test_a_non_root_daemon_with_another_worker_uid_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"VWE_WORKER_USER=10001:10001 .* uid 10002"):
        check_worker_user("10001:10001", euid=10002)
    assert check_worker_user("10002:10002", euid=10002) == (10002, 10002)
    assert check_worker_user("10001:10001", euid=0) == (10001, 10001)


def test_a_data_dir_the_daemon_cannot_write_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=r"VWE_DATA_DIR .* is not usable"):
        check_data_dir(blocker / "data", 10001, 10001, euid=os.geteuid())


def test_a_usable_data_dir_passes_and_is_left_clean(tmp_path: Path) -> None:
    check_settings(tmp_path / "data", "vwe", "default", f"{os.geteuid() or 10001}:10001")
    assert list((tmp_path / "data" / "c").iterdir()) == []


def test_worker_resources_beyond_the_engine_are_refused_naming_the_variable() -> None:
    gib = 1 << 30
    check_worker_resources(2.0, "1g", gib, engine_cpus=2, engine_memory=gib)  # exactly fits
    with pytest.raises(ConfigError, match=r"VWE_WORKER_CPUS=2.5: .* only 2 CPUs"):
        check_worker_resources(2.5, "1g", gib, engine_cpus=2, engine_memory=4 * gib)
    with pytest.raises(ConfigError, match=r"VWE_WORKER_MEMORY=8g: .* only 4096 MiB"):
        check_worker_resources(1.0, "8g", 8 * gib, engine_cpus=2, engine_memory=4 * gib)


def test_a_missing_worker_image_is_refused_naming_the_variable() -> None:
    assert check_worker_image("vwe-worker:x", "sha256:ab") == "sha256:ab"
    with pytest.raises(ConfigError, match="VWE_WORKER_IMAGE='vwe-worker:x': no such image"):
        check_worker_image("vwe-worker:x", None)
