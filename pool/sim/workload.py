"""Workloads for the simulator: service-time distributions and arrival traces.

A trace is a list of arrival offsets in seconds: Poisson, read from a file, or taken from the
daemon's own Redis records (`{pool}:arrivals` and the job hashes), with the boot-time and
generation-time distributions fitted from the same records.
"""

from __future__ import annotations

import csv
import json
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Offsets larger than this are taken for unix times and shifted to start at 0.
UNIX_TIME_THRESHOLD = 1e8


# ---------------------------------------------------------------------------------------------
# Distributions
# ---------------------------------------------------------------------------------------------
class Distribution(Protocol):
    def sample(self, rng: random.Random) -> float: ...

    def mean(self) -> float: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Constant:
    value: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.value) or self.value < 0:
            raise ValueError(f"a duration must be a finite number >= 0, got {self.value}")

    def sample(self, rng: random.Random) -> float:
        return self.value

    def mean(self) -> float:
        return self.value

    def describe(self) -> str:
        return f"const:{self.value:g}"


@dataclass(frozen=True)
class LogNormal:
    """exp(N(mu, sigma)): `mu` and `sigma` are the mean and std of the logs."""

    mu: float
    sigma: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mu) and math.isfinite(self.sigma)) or self.sigma < 0:
            raise ValueError(f"lognormal needs a finite mu and sigma >= 0, got "
                             f"mu={self.mu} sigma={self.sigma}")

    @classmethod
    def from_mean_std(cls, mean: float, std: float) -> LogNormal:
        """The lognormal whose own mean and standard deviation (in seconds) are these."""
        if mean <= 0 or std < 0:
            raise ValueError(f"lognormal needs mean > 0 and std >= 0, got {mean},{std}")
        sigma2 = math.log1p((std / mean) ** 2)
        return cls(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))

    @classmethod
    def fit(cls, samples: Sequence[float]) -> LogNormal:
        """Maximum likelihood: the mean and (population) std of the logs."""
        logs = [math.log(s) for s in samples if s > 0]
        if not logs:
            raise ValueError("cannot fit a lognormal: no positive samples")
        return cls(statistics.fmean(logs), statistics.pstdev(logs) if len(logs) > 1 else 0.0)

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(self.mu, self.sigma)

    def mean(self) -> float:
        return math.exp(self.mu + self.sigma**2 / 2)

    def describe(self) -> str:
        std = self.mean() * math.sqrt(math.expm1(self.sigma**2))
        return f"lognormal:{self.mean():.3g},{std:.3g}"


@dataclass(frozen=True)
class Empirical:
    """Resamples recorded values uniformly."""

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("an empirical distribution needs at least one value")
        if any(not math.isfinite(v) or v < 0 for v in self.values):
            raise ValueError("empirical durations must be finite numbers >= 0")

    def sample(self, rng: random.Random) -> float:
        return self.values[int(rng.random() * len(self.values))]

    def mean(self) -> float:
        return statistics.fmean(self.values)

    def describe(self) -> str:
        return f"empirical:{len(self.values)} values, mean {self.mean():.3g}"


def read_numbers(path: str | Path) -> list[float]:
    """Numbers from a JSON list (or {"values": [...]}) or a CSV/text file, one per line
    (the first column; lines that are not numbers, such as a header, are skipped)."""
    text = Path(path).read_text()
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        data = json.loads(text)
        if isinstance(data, dict):
            data = data.get("values", data.get("arrivals"))
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of numbers")
        return [float(x) for x in data]
    values: list[float] = []
    for row in csv.reader(text.splitlines()):
        if not row or not row[0].strip():
            continue
        try:
            values.append(float(row[0]))
        except ValueError:
            continue  # a header
    return values


def parse_distribution(text: str) -> Distribution:
    """`const:20`, `lognormal:MEAN,STD` (seconds), `lognormal:FILE` (fit to samples),
    `empirical:FILE` (resample); a bare number means const."""
    kind, sep, arg = text.partition(":")
    kind = kind.strip().lower()
    if not sep:
        try:
            return Constant(float(kind))
        except ValueError:
            raise ValueError(f"unknown distribution {text!r}: use const:S, lognormal:MEAN,STD, "
                             f"lognormal:FILE or empirical:FILE") from None
    if kind in ("const", "constant"):
        return Constant(float(arg))
    if kind == "lognormal":
        parts = arg.split(",")
        if len(parts) == 2:
            try:
                mean, std = float(parts[0]), float(parts[1])
            except ValueError:
                pass
            else:
                return LogNormal.from_mean_std(mean, std)
        return LogNormal.fit(read_numbers(arg))
    if kind == "empirical":
        return Empirical(tuple(read_numbers(arg)))
    raise ValueError(f"unknown distribution kind {kind!r} in {text!r}: "
                     f"use const, lognormal or empirical")


def poisson_arrivals(rate: float, duration_s: float, seed: int = 0) -> list[float]:
    """Arrival offsets of a Poisson process of `rate` per second over `duration_s`."""
    if rate <= 0:
        raise ValueError(f"--rate must be > 0, got {rate}")
    rng = random.Random(f"{seed}:arrivals")
    out: list[float] = []
    t = rng.expovariate(rate)
    while t < duration_s:
        out.append(t)
        t += rng.expovariate(rate)
    return out


def normalize_trace(values: Sequence[float]) -> list[float]:
    """Sorted offsets; unix times are shifted so the first arrival is at 0."""
    times = sorted(float(v) for v in values)
    if any(not math.isfinite(t) for t in times):
        raise ValueError("the trace holds a value that is not a finite number")
    if times and times[0] > UNIX_TIME_THRESHOLD:
        start = times[0]
        times = [t - start for t in times]
    if times and times[0] < 0:
        raise ValueError("the trace holds negative offsets")
    return times
