"""No source module over 500 lines (the project's standard; docs/architecture.md, "Layout"):
a module that long holds more than one concept and should be split."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 500
SOURCE_SUFFIXES = {".py", ".sh", ".js", ".css", ".html"}
# Outside git (an exported tree), these are not the project's sources.
NOT_SOURCE = {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".run", "data",
              "node_modules", "build", "dist"}


def _source_files() -> list[Path]:
    """The project's files: tracked or new and not ignored (git), else every file below the
    root outside NOT_SOURCE."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
            check=True, capture_output=True, text=True).stdout.splitlines()
        paths = [ROOT / name for name in listed]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for p in ROOT.rglob("*")
                 if not NOT_SOURCE & set(p.relative_to(ROOT).parts)
                 and not any(part.endswith(".egg-info") for part in p.parts)]
    return sorted(p for p in paths if p.suffix in SOURCE_SUFFIXES and p.is_file())


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for _ in f)


def test_the_listing_sees_the_sources() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _source_files()}
    assert {"pool/core/machine.py", "pool/daemon/warm_pool.py", "bench/bench_api.py"} <= names


def test_no_source_module_is_over_500_lines() -> None:
    long = {p.relative_to(ROOT).as_posix(): n for p in _source_files()
            if (n := _lines(p)) > MAX_LINES}
    assert long == {}, f"split these (over {MAX_LINES} lines): {long}"
