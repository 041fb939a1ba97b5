"""Coroutine fast paths (engine_scripting/engine/lua/coroutines.lua) keep every thread that may
run listed in `slots`: generators abandoned while suspended give their permanent slot back once
their function is garbage, and `slots` is compacted early so that the watchdog reads a short
list."""

from __future__ import annotations

import time

import lupa.lua54 as lua54
import pytest

from engine_scripting import ResourceLimitExceeded, ScriptContext
from engine_scripting.engine._native import LuaNative
from tests.conftest import STOP_BOUND_S


def _listed(ctx: ScriptContext) -> int:
    """How many threads `slots` lists now (what the watchdog would arm)."""
    watch = ctx._watch
    assert watch is not None
    return len(LuaNative.slot_threads(watch.slots_table, watch.slot_capacity))


def _stopped(ctx: ScriptContext, source: str) -> float:
    started = time.perf_counter()
    with pytest.raises(ResourceLimitExceeded) as caught:
        ctx.execute(source)
    assert caught.value.limit_type == "time"
    return time.perf_counter() - started


ABANDON_16 = """
    handles = {}
    for i = 1, 16 do
      local gen = coroutine.wrap(function()
        handles[i] = coroutine.running()
        coroutine.yield()
        while true do end
      end)
      gen()
    end
    collectgarbage()"""


def test_collected_generators_give_their_permanent_slots_back(ctx: ScriptContext) -> None:
    ctx.execute(ABANDON_16)
    ctx.execute("return 1")   # each call starts by compacting `slots`
    assert _listed(ctx) == 0
    # the slots are free again: sixteen new generators are listed from creation
    ctx.execute("""
        gens = {}
        for i = 1, 16 do
          gens[i] = coroutine.wrap(function() coroutine.yield() end)
          gens[i]()
        end""")
    ctx.execute("return 1")
    assert _listed(ctx) == 16


def test_thread_of_a_collected_generator_is_listed_when_resumed(ctx: ScriptContext) -> None:
    ctx.execute(ABANDON_16)
    assert _stopped(ctx, "coroutine.resume(handles[1])") < STOP_BOUND_S
    assert ctx.execute("return 1 + 1") == 2


def test_running_generator_whose_function_is_collected_stays_listed(ctx: ScriptContext) -> None:
    # the generator drops its own function and forces compactions while it runs
    source = """
        local co
        gen = coroutine.wrap(function()
          co = coroutine.running()
          coroutine.yield()
          gen = nil
          collectgarbage()
          for i = 1, 100 do coroutine.resume(coroutine.create(function() coroutine.yield() end)) end
          while true do end
        end)
        gen()
        coroutine.resume(co)"""
    assert _stopped(ctx, source) < STOP_BOUND_S


def test_slots_stay_short_under_many_short_lived_coroutines(ctx: ScriptContext) -> None:
    ctx.execute("""
        for i = 1, 500 do
          coroutine.resume(coroutine.create(function() coroutine.yield() end))
        end""")
    assert _listed(ctx) <= 64   # compacted at 32 to 64 listed, not at the capacity of 216


RESUMES = """
    local co = coroutine.create(function(...)
      local n = select('#', ...)
      while true do n = select('#', coroutine.yield(n)) end
    end)
    local out = {}
    for i = 1, 4 do out[i] = select(2, coroutine.resume(co, table.unpack({1, nil, 3}, 1, i))) end
    local _, e1 = pcall(coroutine.resume)
    local _, e2 = pcall(coroutine.resume, nil)
    local _, e3 = pcall(coroutine.resume, {})
    local _, e4 = pcall(function() local r = coroutine.resume(nil) return r end)
    local dead = coroutine.create(function() end)
    coroutine.resume(dead)
    return table.concat(out, ','), e1, e2, e3, e4,
      select(2, coroutine.resume(coroutine.running())), select(2, coroutine.resume(dead)),
      select(2, coroutine.resume(co, 1, 2))"""


def test_resume_fast_path_keeps_results_and_errors(ctx: ScriptContext) -> None:
    plain = lua54.LuaRuntime()
    expected = plain.execute(RESUMES)
    got = ctx.execute(RESUMES)
    # positions name the chunk: plain's is '[string "<python>"]'
    assert got == tuple(v.replace('[string "<python>"]', "test") if isinstance(v, str) else v
                        for v in expected)
