"""How a finished call of a context turns out: its values as plain data, or its typed error.

Provides ``Outcomes``, one per context. Uses what sandbox.lua recorded about the call (how deep
the failing call ran, whether the message handler saw the error, which limit stopped it) and
never reads an error's kind from its message. Uses _convert.py for the values.
"""

from __future__ import annotations

import time
from typing import Any

from engine_scripting._lua_text import error_line, printable, split_message, text
from engine_scripting.engine._convert import (
    PlainData,
    ResultTooLarge,
    ResultTooSlow,
    exported_to_python,
)
from engine_scripting.engine._hooks import Violation
from engine_scripting.engine._native import LuaNative
from engine_scripting.engine._watchdog import CallWatch
from engine_scripting.errors import (
    LimitType,
    PermissionDenied,
    ResourceLimitExceeded,
    ScriptCompileError,
    ScriptError,
    ScriptRuntimeError,
    SecurityViolation,
    limit_type_of,
)

Result = PlainData | tuple[PlainData, ...]
_MEMORY_MESSAGE = b"not enough memory"


class Outcomes:
    """Classifies the results of one context's calls.

    Args:
        name: the context's name, for messages.
        outcome: sandbox.lua's ``outcome`` trampoline (what it recorded about a failed call).
        result_cap: host bytes the converted values of one call may take (None: no cap).
        native, watch: to disarm a hook the sandbox armed itself, and read stack sizes.
    """

    def __init__(self, name: str, outcome: Any, result_cap: int | None,
                 native: LuaNative | None, watch: CallWatch | None) -> None:
        self.name = name
        self._outcome = outcome
        self._result_cap = result_cap
        self._native = native
        self._watch = watch

    def _stack_ran_away(self) -> bool:
        """Whether the memory just ran out on a stack far deeper than the recursion limit.

        Lua calls no message handler for memory errors, so the depth is read afterwards: the
        main thread's stack keeps its size until the next garbage collection.
        """
        watch, native = self._watch, self._native
        if watch is None or native is None or not native.stack_sampling:
            return False
        return native.stack_capacity(watch.main_state) > max(100_000, 4 * watch.deep_slots)

    def memory_error(self) -> ResourceLimitExceeded:
        """The memory limit was exceeded."""
        return ResourceLimitExceeded(
            f"{self.name}: memory limit exceeded", limit_type="memory", script=self.name
        )

    def limit_error(self, limit: LimitType) -> ResourceLimitExceeded:
        """The call was stopped at ``limit``; a time limit says its budget and how long the call
        ran."""
        detail = ""
        if limit == "time" and self._watch is not None:
            ran_ms = (time.perf_counter() - self._watch.started) * 1e3
            detail = f" (budget {self._watch.budget_s * 1e3:g} ms, stopped after {ran_ms:.0f} ms)"
        return ResourceLimitExceeded(f"{self.name}: {limit} limit exceeded{detail}",
                                     limit_type=limit, script=self.name)

    def call_error(self, violation: Violation | None, reason: object,
                   out_of_memory: bool, failure: str | None) -> ScriptError | None:
        """The error a call that ended without a result of its own ends with, in order: the
        first violation it committed, the limit the watchdog stopped it at, a memory error,
        or the Lua error it raised; None when it returned."""
        if violation is not None:
            kind, message, entity, callback = violation
            message = printable(message)   # one line: a spoofed name cannot fake another
            error_class = PermissionDenied if kind == "permission" else SecurityViolation
            return error_class(message, reason=kind, script=self.name, entity=entity,
                               callback=callback, line=error_line(message))
        if reason is not None and reason is not False:
            return self.limit_error(limit_type_of(reason))
        if out_of_memory:
            return self.memory_error()
        if failure is not None:
            return ScriptRuntimeError(failure, script=self.name)
        return None

    def values(self, result: tuple[object, ...], compiling: bool = False,
               deadline: float | None = None) -> Result:
        """The values of a call from xpcall's results, converted before ``deadline`` (a
        ``time.perf_counter`` value); raises its typed error instead."""
        status = result[0]
        if status is None:
            message = text(result[1] if len(result) > 1 else "error")
            if compiling:
                raise ScriptCompileError(message, script=self.name, line=error_line(message))
            raise ScriptRuntimeError(message, script=self.name)
        if status is False:
            raise self._error(result[1] if len(result) > 1 else None)
        count, *values = result[1:]   # export.lua: a count the sandbox made, or -1
        cap = self._result_cap
        try:
            if count == -1:
                converted = exported_to_python(values[0], values[1] if len(values) > 1 else None,
                                               cap, deadline=deadline)
            else:   # scalars only, strings short (export.lua); one budget for them all
                converted = exported_to_python(values, None, cap, start=0)
        except ResultTooSlow:
            raise ResourceLimitExceeded(
                f"{self.name}: converting the result for the host outlasted the time limit",
                limit_type="time", script=self.name,
            ) from None
        except ResultTooLarge:
            raise ResourceLimitExceeded(
                f"{self.name}: the result would take more than {cap} bytes in the host",
                limit_type="memory", script=self.name,
            ) from None
        if not converted:
            return None
        if len(converted) == 1:
            return converted[0]
        return tuple(converted)

    def _error(self, error: object) -> ScriptError:
        """The error of a failed call, classified from what the sandbox recorded (how deep the
        failing call ran; whether the message handler saw the error: memory errors skip it),
        never from the message's text."""
        if self._native is not None and self._watch is not None:
            # a pcall that caught a too-deep error armed the hook itself (sandbox.lua `caught`)
            self._native.disarm(self._watch.main_state)
        deep, handled, reason = self._outcome()
        if reason is not None:
            return self.limit_error(limit_type_of(reason))
        if error == _MEMORY_MESSAGE and not handled:
            if deep or self._stack_ran_away():
                return ResourceLimitExceeded(
                    f"{self.name}: recursion limit exceeded", limit_type="recursion",
                    script=self.name,
                )
            return self.memory_error()
        message = text(error)
        if deep:
            return ResourceLimitExceeded(
                f"{self.name}: recursion limit exceeded ({message.splitlines()[0]})",
                limit_type="recursion", script=self.name,
            )
        first_line, traceback = split_message(message)
        return ScriptRuntimeError(
            first_line, script=self.name, line=error_line(first_line), traceback=traceback
        )
