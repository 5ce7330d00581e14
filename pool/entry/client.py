"""The CLI's HTTP client commands: `generate`, `status`, `pool set`.

A daemon restarts (a deploy, Ctrl-C, `kill -9`) while a client waits on it; the job goes on in
Redis, so a waiting client rides the restart out: a refused or dropped connection and a 503
(`shutting_down`, `redis_unavailable`, `server_busy`) are retried after the answer's
`Retry-After` (else a short back-off) until the command's own deadline. Submitting again is
safe: the API answers a seed already asked for with the same job. Downloads are checked
against the size and sha256 the job record lists and land under a temporary name first, so a
file in `--out` is either whole and verified or absent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from pool.core.pool_policy import PATCHABLE

# Back-off between retries when the answer gives no Retry-After, and its cap (seconds).
RETRY_WAIT_S = 0.5
RETRY_WAIT_MAX_S = 5.0
TERMINAL = ("succeeded", "failed")


class ClientError(Exception):
    """A command failed; the message says what and where. Exit code 1."""


def api_url(args: argparse.Namespace) -> str:
    if args.api:
        return str(args.api).rstrip("/")
    port = os.environ.get("VWE_API_PORT", "8080")
    host = os.environ.get("VWE_API_HOST", "127.0.0.1")
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"


def describe(response: httpx.Response) -> str:
    try:
        err = response.json()["error"]
        return f"{response.status_code} {err['code']}: {err['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"


def request(client: httpx.Client, method: str, path: str, deadline: float,
            **kwargs: Any) -> httpx.Response:
    """`client.request`, retried through daemon restarts and 503s until `deadline`
    (time.monotonic()). Any other answer is returned as it is.

    Raises:
        ClientError: the daemon could not be reached, or kept answering 503, until the
            deadline (the message names the URL and the last error).
    """
    wait = RETRY_WAIT_S
    while True:
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            problem = f"cannot reach the daemon at {client.base_url}: {exc or type(exc).__name__}"
            pause = wait
        else:
            if response.status_code != 503:
                return response
            problem = describe(response)
            try:
                pause = float(response.headers.get("retry-after", wait))
            except ValueError:
                pause = wait
        if time.monotonic() + pause > deadline:
            raise ClientError(problem)
        time.sleep(pause)
        wait = min(wait * 2, RETRY_WAIT_MAX_S)


def _bar(fraction: float, message: str) -> str:
    width = 30
    done = int(width * max(0.0, min(1.0, fraction)))
    return f"\r[{'#' * done}{'.' * (width - done)}] {fraction * 100:5.1f}% {message[:40]:<40}"


def _download(client: httpx.Client, artifact: dict[str, Any], out: Path,
              deadline: float) -> Path:
    """One artifact into `out`, checked against its record; raises ClientError otherwise."""
    target: Path = out / str(artifact["name"])
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    digest, size = hashlib.sha256(), 0
    response = request(client, "GET", artifact["url"], deadline)  # small: read whole
    if response.status_code != 200:
        raise ClientError(f"{artifact['name']}: {describe(response)}")
    with partial.open("wb") as f:
        for chunk in response.iter_bytes():
            digest.update(chunk)
            size += len(chunk)
            f.write(chunk)
    if size != artifact["size"] or digest.hexdigest() != artifact["sha256"]:
        partial.unlink()
        raise ClientError(f"{artifact['name']}: downloaded {size} bytes with sha256 "
                          f"{digest.hexdigest()}, the job lists {artifact['size']} bytes "
                          f"and {artifact['sha256']}")
    partial.replace(target)
    return target


def cmd_generate(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ClientError(f"--out {out}: must be an empty folder or a new path (nothing in it "
                          "is overwritten)")
    # Only what was given: the template's default options apply to the rest.
    body: dict[str, Any] = {"seed": args.seed}
    for name in ("worldgen_version", "template", "resolution"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    if args.legacy_fwl:
        body["legacy_fwl"] = True
    if args.layers:
        body["layers"] = args.layers.split(",")
    deadline = time.monotonic() + args.timeout
    with httpx.Client(base_url=api_url(args), timeout=30) as client:
        response = request(client, "POST", "/v1/worlds", deadline, json=body)
        if response.status_code not in (200, 202):
            raise ClientError(describe(response))
        job = response.json()
        if not args.wait and out is None:
            print(json.dumps(job, indent=2))
            return 0
        tty = sys.stderr.isatty()
        while job["status"] not in TERMINAL:
            if time.monotonic() >= deadline:
                raise ClientError(f"job {job['job_id']} still {job['status']} after "
                                  f"{args.timeout:g} s (--timeout); it goes on: ask with "
                                  f"GET /v1/jobs/{job['job_id']}")
            if tty:
                sys.stderr.write(_bar(job["progress"], f"{job['status']}: {job['message']}"))
            response = request(client, "GET", f"/v1/jobs/{job['job_id']}", deadline,
                               params={"wait": 1}, timeout=10)
            if response.status_code != 200:
                raise ClientError(describe(response))
            job = response.json()
        if tty:
            sys.stderr.write(_bar(1.0 if job["status"] == "succeeded" else job["progress"],
                                  job["status"]) + "\n")
        if job["status"] != "succeeded":
            raise ClientError(f"job {job['job_id']} failed: {job.get('error')}")
        if out is not None:
            for artifact in job["artifacts"]:
                target = _download(client, artifact, out, deadline)
                print(f"{target}  {artifact['size']} bytes, sha256 verified")
    print(json.dumps({k: job[k] for k in ("job_id", "status", "seed", "seed_hash",
                                          "launch_type", "attempts", "generation_s",
                                          "duration_s", "cached")}, indent=2))
    return 0


def _pool_path(args: argparse.Namespace) -> str:
    return f"/v1/pool/{args.template}" if args.template else "/v1/pool"


def cmd_status(args: argparse.Namespace) -> int:
    with httpx.Client(base_url=api_url(args), timeout=10) as client:
        response = request(client, "GET", _pool_path(args), time.monotonic() + 2)
    if response.status_code != 200:
        raise ClientError(describe(response))
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
    token = os.environ.get("VWE_API_TOKEN", "").strip()
    if not token:
        print("vwe-pool: pool set needs the daemon's admin token: set VWE_API_TOKEN",
              file=sys.stderr)
        return 2
    with httpx.Client(base_url=api_url(args), timeout=10) as client:
        response = request(client, "PATCH", _pool_path(args), time.monotonic() + 2,
                           json=patch, headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 200:
        raise ClientError(describe(response))
    pool = response.json()
    print(f"pool {pool['template']}: size {pool['size']}, max {pool['max']}, min {pool['min']}, "
          f"autoscale {pool['autoscale']}")
    return 0
