"""A runaway script stops shortly after its time budget wherever it loops."""

from __future__ import annotations

import time

import pytest

from engine_scripting import ResourceLimitExceeded, ScriptContext
from tests.conftest import STOP_BOUND_S

RUNAWAYS = {
    "while": "while true do end",
    "numeric_for": "for i = 1, math.maxinteger do end",
    "repeat": "repeat until false",
    "goto": "::top:: goto top",
    "tail_recursion": "local function f() return f() end return f()",
    "pcall_loop": "while true do pcall(function() while true do end end) end",
    "pcall_swallow": "for i = 1, math.huge do pcall(error, 'x') end",
    "xpcall_handler": "xpcall(function() while true do end end, function() while true do end end)",
    "xpcall_handler_after_error":
        "xpcall(function() error('x') end, function() while true do end end)",
    "coroutine": "coroutine.wrap(function() while true do end end)()",
    "coroutine_resume": "coroutine.resume(coroutine.create(function() while true do end end))",
    "nested_coroutines": """
        coroutine.wrap(function()
          coroutine.wrap(function()
            coroutine.wrap(function() while true do end end)()
          end)()
        end)()""",
    "coroutine_parent_loops_after_child_yields": """
        coroutine.wrap(function()
          local child = coroutine.wrap(function() coroutine.yield(1) end)
          child()
          while true do end
        end)()""",
    # coroutine.wrap lists up to 16 living coroutines for good (their calls need no wrapper);
    # beyond that, calls go through a Lua function that lists the coroutine when resumed
    "wrap_after_sixteen_suspended": """
        local held = {}
        for i = 1, 16 do
          held[i] = coroutine.wrap(function() coroutine.yield() end)
          held[i]()
        end
        coroutine.wrap(function() while true do end end)()""",
    "wraps_nested_deeper_than_sixteen": """
        local function nest(depth)
          if depth == 0 then while true do end end
          coroutine.wrap(nest)(depth - 1)
        end
        nest(40)""",
    "wrap_after_many_dead_generators": """
        for i = 1, 1000 do coroutine.wrap(function() end)() end
        coroutine.wrap(function() while true do end end)()""",
    "metamethod": "local t = setmetatable({}, {__index = function() while true do end end}) "
                  "return t.x",
    "close_handler": "do local x <close> = setmetatable({}, {__close = function() "
                     "while true do end end}) end",
    "sort_comparator": "local t = {3, 2, 1} table.sort(t, function() while true do end end)",
    "gsub_callback": "string.gsub('abc', '%w', function() while true do end end)",
    "load_chunk": "load('while true do end')()",
    "tostring_metamethod": "tostring(setmetatable({}, {__tostring = function() "
                           "while true do end end}))",
    "error_object_tostring": "error(setmetatable({}, {__tostring = function() "
                             "while true do end end}))",
    "close_in_killed_coroutine": """
        local co = coroutine.create(function()
          local x <close> = setmetatable({}, {__close = function() while true do end end})
          while true do end
        end)
        coroutine.resume(co)""",
    "wrap_closes_killed_coroutine": """
        coroutine.wrap(function()
          local x <close> = setmetatable({}, {__close = function() while true do end end})
          while true do end
        end)()""",
}


def _stopped(ctx: ScriptContext, source: str) -> float:
    started = time.perf_counter()
    with pytest.raises(ResourceLimitExceeded) as caught:
        ctx.execute(source)
    elapsed = time.perf_counter() - started
    assert caught.value.limit_type == "time"
    assert "time" in str(caught.value)
    return elapsed


@pytest.mark.parametrize("source", RUNAWAYS.values(), ids=RUNAWAYS.keys())
def test_runaway_is_stopped(ctx: ScriptContext, source: str) -> None:
    assert _stopped(ctx, source) < STOP_BOUND_S
    assert ctx.execute("return 1 + 1") == 2  # the context stays usable


def test_coroutine_created_before_the_call(ctx: ScriptContext) -> None:
    ctx.execute("co = coroutine.create(function() coroutine.yield() while true do end end) "
                "coroutine.resume(co)")
    assert _stopped(ctx, "coroutine.resume(co)") < STOP_BOUND_S


@pytest.mark.parametrize("held", [0, 16, 20])
def test_wrapped_coroutine_created_before_the_call(ctx: ScriptContext, held: int) -> None:
    # `held` suspended generators first: the last one is listed for good or goes through the
    # listing wrapper
    ctx.execute(f"""
        held = {{}}
        for i = 1, {held} do
          held[i] = coroutine.wrap(function() coroutine.yield() end)
          held[i]()
        end
        gen = coroutine.wrap(function() coroutine.yield() while true do end end)
        gen()""")
    assert ctx.execute("return 1") == 1   # a call in between
    assert _stopped(ctx, "gen()") < STOP_BOUND_S


def test_nesting_coroutines_is_not_limited_by_held_generators(ctx: ScriptContext) -> None:
    assert ctx.execute("""
        held = {}
        for i = 1, 40 do
          held[i] = coroutine.wrap(function() coroutine.yield() end)
          held[i]()
        end
        local function nest(depth)
          if depth == 0 then return 0 end
          return 1 + coroutine.wrap(nest)(depth - 1)
        end
        return nest(60)""") == 60


def test_killed_coroutine_cannot_run_close_handlers_later(ctx: ScriptContext) -> None:
    ctx.execute("""
        co = coroutine.create(function()
          local x <close> = setmetatable({}, {__close = function() while true do end end})
          while true do end
        end)""")
    _stopped(ctx, "coroutine.resume(co)")
    ok, message = ctx.execute("return coroutine.close(co)")
    assert ok is False and "stopped" in message


def test_budget_is_per_call(ctx: ScriptContext) -> None:
    ctx.execute("function work() local s = 0 for i = 1, 1e4 do s = s + i end return s end")
    for _ in range(200):  # many short calls never add up to a stop
        assert ctx.call("work") == 50005000


def test_stop_reaction_is_close_to_budget(ctx: ScriptContext) -> None:
    elapsed = _stopped(ctx, "while true do end")
    assert 0.045 <= elapsed < STOP_BOUND_S


def test_a_call_that_waited_for_a_core_is_not_stopped_for_the_wait() -> None:
    """Past its deadline, a call is stopped once its worker had most of its budget in CPU time,
    or at the latest when an overloaded machine would abandon it: a script of a busy game is not
    disabled for the machine's load. (The rule alone: starving a thread on purpose is too
    machine-dependent for a test.)"""
    from engine_scripting.engine._watchdog import (
        OVERLOADED_GRACE_S,
        SPENT_SHARE,
        CallWatch,
        Watchdog,
    )

    class Thread:
        cpu = 0.0

        def cpu_time(self) -> float:
            return self.cpu

    watch = CallWatch(main_state=0, slots_table=0, slot_capacity=0, budget_s=0.1, deep_slots=0)
    worker = Thread()
    watch.worker = worker  # type: ignore[assignment]
    worker.cpu = 0.2 * watch.budget_s
    assert not Watchdog._spent(watch, overrun=0.05)
    worker.cpu = SPENT_SHARE * watch.budget_s
    assert Watchdog._spent(watch, overrun=0.0)
    worker.cpu = 0.0
    assert Watchdog._spent(watch, overrun=3 * watch.budget_s + OVERLOADED_GRACE_S)
    watch.worker = None
    assert Watchdog._spent(watch, overrun=0.0)   # no worker thread to ask: wall time decides
