"""The OpenAPI description is the API: schemathesis, every check, over a live server.

A real `vwe-pool serve --role api` (real Redis, no Docker needed) is driven by schemathesis'
examples, coverage and fuzzing phases with `--checks all`: no 5xx, every status code, content
type and header documented, schema-valid requests accepted, schema-invalid ones refused, the
admin route refusing without its token, `Allow` true. Long-polls are capped at 0.05 s
(VWE_API_MAX_WAIT_S) so that the run's time goes to cases, and the queue cap is out of reach.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import DaemonProcess

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
MIN_CASES = 1000
# Per operation in the fuzzing phase; with the coverage phase's cases this passes MIN_CASES.
MAX_EXAMPLES = 250


# The run is bounded by its case count; its time is mostly case generation (CPU), so the limit
# here leaves room for a busy 2-core machine. On an idle one it takes about a minute.
@pytest.mark.timeout(900)
def test_schemathesis_all_checks_pass_over_the_live_api(
        daemon_factory: Callable[..., DaemonProcess]) -> None:
    d = daemon_factory(VWE_API_TOKEN="contract-token", VWE_QUEUE_MAX="1000000",
                       VWE_API_MAX_WAIT_S="0.05").start(role="api")
    run = subprocess.run(
        [str(ROOT / ".venv/bin/schemathesis"), "run", f"{d.url}/openapi.json",
         "--checks", "all", "--phases", "examples,coverage,fuzzing",
         "--max-examples", str(MAX_EXAMPLES), "--workers", "2", "--no-color",
         "--header", "Authorization: Bearer contract-token", "--wait-for-schema", "30"],
        capture_output=True, text=True, timeout=880, check=False)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", report)
    assert generated is not None, report[-3000:]
    assert int(generated.group(1)) >= MIN_CASES, generated.group(0)
    assert generated.group(1) == generated.group(2), generated.group(0)
