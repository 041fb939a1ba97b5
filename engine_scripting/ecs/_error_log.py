"""Logging scripts' errors with a bound over time, not only per tick.

A script that fails every other tick is never disabled for failing ticks in a row, and each of
its errors may carry kilobytes of message and traceback: logged as they come, that is
megabytes a minute of host work and disk. Each script gets a budget of log events that refills
with time (a token bucket); what it leaves out is counted and logged as one event once the
budget refills. Messages and tracebacks are cut to a size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from engine_scripting._log import get_logger
from engine_scripting.errors import ScriptError

_log = get_logger(__name__)

MAX_TEXT = 2000   # characters of a logged message or traceback


@dataclass(slots=True)
class _Budget:
    tokens: float
    refilled_at: float
    left_out: int = 0


@dataclass(slots=True)
class ErrorLog:
    """Logs each script's errors (``script.error``), at most ``per_tick`` (``report``'s) per tick
    and on average ``per_second`` per second (bursts of up to ``burst``); the rest are counted
    in one ``script.errors_not_logged`` event."""

    per_second: float = 10.0
    burst: float = 40.0
    _budgets: dict[str, _Budget] = field(default_factory=dict)

    def report(self, script: str, errors: list[ScriptError], tick: int,
               per_tick: int = 5) -> None:
        """Log ``errors`` of one tick of ``script`` within its budget, ``per_tick`` at most."""
        now = time.monotonic()
        budget = self._budgets.get(script)
        if budget is None:
            budget = self._budgets[script] = _Budget(self.burst, now)
        budget.tokens = min(self.burst,
                            budget.tokens + (now - budget.refilled_at) * self.per_second)
        budget.refilled_at = now
        if budget.left_out and budget.tokens >= 1:
            budget.tokens -= 1
            _log.error("script.errors_not_logged", script=script, count=budget.left_out,
                       tick=tick)
            budget.left_out = 0
        for index, error in enumerate(errors):
            if index >= per_tick or budget.tokens < 1:
                budget.left_out += len(errors) - index
                return
            budget.tokens -= 1
            _log.error("script.error", script=script, entity=error.entity,
                       callback=error.callback, error_class=type(error).__name__,
                       message=_cut(str(error)), line=error.line,
                       traceback=_cut(error.traceback))

    def forget(self, script: str) -> None:
        """Drop ``script``'s budget (it was unloaded)."""
        self._budgets.pop(script, None)


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return f"{text[:MAX_TEXT]}... ({len(text) - MAX_TEXT} more characters)"
