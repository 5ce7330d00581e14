"""The pool policy, defined once: its fields, their types and operational bounds, their
settings names, and how a persisted value is read back (docs/architecture.md, "Pool policy").

Everything else derives from `FIELDS`: the settings (`pool.infra.settings`) take their
bounds from it, `PATCH /v1/pool`'s body (`api.models.PoolPatch`) takes its fields and bounds
from it, the store writes and reads the Redis hash through `to_hash` and `overlay`.

The bounds are operational: no value inside them can make the pool boot without pause (a
container recycled at most once a minute by age or idleness, at most a million uses, at most
`MAX_CONTAINERS` containers). Numbers must be finite, and a boolean is never a number (nor a
number a boolean): `{"size": true}` and `Infinity` are refused, not read as 1 and forever.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

# The most containers one pool may hold (size, max, min): a bound far above one host's
# capacity, low enough that a typo (303 for 3) is refused rather than booted.
MAX_CONTAINERS = 256
# The shortest max age and idle time: a container lives at least a minute.
MIN_LIFETIME_S = 60.0
# The longest max age, idle time and surplus grace: thirty days.
MAX_LIFETIME_S = 30 * 24 * 3600.0


@dataclass(frozen=True)
class PolicyField:
    """One field of the policy: its type (int, float or bool), its inclusive bounds, the
    settings variable it comes from, whether PATCH /v1/pool may change it, and what it means."""

    name: str
    kind: type
    env: str
    lo: float | None = None
    hi: float | None = None
    patchable: bool = True
    doc: str = ""

    def check(self, value: object) -> None:
        """Raises PolicyError when `value` is not of this field's kind or not within bounds."""
        if self.kind is bool:
            if not isinstance(value, bool):
                raise PolicyError(self.name, f"must be true or false, got {value!r}")
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PolicyError(self.name, f"must be a number, got {value!r}")
        if self.kind is int and not isinstance(value, int):
            raise PolicyError(self.name, f"must be a whole number, got {value!r}")
        if not math.isfinite(value):
            raise PolicyError(self.name, f"must be a finite number, got {value!r}")
        if (self.lo is not None and value < self.lo) or (self.hi is not None
                                                          and value > self.hi):
            raise PolicyError(self.name, f"must be within {self.bounds()}, got {value!r}")

    def field_constraints(self) -> dict[str, Any]:
        """Keyword arguments for a pydantic `Field`: the bounds (ge/le) and, for floats,
        finiteness; shared by the settings and the PATCH body so both refuse alike."""
        out: dict[str, Any] = {}
        if self.lo is not None:
            out["ge"] = self.kind(self.lo)
        if self.hi is not None:
            out["le"] = self.kind(self.hi)
        if self.kind is float:
            out["allow_inf_nan"] = False
        return out

    def bounds(self) -> str:
        def show(x: float) -> str:
            return f"{x:g}"

        if self.lo is not None and self.hi is not None:
            return f"{show(self.lo)}..{show(self.hi)}"
        return f">= {show(self.lo)}" if self.lo is not None else f"<= {show(self.hi or 0)}"

    def parse(self, text: str) -> int | float | bool:
        """A value as stored in Redis or the environment; raises PolicyError when invalid."""
        value: int | float | bool
        try:
            if self.kind is bool:
                if text.lower() not in ("1", "0", "true", "false"):
                    raise ValueError(text)
                value = text.lower() in ("1", "true")
            elif self.kind is int:
                value = int(text)
            else:
                value = float(text)
        except ValueError:
            raise PolicyError(self.name, f"cannot read {text!r} as {self.kind.__name__}") from None
        self.check(value)
        return value


class PolicyError(ValueError):
    """A policy value (or combination) is invalid; `field` names the policy field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


FIELDS: tuple[PolicyField, ...] = (
    PolicyField("size", int, "VWE_POOL_SIZE", 0, MAX_CONTAINERS,
                doc="warm target: containers booted and idle, ready for a job"),
    PolicyField("max", int, "VWE_POOL_MAX", 1, MAX_CONTAINERS,
                doc="hard cap on containers in every state"),
    PolicyField("min", int, "VWE_POOL_MIN", 0, MAX_CONTAINERS,
                doc="the autoscaler's floor"),
    PolicyField("max_age_s", float, "VWE_MAX_AGE_S", MIN_LIFETIME_S, MAX_LIFETIME_S,
                doc="seconds after which an idle container is replaced"),
    PolicyField("max_uses", int, "VWE_MAX_USES", 1, 1_000_000,
                doc="jobs after which a container is replaced"),
    PolicyField("idle_ttl_s", float, "VWE_IDLE_TTL_S", MIN_LIFETIME_S, MAX_LIFETIME_S,
                doc="seconds unused after which a container is replaced"),
    PolicyField("max_concurrent_boots", int, "VWE_MAX_CONCURRENT_BOOTS", 1, 64,
                patchable=False, doc="containers booting at once"),
    PolicyField("autoscale", bool, "VWE_AUTOSCALE",
                doc="the warm target follows demand between min and max"),
    PolicyField("surplus_idle_s", float, "VWE_SURPLUS_IDLE_S", 0, MAX_LIFETIME_S,
                doc="seconds a container above the target is kept after its last job"),
)
BY_NAME = {f.name: f for f in FIELDS}
PATCHABLE = tuple(f for f in FIELDS if f.patchable)


@dataclass(frozen=True)
class PoolPolicy:
    """What operators tune; replaced whole when PATCH /v1/pool changes it. Raises PolicyError
    (a ValueError) when a field is out of `FIELDS`' bounds or size/min exceed max."""

    size: int
    max: int
    min: int = 0
    max_age_s: float = 3600.0
    max_uses: int = 100
    idle_ttl_s: float = 1800.0
    max_concurrent_boots: int = 2
    autoscale: bool = False
    # A container above the target is kept this long after its last job, for the next one:
    # replacing each leased container at once and shedding it on return would cost a boot
    # per job under steady load.
    surplus_idle_s: float = 60.0

    def __post_init__(self) -> None:
        for f in FIELDS:
            f.check(getattr(self, f.name))
        if self.size > self.max:
            raise PolicyError("size", f"({self.size}) must not exceed max ({self.max}): "
                                      "need size <= max")
        if self.min > self.max:
            raise PolicyError("min", f"({self.min}) must not exceed max ({self.max}): "
                                     "need min <= max")

    def updated(self, **changes: Any) -> PoolPolicy:
        """A copy with `changes` (None values ignored); raises PolicyError."""
        unknown = set(changes) - BY_NAME.keys()
        if unknown:
            raise PolicyError(sorted(unknown)[0], "is not a pool policy field")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_hash(self) -> dict[str, str]:
        """As stored in Redis: every field, booleans as 1/0, numbers in full precision."""
        return {f.name: (str(int(v)) if isinstance(v := getattr(self, f.name), bool)
                         else repr(v)) for f in FIELDS}

    def overlay(self, raw: dict[str, str]) -> tuple[PoolPolicy, list[str]]:
        """This policy with the valid fields of a stored hash laid over it, and what was
        ignored and why (unknown fields are ignored silently: an older or newer version's)."""
        changes: dict[str, Any] = {}
        problems: list[str] = []
        for name, text in raw.items():
            spec = BY_NAME.get(name)
            if spec is None:
                continue
            try:
                changes[name] = spec.parse(text)
            except PolicyError as exc:
                problems.append(str(exc))
        try:
            return self.updated(**changes), problems
        except PolicyError as exc:
            return self, [*problems, f"the stored policy as a whole: {exc}"]

