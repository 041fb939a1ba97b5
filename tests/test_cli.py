"""The engine-scripting command line, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine_scripting.cli", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_run_prints_returned_values() -> None:
    done = _cli("run", "examples/hello.lua")
    assert done.returncode == 0, done.stderr
    assert '"primes": 15' in done.stdout and "primes below 50" in done.stdout


def test_run_reports_time_limit(tmp_path: Path) -> None:
    done = _cli("run", "examples/runaway.lua", "--time-ms", "50")
    assert done.returncode == 1
    assert done.stderr.startswith("ResourceLimitExceeded:") and "time" in done.stderr


def test_run_reports_errors(tmp_path: Path) -> None:
    script = tmp_path / "bad.lua"
    script.write_text("local t = nil\nreturn t.x\n")
    done = _cli("run", str(script))
    assert done.returncode == 1 and done.stderr.startswith("ScriptRuntimeError: bad:2:")
