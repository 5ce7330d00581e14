"""`vwe-pool simulate` on the command line: tables, plots, JSON and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pool.entry import cli
from pool.sim.workload import poisson_arrivals

pytestmark = pytest.mark.unit


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["simulate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No .env and no VWE_ variables from the developer's shell."""
    import os

    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("VWE_"):
            monkeypatch.delenv(name)
    return tmp_path


def test_cli_writes_a_plot_and_a_table(clean_env: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    png = clean_env / "out.png"
    code, out, err = run_cli(["--rate", "0.2", "--duration", "900", "--sizes", "0-3",
                              "--autoscale", "--target-p95", "5", "--plot", str(png)], capsys)
    assert code == 0, err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "size |" in out and "container-hours" in out
    assert "recommendation: pool size" in out
    assert "auto |" in out


def test_cli_json_recommendation_meets_target(clean_env: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    trace = clean_env / "trace.json"
    trace.write_text(json.dumps([1_700_000_000 + t for t in poisson_arrivals(0.3, 1800, 4)]))
    code, out, err = run_cli(["--trace", str(trace), "--sizes", "0-5", "--boot",
                              "lognormal:20,4", "--generation", "const:2", "--target-p95", "4",
                              "--quantile", "p99", "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    rec = data["recommendation"]
    assert rec["quantile"] == "p99" and rec["target_s"] == 4
    by_size = {r["size"]: r for r in data["sizes"]}
    assert rec["size"] is not None and by_size[rec["size"]]["p99"] <= 4
    assert all(by_size[s]["p99"] > 4 for s in by_size if s < rec["size"])
    assert data["autoscale"] is None


def test_cli_refuses_bad_input(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["--sizes", "0-2"], capsys)
    assert code == 2 and "exactly one of" in err
    code, _, err = run_cli(["--rate", "1", "--sizes", "0-9", "--max", "4"], capsys)
    assert code == 2 and "--max" in err
    code, _, err = run_cli(["--trace", str(clean_env / "nope.json")], capsys)
    assert code == 2 and "cannot read --trace" in err
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--rate", "1", "--boot", "weird:1"])


def test_cli_simulates_one_template_with_its_own_cap(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    templates = clean_env / "templates.toml"
    templates.write_text("[templates.preview]\nsize = 1\nmax = 3\n")
    monkeypatch.setenv("VWE_TEMPLATES_FILE", str(templates))
    code, out, err = run_cli(["--template", "preview", "--rate", "0.1", "--duration", "600",
                              "--sizes", "0-2", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["inputs"]["max"] == 3  # the template's cap, not VWE_POOL_MAX (8)
    code, out, err = run_cli(["--template", "huge", "--rate", "0.1", "--sizes", "0-2"], capsys)
    assert code == 2 and "--template: no template 'huge'; defined: default, preview" in err


@pytest.mark.parametrize("argv", [["--rate", "nan"], ["--rate", "0"], ["--rate", "inf"],
                                  ["--rate", "1", "--duration", "-5"]])
def test_rates_and_durations_that_simulate_nothing_are_refused(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["simulate", *argv])
    assert exit_info.value.code == 2
    assert "must be a finite number > 0" in capsys.readouterr().err
