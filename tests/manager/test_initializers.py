"""The manager alone, without esper: context initializers are the seam through which APIs reach
a script's context, and the manager stays the one store of scripts."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from engine_scripting import (
    Permissions,
    ScriptContext,
    ScriptEngine,
    ScriptError,
    ScriptManager,
    ScriptRuntimeError,
    ScriptSystem,
    WorldApi,
)
from engine_scripting.manager import ScriptSpec

_INSTALL_CLOCK = b"""
local kit, start = ...
local ticks = start
kit.add_global("clock", function() ticks = ticks + 1 return ticks end)
return {peek = function() return ticks end}
"""


@dataclass(frozen=True)
class ClockApi:
    """A minimal initializer: a `clock()` global and a host-side handle to read it."""

    start: int = 0
    seen: list[str] = field(default_factory=list, compare=False, hash=False)

    def __call__(self, context: ScriptContext, script: ScriptSpec) -> object:
        self.seen.append(script.name)
        table = context.install(_chunk(), "clock", self.start)
        return context.entry(table[b"peek"])


def _chunk() -> bytes:
    import lupa.lua54 as lua54
    runtime = lua54.LuaRuntime(encoding=None)
    dump = runtime.eval("function(src) return string.dump(assert(load(src, '=clock')), true) end")
    chunk: bytes = dump(_INSTALL_CLOCK)
    return chunk


def test_an_initializer_installs_before_the_script_runs_and_its_handle_is_kept(
    engine: ScriptEngine,
) -> None:
    clock = ClockApi(start=100)
    with ScriptManager(engine, initializers=[clock]) as manager:
        manager.load("timer", "T0 = clock()\nfunction now() return clock() end")
        record = manager.running("timer")
        assert record is not None
        assert record.context.call("now") == 102       # file-level code already had clock()
        peek = record.installed[clock]
        assert callable(peek) and peek() == (102,)
        assert clock.seen == ["timer"]


def test_initializers_run_in_order_for_every_load(engine: ScriptEngine) -> None:
    first, second = ClockApi(start=1), ClockApi(start=2)
    with ScriptManager(engine, initializers=[first, second]) as manager:
        manager.load("a", "x = clock()")
        manager.load("b", "x = clock()")
        # the second installs last: its clock() is the global the script sees
        assert manager.running("a").context.execute("return x") == 3  # type: ignore[union-attr]
        assert first.seen == second.seen == ["a", "b"]


def test_an_initializer_given_twice_is_refused(engine: ScriptEngine) -> None:
    api = WorldApi()
    with pytest.raises(ValueError, match="twice"):
        ScriptManager(engine, initializers=[api, api])


def test_a_failing_initializer_stores_nothing_and_frees_the_context(engine: ScriptEngine) -> None:
    contexts: list[ScriptContext] = []

    @dataclass(frozen=True)
    class Refusing:
        def __call__(self, context: ScriptContext, script: ScriptSpec) -> object:
            contexts.append(context)
            raise ScriptError(f"{script.name}: refused by the initializer")

    manager = ScriptManager(engine, initializers=[Refusing()])
    with pytest.raises(ScriptError, match="refused by the initializer"):
        manager.load("x", "y = 1")
    assert "x" not in manager and manager.names() == ()
    assert contexts[0].closed


def test_without_initializers_a_script_has_no_world(engine: ScriptEngine) -> None:
    with ScriptManager(engine) as manager:
        manager.load("plain", "function has_world() return world ~= nil end")
        assert manager.running("plain").context.call("has_world") is False  # type: ignore[union-attr]
        with pytest.raises(ScriptRuntimeError, match="nil"):
            manager.load("needs", "world.get(1, 'Position')")


def test_a_system_needs_the_world_api_and_says_how_to_get_it(engine: ScriptEngine,
                                                            world: str) -> None:
    with pytest.raises(ScriptError, match=r"initializers=\[WorldApi\(\)\]"):
        ScriptSystem(ScriptManager(engine))


def test_the_world_api_gets_the_scripts_permissions(engine: ScriptEngine, world: str) -> None:
    with ScriptManager(engine, initializers=[WorldApi(console_lines_per_tick=1)]) as manager:
        manager.load("reader", "ok = true", permissions=Permissions(read={"Position"}))
        assert manager.permissions("reader") == Permissions(read={"Position"})
    with pytest.raises(ValueError, match="console_lines_per_tick"):
        WorldApi(console_lines_per_tick=-1)


def test_entries_refuse_once_the_context_is_closed(engine: ScriptEngine, world: str) -> None:
    api = WorldApi()
    manager = ScriptManager(engine, initializers=[api])
    manager.load("s", "x = 1")
    record = manager.running("s")
    assert record is not None
    entries = record.installed[api]
    assert entries.instance_list() is not None  # type: ignore[attr-defined]
    manager.unload("s")
    with pytest.raises(ScriptError, match="closed"):
        entries.instance_list()  # type: ignore[attr-defined]
