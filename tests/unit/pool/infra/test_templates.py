"""Templates from TOML: defaults, overrides, and errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from api.models import WorldRequest
from pool.core.exceptions import ConfigError
from pool.infra.settings import Settings
from pool.infra.templates import DEFAULT, load_templates, served, template_settings
from pool.store import keys
from pool.store.job_store import JobStore

pytestmark = pytest.mark.unit
EXAMPLE = Path(__file__).resolve().parents[4] / "config" / "templates.toml"


def base(**overrides: object) -> Settings:
    values: dict[str, object] = {"pool_size": 2, "pool_max": 8, "worker_memory": "1g",
                                 "instance_id": "host-1", **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_the_example_file_loads_and_preview_overrides_the_settings() -> None:
    templates = load_templates(EXAMPLE)
    assert set(templates) == {"default", "preview"}
    preview = templates["preview"].settings_for(base())
    assert (preview.template, preview.pool_size, preview.pool_max) == ("preview", 1, 4)
    assert (preview.worker_memory, preview.worker_cpus, preview.map_resolution) == \
        ("256m", 0.5, 512)
    # Its own lease and stream consumer; `default` keeps the instance id as it is.
    assert preview.instance_id == "host-1.preview"
    default = templates[DEFAULT].settings_for(base())
    assert (default.template, default.instance_id) == ("default", "host-1")
    assert (default.pool_size, default.pool_max, default.worker_memory) == (2, 8, "1g")
    assert templates["preview"].options.as_dict() == {"resolution": 512}
    assert templates[DEFAULT].options.as_dict() == {}


def test_no_file_means_only_default() -> None:
    assert list(load_templates(None)) == [DEFAULT]


def test_a_file_without_default_still_has_it(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[templates.big]\nimage = 'vwe-worker:big'\nmax = 16\n")
    templates = load_templates(path)
    assert set(templates) == {"default", "big"}
    big = templates["big"].settings_for(base())
    assert (big.worker_image, big.pool_max, big.pool_size) == ("vwe-worker:big", 16, 2)


@pytest.mark.parametrize(("text", "message"), [
    ("[templates.big]\nsize = 5\nmax = 2\n", r"template 'big': .*size \(5\) must not exceed"),
    ("[templates.x]\ncolour = 'red'\n", r"template 'x': colour: Extra inputs"),
    ("[templates.x]\noptions = { resolution = 8 }\n",
     r"template 'x': options.resolution: .*greater than or equal to 16 \(got 8\)"),
    ("[templates.x]\noptions = { layers = ['rivers'] }\n", r"template 'x': options.layers.0"),
    ("[templates.x]\nmemory = 'lots'\n", r"template 'x': memory: String should match"),
    ("[templates.x]\nsize = 300\n", r"template 'x': size: .*less than or equal to 256"),
    ("[templates.x]\ncpus = 'two'\n", r"template 'x': cpus: .*valid number"),
    ("[templates.Bad_Name]\n", r"template 'Bad_Name': name: String should match"),
    ("[templates]\nx = 3\n", r"template 'x': expected a table \(\[templates.x\]\), found int"),
    ("[pools.x]\n", r"expected only \[templates.NAME\] tables, found pools"),
    ("[templates.x\n", r"VWE_TEMPLATES_FILE: .* is not valid TOML"),
])
def test_a_bad_file_is_refused_naming_the_file_template_and_field(
        tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_templates(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"VWE_TEMPLATES_FILE: cannot read .*nope.toml"):
        load_templates(tmp_path / "nope.toml")


def test_a_template_whose_size_exceeds_the_settings_max_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[templates.wide]\nsize = 9\n")
    templates = load_templates(path)
    with pytest.raises(ConfigError, match=r"template 'wide': its pool size \(9\) must not "
                                          r"exceed max \(8\)"):
        template_settings(base(), templates)


def test_a_template_instance_id_must_fit() -> None:
    templates = load_templates(EXAMPLE)
    with pytest.raises(ConfigError, match=r"template 'preview': instance id .* longer than"):
        templates["preview"].settings_for(base(instance_id="i" * 95))


def test_served_names_must_be_defined() -> None:
    templates = load_templates(EXAMPLE)
    assert served("default, preview", templates) == ["default", "preview"]
    assert served("preview,preview", templates) == ["preview"]
    assert served("", templates) == ["default"]
    with pytest.raises(ConfigError, match="no template 'huge'; defined: default, preview"):
        served("huge", templates)


def test_template_options_apply_where_the_request_gives_none() -> None:
    defaults = {"resolution": 512, "layers": ["heights", "biomes"], "legacy_fwl": True}
    plain = WorldRequest.model_validate({"seed": "abc"})
    assert plain.options(2048, defaults) == {
        "worldgen_version": 2, "legacy_fwl": True, "resolution": 512,
        "layers": ["biomes", "heights"]}
    own = WorldRequest.model_validate({"seed": "abc", "resolution": 64, "layers": ["biomes"],
                                       "legacy_fwl": False, "template": "preview"})
    assert own.options(2048, defaults) == {
        "worldgen_version": 2, "legacy_fwl": False, "resolution": 64, "layers": ["biomes"]}
    # No template defaults: the settings' resolution, as before templates.
    assert plain.options(256) == {"worldgen_version": 2, "legacy_fwl": False,
                                  "resolution": 256, "layers": ["biomes"]}


def test_each_template_has_its_own_queue_keys_and_default_keeps_the_old_ones() -> None:
    client = aioredis.Redis()  # no connection is made
    default = JobStore(client, "vwe", 60, 10)
    preview = JobStore(client, "vwe", 60, 10, template="preview")
    assert default.stream == "vwe:stream:jobs" and preview.stream == "vwe/preview:stream:jobs"
    assert default.depth_key != preview.depth_key
    # Records and events are shared, so any process finds a job by its id alone.
    assert default.job_prefix == preview.job_prefix and default.events == preview.events
    # The same seed and options under another template is another world.
    assert default.seed_key("s", "2", {}) != preview.seed_key("s", "2", {})
    assert keys.scope("vwe", DEFAULT) == "vwe"
    assert keys.scope("vwe", "preview") == "vwe/preview"
