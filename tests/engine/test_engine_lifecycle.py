"""Engine, context and manager lifecycles: threads end with their engine, a closed engine's
contexts refuse calls, a running script cannot be unloaded under itself, and all three are
context managers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass

import esper
import pytest

from engine_scripting import (
    Permissions,
    Script,
    ScriptEngine,
    ScriptError,
    ScriptManager,
    ScriptSystem,
    WorldApi,
)


def _run_child(body: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(body)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, (done.stdout, done.stderr[-2000:])
    return done.stdout


def test_dropped_engines_stop_their_threads() -> None:
    out = _run_child("""
        import gc, threading, time
        from engine_scripting import ScriptEngine
        before = threading.active_count()
        for _ in range(20):
            engine = ScriptEngine()
            context = engine.create_context("c")
            context.execute("return 1")     # starts the worker and the watchdog
            del engine, context
        gc.collect()
        for _ in range(200):
            if threading.active_count() <= before:
                break
            time.sleep(0.01)
        print("threads", before, threading.active_count())
    """)
    before, after = map(int, out.split("threads ")[1].split())
    assert after <= before, out


def test_a_closed_engine_s_contexts_refuse_calls() -> None:
    out = _run_child("""
        from engine_scripting import ScriptEngine, ScriptError
        engine = ScriptEngine()
        context = engine.create_context("c")
        context.execute("x = 1")
        engine.close()
        for attempt in (lambda: context.execute("while true do end"),
                        lambda: context.call("print"),
                        lambda: engine.create_context("d")):
            try:
                attempt()
                print("ran")
            except ScriptError as error:
                print("refused:", error)
        context.close()
    """)
    assert out.count("refused: ") == 3 and "ran" not in out, out


@dataclass
class Trap:
    """Host code that runs while a script reads it: it tries to unload that script."""

    value: float = 0.0

    def __getattribute__(self, name: str) -> object:
        if name == "value":
            try:
                MANAGERS[-1].unload("self_unloader")
                OUTCOMES.append("unloaded")
            except ScriptError as error:
                OUTCOMES.append(str(error))
        return object.__getattribute__(self, name)


MANAGERS: list[ScriptManager] = []
OUTCOMES: list[str] = []


def test_a_script_cannot_be_unloaded_while_it_runs(engine: ScriptEngine, world: str) -> None:
    manager = ScriptManager(engine, initializers=[WorldApi()])
    MANAGERS.append(manager)
    OUTCOMES.clear()
    esper.add_processor(ScriptSystem(manager, components=[Trap]))
    manager.load("self_unloader", "n = 0 function on_update(self) "
                 "n = n + world.get(self.entity, 'Trap').value + 1 end",
                 permissions=Permissions(read={"Trap"}))
    record = manager.running("self_unloader")
    assert record is not None
    esper.create_entity(Trap(), Script("self_unloader"))
    esper.process(0.016)
    assert OUTCOMES and "while it runs" in OUTCOMES[0]
    assert "self_unloader" in manager and not record.context.closed
    assert record.context.execute("return n") == 1
    manager.unload("self_unloader")
    assert record.context.closed and "self_unloader" not in manager
    MANAGERS.clear()


def test_engine_context_and_manager_are_context_managers() -> None:
    with ScriptEngine() as engine:
        with engine.create_context("c") as context:
            assert context.execute("return 40 + 2") == 42
        assert context.closed
        with ScriptManager(engine, initializers=[WorldApi()]) as manager:
            manager.load("a", "x = 1")
            manager.load("b", "y = 2")
            assert manager.names() == ["a", "b"] or sorted(manager.names()) == ["a", "b"]
        assert list(manager.names()) == []
    assert engine.closed
    with pytest.raises(ScriptError):
        engine.create_context("late")


def test_closing_the_engine_during_a_call_still_stops_the_call() -> None:
    out = _run_child("""
        import threading, time
        from engine_scripting import ScriptEngine, ScriptResourceLimits, ScriptError
        engine = ScriptEngine(ScriptResourceLimits(max_execution_time_ms=200))
        context = engine.create_context("c")
        threading.Timer(0.02, engine.close).start()
        started = time.perf_counter()
        try:
            context.execute("while true do end")
        except ScriptError as error:
            print("stopped:", type(error).__name__)
        print("elapsed", time.perf_counter() - started)
        print("memory", context.memory_used > 0)
    """)
    assert "stopped: ResourceLimitExceeded" in out and "memory True" in out, out
    assert float(out.split("elapsed ")[1].split()[0]) < 2.0, out
