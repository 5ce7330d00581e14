"""`vwe-pool`: serve the daemon, submit seeds, show and tune the pool, simulate, generate
locally."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from pool.core.exceptions import ConfigError
from pool.core.pool_policy import PATCHABLE, PolicyError, PolicyField


def _settings(**overrides: Any) -> Any:
    from pool.infra.settings import load_settings

    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        print(f"vwe-pool: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _policy_arg(spec: PolicyField) -> Callable[[str], object]:
    def parse(text: str) -> object:
        try:
            return spec.parse(text)
        except PolicyError as exc:
            raise argparse.ArgumentTypeError(exc.problem) from None

    return parse


def _api_url(args: argparse.Namespace) -> str:
    if args.api:
        return str(args.api).rstrip("/")
    port = os.environ.get("VWE_API_PORT", "8080")
    host = os.environ.get("VWE_API_HOST", "127.0.0.1")
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"


def cmd_serve(args: argparse.Namespace) -> int:
    from pool.entry.root import serve
    from pool.infra.logs import configure_logging
    from pool.infra.templates import load_templates, served, template_settings

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    try:  # a bad template is refused before anything starts, as a bad setting is
        templates = load_templates(settings.templates_file)
        serving = served(args.templates or settings.templates, templates)
        template_settings(settings, templates)
    except ConfigError as exc:
        print(f"vwe-pool: {exc}", file=sys.stderr)
        return 2
    return serve(settings, role=args.role, templates=templates, serving=serving)


def _fail(response: httpx.Response) -> int:
    try:
        err = response.json()["error"]
        print(f"vwe-pool: {response.status_code} {err['code']}: {err['message']}", file=sys.stderr)
    except Exception:
        print(f"vwe-pool: HTTP {response.status_code}: {response.text[:200]}", file=sys.stderr)
    return 1


def _bar(fraction: float, message: str) -> str:
    width = 30
    done = int(width * max(0.0, min(1.0, fraction)))
    return f"\r[{'#' * done}{'.' * (width - done)}] {fraction * 100:5.1f}% {message[:40]:<40}"


def cmd_generate(args: argparse.Namespace) -> int:
    base = _api_url(args)
    # Only what was given: the template's default options apply to the rest.
    body: dict[str, Any] = {"seed": args.seed}
    if args.worldgen_version is not None:
        body["worldgen_version"] = args.worldgen_version
    if args.legacy_fwl:
        body["legacy_fwl"] = True
    if args.template:
        body["template"] = args.template
    if args.resolution:
        body["resolution"] = args.resolution
    if args.layers:
        body["layers"] = args.layers.split(",")
    with httpx.Client(base_url=base, timeout=30) as client:
        try:
            response = client.post("/v1/worlds", json=body)
        except httpx.HTTPError as exc:
            print(f"vwe-pool: cannot reach the daemon at {base}: {exc}", file=sys.stderr)
            return 1
        if response.status_code not in (200, 202):
            return _fail(response)
        job = response.json()
        if not args.wait and not args.out:
            print(json.dumps(job, indent=2))
            return 0
        tty = sys.stderr.isatty()
        deadline = time.monotonic() + args.timeout
        while job["status"] not in ("succeeded", "failed") and time.monotonic() < deadline:
            if tty:
                sys.stderr.write(_bar(job["progress"], f"{job['status']}: {job['message']}"))
            response = client.get(f"/v1/jobs/{job['job_id']}", params={"wait": 1},
                                  timeout=10)
            if response.status_code != 200:
                return _fail(response)
            job = response.json()
        if tty:
            sys.stderr.write(_bar(1.0 if job["status"] == "succeeded" else job["progress"],
                                  job["status"]) + "\n")
        if job["status"] != "succeeded":
            print(f"vwe-pool: job {job['job_id']} {job['status']}: {job.get('error')}",
                  file=sys.stderr)
            return 1
        if args.out:
            out = Path(args.out)
            for artifact in job["artifacts"]:
                target = out / artifact["name"]
                target.parent.mkdir(parents=True, exist_ok=True)
                with client.stream("GET", artifact["url"]) as stream:
                    if stream.status_code != 200:
                        return _fail(stream)
                    with target.open("wb") as f:
                        for chunk in stream.iter_bytes():
                            f.write(chunk)
                print(f"{target}  {artifact['size']} bytes")
        print(json.dumps({k: job[k] for k in ("job_id", "status", "seed", "seed_hash",
                                              "launch_type", "attempts", "generation_s",
                                              "duration_s", "cached")}, indent=2))
    return 0


def _pool_path(args: argparse.Namespace) -> str:
    return f"/v1/pool/{args.template}" if args.template else "/v1/pool"


def cmd_status(args: argparse.Namespace) -> int:
    try:
        response = httpx.get(f"{_api_url(args)}{_pool_path(args)}", timeout=10)
    except httpx.HTTPError as exc:
        print(f"vwe-pool: cannot reach the daemon: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        return _fail(response)
    pool = response.json()
    if args.json:
        print(json.dumps(pool, indent=2))
        return 0
    print(f"{pool['template']}: target {pool['target']} (size {pool['size']}, "
          f"min {pool['min']}, max {pool['max']}"
          f"{', autoscale: ' + str(pool['autoscale_reason']) if pool['autoscale'] else ''})"
          f"  queue {pool['queue_depth']}")
    print(f"{'CONTAINER':<28} {'STATE':<9} {'AGE':>8} {'USES':>5}  DAEMON")
    for c in pool["containers"]:
        print(f"{c['name']:<28} {c['state']:<9} {c['age_s']:>7.0f}s {c['uses']:>5}  {c['daemon']}")
    return 0


def cmd_pool_set(args: argparse.Namespace) -> int:
    patch = {f.name: getattr(args, f.name) for f in PATCHABLE
             if getattr(args, f.name) is not None}
    if not patch:
        print("vwe-pool: nothing to change: give at least one option (see --help)",
              file=sys.stderr)
        return 2
    token = os.environ.get("VWE_API_TOKEN", "")
    response = httpx.patch(f"{_api_url(args)}{_pool_path(args)}", json=patch, timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 200:
        return _fail(response)
    pool = response.json()
    print(f"pool {pool['template']}: size {pool['size']}, max {pool['max']}, min {pool['min']}, "
          f"autoscale {pool['autoscale']}")
    return 0


def cmd_worldgen(args: argparse.Namespace) -> int:
    from worldgen.generate import generate_world

    try:
        world = generate_world(args.seed, Path(args.out), resolution=args.resolution,
                               worldgen_version=args.worldgen_version,
                               legacy_fwl=args.legacy_fwl, layers=args.layers.split(","))
    except ValueError as exc:
        print(f"vwe-pool: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(world, indent=2, default=str))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from pool.sim.cli import main as simulate_main

    return simulate_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vwe-pool", description=__doc__)
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the daemon and the API (default)")
    serve.add_argument("--role", choices=["all", "api", "worker"], default="all",
                       help="api: the HTTP API, no pool, no Docker engine needed; worker: "
                            "the pool, serving only /healthz, /readyz and /metrics; all: both "
                            "(default)")
    serve.add_argument("--templates", metavar="A,B",
                       help="the templates to run a pool for, comma-separated (default "
                            "VWE_TEMPLATES, else `default`); defined in VWE_TEMPLATES_FILE "
                            "(example: config/templates.toml)")
    serve.set_defaults(func=cmd_serve)

    def client(p: argparse.ArgumentParser) -> None:
        p.add_argument("--api", help="daemon URL (default http://VWE_API_HOST:VWE_API_PORT)")
        p.add_argument("--template", help="the template (default: default; see "
                                          "config/templates.toml)")

    gen = sub.add_parser("generate", help="submit a seed to the running daemon")
    gen.add_argument("seed")
    gen.add_argument("--wait", action="store_true", help="wait, showing progress")
    gen.add_argument("--out", help="download the artifacts into DIR (implies --wait)")
    gen.add_argument("--timeout", type=float, default=600)
    gen.add_argument("--worldgen-version", type=int, choices=[0, 1, 2],
                     help="default: the template's, else 2")
    gen.add_argument("--legacy-fwl", action="store_true")
    gen.add_argument("--resolution", type=int, help="default: the template's")
    gen.add_argument("--layers", help="comma-separated: biomes,heights (default: biomes)")
    client(gen)
    gen.set_defaults(func=cmd_generate)

    status = sub.add_parser("status", help="show the pool")
    status.add_argument("--json", action="store_true")
    client(status)
    status.set_defaults(func=cmd_status)

    pool = sub.add_parser("pool", help="tune the pool")
    pool_sub = pool.add_subparsers(dest="pool_command", required=True)
    pool_set = pool_sub.add_parser("set", help="change the pool policy (VWE_API_TOKEN)")
    for f in PATCHABLE:  # the policy's own fields and bounds (pool.core.pool_policy)
        pool_set.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name,
                              type=_policy_arg(f), metavar=f.kind.__name__.upper(),
                              help=f"{f.doc} ({'true or false' if f.kind is bool else f.bounds()})")
    client(pool_set)
    pool_set.set_defaults(func=cmd_pool_set)

    wg = sub.add_parser("worldgen", help="generate a world locally, without Docker")
    wg.add_argument("seed")
    wg.add_argument("--out", required=True)
    wg.add_argument("--resolution", type=int, default=2048)
    wg.add_argument("--worldgen-version", type=int, default=2, choices=[0, 1, 2])
    wg.add_argument("--legacy-fwl", action="store_true")
    wg.add_argument("--layers", default="biomes,heights",
                    help="comma-separated: biomes,heights (default: both)")
    wg.set_defaults(func=cmd_worldgen)

    sim = sub.add_parser("simulate", help="what-if: latency and cost against pool size")
    try:
        from pool.sim.cli import add_arguments
        add_arguments(sim)
    except ImportError:
        pass
    sim.set_defaults(func=cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv or [])])
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
