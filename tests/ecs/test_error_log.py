"""Scripts' errors are logged within a budget over time: a script that fails on and off (never
disabled for failing ticks in a row) cannot flood the host's logs."""

from __future__ import annotations

import logging

import pytest

from engine_scripting import ScriptRuntimeError
from engine_scripting.ecs._error_log import MAX_TEXT, ErrorLog


def _events(caplog: pytest.LogCaptureFixture, name: str) -> int:
    return sum(f"{name} " in record.getMessage() for record in caplog.records)


def test_a_script_failing_on_and_off_logs_within_its_budget(
        caplog: pytest.LogCaptureFixture) -> None:
    log = ErrorLog(per_second=10.0, burst=20.0)
    error = ScriptRuntimeError("x" * 10_000, script="noisy", traceback="\tnoisy:1: in f\n" * 2000)
    with caplog.at_level(logging.ERROR, logger="engine_scripting"):
        for tick in range(300):            # far faster than 10 a second
            log.report("noisy", [error] * 20, tick)
    events = _events(caplog, "script.error") + _events(caplog, "script.errors_not_logged")
    assert 20 <= events <= 26              # the burst, and what refilled meanwhile
    assert _events(caplog, "script.error") >= 15
    assert all(len(record.getMessage()) < 3 * MAX_TEXT + 500 for record in caplog.records)


def test_what_was_left_out_is_counted_once_the_budget_refills(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("engine_scripting.ecs._error_log.time.monotonic", lambda: clock[0])
    log = ErrorLog(per_second=1.0, burst=2.0)
    error = ScriptRuntimeError("boom", script="noisy")
    with caplog.at_level(logging.ERROR, logger="engine_scripting"):
        log.report("noisy", [error] * 4, 1)    # 2 logged, 2 left out
        clock[0] += 5.0
        log.report("noisy", [error], 2)        # the count, then the error
    assert _events(caplog, "script.error") == 3
    counted = [record.getMessage() for record in caplog.records
               if "script.errors_not_logged " in record.getMessage()]
    assert len(counted) == 1 and "count=2" in counted[0]
