"""What the Lua side of a context may call in Python, and small helpers for Lua's values.

Provides ``ContextHooks`` (printed lines and violation reports) and ``PUSH_FREE`` (argument
types lupa pushes without allocating). Its callbacks go through the
context's ``boundary.HostBoundary``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import lupa.lua54 as lua54

from engine_scripting._log import get_logger
from engine_scripting._lua_text import text
from engine_scripting.engine._boundary import HostBoundary

_log = get_logger(__name__)

_MESSAGE_CHARS = 1024
# A violation a call committed: its reason, message (the script's position first, when known),
# the entity and the callback that ran
Violation = tuple[str, str, int | None, str | None]


def _push_free_types() -> frozenset[type]:
    """Argument types lupa pushes onto a Lua stack without allocating in the Lua state."""
    runtime = lua54.LuaRuntime()
    table, function = runtime.eval("{}, function() end")
    return frozenset({type(None), bool, int, float, type(table), type(function)})


PUSH_FREE = _push_free_types()


class ContextHooks:
    """What the Lua side may call in Python: print output and violation reports.

    It holds no reference to the runtime, so a closed context is freed by reference counting.
    Lua gets ``lua_print`` and ``lua_report``: the methods behind the context's boundary.
    """

    def __init__(self, output_maxlen: int, on_print: Callable[[str], None] | None,
                 boundary: HostBoundary) -> None:
        self.output: deque[str] = deque(maxlen=output_maxlen)
        # the first violation of a call decides its error; the others are only counted
        self.violations: list[Violation] = []
        self.more_violations = 0
        self._on_print = on_print
        self.lua_print = boundary.wrap(self.print_sink)
        self.lua_report = boundary.wrap(self.report_violation)

    def print_sink(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace") if isinstance(line, bytes) else str(line)
        self.output.append(text)
        if self._on_print is not None:
            try:
                self._on_print(text)
            except Exception:  # a host callback must not unwind through Lua
                _log.exception("script.print_callback_failed")

    def report_violation(self, reason: bytes, message: bytes, entity: object = None,
                         callback: object = None) -> None:
        self._record(text(reason), text(message)[:_MESSAGE_CHARS],
                     entity if type(entity) is int else None,
                     text(callback)[:64] if isinstance(callback, bytes) else None)

    def deny_attribute(self, obj: object, name: object, is_setting: bool) -> object:
        self._record("python_attribute", f"access to Python attribute {str(name)[:200]!r}", None,
                     None)
        raise AttributeError("Python objects are not accessible from scripts")

    def _record(self, reason: str, message: str, entity: int | None,
                callback: str | None) -> None:
        if self.violations:
            self.more_violations += 1
        else:
            self.violations.append((reason, message, entity, callback))
