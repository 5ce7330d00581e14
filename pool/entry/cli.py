"""`vwe-pool`: serve the daemon, submit seeds, show and tune the pool, simulate, generate
locally."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pool import __version__
from pool.core.exceptions import ConfigError
from pool.core.pool_policy import PATCHABLE, PolicyError, PolicyField
from pool.entry.client import ClientError, cmd_generate, cmd_pool_set, cmd_status


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
    parser.add_argument("--version", action="version", version=f"vwe-pool {__version__}")
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
    gen.add_argument("--out", metavar="DIR", help="download the artifacts into DIR, an empty or "
                     "new folder, each checked against its sha256 (implies --wait)")
    gen.add_argument("--timeout", type=float, default=600, metavar="S",
                     help="give up waiting after S seconds, daemon restarts included "
                          "(default 600; the job goes on)")
    gen.add_argument("--worldgen-version", type=int, choices=[0, 1, 2],
                     help="default: the template's, else 2")
    gen.add_argument("--legacy-fwl", action="store_true",
                     help="also write the world in the pre-1.0 .fwl layout")
    gen.add_argument("--resolution", type=int, help="map cells per side (default: the "
                                                    "template's)")
    gen.add_argument("--layers", help="comma-separated: biomes,heights (default: biomes)")
    client(gen)
    gen.set_defaults(func=cmd_generate)

    status = sub.add_parser("status", help="show the pool")
    status.add_argument("--json", action="store_true", help="print the pool as JSON")
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
    wg.add_argument("--out", required=True, metavar="DIR",
                    help="where the world's files go (an empty or new folder)")
    wg.add_argument("--resolution", type=int, default=2048,
                    help="map cells per side (default 2048)")
    wg.add_argument("--worldgen-version", type=int, default=2, choices=[0, 1, 2],
                    help="the game's world generator version (default 2)")
    wg.add_argument("--legacy-fwl", action="store_true",
                    help="also write the world in the pre-1.0 .fwl layout")
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
    try:
        return int(args.func(args))
    except ClientError as exc:
        print(f"vwe-pool: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `vwe-pool status --json | head`: the reader left; say nothing more, as `cat` does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    raise SystemExit(main())
