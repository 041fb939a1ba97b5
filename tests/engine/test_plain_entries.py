"""``ScriptContext.entry(function, plain_args=True)``: the short path of the host's hottest call
(the ScriptSystem's tick) keeps every check and limit of the ordinary entry."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import lupa.lua54 as lua54
import pytest

from engine_scripting import ScriptEngine, ScriptResourceLimits
from engine_scripting.engine import ScriptContext
from engine_scripting.errors import ResourceLimitExceeded, ScriptError, ScriptRuntimeError

_DUMP = lua54.LuaRuntime(encoding=None).eval(
    "function(src) return string.dump(assert(load(src)), true) end")
# the kit's coroutine-free pieces are enough: each function is trusted code the host installs
_CHUNK = _DUMP(b"""
local kit = ...
return function(a, b) return a + b, kit.type(a) end,
       function(message) kit.error(message, 0) end,
       function() local t = {} for i = 1, 1e12 do t[i % 8] = i end end,
       function() local t = {} for i = 1, 1e9 do t[i] = {} end end,
       function(host) return host() end
""")


@pytest.fixture
def engine() -> Iterator[ScriptEngine]:
    engine = ScriptEngine(ScriptResourceLimits(max_memory_mb=4, max_execution_time_ms=200))
    yield engine
    engine.close()


def _functions(context: ScriptContext) -> tuple[Any, ...]:
    return tuple(context.install(_CHUNK, "plain"))


def _on_worker(engine: ScriptEngine, context: ScriptContext,
               job: Callable[[], object]) -> object:
    """Run ``job`` on the engine's worker, as the ScriptSystem runs its tick; return what it
    returned or raised."""
    outcome: list[object] = []

    def run(_: object) -> None:
        try:
            outcome.append(job())
        except ScriptError as error:
            outcome.append(error)

    engine.run_each([0], run, lambda _: context, lambda *_: None)
    return outcome[0]


def test_on_the_worker_and_off_it_a_plain_entry_returns_what_invoke_returns(
    engine: ScriptEngine,
) -> None:
    context = engine.create_context("plain")
    add = _functions(context)[0]
    entry = context.entry(add, plain_args=True)
    expected = tuple(context.invoke(add, 2, 3.5))
    assert tuple(entry(2, 3.5)) == expected == (5.5, b"number")   # off the worker: a handoff
    on_worker = _on_worker(engine, context, lambda: entry(2, 3.5))
    assert isinstance(on_worker, tuple) and on_worker == expected


def test_a_plain_entry_raises_the_typed_errors_of_invoke(engine: ScriptEngine) -> None:
    context = engine.create_context("plain")
    _, fail, spin, grow, _ = _functions(context)
    failed = _on_worker(engine, context, lambda: context.entry(fail, plain_args=True)(b"bad"))
    assert isinstance(failed, ScriptRuntimeError) and "bad" in str(failed)
    stopped = _on_worker(engine, context, lambda: context.entry(spin, plain_args=True)())
    assert isinstance(stopped, ResourceLimitExceeded) and stopped.limit_type == "time"
    full = _on_worker(engine, context, lambda: context.entry(grow, plain_args=True)())
    assert isinstance(full, ResourceLimitExceeded) and full.limit_type == "memory"
    # the context is whole afterwards: the next call runs
    add = _functions(context)[0]
    assert _on_worker(engine, context, lambda: context.entry(add, plain_args=True)(1, 1)) == (
        2, b"number")


def test_a_plain_entry_refuses_a_closed_or_busy_context(engine: ScriptEngine) -> None:
    context = engine.create_context("plain")
    add, _, _, _, through_host = _functions(context)
    entry = context.entry(add, plain_args=True)
    refused: list[ScriptError] = []

    def reenter() -> int:   # a host function the context's own call reaches
        try:
            entry(1, 2)
        except ScriptError as error:
            refused.append(error)
        return 0

    host = context.gated(reenter, -1)
    assert _on_worker(engine, context, lambda: context.invoke(through_host, host)) == (0,)
    assert len(refused) == 1 and "already running" in str(refused[0])
    context.close()
    closed = _on_worker(engine, context, lambda: entry(1, 2))
    assert isinstance(closed, ScriptError) and "closed" in str(closed)
    with pytest.raises(ScriptError, match="closed"):
        entry(1, 2)
