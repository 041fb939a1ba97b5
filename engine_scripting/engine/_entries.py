"""Plain entries: the host's hottest calls into a context, in as few Python frames as possible.

``ScriptContext.entry(function, plain_args=True)`` gives one. A ScriptSystem makes one such call
per script and tick; with hundreds of scripts, each Lua state and each Python object on the way
is cold by its turn, so every frame and attribute lookup on the path shows (docs/performance.md,
"The fixed cost of a script per tick"). On the engine's worker, the entry goes straight to the
context's protected call; anywhere else it is the ordinary entry (a handoff to the worker).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine_scripting.engine._runner import Runner

Call = Callable[..., tuple[Any, ...]]


def plain_entry(function: Any, invoke: Any, run_here: Callable[..., tuple[Any, ...]],
                runner: Runner | None, check: Callable[[tuple[Any, ...]], object],
                ordinary: Call) -> Call:
    """``function`` (a trusted Lua function) called through the sandbox's ``invoke`` with
    arguments lupa pushes without allocating (None, bools, floats, ints within 64 bits, Lua
    values of the context: the caller guarantees it). ``run_here`` is the context's protected
    call on the current thread, ``check`` raises the typed error of a failed call, and
    ``ordinary`` is the entry to use off the worker."""
    current = runner.current if runner is not None else None

    def call(*args: object) -> tuple[Any, ...]:
        worker = current() if current is not None else None
        if worker is None and current is not None:
            return ordinary(*args)
        result = run_here(invoke, (function, *args), True, False, True, worker)
        if result[0] is not True:
            check(result)
        return result[1:]

    return call
