"""Plain entries: the host's hottest calls into a context, in as few Python frames as possible.

``ScriptContext.entry(function, plain_args=True)`` gives one. A ScriptSystem makes one such call
per script and tick; with hundreds of scripts, each Lua state and each Python object on the way
is cold by its turn, so every frame and attribute lookup on the path shows (docs/performance.md,
"The fixed cost of a script per tick"). On the engine's worker, the entry goes straight to the
context's protected call, with none of ``invoke``'s layers (its flags, ``_open``, the partial).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Call = Callable[..., tuple[Any, ...]]


def plain_entry(function: Any, invoke: Any, run: Callable[..., tuple[Any, ...]],
                check: Callable[[tuple[Any, ...]], object]) -> Call:
    """``function`` (a trusted Lua function) called through the sandbox's ``invoke`` with
    arguments lupa pushes without allocating (None, bools, floats, ints within 64 bits, Lua
    values of the context: the caller guarantees it). ``run`` is the context's protected call
    (inline on the worker, a handoff elsewhere) and ``check`` raises the typed error of a failed
    call."""
    def call(*args: object) -> tuple[Any, ...]:
        result = run(invoke, (function, *args), True)
        if result[0] is not True:
            check(result)
        return result[1:]

    return call
