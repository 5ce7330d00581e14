"""`vwe-pool simulate`: what-if of latency and cost against pool size, from a trace, a
Poisson rate or what the daemon recorded in Redis (read through `pool.store.traces`)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from pool.core.exceptions import ConfigError
from pool.infra.settings import Settings, load_settings
from pool.infra.templates import load_templates
from pool.sim.engine import SimResult, recommend, simulate
from pool.sim.workload import (
    Constant,
    Distribution,
    Empirical,
    LogNormal,
    normalize_trace,
    parse_distribution,
    poisson_arrivals,
    read_numbers,
)
from pool.store.traces import arrivals_key, read_trace


def parse_sizes(text: str) -> list[int]:
    """`0-6`, `1,2,4` or a mix such as `0-2,4,8`."""
    sizes: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            if sep:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                sizes.update(range(a, b + 1))
            else:
                sizes.add(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid --sizes {text!r}: use a range such as 0-6 or a list such as 0,2,4"
        ) from None
    if not sizes or min(sizes) < 0:
        raise argparse.ArgumentTypeError(f"invalid --sizes {text!r}: sizes must be >= 0")
    return sorted(sizes)


def _distribution_arg(text: str) -> Distribution:
    try:
        return parse_distribution(text)
    except (ValueError, OSError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_seconds(text: str) -> float:
    """A finite number > 0 (argparse type): nan, inf and 0 simulate nothing useful."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "What-if: replay arrivals against simulated pools of several sizes (and the "
        "autoscaler), using the daemon's own decisions, and report latency and cost. The "
        "pool policy (max_uses, max_age_s, idle_ttl_s, surplus_idle_s, max_concurrent_boots, "
        "min, max) comes from the VWE_* settings, or from one template's with --template.")
    parser.add_argument("--template", metavar="NAME",
                        help="simulate this template's pool: its size, max and resources "
                             "(VWE_TEMPLATES_FILE) and, with --from-redis, its own arrivals "
                             "and boot times (default: default)")
    src = parser.add_argument_group("arrivals (one of)")
    src.add_argument("--trace", metavar="FILE",
                     help="arrival times: a JSON list (unix times or offsets in seconds) or a "
                          "CSV with one per line")
    src.add_argument("--rate", type=_positive_seconds, metavar="R",
                     help="Poisson arrivals per second (> 0)")
    src.add_argument("--from-redis", action="store_true",
                     help="arrivals, generation and boot times recorded by the daemon in "
                          "Redis (VWE_REDIS_URL, VWE_POOL_NAME); --boot and --generation "
                          "override the recorded times")
    parser.add_argument("--duration", type=_positive_seconds, default=3600.0, metavar="S",
                        help="simulated seconds with --rate (default 3600)")
    parser.add_argument("--export-trace", metavar="FILE",
                        help="write the arrival trace (unix times) from Redis to FILE as JSON "
                             "and exit")
    parser.add_argument("--boot", type=_distribution_arg, default=None, metavar="DIST",
                        help="boot time: const:S, lognormal:MEAN,STD, lognormal:FILE (fit) or "
                             "empirical:FILE (default const:20, or fitted from Redis with "
                             "--from-redis)")
    parser.add_argument("--generation", type=_distribution_arg, default=None, metavar="DIST",
                        help="generation time, same forms (default const:1, or fitted from "
                             "Redis with --from-redis)")
    parser.add_argument("--fit", choices=["lognormal", "empirical"], default="lognormal",
                        help="how --from-redis models generation and boot times (default "
                             "lognormal)")
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("0-6"),
                        metavar="RANGE", help="pool sizes to try: 0-6 or 0,2,4 (default 0-6)")
    parser.add_argument("--max", type=int, default=None, metavar="M",
                        help="hard cap on containers (default max(VWE_POOL_MAX, largest size))")
    parser.add_argument("--min", type=int, default=None, metavar="N",
                        help="autoscaler floor (default VWE_POOL_MIN)")
    parser.add_argument("--autoscale", action="store_true",
                        help="also simulate the autoscaler (starting from --min)")
    parser.add_argument("--target-p95", type=float, default=None, metavar="SECONDS",
                        help="latency target: recommend the smallest size meeting it")
    parser.add_argument("--quantile", choices=["p50", "p95", "p99"], default="p95",
                        help="which latency quantile --target-p95 applies to (default p95)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="plot latency and cost against pool size")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def _fail(message: str, code: int = 2) -> int:
    print(f"vwe-pool simulate: {message}", file=sys.stderr)
    return code


def _load_settings() -> Settings:
    return load_settings()


def _model(samples: Sequence[float], fit: str) -> Distribution:
    return Empirical(tuple(samples)) if fit == "empirical" else LogNormal.fit(samples)


def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=3)


def main(args: argparse.Namespace) -> int:
    try:
        settings = _load_settings()
        if args.template:  # that template's policy, resources and records
            templates = load_templates(settings.templates_file)
            if args.template not in templates:
                raise ConfigError(f"--template: no template {args.template!r}; defined: "
                                  f"{', '.join(sorted(templates))}")
            settings = templates[args.template].settings_for(settings)
    except ConfigError as exc:
        return _fail(str(exc))

    sources = sum(bool(x) for x in (args.trace, args.rate is not None, args.from_redis))
    if args.export_trace:
        if args.trace or args.rate is not None:
            return _fail("--export-trace reads Redis; it takes no --trace or --rate")
    elif sources != 1:
        return _fail("give exactly one of --trace FILE, --rate R or --from-redis")

    generation: Distribution | None = args.generation
    boot: Distribution | None = args.boot
    redis_note = ""
    if args.from_redis or args.export_trace:
        try:
            client = _redis_client(settings.redis_url)
            recorded = read_trace(client, settings.pool_name, template=settings.template)
        except Exception as exc:
            return _fail(f"cannot read the trace from Redis at {settings.redis_url}: {exc}", 1)
        if args.export_trace:
            Path(args.export_trace).write_text(json.dumps(recorded.arrivals))
            print(f"wrote {len(recorded.arrivals)} arrivals to {args.export_trace}")
            return 0
        if not recorded.arrivals:
            return _fail(f"no arrivals recorded under "
                         f"{arrivals_key(settings.pool_name, settings.template)}", 1)
        arrivals = normalize_trace(recorded.arrivals)
        if generation is None and recorded.generation_s:
            generation = _model(recorded.generation_s, args.fit)
        if boot is None and recorded.boot_s:
            boot = _model(recorded.boot_s, args.fit)
        redis_note = (f"redis: {len(arrivals)} arrivals, {len(recorded.generation_s)} "
                      f"generation times, {len(recorded.boot_s)} boot times, recorded "
                      f"launches {recorded.launch_types}")
        duration: float | None = arrivals[-1] if arrivals else 0.0
    elif args.trace:
        try:
            arrivals = normalize_trace(read_numbers(args.trace))
        except (OSError, ValueError) as exc:
            return _fail(f"cannot read --trace {args.trace}: {exc}")
        duration = None
    else:
        if args.duration <= 0:
            return _fail("--duration must be > 0")
        try:
            arrivals = poisson_arrivals(args.rate, args.duration, args.seed)
        except ValueError as exc:
            return _fail(str(exc))
        duration = args.duration
    if generation is None:
        generation = Constant(1.0)
    if boot is None:
        boot = Constant(20.0)
    if not arrivals:
        return _fail("the trace holds no arrivals")

    sizes: list[int] = args.sizes
    cap = args.max if args.max is not None else max(settings.pool_max, max(sizes))
    floor = args.min if args.min is not None else settings.pool_min
    if cap < max(sizes):
        return _fail(f"--max {cap} is below the largest size {max(sizes)}")
    try:
        base = settings.pool_policy().updated(max=cap, min=min(floor, cap), size=0,
                                              autoscale=False)
    except ValueError as exc:
        return _fail(str(exc))

    common: dict[str, Any] = {
        "horizon_s": duration, "seed": args.seed,
        "maintenance_interval_s": settings.maintenance_interval_s,
        "boot_timeout_s": settings.boot_timeout_s, "boot_backoff_s": settings.boot_backoff_s,
        "boot_backoff_max_s": settings.boot_backoff_max_s,
    }
    results = [simulate(arrivals, base.updated(size=s), boot, generation, **common)
               for s in sizes]
    auto: SimResult | None = None
    if args.autoscale:
        auto = simulate(arrivals, base.updated(size=base.min), boot, generation,
                        autoscale=True, autoscale_window_s=settings.autoscale_window_s,
                        autoscale_quantile=settings.autoscale_quantile,
                        autoscale_step_down=settings.autoscale_step_down, **common)

    q = args.quantile
    if args.target_p95 is not None:
        target_s = args.target_p95
        target_note = f"target {q} <= {target_s:g} s"
    else:
        best = min((r.quantile(q) for r in results), default=math.nan)
        target_s = best * 1.1
        target_note = f"no --target-p95: within 10% of the best simulated {q} ({best:.2f} s)"
    chosen = recommend(results, target_s, q)
    if chosen is not None:
        line = (f"recommendation: pool size {chosen.size} ({q} {chosen.quantile(q):.2f} s, "
                f"warm-hit {chosen.warm_hit_ratio:.1%}, {chosen.container_hours:.2f} "
                f"container-hours; {target_note})")
    else:
        line = (f"recommendation: none of sizes {sizes[0]}..{sizes[-1]} meets the target "
                f"({target_note}); try larger sizes or a larger --max")
    if auto is not None:
        verdict = "meets" if auto.quantile(q) <= target_s else "misses"
        line += (f"\nautoscaler: mean target {auto.mean_target:.2f}, {q} "
                 f"{auto.quantile(q):.2f} s ({verdict} the target), "
                 f"{auto.container_hours:.2f} container-hours")

    if args.plot:
        try:
            from pool.sim.plot import plot  # matplotlib is optional (the bench extra)

            plot(results, auto, args.plot, target_s=args.target_p95, quantile=q,
                 chosen=chosen.size if chosen else None)
        except ImportError:
            return _fail("--plot needs matplotlib (pip install 'vwe-pool[bench]')", 1)

    horizon = duration if duration is not None else arrivals[-1]
    inputs = {"jobs": len(arrivals), "horizon_s": horizon,
              "boot": boot.describe(), "generation": generation.describe(),
              "max": cap, "min": base.min, "max_uses": base.max_uses,
              "max_age_s": base.max_age_s, "idle_ttl_s": base.idle_ttl_s,
              "surplus_idle_s": base.surplus_idle_s,
              "max_concurrent_boots": base.max_concurrent_boots, "seed": args.seed,
              "source": redis_note or (args.trace or f"poisson rate {args.rate:g}/s")}
    if args.json:
        print(json.dumps({
            "inputs": inputs, "sizes": [r.summary() for r in results],
            "autoscale": auto.summary() if auto else None,
            "recommendation": {"size": chosen.size if chosen else None, "quantile": q,
                               "target_s": None if math.isnan(target_s) else target_s,
                               "explicit_target": args.target_p95 is not None},
            "plot": args.plot,
        }, indent=2))
        return 0
    if redis_note:
        print(redis_note)
    print(f"{len(arrivals)} jobs over {horizon:.0f} s; boot {inputs['boot']}, "
          f"generation {inputs['generation']}; max {cap}, max_concurrent_boots "
          f"{base.max_concurrent_boots}")
    print(format_table(results, auto))
    print(line)
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def format_table(results: Sequence[SimResult], auto: SimResult | None = None) -> str:
    header = (f"{'size':>6} | {'p50':>8} | {'p95':>8} | {'p99':>8} | {'warm-hit':>8} | "
              f"{'container-hours':>15}")
    rows = [header, "-" * len(header)]

    def row(label: str, r: SimResult) -> str:
        return (f"{label:>6} | {r.p50:>7.2f}s | {r.p95:>7.2f}s | {r.p99:>7.2f}s | "
                f"{r.warm_hit_ratio:>8.1%} | {r.container_hours:>15.2f}")

    rows += [row(str(r.size), r) for r in results]
    if auto is not None:
        rows.append(row("auto", auto) + f"   (mean target {auto.mean_target:.2f})")
    return "\n".join(rows)


