"""Worker templates: named kinds of worker, each served by a warm pool of its own.

A template fixes the image, the container resources, the pool's size and cap, and default job
options (for example a lower `resolution` for previews). They are read from a TOML file
(`VWE_TEMPLATES_FILE`, example in `config/templates.toml`):

    [templates.preview]
    image = "vwe-worker:latest"
    memory = "256m"
    cpus = 0.5
    size = 1
    max = 4
    options = { resolution = 512 }

Anything a template leaves out comes from the `VWE_*` settings. The template `default` always
exists (from the settings alone unless the file defines it) and is what a job without a
`template` names. A daemon runs a pool for each template `--templates` / `VWE_TEMPLATES` lists
(docs/deploy.md, "Templates").

Errors are `ConfigError`s that name the file, the template and the field.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pool.core.exceptions import ConfigError
from pool.core.jobs import DEFAULT_TEMPLATE
from pool.core.pool_policy import BY_NAME, PolicyError
from pool.infra.settings import Settings

DEFAULT = DEFAULT_TEMPLATE
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,31}$"
# VWE_INSTANCE_ID's own limit (pool.infra.settings): a template's instance id is
# "<instance>.<template>" and must fit too.
MAX_INSTANCE_ID = 100


class TemplateOptions(BaseModel):
    """Default job options of a template (the fields of a `POST /v1/worlds` body); a
    request's own values win."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    resolution: int | None = Field(None, ge=16, le=4096)
    worldgen_version: int | None = Field(None, ge=0, le=2)
    legacy_fwl: bool | None = None
    layers: tuple[Literal["biomes", "heights"], ...] | None = Field(None, min_length=1)

    def as_dict(self) -> dict[str, Any]:
        """The options set, JSON-shaped (layers as a list); {} when none is."""
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in self.model_dump(exclude_none=True).items()}


class Template(BaseModel):
    """One `[templates.NAME]` table; None means "the VWE_* setting"."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=NAME_PATTERN)
    image: str | None = Field(None, min_length=1)
    memory: str | None = Field(None, pattern=r"^[0-9]+[bkmg]?$")
    cpus: float | None = Field(None, gt=0, allow_inf_nan=False)
    pids: int | None = Field(None, ge=16)
    # The policy's own bounds (pool.core.pool_policy.FIELDS), as VWE_POOL_SIZE/MAX have.
    size: int | None = Field(None, **BY_NAME["size"].field_constraints())
    max: int | None = Field(None, **BY_NAME["max"].field_constraints())
    options: TemplateOptions = TemplateOptions()

    @model_validator(mode="after")
    def _size_fits(self) -> Template:
        if self.size is not None and self.max is not None and self.size > self.max:
            raise ValueError(f"size ({self.size}) must not exceed max ({self.max})")
        return self

    def settings_for(self, base: Settings) -> Settings:
        """`base` with this template's name, image, resources, size, cap and resolution; a
        template other than `default` gets the instance id "<VWE_INSTANCE_ID>.<name>" (each
        template's daemon holds its own lease and stream consumer).

        Raises ConfigError when the result breaks a rule (its size above its max, the
        instance id too long)."""
        update: dict[str, Any] = {"template": self.name}
        if self.name != DEFAULT:
            update["instance_id"] = f"{base.instance_id}.{self.name}"
        for name, setting in (("image", "worker_image"), ("memory", "worker_memory"),
                              ("cpus", "worker_cpus"), ("pids", "worker_pids"),
                              ("size", "pool_size"), ("max", "pool_max")):
            value = getattr(self, name)
            if value is not None:
                update[setting] = value
        if self.options.resolution is not None:
            update["map_resolution"] = self.options.resolution
        # Every value was validated on its own (here or as a setting); what is left to check
        # is how they combine.
        settings = base.model_copy(update=update)
        try:
            settings.pool_policy()
        except PolicyError as exc:
            raise ConfigError(f"template {self.name!r}: its pool {exc} (size and max from "
                              f"the template, else VWE_POOL_SIZE/VWE_POOL_MAX)") from None
        if len(settings.instance_id) > MAX_INSTANCE_ID:
            raise ConfigError(f"template {self.name!r}: instance id {settings.instance_id!r} "
                              f"is longer than {MAX_INSTANCE_ID} characters; shorten "
                              "VWE_INSTANCE_ID or the template's name")
        return settings


def load_templates(path: Path | None) -> dict[str, Template]:
    """Every template of the TOML file at `path` (None: no file), plus `default` when the file
    does not define it.

    Raises:
        ConfigError: the file cannot be read, is not TOML, holds anything but
            `[templates.NAME]` tables, or a template is invalid; the message names the file,
            the template and the field.
    """
    templates: dict[str, Template] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"VWE_TEMPLATES_FILE: cannot read {path}: "
                              f"{exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"VWE_TEMPLATES_FILE: {path} is not valid TOML: {exc}") from None
        section = data.get("templates", {})
        unknown = sorted(set(data) - {"templates"})
        if unknown or not isinstance(section, dict):
            found = unknown or [f"templates = {type(section).__name__}"]
            raise ConfigError(f"{path}: expected only [templates.NAME] tables, found "
                              f"{', '.join(found)}")
        for name, fields in section.items():
            if not isinstance(fields, dict):
                raise ConfigError(f"{path}: template {name!r}: expected a table "
                                  f"([templates.{name}]), found {type(fields).__name__}")
            try:
                templates[name] = Template(name=name, **fields)
            except ValidationError as exc:
                raise ConfigError(f"{path}: template {name!r}: {_describe(exc)}") from None
    templates.setdefault(DEFAULT, Template(name=DEFAULT))
    return templates


def _describe(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'template'}: {e['msg']}"
                     + ("" if isinstance(e.get("input"), dict) else f" (got {e.get('input')!r})")
                     for e in exc.errors(include_url=False))


def served(names: str, templates: dict[str, Template]) -> list[str]:
    """The comma-separated template names to run a pool for, checked against the defined
    ones, in order and without repeats; `default` when empty.

    Raises ConfigError naming the unknown template and the defined ones."""
    wanted: list[str] = []
    for name in (n.strip() for n in names.split(",")):
        if not name or name in wanted:
            continue
        if name not in templates:
            raise ConfigError(f"--templates/VWE_TEMPLATES: no template {name!r}; defined: "
                              f"{', '.join(sorted(templates))}")
        wanted.append(name)
    return wanted or [DEFAULT]


def template_settings(base: Settings, templates: dict[str, Template]) -> dict[str, Settings]:
    """Each template's settings (`Template.settings_for`); raises ConfigError for the first
    template that breaks a rule."""
    return {name: t.settings_for(base) for name, t in templates.items()}
